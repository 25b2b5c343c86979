#!/usr/bin/env python
"""Benchmark the group level: our group atlas against nilearn's Parcellations on N subjects.

Usage::

    python bench/bench_group.py [--subjects 4 8 16] [--held-out 4] [--n-clusters 1000]
                                [--volumes 176] [--repeat R] [--only ours,nilearn]
                                [--ours-args "--no-split-half"] [--nprocs 2]
                                [--data-dir DIR]

Requires psutil (the ``bench`` extra) besides nipype-ward itself.

Data: one fMRIPrep-shaped derivatives dataset of max(N) + H subjects
(``--held-out``, default 4), built before anything is timed, under
``--data-dir`` (kept, and reused by a later invocation with the same
``--volumes``) or by default in a temporary folder deleted at the end. Each
subject ``sub-XX`` (XX = 01, 02, ...) has one run,
``func/sub-XX_task-rest_space-MNI152NLin2009cAsym_desc-preproc_bold.nii.gz``
(with its JSON sidecar, RepetitionTime 2 s), the true brain mask of the
simulation as ``_desc-brain_mask.nii.gz`` and an fMRIPrep-style
``_desc-confounds_timeseries.tsv`` (``nipype_ward.datasets.fmriprep_confounds``:
motion, tissue signals, FD, DVARS, CompCor, cosines; unused, the confounds
strategy being ``none``); the folder has
fMRIPrep's ``dataset_description.json``. A subject is
``simulate_rest_fmri(resolution=3, n_volumes=V, random_state=XX)`` (default
V = 176), so every subject has its own seed. The seed draws everything,
the ground-truth regions included: the subjects do NOT share regions, only
the brain mask (it depends on the resolution alone), the EPI-like baseline
and the kind of signal (a global signal, spatially smooth noise, compact
regions of ~230 voxels). No group parcellation can find common regions
here; the held-out R2 measures how well each method's compact parcels
explain unseen subjects, a fair comparison of the two methods, not a
recovery score. The fitted subjects of size N are the first N
(``--participant-label 01 .. N`` for ours); the held-out subjects are the
last H, never fitted.

The contenders, at each N (``--subjects``, default 4 8 16), each run as a
user runs it, in its own fresh process:

* ``ours``: ``nipype-ward DATASET OUT group --participant-label 01 .. N
  --n-clusters K -w WORK --nprocs P --confounds-strategy none`` plus
  ``--ours-args`` (shlex), K = ``--n-clusters`` (default 1000), P =
  ``--nprocs`` (default 2). By default the group level prepares every run
  and builds the atlases, nothing more; ``--ours-args --group-quality`` adds
  their quality (each run's own tree and comparison, two half-group trees).
* ``nilearn``: this file with the hidden first argument ``--run-nilearn``:
  ``nilearn.regions.Parcellations(method='ward', n_parcels=K, mask=MASK,
  standardize='zscore_sample')``, ``fit`` on the list of the N BOLD files,
  ``labels_img_`` saved. MASK is the intersection of the N subjects' brain
  masks, written as a NIfTI before the run. Everything else is nilearn's
  default (0.14): ``smoothing_fwhm=4.0`` (it smooths), ``detrend=False``, no
  filtering, ``random_state=0``, ``n_jobs=1``, no cache
  (``memory=None``); and, fixed by ``Parcellations``, each subject reduced
  by PCA to 200 components, the stack of those reduced again to 200 by a
  randomized SVD (``_MultiPCA``, ``do_cca=True``), Ward
  (scikit-learn's ``AgglomerativeClustering`` with the grid connectivity of
  MASK) on the 200 loadings of each voxel.

Measured, per run (helpers as in bench_pipeline.py):

* wall time: ``time.perf_counter`` around the subprocess (a tiny wrapper
  interpreter, a few tens of ms, is included);
* peak tree RSS: every ~20 ms, psutil's sum of the RSS of the command and
  all its descendants (worker processes, listed anew every 100 ms), the
  maximum kept; pages shared between processes count once per process, so
  this bounds from above the memory the job needed;
* peak process RSS: ``ru_maxrss`` of the largest process, read by a fresh
  wrapper process (``RUSAGE_CHILDREN``), as in bench_pipeline.py;
* group-step peak: for ``ours``, from a second run of the same command
  (after the timed one, in a fresh folder; its wall time is not used: with
  the monitor on, Nipype's bookkeeping doubles the wall time of this job),
  with Nipype's resource monitor enabled for that subprocess only:
  ``NIPYPE_CONFIG_DIR`` points to a fresh folder whose
  ``nipype.cfg`` sets ``[monitoring] enabled = true`` and ``[execution]
  resource_monitor_frequency = 0.2`` (Nipype 1.11 reads the sampling period
  from that key; ``[monitoring] sample_frequency`` is never read, and a
  period under 0.2 s makes every node raise, which hangs MultiProc). Each
  node's ``runtime.mem_peak_gb`` (the RSS of the process running it, plus
  its children, the largest sample) and ``runtime.duration`` are read from
  the ``result_*.pklz`` files of the nodes of the ``group_*_wf`` workflow
  in WORK after the run; the group step is the nodes ``group_series`` and
  ``ward_tree`` (and their ``_half1``/``_half2`` copies of the split
  halves): its peak is the max over them, its time the sum of the durations
  of ``group_series`` and ``ward_tree``. Under MultiProc (P > 1) a node
  runs in a worker process reused between nodes, so its peak includes the
  worker's interpreter and imports (~0.2 GB), and RSS counts the
  file-backed pages of memory-mapped files the node has read and still maps
  (reclaimable by the kernel, but counted by RSS and by cgroup limits:
  ``ps`` and schedulers see them); with ``--nprocs 1``
  (Linear) it is the RSS of the main process. (The nodes run without
  submitting, Nipype's Merge and the sinks, run in the main process, whose
  monitor also counts the workers, its children: they are not used.) The
  largest peak of the per-subject ``reduce_sub_*`` nodes is printed with
  each run. For ``nilearn`` the group step is the whole fit: its peak
  process RSS and its wall time (measured inside, around ``fit``).
* held-out R2: for each held-out subject, its BOLD in a common voxel set
  (the group mask of the N fitted subjects, inside every held-out mask,
  labelled by every contender that ran at this N), each voxel z-scored in
  time (ddof=1), X; X_hat replaces each voxel's series by the mean series of
  its parcel over that voxel set; R2 = 1 - ||X - X_hat||^2 / ||X||^2, with
  NumPy alone (an independent reference: not nipype_ward.core.metrics). The mean
  over held-out subjects is printed, with the number of parcels of each
  atlas (nonzero labels of the whole image) and in the voxel set.

Each run writes into a fresh run folder (OUT, WORK, logs) in a temporary
folder, deleted after the run except the atlas; nothing in the repository
is written. With ``--repeat R`` the contenders run R times at each N in
rotating order and medians are printed; R2 is that of the first run's
atlas (both methods are deterministic; the bench says if a later atlas
differs). At the end: per N, the ratios nilearn / ours of the wall time,
the peak tree RSS and the group-step peak, and how the group-step peaks
grow from N = 16 (or the smallest N) to the largest; then issue #27's
targets, each "met" or "NOT met": the command >= 4x nilearn's wall time at
every N, ours' group-step peak at the largest N within 1.2x of N = 16's,
and ours' wall time at most linear in N.
"""
from __future__ import annotations

