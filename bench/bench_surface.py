#!/usr/bin/env python
"""Benchmark Ward on the fsLR 32k cortex: ours against scikit-learn and nilearn.

Usage::

    python bench/bench_surface.py [--volumes 300] [--n-clusters 400 1000]
                                  [--only kernel,app,nilearn] [--nprocs 2]
                                  [--repeat 3] [--ours-args "..."] [--threads N]

Requires psutil and brainspace (the ``bench`` extra) besides nipype-ward.

Data, built before anything is timed in a temporary folder (deleted at the
end; nothing in the repository is written): the fsLR 32k midthickness
meshes and medial-wall masks of brainspace's wheel (conte69, read as files
with nibabel: brainspace is never imported), 58,558 cortical vertices; a
series of V volumes (default 300) simulated on them by
``nipype_ward.datasets.simulate_surface_fmri(n_regions=400, random_state=0)``,
written as fMRIPrep writes it (``sub-01_task-rest_space-fsLR_den-91k_bold
.dtseries.nii``, both cortices without the medial wall, with its JSON and an
fMRIPrep-style confounds table, unused) and, for nilearn, which reads no
CIFTI, as a GIFTI pair of the whole meshes (medial wall 0) with the cortex
mask as a ``SurfaceImage``. The meshes go in a TemplateFlow cache
(``TEMPLATEFLOW_HOME``), where our App finds fsLR.

The contenders, each in its own fresh process:

* ``kernel``: the Ward trees alone on the same arrays, X the z-scored
  (ddof=1) series of the 58,558 vertices (float32) and the same mesh graph
  (``nipype_ward.io.cifti.grayordinate_connectivity``: each cortex's mesh
  adjacency), one tree per hemisphere (each graph connected):
  ``nipype_ward.core.ward.ward_tree`` against ``sklearn.cluster.ward_tree(X,
  connectivity=graph)``; time, peak ``ru_maxrss`` and whether the trees are
  identical, merge for merge;
* ``app``: our BIDS App as users run it, ``nipype-ward DATASET OUT
  participant --space fsLR --n-clusters K1 K2 --confounds-strategy none
  --no-split-half -w WORK --nprocs P`` plus ``--ours-args`` (z-scoring is
  its default), everything included (reading the CIFTI, the graph, the
  tree, the cuts, the compression and metrics, the ``.dlabel.nii``,
  ``.ptseries.nii`` and TSV outputs, the surface figures, the report);
* ``nilearn``: this file with the hidden first argument ``--run-nilearn``:
  per K, ``nilearn.regions.Parcellations(method='ward', n_parcels=K,
  mask=CORTEX, standardize='zscore_sample', memory=CACHE, memory_level=1)``
  ``fit`` then ``transform`` on the GIFTI pair as a ``SurfaceImage`` (what
  nilearn offers on surfaces since 0.11.1: a PCA to 200 components fixed
  by ``Parcellations``, then scikit-learn's Ward with the mesh graph, the
  tree cached between the two K), labels saved.

Measured: wall time around each subprocess; peak tree RSS (psutil, every
20 ms, the command and all its descendants) and peak process RSS
(``ru_maxrss``), both as in bench_pipeline.py; and at each K the R2 of each
parcellation on X (each vertex's series replaced by its parcel's mean
series; R2 = 1 - ||X - X_hat||^2 / ||X||^2, NumPy alone). With ``--repeat
R`` (default 3) every contender runs R times, in alternating order for the
App and nilearn: the kernels' best time and the App's and nilearn's median
wall time are printed (a 2-core machine varies by +-2 s from run to run).
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

# The helpers of bench_pipeline.py and bench_group.py (this folder is on sys.path when run).
from bench_group import ours_executable
from bench_pipeline import run_once

REPO = Path(__file__).resolve().parent.parent
T_R = 2.0
#: Issue #27's target: our trees this many times faster than scikit-learn's ward_tree.
SPEEDUP_TARGET = 20.0
RUN = "sub-01/func/sub-01_task-rest"
CIFTI = f"{RUN}_space-fsLR_den-91k_bold.dtseries.nii"


# --------------------------------------------------------------------------
# The data
# --------------------------------------------------------------------------
def brainspace_fslr():
    """brainspace's fsLR 32k meshes and cortex masks, as files (the package is not imported)."""
    spec = importlib.util.find_spec("brainspace")
    if spec is None:
        raise SystemExit("bench_surface: brainspace is needed for its fsLR meshes "
                         "(pip install -e '.[bench]')")
    folder = Path(spec.submodule_search_locations[0]) / "datasets" / "surfaces"
    meshes = tuple(folder / f"conte69_32k_{side}.gii" for side in ("lh", "rh"))
    cortex = tuple(np.loadtxt(folder / f"conte69_32k_{side}_mask.csv") > 0
                   for side in ("lh", "rh"))
    return meshes, cortex


