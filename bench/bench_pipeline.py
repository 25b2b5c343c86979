#!/usr/bin/env python
"""Benchmark the whole seed job end to end: our command against two references.

Usage::

    python bench/bench_pipeline.py [--grid 3mm|2mm] [--volumes N] [--bold FILE]
                                   [--repeat R] [--only ours,seed,nilearn]
                                   [--ours-args "--nprocs 1"]

Requires psutil (the ``bench`` extra) besides nipype-ward itself.

The contenders, each run as a user runs it, in its own fresh process, from
the repository root, on the same BOLD file, for K = 1000 then 2000:

* ``ours``: ``workflows/rest_clustering.py --bold BOLD --output-dir OUT
  --n-clusters 1000 2000`` plus ``--ours-args`` (split with shlex);
* ``seed``: ``bench/seed_rest_clustering.py BOLD OUT``, nilearn's original
  example as a script (NiftiMasker, FeatureAgglomeration, label and
  compressed images, figures);
* ``nilearn``: ``bench/nilearn_parcellations.py BOLD OUT``, one
  ``nilearn.regions.Parcellations(method='ward')`` per K (which smooths and
  reduces the data by PCA before Ward: see that script).

Data: the simulated rest-fMRI run of ``nipype_ward.datasets.load_simulated_rest``
at 3 mm (default, 176 volumes) or 2 mm (``--grid 2mm --volumes 300``, the
fMRIPrep-sized case; ``--grid 2mm --volumes 1200``, an HCP-length run, 5.3 GB
of float32 written a volume at a time, which the seed script cannot hold:
``--only ours --ours-args="--standardize zscore_sample"``), generated and
cached before anything is timed; or any 4D NIfTI given with ``--bold``.

Measured, per run:

* wall time: ``time.perf_counter`` around the subprocess (a tiny wrapper
  interpreter, a few tens of ms, is included);
* peak tree RSS: every ~20 ms, psutil's sum of the RSS of the command and
  all its descendants (worker processes, listed anew every 100 ms), the
  maximum kept; pages shared between processes (a forked worker's copy of
  its parent) count once per process, so this bounds from above the memory
  the job needed;
* peak single-process RSS: ``ru_maxrss`` of the largest process of the run,
  read by a fresh wrapper process (``RUSAGE_CHILDREN``) so that it covers that
  run only and not this parent (on Linux a child's ``ru_maxrss`` starts at
  its parent's peak); descendants never waited for are not covered.

Before the contenders, the floor any reader of the file pays: one
single-threaded ISA-L decompression of BOLD (``isal.igzip``, read to the
end in 16 MB chunks, in its own process; best of ``--repeat``), for a
``.nii.gz``. After them, issue #27's targets, each "met" or "NOT met": the
seed job >= 5x the seed script and >= 6x nilearn; ours' wall time <= 2.5x
the floor and ours' peak process RSS <= 1.5x the masked float32 series
(voxels of ours' ``mask.nii.gz`` x volumes x 4 bytes) + 0.5 GB (the targets
of a 2 mm run of 1,200 volumes; printed for any input).

Each run writes into a fresh empty OUT in a temporary folder, deleted after
the run, and starts once the system has written its dirty pages (``os.sync``);
nothing in the repository is written. With ``--repeat R`` the
contenders run R times in rotating order (ours, seed, nilearn, then seed,
nilearn, ours, ...) and medians are printed.
"""
from __future__ import annotations

import argparse
import itertools
import os
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from importlib import metadata
from pathlib import Path

import numpy as np
import psutil

from nipype_ward.io.nifti import usable_cpus

REPO = Path(__file__).resolve().parent.parent
GRIDS = {"3mm": 3, "2mm": 2}
N_CLUSTERS = ("1000", "2000")
CONTENDERS = ("ours", "seed", "nilearn")
SAMPLE_S = 0.02  # seconds between memory samples
REFRESH = 5  # samples between two listings of the descendants

# Runs the command, then writes its ru_maxrss (the largest process it and its
# waited-for descendants reached) to the file argv[1]; exits with its code.
WRAPPER = """\
import resource, subprocess, sys
rc = subprocess.call(sys.argv[2:])
with open(sys.argv[1], "w") as f:
    f.write(str(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss))
sys.exit(rc if rc >= 0 else 128 - rc)
"""