import argparse
import concurrent.futures
import itertools
import json
import os
import pickle
import re
import shlex
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

# The measurement helpers of bench_pipeline.py (this folder is on sys.path when run).
from bench_pipeline import describe_machine, run_once, schedule

REPO = Path(__file__).resolve().parent.parent
SPACE = "MNI152NLin2009cAsym"
TASK = "rest"
RESOLUTION = 3  # mm
T_R = 2.0  # simulate_rest_fmri's default
CONTENDERS = ("ours", "nilearn")
#: Nipype's resource monitor: its sampling period (s); Nipype refuses < 0.2.
MONITOR_PERIOD_S = 0.2
NIPYPE_CFG = f"""\
[monitoring]
enabled = true

[execution]
resource_monitor_frequency = {MONITOR_PERIOD_S}
"""
#: The nodes of our group step, inside the workflow named group_*_wf.
GROUP_STEP = re.compile(r"^(group_series|ward_tree)(_half\d+)?$")
#: Growth of a group-step peak from N = 16 (or the smallest N) to the largest still called flat.
FLAT_TOLERANCE = 1.2
#: Issue #27's target: the group command this many times faster than nilearn, end to end.
SPEEDUP_TARGET = 4.0



# --------------------------------------------------------------------------
# The dataset
# --------------------------------------------------------------------------
def label(index: int) -> str:
    return f"{index:02d}"


