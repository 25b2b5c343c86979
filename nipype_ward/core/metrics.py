"""Quality of a parcellation (arrays only, no I/O).

Every function takes plain arrays: voxel signals ``X`` of shape
``(n_voxels, n_samples)`` (time points as columns, the order of ``data[mask]``),
parcel labels of shape ``(n_voxels,)`` and, for the spatial measures, the
sparse voxel adjacency of :func:`nipype_ward.core.connectivity.grid_connectivity`.

==============================  =============================================
:func:`reconstruction_r2`       share of the temporal variance kept by the
                                parcel means (compression quality)
:func:`homogeneity`             mean within-parcel correlation of the voxels
:func:`contiguity`              number of connected pieces of each parcel
:func:`size_distribution`       min, quartiles and max of the parcel sizes
:func:`split_half_agreement`    reproducibility: ARI between the parcellations
                                of the first and second half of the volumes
:func:`truth_agreement`         ARI and AMI with known (e.g. simulated) regions
:func:`compression_summary`     the figures written next to each parcellation
==============================  =============================================
"""

from __future__ import annotations

from typing import Callable, NamedTuple

import numpy as np
from scipy import sparse
from scipy.sparse import csgraph

from nipype_ward.core.moments import ParcelMoments, parcel_moments
from nipype_ward.core.parcels import adjusted_rand_index, check_labels, parcel_sizes
from nipype_ward.core.validation import check_int, count_nonfinite_rows
from nipype_ward.core.ward import build_ward_tree, check_connectivity, cut_tree

__all__ = [
    "Agreement",
    "Contiguity",
    "SizeDistribution",
    "compression_summary",
    "contiguity",
    "homogeneity",
    "reconstruction_r2",
    "size_distribution",
    "split_half_agreement",
    "truth_agreement",
]

#: Values of the ``weighting`` argument of :func:`homogeneity`.
HOMOGENEITY_WEIGHTINGS = ("voxels", "parcels")


# --------------------------------------------------------------------------
# Result types
# --------------------------------------------------------------------------
class Contiguity(NamedTuple):
    """Output of :func:`contiguity`.

    Attributes
    ----------
    n_pieces : ndarray of shape (n_parcels,), intp
        Number of connected pieces of each parcel (1 for a contiguous parcel).
    n_noncontiguous : int
        Number of parcels made of more than one piece.
    n_extra_pieces : int
        ``sum(n_pieces - 1)``: pieces beyond the first, over all parcels
        (0 if and only if every parcel is contiguous).
    """

    n_pieces: np.ndarray
    n_noncontiguous: int
    n_extra_pieces: int


class SizeDistribution(NamedTuple):
    """Output of :func:`size_distribution` (numbers of voxels per parcel).

    Attributes
    ----------
    min, q1, median, q3, max
        Smallest size, first quartile, median, third quartile, largest size.
        Quartiles use numpy's default (linear) interpolation, so ``q1``,
        ``median`` and ``q3`` may be halves or other fractions.
    """

    min: int
    q1: float
    median: float
    q3: float
    max: int


class Agreement(NamedTuple):
    """Output of :func:`truth_agreement`.

    Attributes
    ----------
    ari : float
        Adjusted Rand index: 1 for identical partitions (up to numbering),
        about 0 for independent ones, negative if worse than chance.
    ami : float
        Adjusted mutual information (arithmetic normalisation, scikit-learn's
        default), with the same reading.
    """

    ari: float
    ami: float


# --------------------------------------------------------------------------
# Argument checks
# --------------------------------------------------------------------------
def _check_data(X, *, min_samples: int = 1, as_float64: bool = True) -> np.ndarray:
    """``X`` as a (n_voxels, n_samples) array of finite real values.

    With ``as_float64=False`` the array is returned as given (a float32 memory
    map stays one) and finiteness is checked a block of voxels at a time, for
    the functions that convert blocks themselves.
    """
    if sparse.issparse(X):
        raise TypeError("X must be a dense array (n_voxels, n_samples), got a sparse matrix")
    X = np.asanyarray(X)
    if X.ndim != 2:
        raise ValueError(f"X must be 2D (n_voxels, n_samples), got shape {X.shape}")
    if X.dtype == bool or not np.issubdtype(X.dtype, np.number) or np.iscomplexobj(X):
        raise TypeError(f"X must hold real numbers, got dtype {X.dtype}")
    if X.shape[0] < 1:
        raise ValueError("X has no voxel (0 rows)")
    if X.shape[1] < min_samples:
        raise ValueError(
            f"X must have at least {min_samples} time points (columns), got {X.shape[1]}"
        )
    if as_float64:
        X = np.asarray(X, dtype=np.float64)
    bad = count_nonfinite_rows(X)
    if bad:
        raise ValueError(f"X has NaN or infinite values in {bad} voxels")
    return X