def _gifti_series(data, path, structure):
    import nibabel as nb

    img = nb.gifti.GiftiImage(darrays=[nb.gifti.GiftiDataArray(
        np.ascontiguousarray(data[:, t]), intent="NIFTI_INTENT_TIME_SERIES",
        datatype="float32") for t in range(data.shape[1])],
        meta=nb.gifti.GiftiMetaData({"AnatomicalStructurePrimary": structure}))
    nb.save(img, path)


def prepare(data_dir: Path, n_volumes: int) -> dict:
    """Write the dataset, the GIFTI pair, the TemplateFlow cache, X and the graph."""
    from nibabel import cifti2
    from scipy import sparse

    import pandas as pd

    from nipype_ward.datasets import fmriprep_confounds, simulate_surface_fmri
    from nipype_ward.io import cifti, gifti

    start = time.perf_counter()
    paths, cortex = brainspace_fslr()
    meshes = [gifti.load_mesh(path) for path in paths]
    sim = simulate_surface_fmri(meshes, cortex=cortex, n_volumes=n_volumes, n_regions=400,
                                t_r=T_R, random_state=0)
    # The fMRIPrep dataset: the CIFTI series, its sidecar and confounds.
    root = data_dir / "fmriprep"
    bold = root / CIFTI
    bold.parent.mkdir(parents=True)
    (root / "dataset_description.json").write_text(json.dumps({
        "Name": "fMRIPrep (simulated, nipype-ward bench)", "BIDSVersion": "1.9.0",
        "DatasetType": "derivative", "GeneratedBy": [{"Name": "fMRIPrep"}]}))
    models = cifti2.BrainModelAxis.from_mask(cortex[0], name="CortexLeft") \
        + cifti2.BrainModelAxis.from_mask(cortex[1], name="CortexRight")
    raw = np.vstack([sim.series[0][cortex[0]], sim.series[1][cortex[1]]])
    cifti.save_dtseries(raw, models, bold, t_r=T_R)
    bold.with_name(bold.name.replace(".dtseries.nii", ".json")).write_text(
        json.dumps({"RepetitionTime": T_R, "TaskName": "rest"}))
    columns, metadata = fmriprep_confounds(n_volumes, np.random.default_rng(0))
    pd.DataFrame(columns).to_csv(root / f"{RUN}_desc-confounds_timeseries.tsv", sep="\t",
                                 index=False, na_rep="n/a")
    (root / f"{RUN}_desc-confounds_timeseries.json").write_text(json.dumps(metadata))
    # nilearn's input: the whole meshes' series (medial wall 0) and the cortex mask.
    for hemi, structure, data in zip("LR", ("CortexLeft", "CortexRight"), sim.series):
        _gifti_series(data, data_dir / f"hemi-{hemi}_bold.func.gii", structure)
    np.save(data_dir / "cortex.npy", np.concatenate(cortex))
    # TemplateFlow's cache, where the App finds the fsLR meshes.
    home = data_dir / "templateflow" / "tpl-fsLR"
    home.mkdir(parents=True)
    for hemi, path in zip("LR", paths):
        shutil.copyfile(path, home / f"tpl-fsLR_hemi-{hemi}_den-32k_midthickness.surf.gii")
    # The kernel's input: the z-scored series and the graph.
    X = raw.astype(np.float64)
    X -= X.mean(axis=1, keepdims=True)
    X /= X.std(axis=1, ddof=1, keepdims=True)
    np.save(data_dir / "X.npy", X.astype(np.float32))
    np.save(data_dir / "n_left.npy", np.int64(cortex[0].sum()))
    graph = cifti.grayordinate_connectivity(models, {
        "CIFTI_STRUCTURE_CORTEX_LEFT": meshes[0].faces,
        "CIFTI_STRUCTURE_CORTEX_RIGHT": meshes[1].faces})
    sparse.save_npz(data_dir / "graph.npz", graph.tocsr(), compressed=False)
    return {"n_vertices": int(X.shape[0]), "n_volumes": int(X.shape[1]),
            "n_edges": int(graph.nnz // 2), "seconds": time.perf_counter() - start,
            "cifti_mb": bold.stat().st_size / 2**20}


# --------------------------------------------------------------------------
# Children
# --------------------------------------------------------------------------
def _max_rss_mb() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * (
        1 if sys.platform == "darwin" else 1024) / 2**20


def kernel_child(which: str, data_dir: Path, threads: int = 1) -> None:
    """One Ward tree on X and the graph, timed; its children saved."""
    from scipy import sparse

    X = np.load(data_dir / "X.npy")
    graph = sparse.load_npz(data_dir / "graph.npz").tocsr()
    n_left = int(np.load(data_dir / "n_left.npy"))
    if which == "sklearn":
        from sklearn.cluster import ward_tree

        def tree(X, graph):
            return ward_tree(X, connectivity=graph)[0]
    else:
        from nipype_ward.core.ward import ward_tree

        def tree(X, graph):
            return ward_tree(X, graph, threads=threads)[0]
    baseline = _max_rss_mb()
    seconds = 0.0
    # One tree per hemisphere: each is one connected piece, where the two
    # implementations must agree merge for merge (on the two hemispheres at
    # once, scikit-learn would first bridge them with an edge of its own).
    # The inputs are sliced before the clock starts: the harness's work, not
    # the tree's (slicing the graph is 4-9 ms a hemisphere).
    for name, part in (("left", slice(0, n_left)), ("right", slice(n_left, None))):
        X_part, graph_part = np.ascontiguousarray(X[part]), graph[part][:, part]
        start = time.perf_counter()
        children = tree(X_part, graph_part)
        seconds += time.perf_counter() - start
        np.save(data_dir / f"{which}_{name}_children.npy", np.asarray(children))
    print(json.dumps({"seconds": seconds, "baseline_mb": baseline, "peak_mb": _max_rss_mb()}))


def run_nilearn(out: Path, data_dir: Path, n_clusters: list[int]) -> None:
    """nilearn's surface Parcellations per K on the GIFTI pair (see the module)."""
    from nilearn.regions import Parcellations
    from nilearn.surface import PolyMesh, SurfaceImage

    out.mkdir(parents=True, exist_ok=True)
    spec = importlib.util.find_spec("brainspace")
    folder = Path(spec.submodule_search_locations[0]) / "datasets" / "surfaces"
    mesh = PolyMesh(left=str(folder / "conte69_32k_lh.gii"),
                    right=str(folder / "conte69_32k_rh.gii"))
    start = time.perf_counter()
    img = SurfaceImage(mesh=mesh, data={"left": str(data_dir / "hemi-L_bold.func.gii"),
                                        "right": str(data_dir / "hemi-R_bold.func.gii")})
    cortex = np.load(data_dir / "cortex.npy")
    n_left = mesh.parts["left"].n_vertices
    mask = SurfaceImage(mesh=mesh, data={"left": cortex[:n_left], "right": cortex[n_left:]})
    print(f"load: {time.perf_counter() - start:.2f}s")
    for k in n_clusters:
        start = time.perf_counter()
        parcellation = Parcellations(method="ward", n_parcels=k, mask=mask,
                                     standardize="zscore_sample",
                                     memory=str(out / "nilearn_cache"), memory_level=1)
        parcellation.fit(img)
        parcellation.transform(img)
        labels = parcellation.labels_img_.data.parts
        np.save(out / f"ward{k}_labels.npy", np.concatenate(
            [np.asarray(labels["left"]).ravel(), np.asarray(labels["right"]).ravel()]))
        print(f"Parcellations(method='ward', n_parcels={k}): {time.perf_counter() - start:.2f}s")


# --------------------------------------------------------------------------
# The parent
# --------------------------------------------------------------------------
def r2(X: np.ndarray, labels: np.ndarray) -> float:
    """1 - ||X - X_hat||^2 / ||X||^2, X_hat each row's parcel mean (NumPy alone)."""
    values, inverse = np.unique(labels, return_inverse=True)
    sums = np.zeros((len(values), X.shape[1]))
    np.add.at(sums, inverse, X)
    means = sums / np.bincount(inverse)[:, None]
    return float(1.0 - ((X - means[inverse]) ** 2).sum() / (X ** 2).sum())


def _run_contender(name, run_dir, data_dir, ks, args, env) -> dict:
    """One run of the App or of nilearn, measured (bench_pipeline's run_once)."""
    import os

    if name == "nilearn":
        cmd = [sys.executable, str(Path(__file__).resolve()), "--run-nilearn",
               str(run_dir / "out"), str(data_dir), *ks]
        result = run_once(cmd, run_dir)
    else:
        cmd = [ours_executable(), str(data_dir / "fmriprep"), str(run_dir / "out"),
               "participant", "--space", "fsLR", "--n-clusters", *ks,
               "--confounds-strategy", "none", "--no-split-half", "-w",
               str(run_dir / "work"), "--nprocs", str(args.nprocs),
               *shlex.split(args.ours_args)]
        result = run_once(cmd, run_dir, env={**os.environ, **env})
    if result["rc"] != 0:
        raise SystemExit(f"{name} failed:\n{result['stderr']}")
    return result


def _labels(name, run_dir, ks, cortex) -> dict:
    """Each K's labels of the cortical vertices, from a run's outputs."""
    import nibabel as nb

    found = {}
    for k in ks:
        if name == "nilearn":
            found[(name, k)] = np.load(run_dir / "out" / f"ward{k}_labels.npy")[cortex]
        else:
            stem = run_dir / "out" / f"{RUN}_space-fsLR_seg-ward_scale-{k}_den-91k"
            found[(name, k)] = np.asanyarray(nb.load(f"{stem}_dseg.dlabel.nii").dataobj)[0]
    return found


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--volumes", type=int, default=300)
    parser.add_argument("--n-clusters", type=int, nargs="+", default=[400, 1000])
    parser.add_argument("--only", default="kernel,app,nilearn")
    parser.add_argument("--nprocs", type=int, default=2)
    parser.add_argument("--ours-args", default="")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None,
                        help="the threads of our kernel (default: the CPUs this process may use)")
    parser.add_argument("--kernel-child", choices=("ours", "sklearn"), help=argparse.SUPPRESS)
    parser.add_argument("--data", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.threads is None:
        from nipype_ward.io.nifti import usable_cpus

        args.threads = usable_cpus()
    if args.kernel_child:
        kernel_child(args.kernel_child, args.data, args.threads)
        return 0
    only = set(args.only.split(","))
    ks = [str(k) for k in args.n_clusters]

    with tempfile.TemporaryDirectory(prefix="bench_surface_") as tmp:
        data_dir = Path(tmp) / "data"
        data_dir.mkdir()
        meta = json.loads(subprocess.run(
            [sys.executable, "-c", "import json, sys; sys.path.insert(0, sys.argv[1]); "
             "import bench_surface as b; from pathlib import Path; "
             "print(json.dumps(b.prepare(Path(sys.argv[2]), int(sys.argv[3]))))",
             str(Path(__file__).parent), str(data_dir), str(args.volumes)],
            check=True, stdout=subprocess.PIPE, text=True).stdout.splitlines()[-1])
        print(f"data    : fsLR 32k cortex (brainspace conte69), {meta['n_vertices']} vertices x "
              f"{meta['n_volumes']} volumes, {meta['n_edges']} mesh edges; CIFTI "
              f"{meta['cifti_mb']:.0f} MB ({meta['seconds']:.1f} s to simulate)")
        X = np.load(data_dir / "X.npy").astype(np.float64)
        cortex = np.load(data_dir / "cortex.npy")
        labels, rows = {}, []

        if "kernel" in only:
            kernel = {}
            for _ in range(args.repeat):
                for which in ("sklearn", "ours"):
                    out = subprocess.run([sys.executable, str(Path(__file__).resolve()),
                                          "--kernel-child", which, "--data", str(data_dir),
                                          "--threads", str(args.threads)],
                                         check=True, stdout=subprocess.PIPE, text=True)
                    result = json.loads(out.stdout.splitlines()[-1])
                    if which not in kernel or result["seconds"] < kernel[which]["seconds"]:
                        kernel[which] = result
            same = all(np.array_equal(np.load(data_dir / f"ours_{name}_children.npy"),
                                      np.load(data_dir / f"sklearn_{name}_children.npy"))
                       for name in ("left", "right"))
            print(f"\nWard trees alone, one per hemisphere (same X, same mesh graph; best "
                  f"of {args.repeat}; ours' first pass on {args.threads} thread(s), the "
                  "merges sequential):")
            print(f"{'':10}{'time (s)':>10}{'peak RSS (MB)':>15}{'increment (MB)':>16}")
            for which in ("sklearn", "ours"):
                r = kernel[which]
                print(f"{which:10}{r['seconds']:10.2f}{r['peak_mb']:15.0f}"
                      f"{r['peak_mb'] - r['baseline_mb']:16.0f}")
            ratio = kernel["sklearn"]["seconds"] / kernel["ours"]["seconds"]
            print(f"speed-up (sklearn / ours): {ratio:.1f}x; identical trees: {same}")
            met = same and ratio >= SPEEDUP_TARGET
            print(f"target: ours >= {SPEEDUP_TARGET:g}x scikit-learn with identical trees "
                  f"({ratio:.1f}x): {'met' if met else 'NOT met'}")

        env = {"TEMPLATEFLOW_HOME": str(data_dir / "templateflow")}
        runs = {"ours (App)": [], "nilearn": []}
        order = [name for name, key in (("ours (App)", "app"), ("nilearn", "nilearn"))
                 if key in only]
        for repeat in range(args.repeat if order else 0):
            for name in (order if repeat % 2 == 0 else order[::-1]):
                run_dir = Path(tmp) / f"{name.split()[0]}{repeat}"
                result = _run_contender(name, run_dir, data_dir, ks, args, env)
                runs[name].append(result)
                if repeat == 0:  # the labels of the first run (both are deterministic)
                    labels.update(_labels(name, run_dir, ks, cortex))
                shutil.rmtree(run_dir)
        import statistics

        for name in order:
            best = runs[name]
            rows.append((name, {key: statistics.median(r[key] for r in best)
                                for key in ("wall", "tree_mb", "proc_mb")}))

    if rows:
        print(f"\nEnd to end, K = {', '.join(ks)} ({args.nprocs} processes for ours; "
              f"medians of {args.repeat}):")
        print(f"{'':12}{'wall (s)':>10}{'tree RSS (MB)':>15}{'process RSS (MB)':>18}"
              + "".join(f"{'R2 K=' + k:>12}" for k in ks))
        for name, result in rows:
            print(f"{name:12}{result['wall']:10.1f}{result['tree_mb']:15.0f}"
                  f"{result['proc_mb']:18.0f}"
                  + "".join(f"{r2(X, labels[(name, k)]):12.4f}" for k in ks))
        if len(rows) == 2:
            (_, ours), (_, ref) = rows
            print(f"nilearn / ours: wall {ref['wall'] / ours['wall']:.1f}x, tree RSS "
                  f"{ref['tree_mb'] / ours['tree_mb']:.2f}x")
    return 0


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--run-nilearn":
        run_nilearn(Path(sys.argv[2]), Path(sys.argv[3]), [int(k) for k in sys.argv[4:]])
    else:
        raise SystemExit(main())
