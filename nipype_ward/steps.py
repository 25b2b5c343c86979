"""File-in, file-out steps of the parcellation.

Each step reads its inputs with :mod:`nipype_ward.image` (which checks them
and names the file in every error), calls the array core, and writes its
outputs atomically. The Nipype interfaces delegate to these functions one to
one, so scripts, the CLI and the interfaces share a single code path.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from nipype_ward import image, masking
from nipype_ward.connectivity import connected_components, grid_connectivity
from nipype_ward.metrics import compression_summary, truth_agreement
from nipype_ward.parcels import check_n_clusters, expand_parcels, parcel_means
from nipype_ward.signals import check_preparation, filters_requested, prepare_signals
from nipype_ward.ward import build_ward_tree, cut_tree


@dataclass(frozen=True)
class SignalPreparation:
    """How voxel signals are prepared before clustering and compression.

    The defaults prepare nothing (the seed example). See
    :func:`nipype_ward.signals.prepare_signals` for the meaning of each
    option; ``t_r`` is read from the BOLD file when not given, and
    ``confounds_file`` is a TSV whose ``confounds_columns`` (all when empty)
    are regressed out.
    """

    standardize: str | bool = False
    detrend: bool = False
    high_pass: float | None = None
    low_pass: float | None = None
    t_r: float | None = None
    confounds_file: str | None = None
    confounds_columns: tuple[str, ...] = ()

    def __post_init__(self):
        check_preparation(
            standardize=self.standardize, detrend=self.detrend,
            high_pass=self.high_pass, low_pass=self.low_pass, t_r=self.t_r,
        )


def resolve_preparation(
    preparation: SignalPreparation, bold_path, bold_img, n_volumes: int
) -> tuple[float | None, np.ndarray | None]:
    """The TR and confounds a preparation needs for one BOLD file, checked.

    Cheap (headers and the confounds TSV only), so callers can run it before
    any heavy work. Errors name the file at fault.
    """
    t_r = preparation.t_r
    if t_r is None:
        t_r = image.read_repetition_time(bold_path, bold_img)
    if t_r is None and filters_requested(
        high_pass=preparation.high_pass, low_pass=preparation.low_pass
    ):
        raise image.InputError(
            bold_path,
            "filtering (high_pass/low_pass) needs the repetition time, which is neither "
            "in the NIfTI header nor in a JSON sidecar: set t_r",
        )
    try:  # e.g. a cutoff above Nyquist for this file's TR
        check_preparation(
            standardize=preparation.standardize, detrend=preparation.detrend,
            high_pass=preparation.high_pass, low_pass=preparation.low_pass, t_r=t_r,
        )
    except ValueError as exc:
        raise image.InputError(bold_path, str(exc)) from exc
    confounds = None
    if preparation.confounds_file:
        confounds = image.load_confounds(
            preparation.confounds_file, n_volumes, preparation.confounds_columns
        )
    return t_r, confounds


def prepare(X, bold_path, bold_img, preparation: SignalPreparation | None) -> np.ndarray:
    """Apply a :class:`SignalPreparation` to the masked series ``X`` of ``bold_path``."""
    if preparation is None:
        return X
    t_r, confounds = resolve_preparation(preparation, bold_path, bold_img, X.shape[1])
    return prepare_signals(
        X,
        standardize=preparation.standardize,
        detrend=preparation.detrend,
        high_pass=preparation.high_pass,
        low_pass=preparation.low_pass,
        t_r=t_r,
        confounds=confounds,
    )


def epi_mask(
    bold_path,
    out_mask,
    out_mean,
    *,
    brain_mask_path=None,
    lower_cutoff: float = 0.2,
    upper_cutoff: float = 0.85,
    connected: bool = True,
    opening: int = 2,
    exclude_zeros: bool = False,
) -> tuple[Path, Path]:
    """Write the EPI brain mask (uint8) and the temporal mean of a series.

    With ``brain_mask_path`` (e.g. fMRIPrep's ``desc-brain_mask``) no mask is
    computed: the given one is checked against the EPI grid and written as
    uint8.
    """
    bold_img = image.load_image(bold_path, ndim=(3, 4))
    if brain_mask_path is not None:
        mask, _ = image.load_mask(
            brain_mask_path, reference=bold_img, reference_path=bold_path
        )
        mask_img = masking.mask_image(mask, bold_img)
    else:
        mask_img = masking.compute_epi_mask(
            bold_img,
            lower_cutoff=lower_cutoff,
            upper_cutoff=upper_cutoff,
            connected=connected,
            opening=opening,
            exclude_zeros=exclude_zeros,
        )
        if not np.asanyarray(mask_img.dataobj).any():
            raise image.InputError(bold_path, "the EPI mask computed from it is empty")
    mean_img = masking.mean_image(bold_img)
    return image.save_image(mask_img, out_mask), image.save_image(mean_img, out_mean)


def connectivity(mask_path, out_file, *, neighbourhood: int = 6) -> int:
    """Write the grid adjacency of a mask's voxels; return its connected pieces."""
    mask, _ = image.load_mask(mask_path)
    adjacency = grid_connectivity(mask, neighbourhood)
    image.save_connectivity(adjacency, out_file)
    n_components, _ = connected_components(adjacency)
    return int(n_components)


def check_n_clusters_in_mask(n_clusters, n_voxels: int, mask_path) -> list[int]:
    """Each K must be a positive integer no larger than the mask; errors name the mask."""
    values = check_n_clusters(n_clusters)
    for k in values:
        if k > n_voxels:
            raise image.InputError(
                mask_path,
                f"cannot make {k} parcels from a mask of {n_voxels} voxels "
                f"(n_clusters must be between 1 and {n_voxels})",
            )
    return values


def ward_tree(
    bold_path,
    mask_path,
    connectivity_path,
    out_tree,
    *,
    n_clusters=(),
    preparation=None,
    out_half_trees=None,
):
    """Build the Ward tree of the (prepared) masked BOLD series and write it.

    ``n_clusters`` is only checked here (before the heavy work), so that a
    bad K fails fast. With ``out_half_trees`` (two paths), the trees of the
    first and of the second half of the volumes are written too, for the
    split-half reproducibility of every cut; the halves are cut from the
    prepared series, so filtering and confound regression see the whole run.
    """
    X, mask, bold_img = image.load_masked_bold(bold_path, mask_path)
    if n_clusters:
        check_n_clusters_in_mask(n_clusters, X.shape[0], mask_path)
    adjacency = image.load_connectivity(connectivity_path, n_voxels=X.shape[0])
    X = prepare(X, bold_path, bold_img, preparation)
    if out_half_trees is not None and X.shape[1] < 4:
        raise image.InputError(
            bold_path, f"split halves need at least 4 volumes, got {X.shape[1]}"
        )
    tree = build_ward_tree(X, adjacency)
    image.save_tree(tree, out_tree)
    if out_half_trees is not None:
        half = X.shape[1] // 2
        for part, path in zip((X[:, :half], X[:, half:]), out_half_trees):
            image.save_tree(build_ward_tree(part, adjacency), path)
    return tree


def cut(tree_path, mask_path, n_clusters: int, out_labels) -> Path:
    """Cut a written tree at ``n_clusters`` parcels and write the label image."""
    mask, mask_img = image.load_mask(mask_path)
    n_voxels = int(mask.sum())
    (k,) = check_n_clusters_in_mask(n_clusters, n_voxels, mask_path)
    tree = image.load_tree(tree_path, n_leaves=n_voxels)
    labels = cut_tree(tree.children, k)
    return image.save_labels(labels, mask, mask_img, out_labels)


def split_half_ari(half_tree_paths, n_clusters: int, n_voxels: int) -> float:
    """ARI between the trees of the two halves of a run, both cut at ``n_clusters``."""
    if len(half_tree_paths) != 2:
        raise ValueError(f"split halves need two tree files, got {len(half_tree_paths)}")
    first, second = (
        cut_tree(image.load_tree(path, n_leaves=n_voxels).children, n_clusters)
        for path in half_tree_paths
    )
    return truth_agreement(first, second).ari


def compare_labels(labels_path, reference_path):
    """ARI and AMI between two label images on one grid, over voxels labelled in both.

    Returns a :class:`nipype_ward.metrics.Agreement`.
    """
    labels_img = image.load_image(labels_path, ndim=3)
    reference_img = image.load_image(reference_path, ndim=3)
    image.check_same_grid(reference_img, reference_path, labels_img, labels_path)
    labels = np.asanyarray(labels_img.dataobj)
    reference = np.asanyarray(reference_img.dataobj)
    both = (labels > 0) & (reference > 0)
    if not both.any():
        raise image.InputError(reference_path, f"no labelled voxel in common with {labels_path}")
    return truth_agreement(labels[both], reference[both])


def parcel_compress(
    bold_path,
    labels_path,
    out_timeseries,
    out_compressed,
    out_metrics,
    *,
    preparation=None,
    connectivity_path=None,
    half_tree_paths=(),
) -> dict:
    """Replace each voxel's signal by its parcel's mean.

    Writes the parcel time series (TSV: one column per parcel label, one row
    per volume), the compressed 4D image and the metrics JSON; returns the
    metrics. With a ``preparation``, all three are those of the prepared
    signals (the signals the parcellation was learned from).

    The metrics are those of :func:`nipype_ward.metrics.compression_summary`;
    with ``connectivity_path`` they count the non-contiguous parcels, and with
    ``half_tree_paths`` (the trees of the two halves of the volumes, see
    :func:`ward_tree`) they give ``split_half_ari``, the adjusted Rand index
    between the two halves' trees cut at the same number of parcels.
    """
    bold_img = image.load_bold(bold_path)
    mask, _ = image.load_mask(labels_path, reference=bold_img, reference_path=bold_path)
    labels, label_values = image.load_labels(labels_path, mask=mask)
    X = prepare(image.masked_data(bold_img, mask, bold_path), bold_path, bold_img, preparation)
    means = parcel_means(X, labels)
    names = [str(value) for value in label_values]
    connectivity = None
    if connectivity_path:
        connectivity = image.load_connectivity(connectivity_path, n_voxels=X.shape[0])
    metrics = compression_summary(X, labels, connectivity=connectivity)
    if half_tree_paths:
        metrics["split_half_ari"] = split_half_ari(half_tree_paths, len(means), X.shape[0])
    metrics["bold_file"] = str(bold_path)
    metrics["labels_file"] = str(labels_path)
    metrics["preparation"] = asdict(preparation) if preparation is not None else None
    image.save_timeseries(means, out_timeseries, column_names=names)
    image.save_image(image.unmask(expand_parcels(means, labels), mask, bold_img), out_compressed)
    image.save_json(metrics, out_metrics)
    return metrics
