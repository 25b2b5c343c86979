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

from nipype_ward import __version__, bids
from nipype_ward.cli._running import (
    GraphError,
    exit_after,
    print_data_warnings,
    run_graph,
    stop_workers,
)
from nipype_ward.cli.parser import parse_settings
from nipype_ward.io.errors import InputError, WriteError
from nipype_ward.io.files import save_json
from nipype_ward.io.folders import (
    check_writable,
    move_into,
    staging_folder,
    work_folder,
)
from nipype_ward.preflight import check_folders, check_group, check_runs
from nipype_ward.reports.assemble import write_group_report, write_subject_report
from nipype_ward.settings import AppSettings


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
    The work folder is held for the run (:class:`~nipype_ward.io.folders.work_folder`:
    another run computing the same workflows in it is refused) and keeps
    what was done, and the same command resumes from it, unless every
    failure was an input error in a work folder this run made and no other
    run uses (it is then removed). Files already in OUTPUT_DIR are only
    ever replaced by a complete file of the same name.

    Returns the subjects delivered and the graph's error (None if it ran).
    """
    from dataclasses import replace

    subjects = sorted({run.entities["subject"] for run in runs})
    owners = {}
    error = None
    with staging_folder(settings.output_dir, settings.run_id) as staging:
        staged = replace(settings, output_dir=staging)
        save_run_config(settings, runs, argv, staging)
        if settings.analysis_level == "group":
            from nipype_ward.workflows.group import init_group_level_wf

            workflow = init_group_level_wf(settings=staged, runs=runs)
        else:
            from nipype_ward.workflows.base import (
                init_nipype_ward_wf,
                subject_workflows,
            )

            workflow = init_nipype_ward_wf(settings=staged, runs=runs)
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


def _one_line(exc: Exception) -> str:
    """An error as one line that names its file: ``<file>: <problem>``."""
    if isinstance(exc, OSError) and not isinstance(exc, WriteError) and exc.filename:
        return f"{exc.filename}: {exc.strerror}"
    return str(exc)


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

            write_group_report(settings.output_dir / bids.ATLAS_DIR,
                               parameters=settings.parcellation.as_dict(),
                               surface=any(run.is_surface for run in runs))
        if settings.analysis_level == "participant":

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


def command() -> None:
    """The installed command: :func:`main`, then the process ends with its status
    (:func:`~nipype_ward.cli._running.exit_after`)."""
    exit_after(main)


if __name__ == "__main__":
    command()