def run_prefix(subject: str) -> str:
    return f"sub-{subject}/func/sub-{subject}_task-{TASK}"


def bold_path(root: Path, subject: str) -> Path:
    return root / f"{run_prefix(subject)}_space-{SPACE}_desc-preproc_bold.nii.gz"


def mask_path(root: Path, subject: str) -> Path:
    return root / f"{run_prefix(subject)}_space-{SPACE}_desc-brain_mask.nii.gz"


def write_subject(root: str, subject: str, seed: int, n_volumes: int) -> float:
    """Simulate one subject and move its complete folder into the dataset; seconds taken.

    Written first under ``root/.partial-sub-XX`` (not a BIDS name, so pybids
    never sees a half-written subject), then renamed to ``root/sub-XX``.
    """
    import nibabel as nib
    import pandas as pd

    from nipype_ward.datasets import fmriprep_confounds, simulate_rest_fmri

    start = time.perf_counter()
    root = Path(root)
    partial = root / f".partial-sub-{subject}"
    shutil.rmtree(partial, ignore_errors=True)
    sim = simulate_rest_fmri(resolution=RESOLUTION, n_volumes=n_volumes, t_r=T_R,
                             random_state=seed)
    bold = bold_path(partial, subject)
    bold.parent.mkdir(parents=True)
    nib.save(sim.bold_img, bold)
    nib.save(sim.brain_mask_img, mask_path(partial, subject))
    bold.with_name(bold.name.replace(".nii.gz", ".json")).write_text(json.dumps(
        {"RepetitionTime": sim.t_r, "TaskName": TASK, "SkullStripped": False}, indent=2))
    confounds = partial / f"{run_prefix(subject)}_desc-confounds_timeseries.tsv"
    columns, metadata = fmriprep_confounds(n_volumes, np.random.default_rng(seed))
    pd.DataFrame(columns).to_csv(confounds, sep="\t", index=False, na_rep="n/a")
    confounds.with_suffix(".json").write_text(json.dumps(metadata))
    os.replace(partial / f"sub-{subject}", root / f"sub-{subject}")
    partial.rmdir()
    return time.perf_counter() - start


def build_dataset(data_dir: Path, n_subjects: int, n_volumes: int, n_workers: int) -> tuple:
    """The dataset folder with subjects 01..n_subjects (missing ones simulated now)."""
    # No "_key-value" in the name: pybids reads entities in the whole path, and
    # a folder named "..._res-3mm_..." gives every file res-3mm.
    root = data_dir / f"fmriprep_{RESOLUTION}mm_{n_volumes}vols"
    root.mkdir(parents=True, exist_ok=True)
    description = root / "dataset_description.json"
    if not description.is_file():
        description.write_text(json.dumps({
            "Name": "fMRIPrep - fMRI PREProcessing workflow (simulated, nipype-ward bench)",
            "BIDSVersion": "1.9.0",
            "DatasetType": "derivative",
            "GeneratedBy": [{"Name": "fMRIPrep", "Version": "25.1.4"}],
        }, indent=2))
    missing = [i for i in range(1, n_subjects + 1) if not bold_path(root, label(i)).parent.is_dir()]
    start = time.perf_counter()
    if missing:
        print(f"simulating {len(missing)} subject(s) into {root} "
              f"({min(n_workers, len(missing))} processes)...", flush=True)
        with concurrent.futures.ProcessPoolExecutor(max_workers=max(1, n_workers)) as pool:
            jobs = [pool.submit(write_subject, str(root), label(i), i, n_volumes) for i in missing]
            for job in jobs:
                job.result()
    how = (f"{len(missing)} simulated now ({time.perf_counter() - start:.1f} s)" if missing
           else "all cached")
    return root, f"{n_subjects} subjects, {how}"


