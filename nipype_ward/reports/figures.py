"""The seed example's figures: a parcellation over the mean EPI, and a
volume of the series beside its compressed version.

matplotlib and nilearn's plotting are imported inside the functions: they
cost about a second, paid only by the process that draws.
"""

from __future__ import annotations

import numpy as np

from nipype_ward import fileio, image


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")  # figures are files; never open a window
    from matplotlib import pyplot as plt

    return plt


def cut_coords_of(mask_path) -> tuple[float, float, float]:
    """The cuts every figure of a parcellation shares: the mask's centre (nilearn's choice)."""
    from nilearn.plotting import find_xyz_cut_coords

    mask_img = image.load_image(mask_path, ndim=3)
    return tuple(float(c) for c in find_xyz_cut_coords(mask_img))


def plot_parcellation(labels_file, mean_file, out_png, *, title=None, cut_coords=None):
    """Label image over the mean EPI (nilearn's ``plot_roi``), saved as PNG."""
    _pyplot()
    from nilearn import plotting

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
    display.savefig(str(out_png), dpi=100)
    display.close()
    return out_png


def plot_compression(series_file, mask_file, labels_file, out_png, *, cut_coords=None,
                     volume: int = 0):
    """A volume of the series and of its compression, same cuts and colour range, one PNG.

    The series is the prepared one (the raw intensities unless a
    preparation was asked); the compressed volume gives every voxel its
    parcel's mean. The colour range is that of the original volume inside
    the mask, as in the seed example.
    """
    plt = _pyplot()
    from nilearn import plotting

    mask, mask_img = image.load_mask(mask_file)
    X = fileio.load_series(series_file, n_voxels=int(mask.sum()))
    if not 0 <= volume < X.shape[1]:
        raise ValueError(f"volume must be between 0 and {X.shape[1] - 1}, got {volume}")
    labels, _ = image.load_labels(labels_file, mask=mask)
    values = np.asarray(X[:, volume], dtype=np.float64)
    sizes = np.bincount(labels)
    compressed = (np.bincount(labels, weights=values) / sizes)[labels]
    vmin, vmax = float(values.min()), float(values.max())
    figure, axes = plt.subplots(2, 1, figsize=(8, 6))
    for voxels, axis, title in (
        (values, axes[0], f"Original ({mask.sum()} voxels)"),
        (compressed, axes[1], f"Compressed representation ({len(sizes)} parcels)"),
    ):
        plotting.plot_epi(
            image.unmask(voxels, mask, mask_img),
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
    return out_png
