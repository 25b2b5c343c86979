"""Combining runs and subjects: a subject's runs in time, the group's series, its mask.

Runs of a subject concatenated in time in the points common to all
(:func:`combine_series`); the group mask (:func:`group_mask`), each
subject's runs reduced for the group (:func:`reduce_subject`) and the
group's series (:func:`group_series`), exact or by MIGP; and a run
measured on a group atlas against its own parcellations
(:func:`compare_parcellations`).
"""

from __future__ import annotations

import numpy as np

from nipype_ward.core.metrics import homogeneity, reconstruction_r2
from nipype_ward.core.reduction import REDUCTIONS, migp, reduce_features
from nipype_ward.core.validation import check_int
from nipype_ward.io import arrays
from nipype_ward.io.errors import InputError
from nipype_ward.io.geometry import (
    check_same_grid,
    geometry_of,
    load,
    load_mask,
    values_of,
)
from nipype_ward.steps.prepare import load_voxel_series


def combine_series(series_paths, mask_paths, infos, mean_paths, out_series, out_mask, out_mean,
                   out_run_series) -> tuple[dict, list[dict]]:
    """Concatenate the prepared series of several runs in time, in the voxels common to all.

    Each run was prepared on its own (its mask, confounds, censoring,
    standardization); the combined series holds, for the voxels inside every
    run's mask, the runs' series one after the other. Each run's series is
    also written restricted to those voxels (``out_run_series``), so its own
    time series can be taken on the combined parcellation.

    Returns
    -------
    info : dict
        The combined series' :func:`series_info`, with ``runs``, the info of
        each run.
    run_infos : list of dict
        Each run's info, its voxel count that of the common mask.
    """
    if not (len(series_paths) == len(mask_paths) == len(infos) == len(mean_paths)
            == len(out_run_series)) or not series_paths:
        raise ValueError("give one series, mask, info, mean and output per run")
    masks, common, reference_img, mean = _common_points(mask_paths, mean_paths)
    t_rs = {info.get("t_r") for info in infos}
    if len(t_rs) > 1:
        raise InputError(series_paths[0], f"the runs have different repetition times {sorted(t_rs)}: "
                         "combine runs of one acquisition only")
    parts, run_infos = [], []
    for path, mask, info, out in zip(series_paths, masks, infos, out_run_series):
        part = np.array(arrays.load_series(path, n_voxels=int(mask.sum()))[common[mask]])
        arrays.save_series(part, out)
        parts.append(part)
        run_infos.append({**info, "n_voxels": int(common.sum())})
    combined = np.concatenate(parts, axis=1)
    _save_mask_and_mean(common, mean, reference_img, out_mask, out_mean)
    arrays.save_series(combined, out_series)
    kept, offset = [], 0
    for info in infos:
        run_kept = info.get("sample_mask") or range(info["n_volumes_acquired"])
        kept += [offset + int(i) for i in run_kept]
        offset += info["n_volumes_acquired"]
    censored = len(kept) < offset
    return {
        "source": "; ".join(info["source"] for info in infos),
        "t_r": next(iter(t_rs)),
        "preparation": infos[0].get("preparation"),
        "n_voxels": int(combined.shape[0]),
        "n_volumes": int(combined.shape[1]),
        "n_volumes_acquired": offset,
        "sample_mask": kept if censored else None,
        "dtype": str(combined.dtype),
        "runs": run_infos,
    }, run_infos