def _check_any_labels(labels, name: str, n_voxels: int | None = None) -> np.ndarray:
    """1D integer labels of any values (not necessarily 0 .. K - 1)."""
    if sparse.issparse(labels):
        raise TypeError(f"{name} must be a 1D array of integers, got a sparse matrix")
    labels = np.asarray(labels)
    if labels.ndim != 1:
        raise ValueError(f"{name} must be 1D, got shape {labels.shape}")
    if labels.size == 0:
        raise ValueError(f"{name} is empty")
    if labels.dtype == bool or not np.issubdtype(labels.dtype, np.integer):
        raise TypeError(f"{name} must be integers, got dtype {labels.dtype}")
    if n_voxels is not None and labels.shape[0] != n_voxels:
        raise ValueError(f"{name} has {labels.shape[0]} entries for {n_voxels} voxels")
    return labels


def _check_n_clusters(n_clusters, n_voxels: int) -> int:
    return check_int(n_clusters, "n_clusters (between 1 and the number of voxels)",
                     high=n_voxels)


def _zscore_rows(X: np.ndarray) -> np.ndarray:
    """Each row centred and scaled to unit standard deviation; constant rows are 0.

    A row is constant when all its values are equal (exactly: the rounding
    error of its mean must not be blown up into a unit-variance series).
    """
    constant = X.max(axis=1) == X.min(axis=1)
    centred = X - X.mean(axis=1, keepdims=True)
    centred[constant] = 0.0
    std = centred.std(axis=1, keepdims=True)
    np.divide(centred, std, out=centred, where=std > 0)
    return centred


# --------------------------------------------------------------------------
# Compression quality
# --------------------------------------------------------------------------
def reconstruction_r2(X, labels) -> float:
    """Share of the voxels' temporal variance kept by the parcel means.

    Each voxel's time series is centred first, so the score measures how well
    the parcel mean follows the voxel's fluctuations, not its baseline
    intensity: ``1 - ||Xc - P(Xc)||^2 / ||Xc||^2`` where ``Xc`` is the centred
    data and ``P`` replaces each voxel by its parcel's mean.

    Parameters
    ----------
    X : ndarray of shape (n_voxels, n_samples)
        Voxel signals, time points as columns; finite real numbers.
    labels : ndarray of shape (n_voxels,)
        Parcel of each voxel, ``0 .. n_parcels - 1``, every value used.

    Returns
    -------
    r2 : float in [0, 1]; 1.0 when every parcel is one voxel.

    Raises
    ------
    ValueError
        If the data have no temporal variance at all (R2 is undefined), or
        on malformed inputs.
    """
    X = _check_data(X, as_float64=False)
    labels, n_parcels = check_labels(labels, X.shape[0])
    return _r2(parcel_moments(X, labels, n_parcels))


def _r2(moments: "ParcelMoments") -> float:
    if moments.total_variance == 0.0:
        raise ValueError("the data have no temporal variance: R2 is undefined")
    # The parcel mean is an orthogonal projection of the centred series, so
    # the residual is ||Xc||^2 - sum_p ||sum_{i in p} xc_i||^2 / n_p.
    kept = np.einsum("ij,ij->i", moments.centred_sums, moments.centred_sums) / moments.sizes
    return float(np.sum(kept) / moments.total_variance)


