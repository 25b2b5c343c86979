#!/usr/bin/env python
"""nilearn's own Ward parcellation of one BOLD file: a reference of bench_pipeline.py.

What a nilearn user writes for the seed job: one
``nilearn.regions.Parcellations(method='ward', n_parcels=K)`` per K, ``fit``
then ``transform`` on the file, and the ``labels_img_`` saved as
``OUTPUT_DIR/ward{K}_labels.nii.gz``. Arguments (nilearn 0.14.1): its
defaults, except ``memory=OUTPUT_DIR/nilearn_cache`` with ``memory_level=1``
(with a cache and the default level 0, nilearn warns and sets 1 itself).
``mask_strategy='epi'`` and ``standardize=False`` are the defaults already.

Where this is not the seed's job (``seed_rest_clustering.py``):

* the data are smoothed first (default ``smoothing_fwhm=4.0`` mm);
* Ward does not see the time series: ``fit`` reduces them by PCA (an SVD of
  the masked series to min(n_volumes, 200) components, then a randomized
  SVD to ``n_components=200``, fixed by ``Parcellations``), and clusters the
  voxels on those component loadings;
* the tree is built by scikit-learn's ``AgglomerativeClustering`` with
  joblib memory, as in the seed, so the second K may reuse the first tree
  (when both use the full tree: K < 2 % of the voxels);
* ``transform`` returns the mean signal of each parcel (``NiftiLabelsMasker``,
  (n_volumes, K)); no compressed 4D image and no figures are written.

Usage::

    python bench/nilearn_parcellations.py BOLD OUTPUT_DIR [--n-clusters 1000 2000]
"""
import argparse
import time
from pathlib import Path


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("bold", type=Path)
    parser.add_argument("output_dir", type=Path)
    parser.add_argument("--n-clusters", type=int, nargs="+", default=[1000, 2000])
    args = parser.parse_args(argv)
    out = args.output_dir
    out.mkdir(parents=True, exist_ok=True)

    from nilearn.regions import Parcellations

    for k in args.n_clusters:
        start = time.perf_counter()
        parcellation = Parcellations(
            method="ward", n_parcels=k, memory=str(out / "nilearn_cache"), memory_level=1
        )
        parcellation.fit(str(args.bold))
        signals = parcellation.transform(str(args.bold))
        parcellation.labels_img_.to_filename(out / f"ward{k}_labels.nii.gz")
        print(f"Parcellations(method='ward', n_parcels={k}): signals {signals.shape}, "
              f"{time.perf_counter() - start:.2f}s")


if __name__ == "__main__":
    main()