def command(which: str, bold: Path, out: Path, ours_args: list[str]) -> list[str]:
    """The command line of one contender, writing into ``out``."""
    if which == "ours":
        # A work folder of its own beside ``out``: the command's default (./work)
        # would be Nipype's cache of the run before, and a cached run measures nothing.
        return [sys.executable, "workflows/rest_clustering.py", "--bold", str(bold),
                "--output-dir", str(out), "--work-dir", str(out.parent / "work"),
                "--n-clusters", *N_CLUSTERS, *ours_args]
    script = {"seed": "bench/seed_rest_clustering.py",
              "nilearn": "bench/nilearn_parcellations.py"}[which]
    return [sys.executable, script, str(bold), str(out), "--n-clusters", *N_CLUSTERS]


def _wait_sampling(proc: subprocess.Popen) -> int:
    """Wait for ``proc`` (the wrapper); return the peak summed RSS (bytes) of its descendants.

    Their memory is read every SAMPLE_S; the list of descendants, which costs
    a scan of all processes (a few ms), is refreshed every REFRESH samples.
    """
    wrapper, tree, peak = psutil.Process(proc.pid), [], 0
    for n in itertools.count():
        if n % REFRESH == 0:
            try:
                tree = wrapper.children(recursive=True)
            except psutil.Error:
                pass
        rss = 0
        for process in tree:
            try:
                rss += process.memory_info().rss
            except psutil.Error:  # it has ended
                pass
        peak = max(peak, rss)
        try:
            proc.wait(timeout=SAMPLE_S)
            return peak
        except subprocess.TimeoutExpired:
            pass


def run_once(cmd: list[str], run_dir: Path, *, cwd: Path = REPO, env: dict | None = None) -> dict:
    """Run ``cmd`` under the wrapper; wall time, peak tree RSS, peak process RSS.

    Its stdout, stderr and ru_maxrss go to ``run_dir`` (made if needed);
    bench_group.py runs its contenders through this too. The files runs
    before it wrote are put on disk first (``sync``, not timed): the kernel
    writes dirty pages back 30 s after they were written, which would land
    one run's writing (a 2 mm run of 1,200 volumes leaves 1.1 GB) in the
    time of the next.
    """
    run_dir.mkdir(exist_ok=True)
    maxrss_file = run_dir / "maxrss"
    if hasattr(os, "sync"):
        os.sync()
    with open(run_dir / "stdout", "wb") as out, open(run_dir / "stderr", "wb") as err:
        cpu, start = time.process_time(), time.perf_counter()
        proc = subprocess.Popen([sys.executable, "-c", WRAPPER, str(maxrss_file), *cmd],
                                cwd=cwd, stdout=out, stderr=err, env=env)
        peak = _wait_sampling(proc)
        wall, cpu = time.perf_counter() - start, time.process_time() - cpu
    scale = 1 if sys.platform == "darwin" else 1024  # ru_maxrss: bytes on macOS, kB on Linux
    maxrss = int(maxrss_file.read_text()) * scale if maxrss_file.exists() else 0
    return {"rc": proc.returncode, "wall": wall, "tree_mb": peak / 2**20,
            "proc_mb": maxrss / 2**20, "sampler_cpu": cpu,
            "stderr": (run_dir / "stderr").read_text(errors="replace")}


#: Reads a .nii.gz to the end with ISA-L, one thread; prints the seconds taken.
DECOMPRESS = """\
import sys, time
from isal import igzip
start = time.perf_counter()
with igzip.open(sys.argv[1], "rb") as f:
    while f.read(1 << 24):
        pass
print(time.perf_counter() - start)
"""
#: Issue #27's targets.
SEED_TARGETS = {"seed": 5.0, "nilearn": 6.0}
FLOOR_TARGET = 2.5  # ours' wall time, in decompressions of the file
MEMORY_TARGET = (1.5, 0.5)  # ours' peak process RSS <= a x the masked float32 series + b GB
#: The run the floor and memory targets are set for: HCP's length on the 2 mm grid.
BIG_RUN = ("2mm", 1200)


def decompression_floor(bold: Path, repeat: int) -> float | None:
    """Seconds of one single-threaded ISA-L decompression of ``bold`` (best of ``repeat``)."""
    if not bold.name.endswith(".gz"):
        return None
    times = [float(subprocess.run([sys.executable, "-c", DECOMPRESS, str(bold)], check=True,
                                  capture_output=True, text=True).stdout)
             for _ in range(repeat)]
    return min(times)