# --------------------------------------------------------------------------
# Homogeneity
# --------------------------------------------------------------------------
def _homogeneity(moments: "ParcelMoments", weighting: str = "voxels") -> float:
    # ||sum_i z_i||^2 = sum_i ||z_i||^2 + sum_{i != j} z_i . z_j, with
    # ||z_i||^2 = 1 for every voxel that is not constant.
    unit = moments.unit_sums
    pair_sums = np.einsum("ij,ij->i", unit, unit) - moments.n_varying
    keep = moments.sizes >= 2
    if not keep.any():
        return float("nan")
    sizes = moments.sizes[keep].astype(np.float64)
    per_parcel = pair_sums[keep] / (sizes * (sizes - 1.0))
    weights = sizes if weighting == "voxels" else np.ones_like(sizes)
    return float(np.sum(weights * per_parcel) / np.sum(weights))


def homogeneity(X, labels, *, weighting: str = "voxels") -> float:
    """Mean within-parcel temporal correlation of the voxels.

    Definition: for a parcel ``p`` of ``n_p >= 2`` voxels, ``h_p`` is the mean
    Pearson correlation over the ``n_p (n_p - 1)`` ordered pairs of distinct
    voxels of ``p``; the score is the average of ``h_p`` over the parcels of
    at least two voxels, weighted by their number of voxels ``n_p``
    (``weighting="voxels"``, the default: the expected correlation of a
    random voxel with another voxel of its parcel) or unweighted
    (``weighting="parcels"``).

    *Singletons* (parcels of one voxel) have no pair and are left out of the
    average, both from the numerator and the weights.

    *Constant voxels* (zero temporal variance) have, by convention, a
    correlation of 0 with every other voxel: they count as pairs, and pull
    their parcel's ``h_p`` towards 0, but never produce NaN.

    It is computed in ``O(n_voxels x n_samples)`` without forming any
    correlation matrix: with ``z_i`` the z-scored series of voxel ``i``
    scaled to unit norm (zero if constant), ``corr(i, j) = z_i . z_j`` and
    ``sum_{i != j} z_i . z_j = ||sum_i z_i||^2 - sum_i ||z_i||^2``.

    Parameters
    ----------
    X : ndarray of shape (n_voxels, n_samples)
        Voxel signals, time points as columns, at least 2 time points.
    labels : ndarray of shape (n_voxels,)
        Parcel of each voxel, ``0 .. n_parcels - 1``, every value used.
    weighting : {"voxels", "parcels"}, default="voxels"
        Weight of each parcel in the average: its number of voxels, or 1.

    Returns
    -------
    float
        In ``[-1, 1]`` (in practice ``[-1 / (n_p - 1), 1]`` per parcel);
        ``nan`` if every parcel is a single voxel (no pair at all).

    Notes
    -----
    Homogeneity does not depend on the baseline nor on the scale of each
    voxel's signal, unlike :func:`reconstruction_r2`, which weighs voxels by
    their variance. It favours small parcels: compare parcellations at the
    same number of parcels.
    """
    X = _check_data(X, min_samples=2, as_float64=False)
    labels, n_parcels = check_labels(labels, X.shape[0])
    if weighting not in HOMOGENEITY_WEIGHTINGS:
        raise ValueError(
            f"weighting must be one of {HOMOGENEITY_WEIGHTINGS}, got {weighting!r}"
        )
    return _homogeneity(parcel_moments(X, labels, n_parcels), weighting)


# --------------------------------------------------------------------------
# Spatial structure
# --------------------------------------------------------------------------
def contiguity(labels, connectivity) -> Contiguity:
    """Number of connected pieces of each parcel on the voxel grid.

    Two voxels of a parcel are in the same piece when a path of voxels of
    that parcel joins them, each step along an edge of ``connectivity``.

    Parameters
    ----------
    labels : ndarray of shape (n_voxels,)
        Parcel of each voxel, ``0 .. n_parcels - 1``, every value used.
    connectivity : sparse matrix of shape (n_voxels, n_voxels)
        Voxel adjacency, e.g. :func:`nipype_ward.core.connectivity.grid_connectivity`
        of the mask (any non-zero off-diagonal entry is an edge, taken as
        undirected; the diagonal is ignored).

    Returns
    -------
    Contiguity
        ``(n_pieces, n_noncontiguous, n_extra_pieces)``, see :class:`Contiguity`.
    """
    labels, n_parcels = check_labels(labels)
    graph = check_connectivity(connectivity, labels.shape[0]).tocoo()
    same = (labels[graph.row] == labels[graph.col]) & (graph.data != 0)
    inside = sparse.csr_matrix(
        (np.ones(int(same.sum()), dtype=np.int8), (graph.row[same], graph.col[same])),
        shape=graph.shape,
    )
    n_pieces_total, piece = csgraph.connected_components(inside, directed=False)
    # Every piece lies in one parcel: count the pieces of each parcel.
    piece_parcel = np.empty(n_pieces_total, dtype=np.intp)
    piece_parcel[piece] = labels
    n_pieces = np.bincount(piece_parcel, minlength=n_parcels).astype(np.intp)
    return Contiguity(
        n_pieces=n_pieces,
        n_noncontiguous=int(np.count_nonzero(n_pieces > 1)),
        n_extra_pieces=int(n_pieces_total - n_parcels),
    )


