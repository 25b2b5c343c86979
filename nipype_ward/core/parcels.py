"""Parcel-level reduction and expansion of voxel signals (arrays only)."""

from __future__ import annotations

import numpy as np
from scipy import sparse


def check_labels(labels, n_voxels: int | None = None) -> tuple[np.ndarray, int]:
    """Validate 0-based parcel labels and return them as intp with their count.

    Labels must be ``0 .. n_parcels - 1`` with every value used, as returned by
    :func:`nipype_ward.core.ward.cut_tree`.
    """
    labels = np.asarray(labels)
    if labels.ndim != 1:
        raise ValueError(f"labels must be 1D, got shape {labels.shape}")
    if n_voxels is not None and labels.shape[0] != n_voxels:
        raise ValueError(f"labels has {labels.shape[0]} entries for {n_voxels} voxels")
    if labels.size == 0:
        raise ValueError("labels is empty")
    if not np.issubdtype(labels.dtype, np.integer):
        raise TypeError(f"labels must be integers, got dtype {labels.dtype}")
    n_parcels = int(labels.max()) + 1
    if labels.min() < 0 or np.bincount(labels, minlength=n_parcels).min() == 0:
        raise ValueError("labels must be 0 .. n_parcels - 1 with every parcel used")
    return labels.astype(np.intp, copy=False), n_parcels


def _membership(labels: np.ndarray, n_parcels: int) -> sparse.csr_matrix:
    """(n_parcels, n_voxels) indicator matrix of the parcels."""
    n_voxels = labels.shape[0]
    return sparse.csr_matrix(
        (np.ones(n_voxels), (labels, np.arange(n_voxels))), shape=(n_parcels, n_voxels)
    )


def parcel_means(X, labels) -> np.ndarray:
    """Mean signal of each parcel: the seed's ``FeatureAgglomeration.transform``.

    Parameters
    ----------
    X : ndarray of shape (n_voxels, n_samples)
        Voxel signals (time points as columns).
    labels : ndarray of shape (n_voxels,)
        Parcel of each voxel, ``0 .. n_parcels - 1``.

    Returns
    -------
    means : ndarray of shape (n_parcels, n_samples), float64
    """
    X = np.asarray(X)
    if X.ndim != 2:
        raise ValueError(f"X must be 2D (n_voxels, n_samples), got shape {X.shape}")
    labels, n_parcels = check_labels(labels, X.shape[0])
    members = _membership(labels, n_parcels)
    sizes = np.asarray(members.sum(axis=1)).ravel()
    return np.asarray(members @ X, dtype=np.float64) / sizes[:, None]


def expand_parcels(means, labels) -> np.ndarray:
    """Give every voxel its parcel's signal: ``FeatureAgglomeration.inverse_transform``.

    Parameters
    ----------
    means : ndarray of shape (n_parcels, n_samples)
    labels : ndarray of shape (n_voxels,)

    Returns
    -------
    X_compressed : ndarray of shape (n_voxels, n_samples)
    """
    means = np.asarray(means)
    labels, n_parcels = check_labels(labels)
    if means.ndim != 2 or means.shape[0] != n_parcels:
        raise ValueError(
            f"means must have shape ({n_parcels}, n_samples) for these labels, got {means.shape}"
        )
    return means[labels]


def parcel_sizes(labels) -> np.ndarray:
    """Number of voxels of each parcel, shape (n_parcels,)."""
    labels, n_parcels = check_labels(labels)
    return np.bincount(labels, minlength=n_parcels)


def parcel_centroids(labels, coordinates) -> np.ndarray:
    """Mean coordinates of each parcel's voxels.

    Parameters
    ----------
    labels : ndarray of shape (n_voxels,)
        Parcel of each voxel, ``0 .. n_parcels - 1``.
    coordinates : ndarray of shape (n_voxels, n_dims)
        Position of each voxel (e.g. in mm).

    Returns
    -------
    centroids : ndarray of shape (n_parcels, n_dims), float64
    """
    labels, n_parcels = check_labels(labels)
    coordinates = np.asarray(coordinates, dtype=np.float64)
    if coordinates.ndim != 2 or coordinates.shape[0] != labels.shape[0]:
        raise ValueError(
            f"coordinates must have shape ({labels.shape[0]}, n_dims), got {coordinates.shape}"
        )
    sizes = np.bincount(labels, minlength=n_parcels)
    return np.stack(
        [np.bincount(labels, weights=axis, minlength=n_parcels) / sizes for axis in coordinates.T],
        axis=1,
    )


def adjusted_rand_index(labels_a, labels_b) -> float:
    """Adjusted Rand index of two partitions of the same voxels (any integer labels).

    Hubert and Arabie's index from the pairs of voxels: 1 for the same
    partition up to numbering, about 0 for unrelated ones; symmetric.
    scikit-learn's ``adjusted_rand_score`` computes the same from its pair
    confusion matrix (its conventions too: 1.0 when no pair is split one way
    and joined the other, e.g. one voxel, or both partitions all singletons);
    here in plain numpy and exact integers, without importing scikit-learn
    (0.85 s, most of a small run's compress step).
    """
    a = np.asarray(labels_a).ravel()
    b = np.asarray(labels_b).ravel()
    if a.shape != b.shape:
        raise ValueError(f"the partitions label {a.size} and {b.size} voxels")
    n = a.size
    _, a = np.unique(a, return_inverse=True)
    _, b = np.unique(b, return_inverse=True)
    joint = np.unique(a.astype(np.int64) * (int(b.max(initial=0)) + 1) + b, return_counts=True)[1]

    def squares(counts) -> int:
        return int(np.dot(counts.astype(np.int64), counts.astype(np.int64)))

    # Ordered pairs of distinct voxels, from the contingency table n_ij.
    together = squares(joint)  # sum of n_ij^2
    apart_in_a = squares(np.bincount(b)) - together  # together in b, apart in a
    apart_in_b = squares(np.bincount(a)) - together  # together in a, apart in b
    both = together - n  # together in both
    neither = n * n - apart_in_a - apart_in_b - together
    if apart_in_a == 0 and apart_in_b == 0:
        return 1.0
    return 2.0 * (both * neither - apart_in_a * apart_in_b) / (
        (both + apart_in_b) * (apart_in_b + neither) + (both + apart_in_a) * (apart_in_a + neither))
