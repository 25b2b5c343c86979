"""Quality of parcellation methods on the embedded simulated rest-fMRI data.

Compares, at several numbers of parcels K, on the data of
:func:`nipype_ward.datasets.simulate_rest_fmri` masked by its true brain mask:

* ``ward-raw``: this package's Ward (6-neighbour grid) on the raw masked data;
* ``ward-z``: the same on each voxel's series z-scored in time;
* ``rena``, ``kmeans``, ``hkmeans``: nilearn's ``Parcellations(method=...,
  n_parcels=K, mask=<brain mask>, smoothing_fwhm=None, standardize=False,
  random_state=0)`` (``standardize=False`` is nilearn's default; see below);
* ``random``: compact random parcels, k-means on the voxel coordinates
  (seed 0): contiguous-looking blobs that ignore the data.

and prints, per method and K, the R2 of the parcel-mean reconstruction,
the homogeneity (mean within-parcel correlation), the number of non-contiguous
parcels, the split-half ARI (parcels of volumes 1..n/2 against n/2+1..n), the
agreement (ARI, AMI) with the ground-truth regions, parcel sizes and the wall
time. A PNG of R2 against K is written to ``--out-png``.

What nilearn's ``Parcellations`` does with the data (0.14): it does *not*
standardize by default (``standardize=False``) and does not centre either,
but every method clusters the voxels on their loadings on the data's
principal components, each scaled to unit norm (``_MultiPCA`` with
``do_cca=True``, ``n_components=200``, i.e. all of them here): the data are
whitened in time, so the baseline intensity is one component among
``n_volumes`` instead of the dominant feature it is for Ward on raw data.
``--nilearn-standardize`` passes ``standardize="zscore_sample"`` instead.

nilearn 0.14's ``HierarchicalKMeans`` caps K at the number of those
components (it compares K with the wrong axis and warns "Taking n_clusters =
<n_volumes>"). For K above that cap the bench runs the reduction with
``Parcellations(method="hierarchical_kmeans", n_parcels=2)`` and then
nilearn's own ``hierarchical_k_means`` on its ``components_`` with the
parameters ``Parcellations`` uses: what a fixed nilearn would compute; the
time is the sum of both.

Usage::

    python bench/bench_quality.py                       # full size, ~10 min on 2 cores
    python bench/bench_quality.py --resolution 6 --volumes 60 --ks 50 100   # seconds
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

import numpy as np

from nipype_ward.core.connectivity import grid_connectivity
from nipype_ward.core.metrics import (
    contiguity,
    homogeneity,
    reconstruction_r2,
    size_distribution,
    split_half_agreement,
    truth_agreement,
)
from nipype_ward.core.ward import build_ward_tree, cut_tree
from nipype_ward.datasets import simulate_rest_fmri

ALL_METHODS = ("ward-raw", "ward-z", "rena", "kmeans", "hkmeans", "random")
NILEARN_METHODS = {"rena": "rena", "kmeans": "kmeans", "hkmeans": "hierarchical_kmeans"}


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--resolution", type=int, default=3, help="voxel size in mm (default 3)")
    parser.add_argument("--volumes", type=int, default=176, help="number of volumes (default 176)")
    parser.add_argument(
        "--regions", type=int, default=300, help="number of ground-truth regions (default 300)"
    )
    parser.add_argument(
        "--ks", type=int, nargs="+", default=[100, 500, 1000, 2000],
        help="numbers of parcels (default 100 500 1000 2000)",
    )
    parser.add_argument(
        "--split-half-ks", type=int, nargs="*", default=[1000],
        help="K at which the nilearn methods are also fitted on each half of the run for "
        "the split-half ARI (default 1000; Ward and random get it at every K, they are fast)",
    )
    parser.add_argument(
        "--methods", nargs="+", default=list(ALL_METHODS), choices=ALL_METHODS,
        help="methods to compare (default: all)",
    )
    parser.add_argument(
        "--nilearn-standardize", action="store_true",
        help='pass standardize="zscore_sample" to Parcellations (default: False, its default)',
    )
    parser.add_argument(
        "--out-png", type=Path, default=Path("bench_quality_r2.png"),
        help="figure of R2 against K (default bench_quality_r2.png)",
    )
    return parser


# --------------------------------------------------------------------------
# Methods: each returns labels 0..K'-1 (K' may be < K for nilearn's k-means)
# --------------------------------------------------------------------------
def relabel(labels) -> np.ndarray:
    """Labels as 0 .. n_parcels - 1 (the metrics' convention)."""
    return np.unique(np.asarray(labels), return_inverse=True)[1].ravel().astype(np.intp)


def zscore(X) -> np.ndarray:
    Z = np.asarray(X, dtype=np.float64)
    Z = Z - Z.mean(axis=1, keepdims=True)
    std = Z.std(axis=1, keepdims=True)
    np.divide(Z, std, out=Z, where=std > 0)
    return Z.astype(np.float32)


def to_image(X, mask, reference):
    """(n_voxels, n_volumes) array back to a 4D image on the reference grid."""
    import nibabel as nib

    data = np.zeros(mask.shape + (X.shape[1],), dtype=np.float32)
    data[mask] = X
    return nib.Nifti1Image(data, reference.affine, reference.header)


def nilearn_labels(method, bold_img, mask_img, mask, n_parcels, standardize):
    """Labels of nilearn's Parcellations (see the module docstring for hkmeans)."""
    from nilearn.regions import Parcellations

    n_volumes = bold_img.shape[3]
    capped = method == "hierarchical_kmeans" and n_parcels > n_volumes
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        parcellation = Parcellations(
            method=method,
            n_parcels=2 if capped else n_parcels,
            mask=mask_img,
            smoothing_fwhm=None,
            standardize="zscore_sample" if standardize else False,
            random_state=0,
        ).fit(bold_img)
        if capped:
            from nilearn.regions.hierarchical_kmeans_clustering import (
                hierarchical_k_means,
            )

            return relabel(
                hierarchical_k_means(
                    np.asarray(parcellation.components_).T, n_parcels,
                    init="k-means++", batch_size=1000, n_init=10,
                    max_no_improvement=10, random_state=0,
                )
            )
    return relabel(np.asarray(parcellation.labels_img_.dataobj)[mask])


def random_compact_labels(coords, n_parcels, seed):
    """k-means cells of the voxel coordinates: compact blobs ignoring the data."""
    from sklearn.cluster import KMeans

    km = KMeans(n_clusters=n_parcels, n_init=1, max_iter=50, random_state=seed)
    return relabel(km.fit_predict(coords))


# --------------------------------------------------------------------------
# Table and figure
# --------------------------------------------------------------------------
COLUMNS = [
    ("method", "{}"), ("K", "{}"), ("parcels", "{}"), ("R2", "{:.3f}"),
    ("homog", "{:.3f}"), ("noncontig", "{}"), ("split-ARI", "{}"),
    ("truth-ARI", "{:.3f}"), ("truth-AMI", "{:.3f}"), ("sizes min/q1/med/q3/max", "{}"),
    ("time s", "{:.1f}"),
]


def format_table(rows) -> str:
    cells = [[name for name, _ in COLUMNS]]
    for row in rows:
        cells.append([fmt.format(row[name]) for name, fmt in COLUMNS])
    widths = [max(len(line[i]) for line in cells) for i in range(len(COLUMNS))]
    lines = []
    for index, line in enumerate(cells):
        lines.append("  ".join(
            cell.ljust(w) if i in (0, len(COLUMNS) - 2) else cell.rjust(w)
            for i, (cell, w) in enumerate(zip(line, widths))
        ).rstrip())
        if index == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def plot_r2(rows, truth_row, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    for method in dict.fromkeys(row["method"] for row in rows):
        points = sorted((row["parcels"], row["R2"]) for row in rows if row["method"] == method)
        ax.plot(*zip(*points), marker="o", label=method)
    ax.plot(truth_row["parcels"], truth_row["R2"], "k*", markersize=12, label="ground truth")
    ax.set_xscale("log")
    ax.set_xlabel("number of parcels K")
    ax.set_ylabel("R2 of the parcel-mean reconstruction")
    ax.set_title("Compression quality on the simulated rest-fMRI data")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize="small")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


# --------------------------------------------------------------------------
def main(argv=None) -> int:
    args = get_parser().parse_args(argv)
    start = time.perf_counter()
    ks = sorted(set(args.ks))

    t0 = time.perf_counter()
    sim = simulate_rest_fmri(
        resolution=args.resolution, n_volumes=args.volumes, n_regions=args.regions,
        random_state=0,
    )
    mask = np.asarray(sim.brain_mask_img.dataobj) > 0
    X = np.asarray(sim.bold_img.dataobj)[mask].astype(np.float32)
    true = np.asarray(sim.regions_img.dataobj)[mask]
    connectivity = grid_connectivity(mask, 6)
    coords = np.argwhere(mask).astype(np.float64) * args.resolution
    n_voxels, n_volumes = X.shape
    if max(ks) > n_voxels:
        raise SystemExit(f"K={max(ks)} is more than the {n_voxels} voxels")
    half = n_volumes // 2
    print(
        f"Data: simulate_rest_fmri(resolution={args.resolution}, n_volumes={n_volumes}, "
        f"n_regions={args.regions}, random_state=0): {n_voxels} voxels x {n_volumes} volumes "
        f"in the true brain mask, {len(np.unique(true))} true regions "
        f"({time.perf_counter() - t0:.1f} s)"
    )
    print(f"K: {ks}; methods: {', '.join(args.methods)}; nilearn standardize="
          f"{'zscore_sample' if args.nilearn_standardize else False}")
    sys.stdout.flush()

    def measure(method, k, labels, seconds, split):
        sizes = size_distribution(labels)
        agree = truth_agreement(labels, true)
        return {
            "method": method, "K": k, "parcels": int(labels.max()) + 1,
            "R2": reconstruction_r2(X, labels), "homog": homogeneity(X, labels),
            "noncontig": contiguity(labels, connectivity).n_noncontiguous,
            "split-ARI": "-" if split is None else split,
            "truth-ARI": agree.ari, "truth-AMI": agree.ami,
            "sizes min/q1/med/q3/max": (
                f"{sizes.min}/{sizes.q1:g}/{sizes.median:g}/{sizes.q3:g}/{sizes.max}"
            ),
            "time s": seconds,
        }

    rows = []
    for method in args.methods:
        t_method = time.perf_counter()
        if method.startswith("ward"):
            standardize = method == "ward-z"
            t0 = time.perf_counter()
            data = zscore(X) if standardize else X
            tree = build_ward_tree(data, connectivity)
            tree_seconds = time.perf_counter() - t0
            for k in ks:
                t0 = time.perf_counter()
                labels = cut_tree(tree.children, k)
                seconds = tree_seconds + time.perf_counter() - t0
                split = split_half_agreement(X, connectivity, k, standardize=standardize)
                rows.append(measure(method, k, labels, seconds, f"{split:.3f}"))
        elif method == "random":
            for k in ks:
                t0 = time.perf_counter()
                labels = random_compact_labels(coords, k, seed=0)
                seconds = time.perf_counter() - t0
                # Data-independent: the "split-half" is two seeds (marked *).
                split = truth_agreement(labels, random_compact_labels(coords, k, seed=1)).ari
                rows.append(measure(method, k, labels, seconds, f"{split:.3f}*"))
        else:
            nl_method = NILEARN_METHODS[method]

            def fit(X_part, _connectivity, k, nl_method=nl_method):
                return nilearn_labels(
                    nl_method, to_image(X_part, mask, sim.bold_img), sim.brain_mask_img,
                    mask, k, args.nilearn_standardize,
                )

            for k in ks:
                t0 = time.perf_counter()
                labels = nilearn_labels(
                    nl_method, sim.bold_img, sim.brain_mask_img, mask, k,
                    args.nilearn_standardize,
                )
                seconds = time.perf_counter() - t0
                split = None
                if k in args.split_half_ks:
                    split = f"{split_half_agreement(X, connectivity, k, cluster=fit):.3f}"
                rows.append(measure(method, k, labels, seconds, split))
        print(f"  {method}: {time.perf_counter() - t_method:.1f} s", flush=True)

    truth_labels = relabel(true)
    truth_row = measure("ground truth", len(np.unique(true)), truth_labels, 0.0, None)
    truth_row["split-ARI"] = "-"

    print()
    print(format_table(rows + [truth_row]))
    nilearn_split = [k for k in ks if k in args.split_half_ks]
    where = f"only at K = {', '.join(map(str, nilearn_split))}" if nilearn_split else "not run"
    print(
        f"\nsplit-ARI: ARI between the parcellations of volumes 1-{half} and "
        f"{half + 1}-{n_volumes} (ward-z z-scores each half); for the nilearn methods "
        f"{where} ('-': skipped, to keep the run short); "
        "* random: ARI between two seeds (data-independent)."
    )
    print(
        "time s: ward = tree (built once, shared by every K) + cut; nilearn = one "
        "Parcellations fit (masking, PCA, clustering); random = one k-means of the "
        "coordinates. ground truth: the simulation's regions."
    )
    plot_r2(rows, truth_row, args.out_png)
    print(f"R2 against K: {args.out_png}")
    print(f"Total run time: {time.perf_counter() - start:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
