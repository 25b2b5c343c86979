"""Compression: each point's signal replaced by its parcel's mean, with its quality.

A run compressed by a label image (its own cut, or an atlas on its grid):
the parcel time series, the compressed series, the metrics, and the
parcel table of a label image. Outputs are written by the run's
:class:`~nipype_ward.io.geometry.Geometry`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from nipype_ward.core.metrics import compression_summary, truth_agreement
from nipype_ward.core.moments import parcel_moments
from nipype_ward.io import arrays, files, tables
from nipype_ward.io.errors import InputError
from nipype_ward.io.geometry import geometry_of, load, load_labels, values_of
from nipype_ward.steps.prepare import load_voxel_series
from nipype_ward.steps.tree import split_half_ari


def compare_labels(labels, mask, reference_path, reference_img, labels_path):
    """ARI and AMI of 0-based ``labels`` in ``mask`` against a label image.

    Over the voxels labelled in both; returns a
    :class:`nipype_ward.core.metrics.Agreement`.
    """
    truth_img = load(reference_path)
    geometry_of(mask, reference_img).check(truth_img, reference_path, labels_path)
    truth = values_of(truth_img)[mask]
    both = truth > 0
    if not both.any():
        raise InputError(reference_path, f"no labelled voxel in common with {labels_path}")
    return truth_agreement(labels[both], truth[both])


def parcel_compress(
    labels_path,
    out_timeseries,
    out_compressed,
    out_metrics,
    *,
    series_path=None,
    series_info=None,
    bold_path=None,
    mask_path=None,
    preparation=None,
    connectivity_path=None,
    half_tree_paths=(),
    true_regions_path=None,
    atlas: bool = False,
    out_ptseries=None,
    threads: int = 1,
) -> dict:
    """Replace each voxel's signal by its parcel's mean.

    Writes the parcel time series (TSV: one column per parcel label, one row
    per volume), the compressed 4D image (unless ``out_compressed`` is None)
    and the metrics JSON; returns the metrics. The series is a prepared
    series file (``series_path``, with the ``mask_path`` it was taken in) or
    a 4D NIfTI read and prepared now (``bold_path``, inside the label
    image's non-zero voxels unless ``mask_path`` is given); the outputs are
    those of the prepared signals.

    The metrics are those of :func:`nipype_ward.core.metrics.compression_summary`;
    with ``connectivity_path`` they count the non-contiguous parcels, with
    ``half_tree_paths`` (the trees of the two halves of the volumes, see
    :func:`ward_tree`) they give ``split_half_ari``, the adjusted Rand index
    between the two halves' trees cut at the same number of parcels, and
    with ``true_regions_path`` (known regions on the same grid, e.g. the
    simulation's) ``true_regions_ari`` and ``true_regions_ami``.

    With ``atlas=True`` the label image is an atlas that need not cover the
    mask (a group atlas, or any dseg on the run's grid): only the mask's
    voxels it labels are used (``n_voxels_outside_atlas`` counts the
    others), the time series has one column per label of the atlas in
    increasing order, and a parcel with no voxel in the mask gets a column
    of n/a (listed in ``parcels_missing``); the metrics are those of the
    parcels present.

    ``out_ptseries`` receives the parcel series as an image where the data's
    format has one: surface data's CIFTI-2 parcel series (parcels in
    increasing label order, each with its grayordinates), as Connectome
    Workbench and XCP-D write them
    (:meth:`~nipype_ward.io.geometry.SurfaceGeometry.save_parcel_series`).

    ``threads`` threads compress a ``.nii.gz`` compressed image (see
    :func:`nipype_ward.io.nifti_write.save_series_image`); two of them, if
    there are, sum the parcels' moments (:func:`~nipype_ward.core.moments.parcel_moments`).
    """
    series = load_voxel_series(
        series_path=series_path, series_info=series_info, bold_path=bold_path,
        mask_path=mask_path if mask_path is not None else (labels_path if bold_path else None),
        preparation=preparation,
    )
    X, geometry = series.X, series.geometry
    labels_img = load(labels_path)
    geometry.check(labels_img, labels_path, mask_path or series.source)
    outside, all_values = 0, None
    if atlas:
        data = values_of(labels_img)
        mask = geometry.mask
        keep = data[mask] > 0
        if not keep.any():
            raise InputError(labels_path, f"the atlas labels no voxel of the mask "
                             f"{mask_path or series.source}")
        outside = int((~keep).sum())
        all_values = np.unique(data[data > 0]).astype(np.int64)
        if outside:
            X, geometry = np.asarray(X[keep]), geometry.restricted(mask & (data > 0))
    labels, label_values = load_labels(labels_path, mask=geometry.mask)
    moments = parcel_moments(X, labels, len(label_values), threads=threads)
    means = moments.sums / moments.sizes[:, None]
    connectivity = None
    if connectivity_path:
        connectivity = arrays.load_connectivity(connectivity_path,
                                                n_voxels=X.shape[0] + outside)
        if outside:
            connectivity = connectivity[keep][:, keep]
    metrics = compression_summary(X, labels, connectivity=connectivity, moments=moments)
    columns = label_values
    if atlas:
        metrics["n_voxels_outside_atlas"] = outside
        metrics["parcels_missing"] = [int(v) for v in np.setdiff1d(all_values, label_values)]
        position = {int(v): i for i, v in enumerate(label_values)}
        table = np.full((len(all_values), means.shape[1]), np.nan)
        for row, value in enumerate(all_values):
            if int(value) in position:
                table[row] = means[position[int(value)]]
        table_means, columns = table, all_values
    else:
        table_means = means
    if half_tree_paths:
        metrics["split_half_ari"] = split_half_ari(half_tree_paths, len(means), X.shape[0])
    if true_regions_path:
        truth = compare_labels(labels, geometry.mask, true_regions_path, geometry.reference,
                               labels_path)
        metrics["true_regions_ari"], metrics["true_regions_ami"] = truth.ari, truth.ami
    metrics["bold_file"] = series.source
    metrics["labels_file"] = str(labels_path)
    metrics["preparation"] = series.preparation
    if series.n_constant:
        metrics["n_voxels_constant"] = series.n_constant
    tables.save_timeseries(table_means, out_timeseries, column_names=[str(v) for v in columns])
    if out_compressed is not None:
        # In the series' type once; each voxel takes its parcel's row as it is written.
        stored_means = means.astype(X.dtype)
        geometry.save_series(lambda start, stop: stored_means[:, start:stop], out_compressed,
                             n_volumes=X.shape[1], dtype=X.dtype, t_r=series.t_r,
                             threads=threads, rows_of=labels)
    if out_ptseries is not None:
        geometry.save_parcel_series(means, label_values, labels, out_ptseries, t_r=series.t_r)
    files.save_json(metrics, out_metrics)
    return metrics


def parcel_table(labels_path, out_tsv, *, prefix: str = "parcel") -> Path:
    """The BIDS table of a label image: ``index``, ``name``, then what its geometry says.

    One row per label value, in increasing order: ``index`` (the value in the
    image), ``name`` (``<prefix>_<index>``), then, for a volume, ``n_voxels``
    and the centroid ``x``, ``y``, ``z`` in the image's world coordinates
    (mm); for surface labels ``n_grayordinates`` and ``structure`` (the
    CIFTI structure, e.g. ``CORTEX_LEFT``) instead
    (:meth:`~nipype_ward.io.geometry.VolumeGeometry.parcel_columns`).
    """
    labels_img = load(labels_path)
    mask = values_of(labels_img) > 0
    if not mask.any():
        raise InputError(labels_path, "label image has no parcel")
    labels, values = load_labels(labels_path, mask=mask)
    order = np.argsort(values)
    width = len(str(int(values.max())))
    names = [f"{prefix}_{int(v):0{width}d}" for v in values[order]]
    columns = geometry_of(mask, labels_img).parcel_columns(labels, order)
    return tables.save_table({"index": values[order], "name": names, **columns}, out_tsv)