def load_mask(path: Path):
    import nibabel as nib

    img = nib.load(path)
    return np.asanyarray(img.dataobj) > 0, img.affine


def write_group_mask(root: Path, subjects: list[str], out: Path) -> Path:
    """The intersection of the subjects' brain masks, as a uint8 NIfTI."""
    import nibabel as nib

    mask, affine = load_mask(mask_path(root, subjects[0]))
    for subject in subjects[1:]:
        other, other_affine = load_mask(mask_path(root, subject))
        if other.shape != mask.shape or not np.allclose(other_affine, affine):
            raise ValueError(f"sub-{subject}'s mask is not on sub-{subjects[0]}'s grid")
        mask &= other
    nib.save(nib.Nifti1Image(mask.astype(np.uint8), affine), out)
    return out


# --------------------------------------------------------------------------
# Running and measuring (as bench_pipeline.py)
# --------------------------------------------------------------------------
def ours_executable() -> str:
    script = Path(sys.executable).parent / "nipype-ward"
    found = str(script) if script.is_file() else shutil.which("nipype-ward")
    if found is None:
        raise SystemExit("bench_group: no nipype-ward command (pip install -e '.[bench]')")
    return found


def command(which: str, root: Path, run_dir: Path, subjects: list[str], args,
            ours_args: list[str]) -> list[str]:
    """The command line of one contender, writing into ``run_dir``."""
    if which == "ours":
        return [ours_executable(), str(root), str(run_dir / "out"), "group",
                "--participant-label", *subjects, "--n-clusters", str(args.n_clusters),
                "-w", str(run_dir / "work"), "--nprocs", str(args.nprocs),
                "--confounds-strategy", "none", *ours_args]
    return [sys.executable, str(Path(__file__).resolve()), "--run-nilearn",
            str(run_dir / "out"), str(run_dir / "group_mask.nii.gz"), str(args.n_clusters),
            *(str(bold_path(root, s)) for s in subjects)]


def monitored_env(run_dir: Path) -> dict:
    """The environment of ours: Nipype's resource monitor on, through NIPYPE_CONFIG_DIR."""
    config_dir = run_dir / "nipype_config"
    config_dir.mkdir()
    (config_dir / "nipype.cfg").write_text(NIPYPE_CFG)
    return {**os.environ, "NIPYPE_CONFIG_DIR": str(config_dir)}


def group_nodes(work: Path) -> dict:
    """``{node: (mem_peak_gb or None, duration s)}`` of the nodes of the group_*_wf workflows."""
    from nipype.pipeline.engine.utils import load_resultfile

    nodes = {}
    for result_file in sorted(work.rglob("result_*.pklz")):
        parts = result_file.relative_to(work).parts[:-1]
        if not any(p.startswith("group_") and p.endswith("_wf") for p in parts):
            continue
        if "mapflow" in parts:  # the map node's own result file lists them all
            continue
        try:
            runtime = load_resultfile(result_file, resolve=False).runtime
        except (OSError, EOFError, pickle.UnpicklingError, AttributeError):
            continue
        runtimes = runtime if isinstance(runtime, list) else [runtime]
        peaks = [getattr(r, "mem_peak_gb", None) for r in runtimes]
        peaks = [p for p in peaks if p is not None]
        nodes[parts[-1]] = (max(peaks) if peaks else None,
                            sum(float(getattr(r, "duration", 0) or 0) for r in runtimes))
    return nodes


def ours_group_step(run_dir: Path, n_clusters: int) -> dict:
    """The atlas and the group step's peak and time, from WORK's result files."""
    atlases = sorted((run_dir / "out" / "atlases").glob(
        f"tpl-*/*atlas-ward{n_clusters}*_dseg.nii.gz"))
    if len(atlases) != 1:
        raise RuntimeError(f"expected one atlas-ward{n_clusters} dseg in "
                           f"{run_dir / 'out' / 'atlases'}, found {len(atlases)}: {atlases}")
    nodes = group_nodes(run_dir / "work")
    step = {name: value for name, value in nodes.items() if GROUP_STEP.match(name)}
    missing = {"group_series", "ward_tree"} - set(step)
    if missing:
        raise RuntimeError(f"no result file of the node(s) {sorted(missing)} in a group_*_wf "
                           f"workflow of {run_dir / 'work'} (nodes found: {sorted(nodes)})")
    peaks = [peak for peak, _ in step.values() if peak is not None]
    reduce_peaks = [peak for name, (peak, _) in nodes.items()
                    if name.startswith("reduce_sub_") and peak is not None]
    return {"atlas": atlases[0],
            "step_mb": max(peaks) * 1024 if peaks else float("nan"),
            "step_s": step["group_series"][1] + step["ward_tree"][1],
            "reduce_mb": max(reduce_peaks) * 1024 if reduce_peaks else float("nan"),
            "monitored": bool(peaks)}