def _common_points(mask_paths, mean_paths):
    """Each run's mask, the voxels inside all, the first mask's image, the mean of the means.

    Every mask must be on the grid of the first (same shape and affine; for
    surface data, the same grayordinates).
    """
    if not mask_paths or len(mask_paths) != len(mean_paths):
        raise ValueError("give one mask and one mean image per run")
    masks, reference, mean = [], None, None
    for mask_path, mean_path in zip(mask_paths, mean_paths):
        mask, mask_img = load_mask(mask_path)
        if reference is None:
            reference, mean = (mask_img, mask_path), np.zeros(mask.shape)
        else:
            check_same_grid(mask_img, mask_path, *reference)
        masks.append(mask)
        mean += np.asarray(values_of(load(mean_path)), dtype=np.float64)
    common = np.logical_and.reduce(masks)
    if not common.any():
        raise InputError(mask_paths[0], "the runs' brain masks have no voxel in common")
    return masks, common, reference[0], mean / len(mask_paths)


def _save_mask_and_mean(common, mean, reference_img, out_mask, out_mean) -> None:
    """A mask and a mean image on a reference's grid (its points, for surface data)."""
    points = geometry_of(common, reference_img)
    points.save_mask(out_mask)
    points.save_mean(mean, out_mean)


def group_mask(mask_paths, mean_paths, out_mask, out_mean) -> int:
    """The voxels inside every run's mask, and the average of the runs' means.

    Every mask must be on the grid of the first (same shape and affine);
    for surface data, the runs must have the same
    grayordinates (brain models), which the group mask then holds.
    Returns the number of voxels of the group mask.
    """
    _, common, reference_img, mean = _common_points(mask_paths, mean_paths)
    _save_mask_and_mean(common, mean, reference_img, out_mask, out_mean)
    return int(common.sum())


def _check_reduction(reduction: str, n_components: int) -> None:
    if reduction not in REDUCTIONS:
        raise ValueError(f"reduction must be one of {REDUCTIONS}, got {reduction!r}")
    if reduction == "migp":
        check_int(n_components, "n_components")


def reduce_subject(series_paths, mask_paths, infos, group_mask_path, out_series, *,
                   subject: str, reduction: str = "exact", n_components: int = 500) -> dict:
    """One subject's runs in the group mask, concatenated in time, reduced for the group.

    Each run's prepared series (:func:`prepare_series`, in its own mask) is
    restricted to the group mask's voxels and the runs are put one after the
    other in time. With ``reduction="migp"`` the result is projected on its
    ``n_components`` leading principal axes in time
    (:func:`nipype_ward.core.reduction.reduce_features`), which changes nothing when
    the subject has at most that many volumes; with ``"exact"`` it is written
    as is. Returns the subject's record for the group sidecars.
    """

    _check_reduction(reduction, n_components)
    if not (len(series_paths) == len(mask_paths) == len(infos)) or not series_paths:
        raise ValueError("give one series, mask and info per run")
    common, group_img = load_mask(group_mask_path)
    X = _subject_series(series_paths, mask_paths, common, group_img, group_mask_path)
    n_volumes = X.shape[1]
    if reduction == "migp" and X.shape[1] > n_components:
        X = reduce_features(X, n_components)
    arrays.save_series(X, out_series)
    return _subject_record(subject, infos, n_volumes, X.shape[1], X.dtype)


def _subject_series(series_paths, mask_paths, common, group_img, group_mask_path) -> np.ndarray:
    """A subject's runs restricted to the group mask ``common``, one after the other in time."""
    parts = [X[rows] for X, rows in (
        _run_in_group(path, mask_path, common, group_img, group_mask_path)
        for path, mask_path in zip(series_paths, mask_paths))]
    if len(parts) == 1:
        return parts[0]
    X = np.empty((int(common.sum()), sum(part.shape[1] for part in parts)),
                 dtype=np.result_type(*parts))
    offset = 0
    for part in parts:
        X[:, offset:offset + part.shape[1]] = part
        offset += part.shape[1]
    return X


def _run_in_group(series_path, mask_path, common, group_img, group_mask_path):
    """A run's series, memory-mapped, and the indices of its rows in the group mask."""
    mask, _ = load_mask(mask_path, reference=group_img, reference_path=group_mask_path)
    if (common & ~mask).any():
        raise InputError(mask_path, "the group mask has voxels outside this run's mask")
    return (arrays.load_series(series_path, n_voxels=int(mask.sum())),
            np.flatnonzero(common[mask]))


