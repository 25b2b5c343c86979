#!/usr/bin/env python
"""The seed example, as a script on a given file: the reference of bench_pipeline.py.

This is nilearn's "Ward clustering to learn a brain parcellation from rest
fMRI" (``../shared/seed/plot_rest_clustering.txt``), updated only where the
APIs moved (``nilearn.maskers``, ``get_fdata``), run on a local file instead
of the ADHD download, and writing what our command writes so that both do
the same job:

* NiftiMasker with ``mask_strategy='epi'`` and joblib memory;
* FeatureAgglomeration (connectivity ``grid_to_graph`` of the mask, Ward) at
  each K, with joblib memory as in the seed;
* per K: the label image, the compressed 4D series (``inverse_transform``),
  the parcellation figure over the mean EPI and the original/compressed
  figure, all written to OUTPUT_DIR.

Usage::

    python bench/seed_rest_clustering.py BOLD OUTPUT_DIR [--n-clusters 1000 2000]
"""
import argparse
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("bold", type=Path)
    parser.add_argument("output_dir", type=Path)
    parser.add_argument("--n-clusters", type=int, nargs="+", default=[1000, 2000])
    args = parser.parse_args(argv)
    out = args.output_dir
    out.mkdir(parents=True, exist_ok=True)
    cache = str(out / "nilearn_cache")

    from matplotlib import pyplot as plt
    from nilearn.image import index_img, mean_img
    from nilearn.maskers import NiftiMasker
    from nilearn.plotting import plot_epi, plot_roi
    from sklearn.cluster import FeatureAgglomeration
    from sklearn.feature_extraction import image

    func_filename = str(args.bold)
    nifti_masker = NiftiMasker(memory=cache, mask_strategy="epi", memory_level=1, standardize=None)
    fmri_masked = nifti_masker.fit_transform(func_filename)
    mask = nifti_masker.mask_img_.get_fdata().astype(bool)

    shape = mask.shape
    connectivity = image.grid_to_graph(n_x=shape[0], n_y=shape[1], n_z=shape[2], mask=mask)

    mean_func_img = mean_img(func_filename, copy_header=True)
    cut_coords = None
    for k in args.n_clusters:
        start = time.time()
        ward = FeatureAgglomeration(
            n_clusters=k, connectivity=connectivity, linkage="ward", memory=cache
        )
        ward.fit(fmri_masked)
        print(f"Ward agglomeration {k} clusters: {time.time() - start:.2f}s")

        labels_img = nifti_masker.inverse_transform(ward.labels_ + 1)
        labels_img.to_filename(out / f"ward{k}_labels.nii.gz")
        first_plot = plot_roi(
            labels_img, mean_func_img, title=f"Ward parcellation ({k} parcels)",
            display_mode="ortho", cut_coords=cut_coords,
        )
        cut_coords = first_plot.cut_coords
        first_plot.savefig(str(out / f"ward{k}_parcellation.png"))
        first_plot.close()

        fmri_reduced = ward.transform(fmri_masked)
        fmri_compressed = ward.inverse_transform(fmri_reduced)
        compressed_img = nifti_masker.inverse_transform(fmri_compressed)
        compressed_img.to_filename(out / f"ward{k}_compressed.nii.gz")

        figure, axes = plt.subplots(2, 1, figsize=(8, 6))
        vmin, vmax = fmri_masked.min(), fmri_masked.max()
        plot_epi(index_img(func_filename, 0), cut_coords=cut_coords, axes=axes[0],
                 title=f"Original ({fmri_masked.shape[1]} voxels)", vmax=vmax, vmin=vmin,
                 display_mode="ortho")
        plot_epi(index_img(compressed_img, 0), cut_coords=cut_coords, axes=axes[1],
                 title=f"Compressed representation ({k} parcels)", vmax=vmax, vmin=vmin,
                 display_mode="ortho")
        figure.savefig(str(out / f"ward{k}_compression.png"))
        plt.close(figure)


if __name__ == "__main__":
    main()
