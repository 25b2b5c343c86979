"""File-in, file-out steps of the parcellation.

Each step reads its inputs with :mod:`nipype_ward.image` (which checks them
and names the file in every error), calls the array core, and writes its
outputs atomically. The Nipype interfaces delegate to these functions one to
one, so scripts, the CLI and the interfaces share a single code path.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from nipype_ward import image, masking
from nipype_ward.connectivity import connected_components, grid_connectivity
from nipype_ward.metrics import compression_summary
from nipype_ward.parcels import check_n_clusters, expand_parcels, parcel_means
from nipype_ward.ward import build_ward_tree, cut_tree


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
        mask_img = image.unmask(np.ones(int(mask.sum())), mask, bold_img, dtype=np.uint8)
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


def ward_tree(bold_path, mask_path, connectivity_path, out_tree, *, n_clusters=()):
    """Build the Ward tree of the masked BOLD series and write it.

    ``n_clusters`` is only checked here (before the heavy work), so that a
    bad K fails fast.
    """
    X, mask, _ = image.load_masked_bold(bold_path, mask_path)
    if n_clusters:
        check_n_clusters_in_mask(n_clusters, X.shape[0], mask_path)
    adjacency = image.load_connectivity(connectivity_path, n_voxels=X.shape[0])
    tree = build_ward_tree(X, adjacency)
    image.save_tree(tree, out_tree)
    return tree


def cut(tree_path, mask_path, n_clusters: int, out_labels) -> Path:
    """Cut a written tree at ``n_clusters`` parcels and write the label image."""
    mask, mask_img = image.load_mask(mask_path)
    n_voxels = int(mask.sum())
    (k,) = check_n_clusters_in_mask(n_clusters, n_voxels, mask_path)
    tree = image.load_tree(tree_path, n_leaves=n_voxels)
    labels = cut_tree(tree.children, k)
    return image.save_labels(labels, mask, mask_img, out_labels)


def parcel_compress(
    bold_path, labels_path, out_timeseries, out_compressed, out_metrics
) -> dict:
    """Replace each voxel's signal by its parcel's mean.

    Writes the parcel time series (TSV: one column per parcel label, one row
    per volume), the compressed 4D image and the metrics JSON; returns the
    metrics.
    """
    bold_img = image.load_bold(bold_path)
    mask, _ = image.load_mask(labels_path, reference=bold_img, reference_path=bold_path)
    labels, label_values = image.load_labels(labels_path, mask=mask)
    X = image.masked_data(bold_img, mask, bold_path)
    means = parcel_means(X, labels)
    names = [str(value) for value in label_values]
    metrics = compression_summary(X, labels)
    metrics["bold_file"] = str(bold_path)
    metrics["labels_file"] = str(labels_path)
    image.save_timeseries(means, out_timeseries, column_names=names)
    image.save_image(image.unmask(expand_parcels(means, labels), mask, bold_img), out_compressed)
    image.save_json(metrics, out_metrics)
    return metrics
