#!/usr/bin/env python
"""Benchmark our exact Ward tree against scikit-learn's, on a brain-sized grid.

Usage::

    python bench/bench_ward.py [--grid 3mm|2mm] [--volumes N] [--repeat R] [--threads N]
                               [--dtype float32|float64] [--smooth-fwhm MM]

Data: the MNI152 brain mask bundled with nilearn (``load_mni152_brain_mask``,
no download) at 3 or 2 mm, its 6-neighbour grid graph
(``sklearn.feature_extraction.image.grid_to_graph``), and X the masked voxels
of the simulated rest-fMRI run of ``nipype_ward.datasets.simulate_rest_fmri``
(``random_state=0``), of shape (n_voxels, n_volumes): float32 as simulated,
or widened exactly to float64 with ``--dtype float64``; with
``--smooth-fwhm MM`` the run is first smoothed in space by nilearn's
``smooth_img`` (a Gaussian of that FWHM, as users smooth before
parcellating: merges then come in long runs of near-equal costs). A first
subprocess writes X and the graph to a temporary directory (deleted at the
end); each implementation then runs in its own subprocess on those same
arrays, so that its peak resident memory (``ru_maxrss``) is its own (the
parent stays small: on Linux a child's ``ru_maxrss`` starts at its parent's
peak). The baseline printed is that peak right after the child's imports and
data loading: ``peak - baseline`` is what the algorithm itself added.

The machine and the versions are printed, and issue #27's target for the
kernel: ours >= 30x faster than scikit-learn's ``ward_tree`` ("met" or "NOT
met"), with identical merges.

Nothing in the repository is written.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

# The machine's description, as every bench prints it (this folder is on sys.path when run).
from bench_pipeline import describe_machine

from nipype_ward.io.nifti import usable_cpus

GRIDS = {"3mm": 3, "2mm": 2}
#: Issue #27's target: ours this many times faster than scikit-learn's ward_tree.
SPEEDUP_TARGET = 30.0


# --------------------------------------------------------------------------
# Child: one implementation, timed, in a fresh process


def _max_rss_mb() -> float:
    import resource

    # Linux reports kilobytes, macOS bytes.
    scale = 1 if sys.platform == "darwin" else 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale / 2**20


def _child(which: str, data_dir: Path, repeat: int, threads: int = 1) -> None:
    from scipy import sparse

    if which == "sklearn":
        from sklearn.cluster import ward_tree

        def run(X, connectivity):
            children, _, _, _, distances = ward_tree(
                X, connectivity=connectivity, return_distance=True
            )
            return children, distances
    else:
        from nipype_ward.core.ward import ward_tree

        def run(X, connectivity):
            return ward_tree(X, connectivity, threads=threads)

    X = np.load(data_dir / "X.npy")
    connectivity = sparse.load_npz(data_dir / "connectivity.npz")
    baseline = _max_rss_mb()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        children, distances = run(X, connectivity)
        times.append(time.perf_counter() - start)
    np.save(data_dir / f"{which}_children.npy", np.asarray(children))
    np.save(data_dir / f"{which}_distances.npy", np.asarray(distances))
    print(json.dumps({"times": times, "baseline_mb": baseline, "peak_mb": _max_rss_mb()}))


def _run_child(which: str, data_dir: Path, repeat: int, threads: int) -> dict:
    # stdout carries the result; stderr (errors, warnings) goes to the terminal.
    out = subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), "--child", which,
         "--data", str(data_dir), "--repeat", str(repeat), "--threads", str(threads)],
        check=True, stdout=subprocess.PIPE, text=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


# --------------------------------------------------------------------------
# Data (in the "prepare" child), then the parent: children and report


def _load_data(resolution: int, n_volumes: int, dtype: str, smooth_fwhm: float | None = None):
    """Brain mask, its grid graph and the masked simulated run."""
    from nilearn.datasets import load_mni152_brain_mask
    from sklearn.feature_extraction.image import grid_to_graph

    mask = np.asarray(load_mni152_brain_mask(resolution=resolution).dataobj) > 0
    connectivity = grid_to_graph(*mask.shape, mask=mask).tocsr()
    try:
        from nipype_ward.datasets import simulate_rest_fmri
    except ImportError:
        # Only if the simulation module is missing: a spatially smooth random
        # signal, so that the merge order is not that of white noise.
        from scipy import ndimage

        source = "FALLBACK smooth random signal (nipype_ward.datasets missing)"
        rng = np.random.default_rng(0)
        X = np.empty((int(mask.sum()), n_volumes), dtype=dtype)
        for t in range(n_volumes):
            X[:, t] = ndimage.gaussian_filter(rng.standard_normal(mask.shape), 1.5)[mask]
    else:
        source = f"simulate_rest_fmri(resolution={resolution}, n_volumes={n_volumes}, random_state=0)"
        sim = simulate_rest_fmri(resolution=resolution, n_volumes=n_volumes, random_state=0)
        bold_img = sim.bold_img
        if smooth_fwhm:
            from nilearn.image import smooth_img

            bold_img = smooth_img(bold_img, smooth_fwhm)
            source += f", smoothed by nilearn's smooth_img (FWHM {smooth_fwhm:g} mm)"
        bold = np.asarray(bold_img.dataobj)
        if bold.shape[:3] != mask.shape:
            raise RuntimeError(f"simulated grid {bold.shape[:3]} is not the mask's {mask.shape}")
        X = np.ascontiguousarray(bold[mask], dtype=dtype)
        del sim, bold, bold_img
    return X, connectivity, source


def _prepare(resolution: int, n_volumes: int, dtype: str, data_dir: Path,
             smooth_fwhm: float | None = None) -> None:
    """Child: write X, the graph and a description of them to ``data_dir``."""
    from scipy import sparse

    start = time.perf_counter()
    X, connectivity, source = _load_data(resolution, n_volumes, dtype, smooth_fwhm)
    np.save(data_dir / "X.npy", X)
    sparse.save_npz(data_dir / "connectivity.npz", connectivity, compressed=False)
    n_edges = (connectivity.nnz - int(np.count_nonzero(connectivity.diagonal()))) // 2
    meta = {"source": source, "n_voxels": X.shape[0], "n_volumes": X.shape[1],
            "dtype": str(X.dtype),
            "n_edges": n_edges, "seconds": time.perf_counter() - start}
    (data_dir / "meta.json").write_text(json.dumps(meta))


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--grid", choices=sorted(GRIDS), default="3mm")
    parser.add_argument("--volumes", type=int, default=176)
    parser.add_argument("--dtype", choices=("float32", "float64"), default="float32",
                        help="dtype of X (float64: the float32 series widened, exactly)")
    parser.add_argument("--repeat", type=int, default=1,
                        help="runs of each implementation (the best time is kept)")
    parser.add_argument("--smooth-fwhm", type=float, metavar="MM",
                        help="smooth the simulated run in space first (nilearn's smooth_img)")
    parser.add_argument("--threads", type=int, default=usable_cpus(),
                        help="ours' threads (default: the CPUs this process may use)")
    parser.add_argument("--child", choices=("prepare", "sklearn", "ours"), help=argparse.SUPPRESS)
    parser.add_argument("--data", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.repeat < 1 or args.volumes < 1:
        parser.error("--repeat and --volumes must be positive")
    if args.child == "prepare":
        _prepare(GRIDS[args.grid], args.volumes, args.dtype, args.data, args.smooth_fwhm)
        return
    if args.child:
        _child(args.child, args.data, args.repeat, args.threads)
        return

    # Everything heavy happens in children: on Linux a child's ru_maxrss
    # starts at its parent's peak, so this process must stay small.
    with tempfile.TemporaryDirectory(prefix="bench_ward_") as tmp:
        data_dir = Path(tmp)
        subprocess.run(
            [sys.executable, str(Path(__file__).resolve()), "--child", "prepare",
             "--grid", args.grid, "--volumes", str(args.volumes), "--dtype", args.dtype,
             "--data", str(data_dir)]
            + (["--smooth-fwhm", str(args.smooth_fwhm)] if args.smooth_fwhm else []),
            check=True,
        )
        describe_machine()
        meta = json.loads((data_dir / "meta.json").read_text())
        print(f"data      : {meta['source']}  ({meta['seconds']:.1f} s)")
        print(f"sizes     : n_voxels={meta['n_voxels']}  n_volumes={meta['n_volumes']}  "
              f"n_edges={meta['n_edges']}  dtype={meta['dtype']}  (MNI152 {args.grid} brain mask, 6-neighbour grid)")
        print(f"repeat    : {args.repeat} (best time kept)")
        print(f"threads   : ours {args.threads} (its first pass, the inertias of all touching "
              "pairs; the merges are sequential), scikit-learn's tree one", flush=True)

        results = {which: _run_child(which, data_dir, args.repeat, args.threads)
                   for which in ("sklearn", "ours")}
        ref_children = np.load(data_dir / "sklearn_children.npy")
        ref_distances = np.load(data_dir / "sklearn_distances.npy")
        children = np.load(data_dir / "ours_children.npy")
        distances = np.load(data_dir / "ours_distances.npy")

    print()
    print(f"{'':12}{'time (s)':>10}{'peak RSS (MB)':>15}{'baseline (MB)':>15}{'increment (MB)':>16}")
    for which, label in (("sklearn", "sklearn"), ("ours", "nipype_ward")):
        r = results[which]
        print(f"{label:12}{min(r['times']):10.3f}{r['peak_mb']:15.1f}{r['baseline_mb']:15.1f}"
              f"{r['peak_mb'] - r['baseline_mb']:16.1f}")
    sk, us = results["sklearn"], results["ours"]
    print()
    print(f"speed ratio (sklearn / ours)            : {min(sk['times']) / min(us['times']):.1f}x")
    print(f"memory ratio, peak RSS (ours / sklearn) : {us['peak_mb'] / sk['peak_mb']:.3f}")
    print(f"memory ratio, increment (ours / sklearn): "
          f"{(us['peak_mb'] - us['baseline_mb']) / (sk['peak_mb'] - sk['baseline_mb']):.3f}")
    same = 0.0
    if children.shape == ref_children.shape:
        same = float(np.mean(np.all(children == ref_children, axis=1)))
        max_diff = float(np.max(np.abs(distances - ref_distances), initial=0.0))
        print(f"identical merges                        : {100 * same:.3f} % "
              f"of {len(children)} rows")
        print(f"max |distance difference|               : {max_diff:.3g}")
    else:
        print(f"trees differ in shape: {children.shape} vs {ref_children.shape}")
    speedup = min(sk["times"]) / min(us["times"])
    met = speedup >= SPEEDUP_TARGET and same == 1.0
    print(f"target: ours >= {SPEEDUP_TARGET:g}x scikit-learn with identical merges "
          f"({speedup:.1f}x, {100 * same:.3f} % identical): {'met' if met else 'NOT met'}")


if __name__ == "__main__":
    main()