def run_contender(which: str, root: Path, run_dir: Path, subjects: list[str], args,
                  ours_args: list[str], keep: Path) -> dict:
    """One run: measured, its group step read, its atlas kept as ``keep``; run_dir deleted.

    Ours runs twice: timed, then with Nipype's resource monitor for its group
    step (the monitor slows Nipype down; that run's wall time is not used).
    """
    run_dir.mkdir()
    if which == "nilearn":
        write_group_mask(root, subjects, run_dir / "group_mask.nii.gz")
    result = run_once(command(which, root, run_dir, subjects, args, ours_args), run_dir,
                      cwd=run_dir)
    if result["rc"] == 0:
        if which == "ours":
            result.update(ours_group_step(run_dir, args.n_clusters))
            monitored_dir = run_dir.with_name(run_dir.name + "-monitored")
            monitored_dir.mkdir()
            monitored = run_once(command(which, root, monitored_dir, subjects, args, ours_args),
                                 monitored_dir, cwd=monitored_dir,
                                 env=monitored_env(monitored_dir))
            if monitored["rc"] != 0:
                shutil.rmtree(monitored_dir)
                return monitored
            step = ours_group_step(monitored_dir, args.n_clusters)
            if not _same_labels(step["atlas"], result["atlas"]):
                raise RuntimeError("the monitored run's atlas differs from the timed run's")
            result.update({key: step[key] for key in ("step_mb", "step_s", "reduce_mb",
                                                      "monitored")})
            shutil.rmtree(monitored_dir)
        else:
            timing = json.loads((run_dir / "out" / "timing.json").read_text())
            result.update(atlas=run_dir / "out" / "labels.nii.gz", step_mb=result["proc_mb"],
                          step_s=timing["fit_s"])
        shutil.copyfile(result["atlas"], keep)
        result["atlas"] = keep
    shutil.rmtree(run_dir)
    return result


# --------------------------------------------------------------------------
# nilearn, in its own process (python bench/bench_group.py --run-nilearn ...)
# --------------------------------------------------------------------------
def run_nilearn(argv) -> int:
    """``--run-nilearn OUT MASK K BOLD...``: Parcellations(method='ward') fitted on the BOLDs."""
    parser = argparse.ArgumentParser(prog="bench_group.py --run-nilearn")
    parser.add_argument("out", type=Path)
    parser.add_argument("mask", type=Path)
    parser.add_argument("n_clusters", type=int)
    parser.add_argument("bold", type=Path, nargs="+")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)

    from nilearn.regions import Parcellations

    start = time.perf_counter()
    parcellation = Parcellations(method="ward", n_parcels=args.n_clusters, mask=str(args.mask),
                                 standardize="zscore_sample")
    parcellation.fit([str(path) for path in args.bold])
    fit_s = time.perf_counter() - start
    parcellation.labels_img_.to_filename(args.out / "labels.nii.gz")
    (args.out / "timing.json").write_text(json.dumps({"fit_s": fit_s}))
    print(f"Parcellations(method='ward', n_parcels={args.n_clusters}) on {len(args.bold)} "
          f"images: {fit_s:.2f}s")
    return 0


