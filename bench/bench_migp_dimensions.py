#!/usr/bin/env python
"""How many MIGP features the group tree needs: the measurement behind ``--group-dimensions``.

Usage::

    python bench/bench_migp_dimensions.py [--subjects 8] [--held-out 2] [--n-clusters 1000]
                                          [--dimensions 100 200 500 1000]

The simulated rest-fMRI of ``nipype_ward.datasets.simulate_rest_fmri`` at
3 mm (176 volumes), one seed per subject and the same ground-truth regions
for all (``regions_random_state=0``). Each subject's series is read inside
the common brain mask and z-scored over time (ddof=1), then the group matrix
is built either exactly (the subjects concatenated in time) or by MIGP with
M features (:func:`nipype_ward.core.reduction.migp`), and our Ward tree is built on
it and cut at K. Printed per reduction: the reduction's and the tree's wall
time, the size of the group matrix, the R2 of the parcellation on held-out
subjects (never used for the tree; R2 = 1 - residual / total sum of squares
of their z-scored series, parcel means by NumPy), and the adjusted Rand
index of its labels with the exact reduction's.
"""
from __future__ import annotations

import argparse
import time

import numpy as np


def zscored(sim, mask):
    X = np.asarray(sim.bold_img.dataobj)[mask].astype(np.float64)
    X -= X.mean(axis=1, keepdims=True)
    X /= X.std(axis=1, ddof=1, keepdims=True)
    return X


def held_out_r2(series, labels):
    total, residual = 0.0, 0.0
    counts = np.bincount(labels)
    for X in series:
        means = np.zeros((counts.size, X.shape[1]))
        np.add.at(means, labels, X)
        means /= counts[:, None]
        residual += ((X - means[labels]) ** 2).sum()
        total += (X ** 2).sum()
    return 1.0 - residual / total


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subjects", type=int, default=8)
    parser.add_argument("--held-out", type=int, default=2)
    parser.add_argument("--n-clusters", type=int, default=1000)
    parser.add_argument("--dimensions", type=int, nargs="+", default=[100, 200, 500, 1000])
    args = parser.parse_args(argv)

    from sklearn.feature_extraction.image import grid_to_graph
    from sklearn.metrics import adjusted_rand_score

    from nipype_ward.core.reduction import concatenate, migp
    from nipype_ward.core.ward import build_ward_tree, cut_tree
    from nipype_ward.datasets import simulate_rest_fmri

    sims = [simulate_rest_fmri(random_state=seed, regions_random_state=0)
            for seed in range(args.subjects + args.held_out)]
    mask = np.asanyarray(sims[0].brain_mask_img.dataobj) > 0
    connectivity = grid_to_graph(*mask.shape, mask=mask)
    train = [zscored(sim, mask) for sim in sims[:args.subjects]]
    test = [zscored(sim, mask) for sim in sims[args.subjects:]]
    print(f"{args.subjects} subjects x {train[0].shape[1]} volumes, {mask.sum()} voxels, "
          f"K = {args.n_clusters}, {args.held_out} held-out subjects")
    print(f"{'reduction':>12} {'features':>8} {'reduce s':>9} {'tree s':>8} "
          f"{'held-out R2':>12} {'ARI vs exact':>13}")
    reference = None
    for name, build in [("exact", lambda: concatenate(train))] + [
            (f"migp {m}", lambda m=m: migp(train, m)) for m in args.dimensions]:
        start = time.perf_counter()
        X = build()
        reduced = time.perf_counter() - start
        start = time.perf_counter()
        labels = cut_tree(build_ward_tree(X, connectivity).children, args.n_clusters)
        tree = time.perf_counter() - start
        reference = labels if reference is None else reference
        print(f"{name:>12} {X.shape[1]:>8} {reduced:>9.2f} {tree:>8.2f} "
              f"{held_out_r2(test, labels):>12.4f} {adjusted_rand_score(reference, labels):>13.4f}")
        del X


if __name__ == "__main__":
    main()
