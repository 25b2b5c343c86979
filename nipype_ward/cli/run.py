"""Running the BIDS App: select, check, write the dataset files, run the graph.

``nipype-ward BIDS_DIR OUTPUT_DIR participant [options]``: see
:mod:`nipype_ward.cli.parser` for the options. Every problem with the input
is found before any heavy work and reported as one line on stderr (exit 1);
``--debug`` shows the traceback and Nipype's log.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import sys
import traceback
from dataclasses import asdict
from pathlib import Path

from nipype_ward import __version__, bids, image
from nipype_ward.fileio import InputError, WriteError, save_json
from nipype_ward.folders import check_writable
from nipype_ward.settings import AppSettings
from nipype_ward.steps import check_n_clusters_in_mask, resolve_preparation


def check_runs(settings: AppSettings, runs: list[bids.Run]) -> list[str]:
    """Headers, masks, K, TR and confounds of every run, checked before any heavy work.

    Returns warnings (one line each) about runs that can be processed but
    whose results will be poor.
    """
    options = settings.parcellation
    warnings = []
    for run in runs:
        if run.is_surface:
            bold_img, n_points, n_volumes = _surface_header(run, settings)
            where = run.bold
        else:
            bold_img = image.load_bold(run.bold)
            mask, _ = image.load_mask(run.mask, reference=bold_img, reference_path=run.bold)
            n_points, n_volumes, where = int(mask.sum()), bold_img.shape[3], run.mask
        check_n_clusters_in_mask(options.n_clusters, n_points, where)
        # The App has no option to give it: the sidecar or the header must.
        if options.preparation.t_r is None \
                and image.read_repetition_time(run.bold, bold_img) is None:
            raise InputError(run.bold, "neither its JSON sidecar nor its header gives the "
                             "repetition time: add RepetitionTime (seconds) to its JSON sidecar")
        found = resolve_preparation(options.preparation, run.bold, bold_img, n_volumes,
                                    right_path=run.right)
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
            if run.right is not None:
                raise InputError(atlas, "--atlas on GIFTI series is not supported: parcellate "
                                 "their CIFTI version (fsLR), with a .dlabel.nii atlas")
            image.load_labels(atlas, reference=image.load_image(run.bold), reference_path=run.bold)
    return warnings


def _surface_header(run: bids.Run, settings: AppSettings):
    """A surface run's header image (CIFTI; None for GIFTI), points and volumes, checked.

    Its meshes must exist and have as many vertices as the data's cortices;
    nothing but headers (and the GIFTI files' XML tags) is read.
    """
    from nipype_ward import cifti, gifti
    from nipype_ward.workflows.base import run_meshes

    paths = run_meshes(run, settings)
    mesh_vertices = [gifti.mesh_shape(path)[0] for path in paths]
    if run.right is None:
        img = cifti.load_cifti(run.bold)
        models = cifti.brain_models_of(img)
        counts = {hemi: int(models.nvertices[name]) for hemi, name in cifti.CORTEX.items()
                  if name in models.nvertices}
        n_points, n_volumes = len(models), int(img.shape[0])
    else:
        img = None
        shapes = [gifti.series_shape(path) for path in run.sources]
        if shapes[0][1] != shapes[1][1]:
            raise InputError(run.right, f"{shapes[1][1]} volumes, the left hemisphere "
                             f"{shapes[0][1]}")
        counts = {"L": shapes[0][0], "R": shapes[1][0]}
        n_points, n_volumes = shapes[0][0] + shapes[1][0], shapes[0][1]
    for hemi, n_vertices, path in zip("LR", mesh_vertices, paths):
        if hemi in counts and counts[hemi] != n_vertices:
            raise InputError(run.bold, f"the {hemi} cortex has {counts[hemi]} vertices but its "
                             f"mesh {path} has {n_vertices}: give the data's own meshes "
                             "with --surfaces")
    if n_volumes < 2:
        raise InputError(run.bold, f"a series needs at least 2 volumes, got {n_volumes}")
    return img, n_points, n_volumes


def check_group(settings: AppSettings, runs: list[bids.Run]) -> tuple[AppSettings, list[str]]:
    """The group level's checks: one grid per space, K within the group mask, the reduction.

    Returns the settings with ``--group-reduction auto`` resolved, and warnings.
    """
    from dataclasses import replace

    import numpy as np

    from nipype_ward.workflows.group import space_key

    warnings, total_volumes = [], 0
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
                image.check_same_grid(mask_img, where, *reference)
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
        total_volumes = max(total_volumes, int(np.sum([
            image.count_volumes(run.bold) for run in space_runs])))
    group = settings.group
    if group.reduction == "auto":
        group = replace(group, reduction="exact" if total_volumes <= group.n_components
                        else "migp")
    return replace(settings, group=group), warnings


def _points(run: bids.Run):
    """A run's points as a mask, the image to compare grids with (None for GIFTI), its file.

    Volumes: the brain mask. CIFTI: every grayordinate of the header.
    GIFTI pairs: every vertex of both meshes (those without data are only
    known once the series is read).
    """
    import numpy as np

    from nipype_ward import cifti, gifti

    if not run.is_surface:
        mask, mask_img = image.load_mask(run.mask)
        return mask, mask_img, run.mask
    if run.right is None:
        img = cifti.load_cifti(run.bold)
        return np.ones(len(cifti.brain_models_of(img)), bool), img, run.bold
    n_vertices = sum(gifti.series_shape(path)[0] for path in run.sources)
    return np.ones(n_vertices, bool), None, run.bold


def save_run_config(settings: AppSettings, runs: list[bids.Run], argv, folder: Path) -> str:
    """Each subject's ``log/<run id>/nipype-ward.json`` in ``folder``: this run's settings and inputs.

    Files and folders are named as the sidecars name them, not by machine
    paths: the inputs by BIDS URIs (``bids:preprocessed:sub-01/func/...``),
    the input dataset ``bids:preprocessed:``, the output folder ``bids::``
    and the work folder relative to it. Only the command is kept as it was
    typed.
    """
    run_id = settings.run_id
    recorded = json.loads(json.dumps(asdict(settings), default=str))
    recorded.update(bids_dir=f"bids:{bids.SOURCE_DATASET}:", output_dir="bids::",
                    work_dir=os.path.relpath(settings.work_dir, settings.output_dir))
    config = {
        "nipype-ward": __version__,
        "command": ["nipype-ward", *map(str, argv)],
        "settings": recorded,
    }
    for subject in sorted({run.entities["subject"] for run in runs}):
        inputs = [bids.bids_uri(path, settings.bids_dir) for run in runs
                  if run.entities["subject"] == subject for path in run.sources]
        save_json({**config, "inputs": inputs},
                  _mkdir(Path(folder) / f"sub-{subject}" / "log" / run_id) / "nipype-ward.json")
    return run_id


def _mkdir(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def run_staged(settings: AppSettings, runs: list[bids.Run], argv, *,
               made_work_dir: bool = False) -> tuple[list[str], Exception | None]:
    """Run the graph, its sinks writing into ``OUTPUT_DIR/.staging-<run id>``, then deliver.

    Once the graph has run, the dataset's own files are written
    (``dataset_description.json``, ``.bidsignore``), and each subject's
    files (the group level: the atlases) renamed into OUTPUT_DIR, each file
    complete or absent. When nodes fail, the subjects whose workflows hold
    them (:func:`~nipype_ward.workflows.base.subject_workflows`) get none of
    their files (the group level: nothing), the others get theirs.
    The work folder is held for the run (:class:`~nipype_ward.folders.work_folder`:
    another run computing the same workflows in it is refused) and keeps
    what was done, and the same command resumes from it, unless every
    failure was an input error in a work folder this run made and no other
    run uses (it is then removed). Files already in OUTPUT_DIR are only
    ever replaced by a complete file of the same name.

    Returns the subjects delivered and the graph's error (None if it ran).
    """
    from dataclasses import replace

    from nipype_ward.cli._running import GraphError, run_graph
    from nipype_ward.folders import move_into, staging_folder, work_folder

    subjects = sorted({run.entities["subject"] for run in runs})
    owners = {}
    error = None
    with staging_folder(settings.output_dir, settings.run_id) as staging:
        staged = replace(settings, output_dir=staging)
        save_run_config(settings, runs, argv, staging)
        if settings.analysis_level == "group":
            from nipype_ward.workflows.group import init_group_level_wf

            workflow = init_group_level_wf(staged, runs)
        else:
            from nipype_ward.workflows.base import init_nipype_ward_wf, subject_workflows

            workflow = init_nipype_ward_wf(staged, runs)
            owners = {name: subject
                      for name, (subject, _) in subject_workflows(staged, runs).items()}
        tops = {name.split(".")[0] for name in workflow.list_node_names()}
        failed = []
        with work_folder(settings.work_dir, tops) as work:
            try:
                run_graph(workflow, work_dir=settings.work_dir, plugin=settings.plugin,
                          plugin_args=settings.plugin_args, verbose=settings.debug,
                          crash_dir=settings.work_dir / "crash" / settings.run_id)
            except GraphError as exc:
                failed = failed_subjects(exc.nodes, owners)
                if settings.analysis_level == "group" or not failed:
                    failed = subjects
                left = ", ".join(f"sub-{subject}" for subject in failed)
                if exc.input_error and made_work_dir and work.remove():
                    after = f"nothing was written for {left}"
                else:
                    after = (f"nothing was written for {left}; the work folder "
                             f"{settings.work_dir} keeps what was done, and the same command "
                             "resumes from it")
                error = GraphError(f"{exc}; {after}", exc.nodes, exc.input_error)
        delivered = [subject for subject in subjects if subject not in failed]
        if delivered:
            bids.write_dataset_description(settings.output_dir, settings.bids_dir)
            bids.write_bidsignore(settings.output_dir, surface_spaces={
                str(run.entities["space"]) for run in runs if run.is_surface},
                work_dir=settings.work_dir)
            move_into(staging, settings.output_dir,
                      exclude={f"sub-{subject}" for subject in failed})
    return delivered, error


def failed_subjects(nodes, owners: dict) -> list[str]:
    """The subjects whose top-level workflows (``owners``: name -> subject) hold failed nodes.

    ``nodes`` are full names as the scheduler reports them
    (``<root>.<top-level workflow>....``). A node outside every known
    workflow is everyone's: all the owners' subjects are returned.
    """
    failed = set()
    for node in nodes:
        parts = str(node).split(".")
        owner = owners.get(parts[1]) if len(parts) > 2 else None
        if owner is None:
            return sorted(set(owners.values()))
        failed.add(owner)
    return sorted(failed)


def check_folders(settings: AppSettings) -> None:
    """OUTPUT_DIR and ``-w`` neither are the input dataset nor lie inside it; else an InputError.

    Compared by identity (device and inode) at every level, so that a bind
    mount (``docker run -v``) or a link reaching the dataset under another
    name is found. Also refused: an OUTPUT_DIR (or its atlas dataset) that
    already holds derivatives of another fMRIPrep dataset, whose
    ``bids:preprocessed:`` URIs would then resolve to this one.
    """
    from nipype_ward.folders import same_or_inside

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


def _one_line(exc: Exception) -> str:
    """An error as one line that names its file: ``<file>: <problem>``."""
    if isinstance(exc, OSError) and not isinstance(exc, WriteError) and exc.filename:
        return f"{exc.filename}: {exc.strerror}"
    return str(exc)


def _same_folder(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def _quiet_matplotlib(work_dir: Path) -> None:
    """Give matplotlib a configuration folder in the work folder when the home one is read-only.

    Otherwise it prints four lines of warnings and leaves ``/tmp/matplotlib-*``
    folders behind. Set before matplotlib is imported, only where
    ``MPLCONFIGDIR`` is unset and the default cannot be made; matplotlib
    makes the folder when it first needs it.
    """
    if os.environ.get("MPLCONFIGDIR"):
        return
    config = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config") / "matplotlib"
    try:
        config.mkdir(parents=True, exist_ok=True)
        if os.access(config, os.W_OK):
            return
    except OSError:
        pass
    os.environ["MPLCONFIGDIR"] = str(work_dir / ".matplotlib")


def main(argv=None) -> int:
    from nipype_ward.cli._running import print_data_warnings, stop_workers
    from nipype_ward.cli.parser import parse_settings

    argv = sys.argv[1:] if argv is None else list(argv)
    settings = parse_settings(argv)
    _quiet_matplotlib(settings.work_dir)
    print_data_warnings("nipype-ward")
    try:
        return _main(settings, argv)
    except KeyboardInterrupt:
        stop_workers()
        if settings.debug:
            traceback.print_exc()
        print(f"nipype-ward: interrupted; the same command resumes from the work folder "
              f"{settings.work_dir}", file=sys.stderr)
        return 130


def _main(settings: AppSettings, argv) -> int:
    try:
        check_folders(settings)
        strategy = settings.parcellation.preparation.confounds_strategy
        runs = bids.collect_runs(settings.bids_dir, settings.selection,
                                 require_confounds=strategy is not None)
        for warning in check_runs(settings, runs):
            print(f"nipype-ward: warning: {warning}", file=sys.stderr)
        if settings.analysis_level == "group":
            settings, group_warnings = check_group(settings, runs)
            for warning in group_warnings:
                print(f"nipype-ward: warning: {warning}", file=sys.stderr)
        made = {path: not path.exists() for path in (settings.output_dir, settings.work_dir)}
        try:
            check_writable(settings.output_dir, "output folder")
            check_writable(settings.work_dir, "work folder (-w)")
        except InputError:
            for path in (settings.work_dir, settings.output_dir):
                if made[path]:
                    shutil.rmtree(path, ignore_errors=True)
            raise
        delivered = []
        try:
            delivered, error = run_staged(settings, runs, argv,
                                          made_work_dir=made[settings.work_dir])
        finally:
            if not delivered and made[settings.output_dir]:
                with contextlib.suppress(OSError):  # empty unless another run writes there
                    settings.output_dir.rmdir()

        if settings.analysis_level == "group" and error is None:
            bids.write_atlas_dataset(settings.output_dir / bids.ATLAS_DIR, settings.bids_dir,
                                     templates=sorted({str(r.entities["space"]) for r in runs}))
            from nipype_ward.reports.assemble import write_group_report

            write_group_report(settings.output_dir / bids.ATLAS_DIR,
                               parameters=settings.parcellation.as_dict(),
                               surface=any(run.is_surface for run in runs))
        if settings.analysis_level == "participant":
            from nipype_ward.reports.assemble import write_subject_report

            for subject in delivered:
                write_subject_report(settings.output_dir, subject, run_id=settings.run_id,
                                     parameters=settings.parcellation.as_dict(),
                                     surface=any(run.is_surface for run in runs
                                                 if run.entities["subject"] == subject))
        if error is not None:
            raise error
    except (InputError, RuntimeError, OSError, ValueError) as exc:
        if settings.debug:
            traceback.print_exc()
        print(f"nipype-ward: error: {_one_line(exc)}", file=sys.stderr)
        return 1
    subjects = sorted({run.entities["subject"] for run in runs})
    ks = ", ".join(map(str, settings.parcellation.n_clusters))
    if settings.analysis_level == "group":
        print(f"nipype-ward: group atlases at K = {ks} from {len(runs)} runs of "
              f"{len(subjects)} subjects ({settings.group.reduction} reduction); BIDS-Atlas "
              f"dataset in {settings.output_dir / bids.ATLAS_DIR}")
    else:
        print(f"nipype-ward: {len(runs)} runs of {len(subjects)} subjects parcellated at "
              f"K = {ks}; results in {settings.output_dir}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