# --------------------------------------------------------------------------
# Held-out R2, NumPy only
# --------------------------------------------------------------------------
def parcel_mean_r2(X: np.ndarray, labels: np.ndarray) -> float:
    """1 - ||X - X_hat||^2 / ||X||^2, X_hat each row replaced by its label's mean row."""
    _, inverse = np.unique(labels, return_inverse=True)
    order = np.argsort(inverse, kind="stable")
    sorted_inverse = inverse[order]
    starts = np.flatnonzero(np.r_[True, sorted_inverse[1:] != sorted_inverse[:-1]])
    sums = np.add.reduceat(X[order], starts, axis=0)
    counts = np.diff(np.r_[starts, len(labels)])
    means = sums / counts[:, None]
    residual = X - means[inverse]
    return 1.0 - float(np.sum(residual ** 2)) / float(np.sum(X ** 2))


def zscored_series(path: Path, voxels: np.ndarray) -> np.ndarray:
    """(n_voxels, n_volumes) float64: the series in ``voxels``, each z-scored in time (ddof=1)."""
    import nibabel as nib

    img = nib.load(path)
    X = np.asanyarray(img.dataobj)[voxels].astype(np.float64)
    X -= X.mean(axis=1, keepdims=True)
    std = X.std(axis=1, ddof=1, keepdims=True)
    std[std == 0] = 1.0  # a constant voxel stays 0: it adds nothing to either norm
    X /= std
    return X


def held_out_r2(root: Path, fitted: list[str], held_out: list[str], atlases: dict) -> dict:
    """Mean held-out R2 and parcel counts of each atlas, on one common voxel set."""
    import nibabel as nib

    voxels, affine = load_mask(mask_path(root, fitted[0]))
    for subject in fitted[1:] + held_out:
        voxels &= load_mask(mask_path(root, subject))[0]
    labels = {}
    for which, path in atlases.items():
        img = nib.load(path)
        data = np.asanyarray(img.dataobj)
        if data.shape != voxels.shape or not np.allclose(img.affine, affine):
            raise ValueError(f"{which}'s atlas {path} is not on the BOLD grid")
        labels[which] = np.rint(data).astype(np.int64)
        voxels &= labels[which] > 0
    out = {which: {"parcels": int(np.count_nonzero(np.unique(lab))),
                   "parcels_in_set": int(np.unique(lab[voxels]).size), "r2": []}
           for which, lab in labels.items()}
    for subject in held_out:
        X = zscored_series(bold_path(root, subject), voxels)
        for which, lab in labels.items():
            out[which]["r2"].append(parcel_mean_r2(X, lab[voxels]))
    for which in out:
        out[which]["r2_all"] = out[which]["r2"]
        out[which]["r2"] = float(np.mean(out[which]["r2"]))
    return {"n_voxels": int(voxels.sum()), "methods": out}


# --------------------------------------------------------------------------
# Report
# --------------------------------------------------------------------------
def describe(root: Path, source: str, args) -> None:
    import nibabel as nib  # the header only: the data are not read

    bold = bold_path(root, label(1))
    img = nib.load(bold)
    print(f"dataset   : {root}  [{source}]")
    print(f"subject   : simulate_rest_fmri(resolution={RESOLUTION}, n_volumes={args.volumes}, "
          f"random_state=XX)  shape {img.shape}  "
          f"brain voxels {int(load_mask(mask_path(root, label(1)))[0].sum())}  "
          f"file {bold.stat().st_size / 2**20:.1f} MB")
    print(f"fitted N  : {' '.join(map(str, args.subjects))} (sub-01 .. sub-N)   held out: "
          f"sub-{label(max(args.subjects) + 1)} .. sub-{label(max(args.subjects) + args.held_out)}"
          f"   K = {args.n_clusters}")
    describe_machine(f"--nprocs {args.nprocs}")


def medians(runs: list[dict]) -> dict:
    return {key: statistics.median(r[key] for r in runs)
            for key in ("wall", "tree_mb", "proc_mb", "step_mb", "step_s")}