def _subject_record(subject: str, infos, n_volumes: int, n_features: int, dtype) -> dict:
    """A subject's record in the group sidecars."""
    return {
        "subject": subject,
        "sources": [info["source"] for info in infos],
        "n_volumes": int(n_volumes),
        "n_features": int(n_features),
        "t_r": sorted({info.get("t_r") for info in infos}, key=str),
        "preparation": infos[0].get("preparation"),
        "dtype": str(np.dtype(dtype)),
    }


def group_series(reduced_paths, subject_infos, group_mask_path, out_series, *,
                 reduction: str = "exact", n_components: int = 500) -> dict:
    """The group's voxel-feature matrix, from the subjects' reduced series.

    ``"exact"``: the subjects' series one after the other in time (memory
    grows with the group). ``"migp"``: MIGP over the files in the order
    given (:func:`nipype_ward.core.reduction.migp`; memory flat in the number of
    subjects): the subjects' reduced series, or the group series of parts
    of the group (MIGP of MIGPs). ``subject_infos`` are the records of
    every subject the result covers. Returns the series info the tree step
    reads, with the reduction and the subjects recorded.
    """

    _check_reduction(reduction, n_components)
    if not reduced_paths or not subject_infos:
        raise ValueError("give the reduced series and the subjects' records")
    if reduction == "exact" and len(reduced_paths) != len(subject_infos):
        raise ValueError("the exact reduction takes one reduced series per subject")
    common, _ = load_mask(group_mask_path)
    n_voxels = int(common.sum())

    def blocks():
        # One file mapped at a time: the pages of those done are let go.
        for path in reduced_paths:
            yield arrays.load_series(path, n_voxels=n_voxels)

    if reduction == "migp":
        arrays.save_series(migp(blocks(), n_components), out_series)
    else:
        arrays.save_series_in_time([(X, None) for X in blocks()], out_series)
    return _group_info(arrays.load_series(out_series), subject_infos, n_voxels, reduction,
                       n_components)


def group_series_of_runs(series_paths, mask_paths, infos, subjects, group_mask_path, out_series,
                         *, reduction: str = "exact", n_components: int = 500):
    """The group's voxel-feature matrix straight from the runs' prepared series.

    What :func:`reduce_subject` for each subject then :func:`group_series`
    give, without a file per subject, when no subject needs its own
    reduction (``exact``, or MIGP with every subject at most
    ``n_components`` volumes: a subject above it is refused): each
    subject's runs (``subjects`` names each run's subject; subjects in
    sorted order, their runs in the order given) are restricted to the
    group mask as they are read. Returns the series info and the subjects'
    records.
    """
    _check_reduction(reduction, n_components)
    if not (len(series_paths) == len(mask_paths) == len(infos) == len(subjects)) \
            or not series_paths:
        raise ValueError("give one series, mask, info and subject per run")
    common, group_img = load_mask(group_mask_path)
    n_voxels = int(common.sum())
    order = sorted(set(subjects))
    runs = {subject: [i for i, name in enumerate(subjects) if name == subject]
            for subject in order}
    records = []
    if reduction == "exact":
        # Each run mapped, its rows in the group mask picked a block at a time.
        parts = []
        for subject in order:
            mapped = [_run_in_group(series_paths[i], mask_paths[i], common, group_img,
                                    group_mask_path) for i in runs[subject]]
            n_volumes = sum(X.shape[1] for X, _ in mapped)
            records.append(_subject_record(subject, [infos[i] for i in runs[subject]],
                                           n_volumes, n_volumes,
                                           np.result_type(*(X.dtype for X, _ in mapped))))
            parts += mapped
        arrays.save_series_in_time(parts, out_series)
    else:
        def blocks():
            # One subject in memory at a time.
            for subject in order:
                X = _subject_series([series_paths[i] for i in runs[subject]],
                                    [mask_paths[i] for i in runs[subject]],
                                    common, group_img, group_mask_path)
                if X.shape[1] > n_components:
                    raise ValueError(f"subject {subject} has {X.shape[1]} volumes, more than "
                                     f"n_components ({n_components}): reduce it on its own "
                                     "first (reduce_subject)")
                records.append(_subject_record(subject, [infos[i] for i in runs[subject]],
                                               X.shape[1], X.shape[1], X.dtype))
                yield X

        arrays.save_series(migp(blocks(), n_components), out_series)
    X = arrays.load_series(out_series)
    return _group_info(X, records, n_voxels, reduction, n_components), records


