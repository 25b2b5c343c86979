#!/usr/bin/env python
"""Benchmark the participant level on N subjects under Nipype's execution plugins.

Usage::

    python bench/bench_subjects.py [--subjects 4 8] [--volumes 176] [--repeat R]
                                   [--only Linear,MultiProc-1,MultiProc-2,SLURM]
                                   [--data-dir DIR] [--estimate S M]

Requires psutil (the ``bench`` extra) besides nipype-ward itself; the SLURM
mode needs root (``.ci/slurm.sh`` starts a real single-node Slurm).

Data: bench_group.py's fMRIPrep-shaped derivatives dataset of max(N)
simulated subjects (``build_dataset``: ``sub-01`` .. ``sub-N``, one run
each, ``simulate_rest_fmri(resolution=3, n_volumes=V, random_state=XX)``,
default V = 176, ``space-MNI152NLin2009cAsym``), built before anything is
timed, under ``--data-dir`` (kept, and reused by a later invocation with
the same ``--volumes``) or by default in a temporary folder deleted at the
end.

The contenders, at each N (``--subjects``, default 4 8), each run as a user
runs it, in its own fresh process, in a fresh run folder: ``nipype-ward
DATASET OUT participant --participant-label 01 .. N --n-clusters 1000
--confounds-strategy none --no-split-half -w WORK`` plus, per mode:

* ``Linear``: ``--nprocs 1`` (the CLI then takes Nipype's Linear plugin);
* ``MultiProc-1``: ``--plugin MultiProc --nprocs 1``;
* ``MultiProc-2``: ``--plugin MultiProc --nprocs 2``;
* ``SLURM``: ``--plugin SLURM``, on the single-node Slurm that
  ``bash .ci/slurm.sh`` starts (run once, before any run; if it fails, its
  stderr is printed and the mode skipped). Every node but the cheap ones
  (run without submitting) is an sbatch job, run by slurmd; the command
  runs with an environment without LOGNAME and USER, as a batch shell
  might have, which Nipype's batch plugins read.

Measured, per run (bench_pipeline.py's ``run_once``):

* wall time: ``time.perf_counter`` around the subprocess (a tiny wrapper
  interpreter, a few tens of ms, is included);
* peak tree RSS: every ~20 ms, psutil's sum of the RSS of the command and
  all its descendants, the maximum kept (pages shared between processes
  count once per process: an upper bound). Under SLURM the jobs are
  slurmd's children, not the command's: the figure is the scheduling
  process alone, not the job's memory;
* for SLURM, the number of batch jobs: the ``slurm-*.out`` files in WORK
  (its ``batch/`` folder), counted before the run folder is deleted.

Checked: every run exits 0 (else its stderr is printed and the bench
exits 1), and the label images
``sub-XX/func/sub-XX_task-rest_space-MNI152NLin2009cAsym_seg-ward_scale-1000_dseg.nii.gz``
of every subject, in every run of every mode, have data arrays equal
(``numpy.array_equal`` of nibabel's arrays) to those of Linear's first run
(of the first mode's, without Linear).

Printed, per N: mode, wall time, speed-up (Linear's wall / the mode's),
peak tree RSS, and "identical outputs: yes/no". At the end, from the
measurements: the per-subject cost under Linear (wall / N), and an
estimate for S subjects on a cluster of M nodes (``--estimate S M``,
default 100 10): the subjects being independent, wall ~ ceil(S / M) x
(per-subject wall + jobs per subject x the scheduler's overhead per job),
that overhead measured here as (SLURM wall - MultiProc-2 wall) / jobs (two
jobs or processes at a time in both), at the largest N. It assumes a node
as fast as one core here, running one subject at a time, and no queue wait.

Each run writes into a fresh OUT and WORK in a temporary folder, deleted
after the run except its label images (compared, then deleted at the end);
nothing in the repository is written. With ``--repeat R`` the modes run R
times at each N in rotating order and medians are printed.
"""
from __future__ import annotations

import argparse
import itertools
import math
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import numpy as np

# The helpers of bench_pipeline.py and bench_group.py (this folder is on sys.path when run).
from bench_group import SPACE, build_dataset, label, ours_executable, run_prefix
from bench_pipeline import describe_machine, run_once, schedule

REPO = Path(__file__).resolve().parent.parent
N_CLUSTERS = 1000
COMMON = ("--n-clusters", str(N_CLUSTERS), "--confounds-strategy", "none", "--no-split-half")
MODES = {
    "Linear": ("--nprocs", "1"),
    "MultiProc-1": ("--plugin", "MultiProc", "--nprocs", "1"),
    "MultiProc-2": ("--plugin", "MultiProc", "--nprocs", "2"),
    "SLURM": ("--plugin", "SLURM"),
}
SLURM_SCRIPT = REPO / ".ci" / "slurm.sh"


