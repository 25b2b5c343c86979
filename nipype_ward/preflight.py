"""Checks of a run of the BIDS App before any heavy work: inputs, options, folders.

The command line calls these once the runs are selected, before any folder
is made or any series read: headers, masks, every K against the points it
is cut from, the repetition time, the confounds and the volumes they keep,
the surfaces' meshes, the group's common mask, and the output and work
folders. Each problem raises one :class:`~nipype_ward.io.errors.InputError`
naming the file; what can run but poorly is returned as warnings (one line
each).
"""

from __future__ import annotations

import json
import os
from dataclasses import replace
from pathlib import Path

import numpy as np

from nipype_ward import bids
from nipype_ward.core.reduction import choose_reduction
from nipype_ward.io import geometry
from nipype_ward.io.errors import InputError
from nipype_ward.io.folders import same_or_inside
from nipype_ward.io.series import (
    check_atlas_for,
    check_meshes,
    count_volumes,
    read_header,
    read_repetition_time,
)
from nipype_ward.settings import AppSettings
from nipype_ward.steps import check_n_clusters_in_mask, resolve_preparation
from nipype_ward.templates import surface_meshes


def space_key(run: bids.Run) -> tuple:
    """The runs of one group atlas share this: space, resolution, density."""
    return tuple(str(run.entities.get(e)) for e in ("space", "res", "den"))


def check_runs(settings: AppSettings, runs: list[bids.Run]) -> list[str]:
    """Headers, masks, K, TR and confounds of every run, checked before any heavy work.

    Returns warnings (one line each) about runs that can be processed but
    whose results will be poor.
    """
    options = settings.parcellation
    warnings = []
    headers = {}
    for run in runs:
        meshes = surface_meshes(str(run.entities["space"]), surfaces=settings.surfaces) \
            if run.is_surface else None
        header = headers[run.bold] = read_header(run.sources)
        bold_img, n_volumes = header.grid, header.n_volumes
        if header.surface:
            check_meshes(header, meshes)
            n_points, where = header.n_points, run.bold
        else:
            mask, _ = geometry.load_mask(run.mask, reference=bold_img, reference_path=run.bold)
            n_points, where = int(mask.sum()), run.mask
        check_n_clusters_in_mask(options.n_clusters, n_points, where)
        # The App has no option to give it: the sidecar or the header must.
        if options.preparation.t_r is None \
                and read_repetition_time(run.bold, bold_img) is None:
            raise InputError(run.bold, "neither its JSON sidecar nor its header gives the "
                             "repetition time: add RepetitionTime (seconds) to its JSON sidecar")
        found = resolve_preparation(options.preparation, header.sources, bold_img, n_volumes)
        kept = n_volumes if found.sample_mask is None else len(found.sample_mask)
        needed = 4 if options.split_half else 2
        if kept < needed:
            raise InputError(
                run.confounds,
                f"scrubbing keeps {kept} of {n_volumes} volumes, fewer than the "
                f"{needed} needed: raise --fd-thresh or --dvars-thresh, or use another "
                "--confounds-strategy",
            )
        n_confounds = 0 if found.confounds is None else found.confounds.shape[1]
        strategy = options.preparation.confounds_strategy
        if n_confounds >= kept - 1:
            raise InputError(
                run.bold,
                f"the '{strategy}' strategy regresses {n_confounds} confounds out of {kept} "
                "volumes: no signal would be left; use a lighter --confounds-strategy",
            )
        if n_confounds > kept / 2:
            warnings.append(
                f"{run.bold}: the '{strategy}' strategy regresses {n_confounds} confounds out "
                f"of {kept} volumes; the parcels may be poor (a lighter strategy keeps more "
                "signal)"
            )
    for label, atlas in settings.atlases:
        for run in runs:
            check_atlas_for(headers[run.bold], atlas)
            geometry.load_labels(atlas, reference=headers[run.bold].grid, reference_path=run.bold)
    return warnings