def masked_series_gb(out: Path, n_volumes: int) -> float | None:
    """The masked float32 series' size (GB), from the mask ours wrote in ``out``."""
    import nibabel as nib

    mask = out / "mask.nii.gz"
    if not mask.exists():
        return None
    return int((np.asanyarray(nib.load(mask).dataobj) > 0).sum()) * n_volumes * 4 / 1e9


def report_targets(med: dict, floor: float | None, series_gb: float | None,
                   big: bool = True) -> None:
    """Issue #27's targets, each met or not; the floor's and the memory's on
    the run they are set for (``big``), else shown for information."""
    lines = []
    if "ours" in med:
        ours = med["ours"]
        for ref, target in SEED_TARGETS.items():
            if ref in med:
                ratio = med[ref]["wall"] / ours["wall"]
                lines.append((f"seed job >= {target:g}x {ref} ({ratio:.2f}x)", ratio >= target,
                              True))
        if floor is not None:
            ratio = ours["wall"] / floor
            lines.append((f"ours' wall <= {FLOOR_TARGET:g}x one ISA-L decompression "
                          f"({ours['wall']:.2f} s = {ratio:.2f}x {floor:.2f} s)",
                          ratio <= FLOOR_TARGET, big))
        if series_gb is not None:
            a, b = MEMORY_TARGET
            limit = (a * series_gb + b) * 1e3
            lines.append((f"ours' peak process RSS <= {a:g}x the masked float32 series "
                          f"({series_gb * 1e3:.0f} MB) + {b:g} GB ({ours['proc_mb'] * 2**20 / 1e6:.0f}"
                          f" MB against {limit:.0f} MB)", ours["proc_mb"] * 2**20 / 1e6 <= limit,
                          big))
    if lines:
        print()
        for text, met, judged in lines:  # judged: on the run the target is set for
            if judged:
                print(f"target: {text}: {'met' if met else 'NOT met'}")
            else:
                print(f"(for information: {text}; the goal is set for "
                      f"--grid {BIG_RUN[0]} --volumes {BIG_RUN[1]})")


def resolve_bold(args) -> tuple[Path, str]:
    """The input file and how it was obtained (generated now if not cached)."""
    if args.bold is not None:
        return args.bold.resolve(), "given with --bold"
    from nipype_ward.datasets import load_simulated_rest

    call = f"load_simulated_rest(resolution={GRIDS[args.grid]}, n_volumes={args.volumes})"
    start = time.perf_counter()
    bunch = load_simulated_rest(resolution=GRIDS[args.grid], n_volumes=args.volumes)
    return Path(bunch.func), f"{call} ({time.perf_counter() - start:.1f} s)"


def describe(bold: Path, source: str) -> None:
    import nibabel as nib  # the header only: the data are not read

    img = nib.load(bold)
    shape = img.shape
    n_grid = shape[0] * shape[1] * shape[2]
    n_volumes = shape[3] if len(shape) > 3 else 1
    print(f"input     : {bold}  [{source}]")
    print(f"shape     : {shape}  grid voxels={n_grid}  volumes={n_volumes}  "
          f"dtype={img.get_data_dtype()}  file={bold.stat().st_size / 2**20:.1f} MB")
    describe_machine()


def describe_machine(extra: str = "") -> None:
    """The machine's CPUs, Python and the versions of what is measured (every bench prints them)."""
    cpus, usable = os.cpu_count(), usable_cpus()
    print(f"machine   : {cpus} CPUs ({usable} usable)  python {sys.version.split()[0]}"
          + (f"  {extra}" if extra else ""))
    print("versions  : " + "  ".join(
        f"{name} {metadata.version(name)}"
        for name in ("nipype-ward", "nipype", "nilearn", "scikit-learn", "numpy")))


def schedule(contenders: list[str], repeat: int) -> list[str]:
    """Round r runs the contenders rotated by r: ours, seed, nilearn; seed, nilearn, ours..."""
    n = len(contenders)
    return [contenders[(r + i) % n] for r in range(repeat) for i in range(n)]