def dseg(subject: str) -> str:
    """The label image of ``subject``'s run at K = N_CLUSTERS, relative to OUT."""
    return f"{run_prefix(subject)}_space-{SPACE}_seg-ward_scale-{N_CLUSTERS}_dseg.nii.gz"


def command(mode: str, root: Path, run_dir: Path, subjects: list[str]) -> list[str]:
    return [ours_executable(), str(root), str(run_dir / "out"), "participant",
            "--participant-label", *subjects, *COMMON, "-w", str(run_dir / "work"),
            *MODES[mode]]


def batch_env() -> dict:
    """This environment without LOGNAME and USER, as a batch shell might have it."""
    return {key: value for key, value in os.environ.items() if key not in ("LOGNAME", "USER")}


def start_slurm() -> str | None:
    """Start the single-node Slurm; None if it runs, else the script's stderr."""
    proc = subprocess.run(["bash", str(SLURM_SCRIPT)], capture_output=True, text=True,
                          timeout=900)
    return None if proc.returncode == 0 else proc.stderr.strip() or f"exit {proc.returncode}"


def run_mode(mode: str, root: Path, run_dir: Path, subjects: list[str], keep: Path) -> dict:
    """One run, measured; its label images copied into ``keep``; run_dir deleted."""
    run_dir.mkdir()
    env = batch_env() if mode == "SLURM" else None
    result = run_once(command(mode, root, run_dir, subjects), run_dir, cwd=run_dir, env=env)
    result["jobs"] = len(list((run_dir / "work").rglob("slurm-*.out")))
    if result["rc"] == 0:
        for subject in subjects:
            source = run_dir / "out" / dseg(subject)
            if not source.is_file():
                result.update(rc=1, stderr=f"{result['stderr']}\nno {source} written\n")
                break
            target = keep / dseg(subject)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, target)
    result["keep"] = keep
    shutil.rmtree(run_dir)
    return result


def same_labels(a: Path, b: Path, subjects: list[str]) -> bool:
    """Whether every subject's label image under ``a`` has the data array of ``b``'s."""
    import nibabel as nib

    return all(np.array_equal(np.asanyarray(nib.load(a / dseg(s)).dataobj),
                              np.asanyarray(nib.load(b / dseg(s)).dataobj))
               for s in subjects)


def describe(root: Path, source: str, args, modes: list[str]) -> None:
    import nibabel as nib  # the header only: the data are not read

    bold = root / f"{run_prefix(label(1))}_space-{SPACE}_desc-preproc_bold.nii.gz"
    print(f"dataset   : {root}  [{source}]")
    print(f"subject   : shape {nib.load(bold).shape}  file {bold.stat().st_size / 2**20:.1f} MB"
          f"   N = {' '.join(map(str, args.subjects))} (sub-01 .. sub-N)   K = {N_CLUSTERS}")
    describe_machine()
    print(f"runs      : {' '.join(modes)}  x{args.repeat} per N", flush=True)


def medians(runs: list[dict]) -> dict:
    return {key: statistics.median(r[key] for r in runs) for key in ("wall", "tree_mb", "jobs")}


def report_n(n: int, runs: dict[str, list[dict]], subjects: list[str]) -> dict:
    """The table of one N and the comparison of its outputs; the medians by mode."""
    med = {mode: medians(mode_runs) for mode, mode_runs in runs.items()}
    linear = med.get("Linear")
    print(f"\nN = {n} subjects (medians over {max(len(r) for r in runs.values())} run(s))")
    print(f"{'mode':13}{'wall s':>9}{'speed-up':>10}{'peak tree RSS MB':>18}")
    for mode, m in med.items():
        speedup = f"{linear['wall'] / m['wall']:9.2f}x" if linear else f"{'n/a':>10}"
        print(f"{mode:13}{m['wall']:9.1f}{speedup}{m['tree_mb']:18.1f}")
    if "SLURM" in med:
        print("(SLURM's tree RSS: the scheduling command alone; its jobs run under slurmd)")
    reference_mode = next(iter(runs))
    reference = runs[reference_mode][0]["keep"]
    differ = [mode for mode, mode_runs in runs.items()
              if not all(same_labels(r["keep"], reference, subjects) for r in mode_runs)]
    versus = "" if reference_mode == "Linear" else f" (against {reference_mode})"
    print(f"identical outputs{versus}: {'no' if differ else 'yes'}"
          + (f" ({', '.join(differ)} differ)" if differ else ""))
    return med


def fmt_s(seconds: float) -> str:
    return f"{seconds:.0f} s ({seconds / 60:.1f} min)" if seconds >= 120 else f"{seconds:.1f} s"