def report(results: dict, quality: dict, args) -> None:
    """The table: one row per N and contender, then the ratios and the growth with N."""
    n_runs = max(len(runs) for by_n in results.values() for runs in by_n.values())
    print(f"\nmedians over {n_runs} run(s) of each contender; group step: ours = the nodes "
          "group_series + ward_tree (Nipype's resource monitor), nilearn = the whole fit")
    header = (f"{'N':>3}  {'contender':10}{'wall s':>9}{'min':>8}{'max':>8}"
              f"{'tree RSS MB':>13}{'process MB':>12}{'group-step MB':>15}{'group-step s':>14}"
              f"{'held-out R2':>13}{'parcels':>9}{'in set':>8}")
    print(header)
    print("-" * len(header))
    med = {}
    for n, by_which in results.items():
        for which, runs in by_which.items():
            m = med.setdefault(n, {})[which] = medians(runs)
            walls = [r["wall"] for r in runs]
            q = quality.get(n, {}).get("methods", {}).get(which)
            r2 = f"{q['r2']:13.4f}" if q else f"{'n/a':>13}"
            parcels = f"{q['parcels']:9d}{q['parcels_in_set']:8d}" if q else f"{'n/a':>9}{'':8}"
            print(f"{n:3d}  {which:10}{m['wall']:9.2f}{min(walls):8.2f}{max(walls):8.2f}"
                  f"{m['tree_mb']:13.1f}{m['proc_mb']:12.1f}{m['step_mb']:15.1f}"
                  f"{m['step_s']:14.2f}{r2}{parcels}")
    print()
    for n, q in quality.items():
        per_subject = "; ".join(f"{which} " + " ".join(f"{v:.4f}" for v in m["r2_all"])
                                for which, m in q["methods"].items())
        print(f"N={n:<3} held-out R2 on {q['n_voxels']} voxels, per subject: {per_subject}")
    targets = []
    if all(set(by_which) == set(CONTENDERS) for by_which in med.values()):
        print()
        for n, m in med.items():
            ours, ref = m["ours"], m["nilearn"]
            speedup = ref["wall"] / ours["wall"]
            print(f"N={n:<3} nilearn / ours:  wall time {speedup:6.2f}x   "
                  f"tree RSS {ref['tree_mb'] / ours['tree_mb']:6.2f}x   "
                  f"group-step peak {ref['step_mb'] / ours['step_mb']:6.2f}x   "
                  f"group-step time {ref['step_s'] / ours['step_s']:6.2f}x")
            targets.append((f"N={n}: the group command >= {SPEEDUP_TARGET:g}x nilearn end to "
                            f"end ({speedup:.2f}x)", speedup >= SPEEDUP_TARGET))
    ns = sorted(med)
    if len(ns) > 1:
        print()
        # Memory and time from N = 16 on (the range), else from the smallest N.
        start = 16 if 16 in ns and ns[-1] > 16 else ns[0]
        for which in CONTENDERS:
            if not all(which in med[n] for n in ns):
                continue
            first, last = med[start][which]["step_mb"], med[ns[-1]][which]["step_mb"]
            growth = last / first
            steps = " -> ".join(f"{med[n][which]['step_mb']:.0f}" for n in ns)
            print(f"{which:8} group-step peak MB, N = {' -> '.join(map(str, ns))}: {steps}  "
                  f"(N={start} -> {ns[-1]}: {growth:.2f}x)")
            if which == "ours":
                targets.append((f"ours' group-step peak at N={ns[-1]} within "
                                f"{FLAT_TOLERANCE:g}x of N={start} ({growth:.2f}x)",
                                growth <= FLAT_TOLERANCE))
                wall = med[ns[-1]][which]["wall"] / med[start][which]["wall"]
                targets.append((f"ours' wall time at most linear in N, N={start} -> {ns[-1]} "
                                f"({wall:.2f}x for {ns[-1] / start:.2f}x the subjects)",
                                wall <= ns[-1] / start))
    if targets:
        print()
        for text, met in targets:
            print(f"target: {text}: {'met' if met else 'NOT met'}")


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["--run-nilearn"]:
        return run_nilearn(argv[1:])
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--subjects", type=int, nargs="+", default=[4, 8, 16],
                        help="numbers of subjects to fit (default: 4 8 16)")
    parser.add_argument("--held-out", type=int, default=4,
                        help="subjects never fitted, for the R2 (default: 4)")
    parser.add_argument("--n-clusters", type=int, default=1000, help="K (default: 1000)")
    parser.add_argument("--volumes", type=int, default=176,
                        help="volumes of each simulated run (default: 176)")
    parser.add_argument("--repeat", type=int, default=1, help="runs of each contender at each N")
    parser.add_argument("--only", default=",".join(CONTENDERS),
                        help="comma-separated contenders (default: ours,nilearn)")
    parser.add_argument("--ours-args", default="",
                        help='extra arguments of our command, e.g. "--group-reduction exact" '
                        '(a single option: --ours-args=--no-split-half)')
    parser.add_argument("--nprocs", type=int, default=2,
                        help="--nprocs of our command, and processes simulating the data "
                        "(default: 2)")
    parser.add_argument("--data-dir", type=Path,
                        help="where the dataset is built and kept (default: a temporary "
                        "folder, deleted at the end)")
    args = parser.parse_args(argv)
    contenders = [c.strip() for c in args.only.split(",") if c.strip()]
    unknown = sorted(set(contenders) - set(CONTENDERS))
    if unknown or not contenders:
        parser.error(f"--only takes some of {','.join(CONTENDERS)}, got {args.only!r}")
    contenders = [c for c in CONTENDERS if c in contenders]
    if min(args.subjects) < 2 or args.held_out < 1:
        parser.error("--subjects must be at least 2 (split halves), --held-out at least 1")
    if min(args.repeat, args.volumes, args.n_clusters, args.nprocs) < 1:
        parser.error("--repeat, --volumes, --n-clusters and --nprocs must be positive")
    args.subjects = sorted(set(args.subjects))
    ours_args = shlex.split(args.ours_args)
    if "ours" in contenders:
        ours_executable()

    with tempfile.TemporaryDirectory(prefix="bench_group_") as tmp:
        tmp = Path(tmp)
        data_dir = args.data_dir.resolve() if args.data_dir else tmp / "data"
        n_total = max(args.subjects) + args.held_out
        root, source = build_dataset(data_dir, n_total, args.volumes, args.nprocs)
        describe(root, source, args)
        print(f"runs      : {' '.join(contenders)}  x{args.repeat} per N  "
              f"(ours extra args: {ours_args or 'none'})", flush=True)
        held_out = [label(i) for i in range(max(args.subjects) + 1, n_total + 1)]

        results: dict[int, dict[str, list[dict]]] = {}
        quality: dict[int, dict] = {}
        count = itertools.count()
        for n in args.subjects:
            subjects = [label(i) for i in range(1, n + 1)]
            results[n] = {c: [] for c in contenders}
            for i, which in enumerate(schedule(contenders, args.repeat)):
                keep = tmp / f"N{n:02d}-{i:02d}-{which}_atlas.nii.gz"
                run_dir = tmp / f"{next(count):03d}-N{n:02d}-{which}"
                result = run_contender(which, root, run_dir, subjects, args, ours_args, keep)
                if result["rc"] != 0:
                    print(f"\n{which} failed at N={n} (exit {result['rc']}); its stderr:\n"
                          f"{result['stderr']}", file=sys.stderr)
                    return 1
                extra = ""
                if which == "ours":
                    extra = (f"  reduce_sub_* max {result['reduce_mb']:.0f} MB"
                             if result["reduce_mb"] == result["reduce_mb"] else "")
                    if not result["monitored"]:
                        extra += "  (the resource monitor recorded nothing!)"
                print(f"  N={n:<3} {which:8} {result['wall']:8.2f} s  "
                      f"tree {result['tree_mb']:8.1f} MB  process {result['proc_mb']:8.1f} MB  "
                      f"group step {result['step_mb']:8.1f} MB {result['step_s']:7.2f} s"
                      f"{extra}  (sampler CPU {result['sampler_cpu']:.1f} s)", flush=True)
                runs = results[n][which]
                if runs and not _same_labels(runs[0]["atlas"], result["atlas"]):
                    print(f"  note: {which}'s atlas at N={n} differs from its first run's",
                          flush=True)
                runs.append(result)
            quality[n] = held_out_r2(root, subjects, held_out,
                                     {which: results[n][which][0]["atlas"] for which in contenders})
        report(results, quality, args)
    return 0


def _same_labels(a: Path, b: Path) -> bool:
    import nibabel as nib

    return np.array_equal(np.asanyarray(nib.load(a).dataobj), np.asanyarray(nib.load(b).dataobj))


if __name__ == "__main__":
    sys.exit(main())