def size_distribution(labels) -> SizeDistribution:
    """Min, quartiles and max of the number of voxels per parcel.

    Parameters
    ----------
    labels : ndarray of shape (n_voxels,)
        Parcel of each voxel, ``0 .. n_parcels - 1``, every value used.

    Returns
    -------
    SizeDistribution
        ``(min, q1, median, q3, max)``; see :class:`SizeDistribution` and
        :func:`nipype_ward.core.parcels.parcel_sizes` for the sizes themselves.
    """
    labels, _ = check_labels(labels)
    sizes = parcel_sizes(labels)
    q1, median, q3 = (float(q) for q in np.percentile(sizes, [25, 50, 75]))
    return SizeDistribution(int(sizes.min()), q1, median, q3, int(sizes.max()))


# --------------------------------------------------------------------------
# Agreement between partitions
# --------------------------------------------------------------------------
def truth_agreement(labels, true_labels) -> Agreement:
    """Agreement of a parcellation with known regions: ARI and AMI.

    Parameters
    ----------
    labels : ndarray of shape (n_voxels,)
        Parcel of each voxel; any integer values (only equality matters).
    true_labels : ndarray of shape (n_voxels,)
        Reference region of each voxel, e.g. the ground-truth regions of
        :func:`nipype_ward.datasets.simulate_rest_fmri` masked by its brain
        mask (labels ``1 .. n_regions``); any integer values.

    Returns
    -------
    Agreement
        ``(ari, ami)``: the adjusted Rand index
        (:func:`~nipype_ward.core.parcels.adjusted_rand_index`, scikit-learn's
        ``adjusted_rand_score``) and scikit-learn's
        ``adjusted_mutual_info_score`` (arithmetic normalisation). Both are
        symmetric, 1 for the same partition up to numbering and about 0 for
        unrelated partitions.

    Notes
    -----
    The ARI of two partitions with very different numbers of parcels is
    small even when one nests in the other (e.g. 1000 parcels inside 300
    regions); the AMI is less severe. Compare methods at the same number of
    parcels.
    """
    from sklearn.metrics import adjusted_mutual_info_score

    labels = _check_any_labels(labels, "labels")
    true_labels = _check_any_labels(true_labels, "true_labels", labels.shape[0])
    return Agreement(
        ari=adjusted_rand_index(true_labels, labels),
        ami=float(adjusted_mutual_info_score(true_labels, labels)),
    )


def _ward_cluster(X, connectivity, n_clusters):
    """Default clustering of :func:`split_half_agreement`: our Ward tree, cut."""

    return cut_tree(build_ward_tree(X, connectivity).children, n_clusters)