def report(results: dict[str, list[dict]]) -> None:
    med = {which: {key: statistics.median(r[key] for r in runs)
                   for key in ("wall", "tree_mb", "proc_mb")}
           for which, runs in results.items()}
    n_runs = max(len(runs) for runs in results.values())
    print(f"\nmedians over {n_runs} run(s) of each contender (min, max: of the wall time)")
    print(f"{'contender':10}{'wall s (median)':>17}{'min':>9}{'max':>9}"
          f"{'peak tree RSS MB':>19}{'peak process RSS MB':>22}")
    for which, runs in results.items():
        walls = [r["wall"] for r in runs]
        m = med[which]
        print(f"{which:10}{m['wall']:17.2f}{min(walls):9.2f}{max(walls):9.2f}"
              f"{m['tree_mb']:19.1f}{m['proc_mb']:22.1f}")
    if "ours" not in med:
        return
    ours = med["ours"]
    refs = [ref for ref in ("seed", "nilearn") if ref in med]
    if refs:
        print()
    for ref in refs:
        print(f"wall time         {ref + ' / ours':>15} : {med[ref]['wall'] / ours['wall']:6.2f}x")
    for key, label in (("tree_mb", "peak tree RSS"), ("proc_mb", "peak process RSS")):
        for ref in refs:
            print(f"{label:17} {'ours / ' + ref:>15} : {ours[key] / med[ref][key]:6.3f}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--grid", choices=sorted(GRIDS), default="3mm")
    parser.add_argument("--volumes", type=int, default=176,
                        help="volumes of the simulated run (default: 176)")
    parser.add_argument("--bold", type=Path, help="benchmark on this 4D NIfTI instead")
    parser.add_argument("--repeat", type=int, default=1, help="runs of each contender")
    parser.add_argument("--only", default=",".join(CONTENDERS),
                        help="comma-separated contenders (default: ours,seed,nilearn)")
    parser.add_argument("--ours-args", default="",
                        help='extra arguments of our command, e.g. "--nprocs 1" '
                        '(a single option: --ours-args=--no-figures)')
    args = parser.parse_args(argv)
    contenders = [c.strip() for c in args.only.split(",") if c.strip()]
    unknown = sorted(set(contenders) - set(CONTENDERS))
    if unknown or not contenders:
        parser.error(f"--only takes some of {','.join(CONTENDERS)}, got {args.only!r}")
    contenders = [c for c in CONTENDERS if c in contenders]
    if args.repeat < 1 or args.volumes < 1:
        parser.error("--repeat and --volumes must be positive")
    if args.bold is not None and not args.bold.is_file():
        parser.error(f"--bold: no such file {args.bold}")
    ours_args = shlex.split(args.ours_args)

    bold, source = resolve_bold(args)
    describe(bold, source)
    floor = decompression_floor(bold, args.repeat)
    if floor is not None:
        print(f"floor     : {floor:.2f} s, one single-threaded ISA-L decompression of the file "
              f"(best of {args.repeat})")
    series_gb = None
    print(f"runs      : {' '.join(contenders)}  x{args.repeat}  "
          f"(ours extra args: {ours_args or 'none'})", flush=True)

    results: dict[str, list[dict]] = {c: [] for c in contenders}
    with tempfile.TemporaryDirectory(prefix="bench_pipeline_") as tmp:
        for i, which in enumerate(schedule(contenders, args.repeat)):
            run_dir = Path(tmp) / f"{i:02d}-{which}"
            # The page cache's dirty pages written first: no contender waits on the disk
            # for the files the one before wrote (GBs at 2 mm x 1,200 volumes).
            os.sync()
            result = run_once(command(which, bold, run_dir / "out", ours_args), run_dir)
            print(f"  {which:8} {result['wall']:8.2f} s  tree {result['tree_mb']:8.1f} MB  "
                  f"process {result['proc_mb']:8.1f} MB  (sampler CPU {result['sampler_cpu']:.1f} s)",
                  flush=True)
            if result["rc"] != 0:
                print(f"\n{which} failed (exit {result['rc']}); its stderr:\n{result['stderr']}",
                      file=sys.stderr)
                return 1
            results[which].append(result)
            if which == "ours" and series_gb is None:
                import nibabel as nib

                series_gb = masked_series_gb(run_dir / "out", nib.load(bold).shape[3])
            # Each run starts from the same machine: without the files of the runs
            # before it (ours' work folder holds the 1.1 GB series of a 2 mm x 1,200
            # run), whose pages would otherwise fill the page cache run after run.
            shutil.rmtree(run_dir / "out")
            shutil.rmtree(run_dir / "work", ignore_errors=True)
    report(results)
    med = {which: {key: statistics.median(r[key] for r in runs) for key in ("wall", "proc_mb")}
           for which, runs in results.items()}
    report_targets(med, floor, series_gb, big=(args.grid, args.volumes) == BIG_RUN)
    return 0


if __name__ == "__main__":
    sys.exit(main())