def check_group(settings: AppSettings, runs: list[bids.Run]) -> tuple[AppSettings, list[str]]:
    """The group level's checks: one grid per space, K within the group mask, the reduction.

    Returns the settings with ``--group-reduction auto`` resolved, and warnings.
    """
    warnings, choices = [], set()
    by_space: dict[tuple, list[bids.Run]] = {}
    for run in runs:
        by_space.setdefault(space_key(run), []).append(run)
    for space_runs in by_space.values():
        common, reference, sizes = None, None, []
        for run in space_runs:
            mask, mask_img, where = _points(run)
            sizes.append(int(mask.sum()))
            if reference is None:
                reference, common = (mask_img, where), mask.copy()
            elif mask_img is not None:
                geometry.check_same_grid(mask_img, where, *reference)
                common &= mask
            elif mask.shape != common.shape:
                raise InputError(where, f"{mask.size} vertices, {reference[1]} has "
                                 f"{common.size}: the runs of one space must share their meshes")
        if not common.any():
            raise InputError(space_runs[0].mask, "the runs' brain masks have no voxel in common")
        check_n_clusters_in_mask(settings.parcellation.n_clusters, int(common.sum()),
                                 f"the group mask of {len(space_runs)} runs")
        subjects = {run.entities["subject"] for run in space_runs}
        if len(subjects) == 1:
            warnings.append(f"the group level has one subject ({next(iter(subjects))}) in space "
                            f"{space_runs[0].entities['space']}: its atlas is that subject's")
        smallest = min(sizes)
        if common.sum() < 0.8 * smallest:
            warnings.append(f"the group mask keeps {int(common.sum())} voxels, "
                            f"{100 * common.sum() / smallest:.0f}% of the smallest run mask: "
                            "check the runs' masks")
        n_volumes = int(np.sum([count_volumes(run.sources) for run in space_runs]))
        choices.add(choose_reduction(int(common.sum()), n_volumes, settings.group.n_components))
    group = settings.group
    if group.reduction == "auto":
        group = replace(group, reduction="migp" if "migp" in choices else "exact")
    return replace(settings, group=group), warnings


def _points(run: bids.Run):
    """A run's points as a mask, the image to compare grids with (None for GIFTI), its file.

    Volumes: the brain mask. CIFTI: every grayordinate of the header.
    GIFTI pairs: every vertex of both meshes (those without data are only
    known once the series is read).
    """
    if not run.is_surface:
        mask, mask_img = geometry.load_mask(run.mask)
        return mask, mask_img, run.mask
    header = read_header(run.sources)
    return np.ones(header.n_points, bool), header.grid, run.bold


def check_folders(settings: AppSettings) -> None:
    """OUTPUT_DIR and ``-w`` neither are the input dataset nor lie inside it; else an InputError.

    Compared by identity (device and inode) at every level, so that a bind
    mount (``docker run -v``) or a link reaching the dataset under another
    name is found. Also refused: an OUTPUT_DIR (or its atlas dataset) that
    already holds derivatives of another fMRIPrep dataset, whose
    ``bids:preprocessed:`` URIs would then resolve to this one.
    """
    for path, what in ((settings.output_dir, "the output folder"),
                       (settings.work_dir, "the work folder (-w)")):
        if same_or_inside(path, settings.bids_dir):
            raise InputError(path, f"{what} is the input dataset {settings.bids_dir} or lies "
                             "inside it: give a folder outside the input dataset")
    description = settings.output_dir / "dataset_description.json"
    if settings.analysis_level == "group":
        description = settings.output_dir / bids.ATLAS_DIR / "dataset_description.json"
    linked = bids.linked_source(description)
    if linked is not None and not _same_folder(linked, settings.bids_dir):
        raise InputError(description, f"these derivatives come from another dataset "
                         f"({linked}): give another output folder for {settings.bids_dir}")
    if settings.analysis_level == "group":
        space = settings.selection.space
        for k in settings.parcellation.n_clusters:
            path = settings.output_dir / bids.ATLAS_DIR \
                / f"atlas-{bids.atlas_label(k)}_description.json"
            if not path.is_file():
                continue
            try:
                there = json.loads(path.read_text()).get("SpatialReference")
            except (OSError, ValueError, AttributeError):
                there = None
            if there is not None and there != space:
                raise InputError(path, f"the atlas {bids.atlas_label(k)} there was learned in "
                                 f"space {there}, not {space}: one atlas dataset holds one "
                                 "space; give another output folder")


def _same_folder(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False