def split_half_agreement(
    X,
    connectivity,
    n_clusters: int,
    *,
    cluster: Callable | None = None,
    standardize: bool = False,
) -> float:
    """Reproducibility: ARI between the parcellations of the two halves of a run.

    The volumes are split in time into a first half ``X[:, :n // 2]`` and a
    second half ``X[:, n // 2:]`` (with an odd ``n`` the second half has one
    more volume); each half is clustered separately into ``n_clusters``
    parcels and the score is the adjusted Rand index between the two label
    vectors (1: the same parcels; about 0: no more alike than chance).

    Parameters
    ----------
    X : ndarray of shape (n_voxels, n_samples)
        Voxel signals, time points as columns, at least 2 (4 with
        ``standardize=True``) time points.
    connectivity : sparse matrix of shape (n_voxels, n_voxels)
        Voxel adjacency, passed to ``cluster``.
    n_clusters : int
        Number of parcels of each half, ``1 .. n_voxels``.
    cluster : callable or None, default=None
        ``cluster(X_half, connectivity, n_clusters) -> labels`` returning one
        integer label per voxel. None uses this package's Ward:
        ``cut_tree(build_ward_tree(X_half, connectivity).children, n_clusters)``.
    standardize : bool, default=False
        Z-score each voxel's series within each half before clustering
        (constant series become 0). Ward on raw EPI intensities groups
        voxels by baseline intensity, which is as reproducible as the
        anatomy: standardize to measure the reproducibility of the
        co-fluctuation parcels.

    Returns
    -------
    float
        The adjusted Rand index of the two halves' labels.
    """
    X = _check_data(X, min_samples=4 if standardize else 2)
    n_voxels, n_samples = X.shape
    check_connectivity(connectivity, n_voxels)
    n_clusters = _check_n_clusters(n_clusters, n_voxels)
    if cluster is None:
        cluster = _ward_cluster
    elif not callable(cluster):
        raise TypeError(f"cluster must be callable or None, got {type(cluster).__name__}")
    if not isinstance(standardize, (bool, np.bool_)):
        raise TypeError(f"standardize must be a bool, got {standardize!r}")

    halves = (X[:, : n_samples // 2], X[:, n_samples // 2:])
    labels = []
    for index, half in enumerate(halves):
        half = _zscore_rows(half) if standardize else np.ascontiguousarray(half)
        result = cluster(half, connectivity, n_clusters)
        labels.append(_check_any_labels(result, f"the labels of half {index + 1}", n_voxels))
    return adjusted_rand_index(labels[0], labels[1])


# --------------------------------------------------------------------------
# Summary
# --------------------------------------------------------------------------
def compression_summary(X, labels, *, connectivity=None, moments=None) -> dict:
    """Figures of a parcellation used as a compression of ``X``.

    Parameters
    ----------
    X : ndarray of shape (n_voxels, n_samples)
        Voxel signals, time points as columns.
    labels : ndarray of shape (n_voxels,)
        Parcel of each voxel, ``0 .. n_parcels - 1``, every value used.
    connectivity : sparse matrix of shape (n_voxels, n_voxels) or None, default=None
        Voxel adjacency. When given, adds ``n_noncontiguous``
        (:func:`contiguity`); when None that key is absent.
    moments : ParcelMoments or None, default=None
        :func:`parcel_moments` of ``X`` and ``labels`` when the caller has
        them already (they give the parcel means too); computed when None.

    Returns
    -------
    dict
        ``n_voxels``, ``n_parcels``, ``compression_ratio`` (voxels per
        parcel), ``r2`` (:func:`reconstruction_r2`), ``homogeneity``
        (:func:`homogeneity`, voxel-weighted; None when every parcel is a
        single voxel), ``parcel_size_min``/``q1``/``median``/``q3``/``max``
        (:func:`size_distribution`), and ``n_noncontiguous`` with a
        connectivity.
    """
    X = _check_data(X, as_float64=False)
    labels, n_parcels = check_labels(labels, X.shape[0])
    if connectivity is not None:
        check_connectivity(connectivity, labels.shape[0])
    if moments is None:
        moments = parcel_moments(X, labels, n_parcels)
    sizes = size_distribution(labels)
    summary = {
        "n_voxels": int(labels.shape[0]),
        "n_parcels": n_parcels,
        "compression_ratio": float(labels.shape[0] / n_parcels),
        "r2": _r2(moments),
        "homogeneity": None,
        "parcel_size_min": sizes.min,
        "parcel_size_q1": sizes.q1,
        "parcel_size_median": sizes.median,
        "parcel_size_q3": sizes.q3,
        "parcel_size_max": sizes.max,
    }
    if X.shape[1] >= 2 and sizes.max > 1:
        summary["homogeneity"] = _homogeneity(moments)
    if connectivity is not None:
        summary["n_noncontiguous"] = contiguity(labels, connectivity).n_noncontiguous
    return summary