def estimate(med: dict[int, dict], n_subjects: int, n_nodes: int) -> None:
    """The closing paragraph: per-subject cost under Linear, a cluster of M nodes for S."""
    ns = [n for n in med if "Linear" in med[n]]
    if not ns:
        print("\n(no Linear run: no per-subject cost, no estimate)")
        return
    costs = {n: med[n]["Linear"]["wall"] / n for n in ns}
    n, m = max(ns), med[max(ns)]
    rounds = math.ceil(n_subjects / n_nodes)
    base = rounds * costs[n]
    text = ("Per-subject cost under Linear (wall / N): "
            + ", ".join(f"{costs[k]:.1f} s at N={k}" for k in ns) + ". "
            f"Estimate for S={n_subjects} subjects on a cluster of M={n_nodes} nodes (each as "
            "fast as one core here, one subject at a time, no queue wait): the subjects are "
            f"independent, so wall ~ ceil(S / M) x per-subject wall = {rounds} x "
            f"{costs[n]:.1f} s = {fmt_s(base)} (N={n}'s cost)")
    if "SLURM" not in m or "MultiProc-2" not in m or not m["SLURM"]["jobs"]:
        text += (", plus the scheduler's overhead per job, not measured here (no SLURM and "
                 "MultiProc-2 runs at that N).")
    else:
        jobs, slurm, multiproc = m["SLURM"]["jobs"], m["SLURM"]["wall"], m["MultiProc-2"]["wall"]
        per_job = (slurm - multiproc) / jobs
        added = rounds * (jobs / n) * per_job
        text += (f", plus the scheduler's overhead: measured here at N={n} as (SLURM wall - "
                 f"MultiProc-2 wall) / jobs = ({slurm:.1f} - {multiproc:.1f}) s / {jobs:.0f} "
                 f"= {per_job:.2f} s per job, {jobs / n:.1f} jobs per subject, so {rounds} x "
                 f"{jobs / n:.1f} x {per_job:.2f} s = {fmt_s(added)} more: about "
                 f"{fmt_s(base + added)} in all.")
        if per_job <= 0:
            text += " (SLURM was not slower than MultiProc-2 here: no overhead measured.)"
    print("\n" + textwrap.fill(text, width=99))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--subjects", type=int, nargs="+", default=[4, 8],
                        help="numbers of subjects (default: 4 8)")
    parser.add_argument("--volumes", type=int, default=176,
                        help="volumes of each simulated run (default: 176)")
    parser.add_argument("--repeat", type=int, default=1, help="runs of each mode at each N")
    parser.add_argument("--only", default=",".join(MODES),
                        help=f"comma-separated modes (default: {','.join(MODES)})")
    parser.add_argument("--data-dir", type=Path,
                        help="where the dataset is built and kept (default: a temporary "
                        "folder, deleted at the end)")
    parser.add_argument("--estimate", type=int, nargs=2, default=[100, 10], metavar=("S", "M"),
                        help="subjects and cluster nodes of the closing estimate "
                        "(default: 100 10)")
    args = parser.parse_args(argv)
    modes = [m.strip() for m in args.only.split(",") if m.strip()]
    unknown = sorted(set(modes) - set(MODES))
    if unknown or not modes:
        parser.error(f"--only takes some of {','.join(MODES)}, got {args.only!r}")
    modes = [m for m in MODES if m in modes]
    if min(args.subjects + [args.repeat, args.volumes] + args.estimate) < 1:
        parser.error("--subjects, --volumes, --repeat and --estimate must be positive")
    args.subjects = sorted(set(args.subjects))
    ours_executable()
    if "SLURM" in modes:
        problem = start_slurm()
        if problem is not None:
            print(f"{SLURM_SCRIPT.relative_to(REPO)} failed; its stderr:\n{problem}")
            print("SLURM mode skipped: Slurm cannot start here")
            modes.remove("SLURM")
            if not modes:
                return 0

    with tempfile.TemporaryDirectory(prefix="bench_subjects_") as tmp:
        tmp = Path(tmp)
        data_dir = args.data_dir.resolve() if args.data_dir else tmp / "data"
        root, source = build_dataset(data_dir, max(args.subjects), args.volumes,
                                     os.cpu_count() or 1)
        describe(root, source, args, modes)
        count = itertools.count()
        med = {}
        for n in args.subjects:
            subjects = [label(i) for i in range(1, n + 1)]
            runs: dict[str, list[dict]] = {mode: [] for mode in modes}
            for mode in schedule(modes, args.repeat):
                i = next(count)
                keep = tmp / f"labels-{i:03d}"
                result = run_mode(mode, root, tmp / f"{i:03d}-N{n:02d}-{mode}", subjects, keep)
                print(f"N={n} {mode}: {result['wall']:.1f} s", flush=True)
                if result["rc"] != 0:
                    print(f"\n{mode} failed at N={n} (exit {result['rc']}); its stderr:\n"
                          f"{result['stderr']}", file=sys.stderr)
                    return 1
                runs[mode].append(result)
            med[n] = report_n(n, runs, subjects)
        estimate(med, *args.estimate)
    return 0


if __name__ == "__main__":
    sys.exit(main())