def _group_info(X, subject_infos, n_voxels: int, reduction: str, n_components: int) -> dict:
    """The group series' info, for the tree and the sidecars."""
    t_rs = sorted({t_r for info in subject_infos for t_r in info["t_r"]}, key=str)
    return {
        "source": "; ".join(source for info in subject_infos for source in info["sources"]),
        "t_r": t_rs[0] if len(t_rs) == 1 else None,
        "preparation": subject_infos[0].get("preparation"),
        "n_voxels": n_voxels,
        "n_volumes": int(X.shape[1]),
        "n_volumes_acquired": int(X.shape[1]),
        "sample_mask": None,
        "dtype": str(X.dtype),
        "reduction": reduction,
        "n_components": int(n_components) if reduction == "migp" else None,
        "n_volumes_total": int(sum(info["n_volumes"] for info in subject_infos)),
        "subjects": [info["subject"] for info in subject_infos],
    }


def _restricted_labels(data, mask, keep):
    """0-based labels of the voxels ``keep`` of ``mask`` (renumbered 0..K-1), and their values.

    ``data`` is the label image's values (:func:`nipype_ward.io.geometry.values_of`).
    """
    values = data[mask][keep].astype(np.int64)
    unique, inverse = np.unique(values, return_inverse=True)
    return inverse.astype(np.intp), unique


def compare_parcellations(series_path, mask_path, atlas_path, own_paths, *, series_info=None,
                          n_clusters=()) -> list[dict]:
    """A run's R2 and homogeneity on a group atlas and on its own parcellations.

    Over the voxels of the run that the atlas labels, so both are measured on
    the same voxels: each own parcellation is restricted to them (its parcels
    cut by the atlas' mask keep their voxels inside it). One record per own
    parcellation (``own_paths``, one per K in ``n_clusters``).
    """

    series = load_voxel_series(series_path=series_path, series_info=series_info,
                               mask_path=mask_path)
    atlas_img = load(atlas_path)
    series.geometry.check(atlas_img, atlas_path, mask_path)
    atlas_data = values_of(atlas_img)
    keep = atlas_data[series.mask] > 0
    if not keep.any():
        raise InputError(atlas_path, f"no voxel of {mask_path} is labelled in the atlas")
    X = np.asarray(series.X[keep])
    atlas_labels, atlas_values = _restricted_labels(atlas_data, series.mask, keep)
    atlas = {"r2": reconstruction_r2(X, atlas_labels), "homogeneity": homogeneity(X, atlas_labels)}
    records = []
    for k, own_path in zip(n_clusters, own_paths):
        own_img = load(own_path)
        check_same_grid(own_img, own_path, atlas_img, atlas_path)
        own_labels, own_values = _restricted_labels(values_of(own_img), series.mask, keep)
        records.append({
            "source": series.source, "n_clusters": int(k), "n_voxels": int(keep.sum()),
            "group_n_parcels": int(len(atlas_values)), "group_r2": atlas["r2"],
            "group_homogeneity": atlas["homogeneity"], "own_n_parcels": int(len(own_values)),
            "own_r2": reconstruction_r2(X, own_labels),
            "own_homogeneity": homogeneity(X, own_labels),
        })
    return records
