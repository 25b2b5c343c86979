"""The seed example's figures: a parcellation over the mean EPI, and a
volume of the original series beside its compressed version."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")  # figures are files; never open a window

import numpy as np
from matplotlib import pyplot as plt
from nilearn import image as nimage
from nilearn import plotting

from nipype_ward import image


def plot_parcellation(labels_file, mean_file, out_png, *, title=None, cut_coords=None):
    """Label image over the mean EPI (nilearn's ``plot_roi``), saved as PNG.

    Returns
    -------
    cut_coords : tuple of 3 floats
        The cuts used, to reuse in the other figures.
    """
    labels_img = image.load_image(labels_file, ndim=3)
    n_parcels = int(np.asanyarray(labels_img.dataobj).max())
    display = plotting.plot_roi(
        labels_img,
        image.load_image(mean_file, ndim=3),
        title=title or f"Ward parcellation ({n_parcels} parcels)",
        display_mode="ortho",
        cut_coords=cut_coords,
        cmap="Paired",
        colorbar=False,
    )
    cut_coords = tuple(float(c) for c in display.cut_coords)
    display.savefig(str(out_png), dpi=100)
    display.close()
    return cut_coords


def plot_compression(
    bold_file, compressed_file, mask_file, out_png, *, cut_coords, volume: int = 0, n_parcels=None
):
    """Original and compressed volume, same cuts and colour range, one PNG.

    The colour range is that of the original volume inside the mask, as in
    the seed example.
    """
    original = nimage.index_img(image.load_bold(bold_file), volume)
    compressed = nimage.index_img(image.load_bold(compressed_file), volume)
    mask, _ = image.load_mask(mask_file, reference=original, reference_path=bold_file)
    values = np.asanyarray(original.dataobj)[mask]
    vmin, vmax = float(values.min()), float(values.max())
    n_voxels = int(mask.sum())
    suffix = f" ({n_parcels} parcels)" if n_parcels else ""
    figure, axes = plt.subplots(2, 1, figsize=(8, 6))
    for img, axis, title in (
        (original, axes[0], f"Original ({n_voxels} voxels)"),
        (compressed, axes[1], f"Compressed representation{suffix}"),
    ):
        plotting.plot_epi(
            img,
            cut_coords=cut_coords,
            title=title,
            vmin=vmin,
            vmax=vmax,
            display_mode="ortho",
            axes=axis,
            figure=figure,
            cmap="gray",
            draw_cross=False,
        )
    figure.savefig(str(out_png), dpi=100)
    plt.close(figure)
