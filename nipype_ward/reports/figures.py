"""The figures of a parcellation: its parcels, a volume of the series beside
its compressed version, and the quality against K.

Volumes are drawn by nilearn (``plot_roi``, ``plot_epi``, as in the seed
example); surfaces by :mod:`nipype_ward.reports.surface`, nilearn's views
without mplot3d. matplotlib and nilearn's plotting are imported inside the
functions: they cost one to three seconds, paid only by the process that
draws, and a surface figure never imports ``nilearn.plotting``.
"""

from __future__ import annotations

import numpy as np

from nipype_ward.io import arrays, cifti, files, geometry, gifti, nifti_write, tables
from nipype_ward.reports import surface


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")  # figures are files; never open a window
    from matplotlib import pyplot as plt

    return plt


def cut_coords_of(mask_path) -> tuple[float, float, float]:
    """The cuts every figure of a parcellation shares: the mask's centre (nilearn's choice)."""
    from nilearn.plotting import find_xyz_cut_coords

    mask_img = geometry.load(mask_path)
    return tuple(float(c) for c in find_xyz_cut_coords(mask_img))


def display_labels(data, *, seed: int = 0) -> np.ndarray:
    """The parcels of a label volume (0: background) numbered 1 .. n in a random order, for display.

    ``plot_roi`` maps label values in order onto its colour map, and a
    parcellation numbers its parcels in scan order: neighbours got
    neighbouring colours of the 12 of ``Paired``, and 2,000 parcels showed as
    bands of colour. Shuffled (the same way for the same ``seed``),
    neighbouring parcels get unrelated colours. Only the figure uses them:
    the files keep their labels.
    """
    data = np.asarray(data)
    inside = data > 0
    values = np.unique(data[inside])
    shuffled = np.random.default_rng(seed).permutation(values.size) + 1
    out = np.zeros(data.shape, dtype=np.int32)
    out[inside] = shuffled[np.searchsorted(values, data[inside])]
    return out


def plot_parcellation(labels_file, mean_file, out_png, *, title=None, cut_coords=None):
    """Label image over the mean EPI (nilearn's ``plot_roi``), saved as PNG.

    The parcels' colours are drawn in a random order (:func:`display_labels`).
    """
    _pyplot()
    from nilearn import plotting

    labels_img = geometry.load(labels_file)
    shown = display_labels(np.asanyarray(labels_img.dataobj))
    n_parcels = int(shown.max())  # the parcels are numbered 1 .. n
    header = labels_img.header.copy()
    header.set_data_dtype(np.int32)
    display = plotting.plot_roi(
        type(labels_img)(shown, labels_img.affine, header),
        geometry.load(mean_file),
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

    mask, mask_img = geometry.load_mask(mask_file)
    X = arrays.load_series(series_file, n_voxels=int(mask.sum()))
    if not 0 <= volume < X.shape[1]:
        raise ValueError(f"volume must be between 0 and {X.shape[1] - 1}, got {volume}")
    labels, _ = geometry.load_labels(labels_file, mask=mask)
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
            nifti_write.unmask(voxels, mask, mask_img),
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


def _surface_views(plt, columns: int = 4):
    """A row of plain axes for views of the cortices, and the pixel shape of each."""
    figure, axes = plt.subplots(1, columns, figsize=(3 * columns, 2.9), dpi=80, squeeze=False)
    figure.subplots_adjust(left=0, right=1, bottom=0, top=0.9, wspace=0, hspace=0)
    extent = axes[0][0].get_window_extent()  # in pixels at the figure's dpi
    shape = (round(extent.height), round(extent.width))
    for axis in axes[0]:
        axis.set_axis_off()
    return figure, axes[0], shape


def _draw_cortices(axes, shape, values: dict, meshes: dict, colours, *, labels: bool,
                   views=surface.VIEWS):
    """Cortices along a row of axes: by default both, lateral and medial.

    One scale for every view (:func:`~nipype_ward.reports.surface.fit_cameras`),
    so the hemispheres keep their sizes; a hemisphere without data is left blank.
    """
    cameras = surface.fit_cameras({hemi: tuple(mesh) for hemi, mesh in meshes.items()}, shape)
    for axis, (hemi, view) in zip(axes, views):
        if hemi not in values:
            continue
        mesh = meshes[hemi]
        axis.imshow(surface.render(mesh.coordinates, mesh.faces, values[hemi], hemi, view, shape,
                                   camera_of=cameras[hemi, view], colours=colours,
                                   labels=labels, shade=labels),
                    interpolation="nearest")


def _colours(plt, cmap: str, vmin: float, vmax: float):
    from matplotlib.colors import Normalize

    cmap, norm = plt.get_cmap(cmap), Normalize(vmin, vmax, clip=True)
    return lambda values: cmap(norm(values))


def _cortex_values(labels_or_values, brain_models):
    values = np.asarray(labels_or_values, dtype=np.float64)
    return cifti.hemisphere_values(values, brain_models, fill=np.nan)


def _load_meshes(surfaces) -> dict:
    return {hemi: gifti.load_mesh(path) for hemi, path in zip("LR", surfaces)
            if path is not None}


def _not_drawn(brain_models) -> str:
    volume = sum(model.size for name, _, model in cifti.structures(brain_models)
                 if name not in cifti.CORTEX.values())
    return f"; {volume} subcortical grayordinates not drawn" if volume else ""


def plot_surface_parcellation(labels_file, surfaces, out_png, *, title=None):
    """Surface labels (CIFTI-2) on the cortices, lateral and medial, as PNG.

    ``surfaces`` are the (left, right) meshes of the data's space; vertices
    without data (the medial wall) are grey, and parcels get shuffled
    colours so that neighbours differ. The views are nilearn's
    (``plot_surf_roi``), drawn by :mod:`nipype_ward.reports.surface`.
    """
    plt = _pyplot()
    img = geometry.load(labels_file)
    models = cifti.brain_models_of(img)
    labels = geometry.values_of(img).astype(np.int64)
    n_parcels = int(labels.max())
    shuffled = np.r_[0, np.random.default_rng(0).permutation(n_parcels) + 1][labels]
    values = _cortex_values(np.where(labels > 0, shuffled, np.nan), models)
    figure, axes, shape = _surface_views(plt)
    _draw_cortices(axes, shape, values, _load_meshes(surfaces),
                   _colours(plt, "gist_ncar", 1, max(n_parcels, 2)), labels=True)
    figure.suptitle((title or f"Ward parcellation ({n_parcels} parcels)") + _not_drawn(models))
    figure.savefig(str(out_png), dpi=figure.dpi)
    plt.close(figure)
    return out_png


def plot_surface_compression(series_file, mask_file, labels_file, surfaces, out_png, *,
                             volume: int = 0):
    """A volume of a surface series and of its compression on the cortices, one PNG.

    As :func:`plot_compression`: the prepared series, each grayordinate given
    its parcel's mean, one colour range (the 1st to 99th percentiles of the
    original volume on the cortices), lateral views.
    """
    plt = _pyplot()
    mask, mask_img = geometry.load_mask(mask_file)
    models = cifti.brain_models_of(mask_img)
    X = arrays.load_series(series_file, n_voxels=int(mask.sum()))
    if not 0 <= volume < X.shape[1]:
        raise ValueError(f"volume must be between 0 and {X.shape[1] - 1}, got {volume}")
    labels, _ = geometry.load_labels(labels_file, mask=mask)
    original = np.asarray(X[:, volume], dtype=np.float64)
    compressed = (np.bincount(labels, weights=original) / np.bincount(labels))[labels]
    # The range of what is drawn (the cortices), robust: a few outlying
    # grayordinates (or subcortical voxels) would leave the cortex all grey.
    drawn = np.concatenate([values[np.isfinite(values)]
                            for values in _cortex_values(original, models).values()])
    vmin, vmax = (float(v) for v in np.percentile(drawn, [1, 99]))
    colours = _colours(plt, "gray", vmin, vmax)
    meshes = _load_meshes(surfaces)
    figure, axes, shape = _surface_views(plt)
    lateral = (("L", "lateral"), ("R", "lateral"))
    for columns, (values, title) in zip((axes[:2], axes[2:]), (
            (original, f"Volume {volume} ({mask.sum()} grayordinates)"),
            (compressed, f"Compressed ({labels.max() + 1} parcels){_not_drawn(models)}"))):
        _draw_cortices(columns, shape, _cortex_values(values, models), meshes, colours,
                       labels=False, views=lateral)
        columns[0].set_title(title, loc="left", fontsize=10)
    figure.savefig(str(out_png), dpi=figure.dpi)
    plt.close(figure)
    return out_png


def plot_quality(metrics_files, table_files, out_png):
    """A run's quality against K: R2, homogeneity, split-half ARI; parcel sizes per K.

    ``metrics_files`` are the metrics JSON of each K
    (:func:`nipype_ward.core.metrics.compression_summary`), ``table_files`` the
    matching ``_dseg.tsv`` tables (their ``n_voxels`` column).
    """
    plt = _pyplot()
    metrics = [files.load_json(path) for path in metrics_files]
    order = np.argsort([m["n_parcels"] for m in metrics])
    ks = [metrics[i]["n_parcels"] for i in order]
    figure, (left, right) = plt.subplots(1, 2, figsize=(10, 3.6))
    # R2 and homogeneity are often nearly equal: a filled marker on a solid line
    # and a larger hollow one on a dashed line keep both visible where they meet.
    for key, label, style in (
            ("r2", "R2 of the compression", {"marker": "o", "ls": "-", "ms": 5}),
            ("homogeneity", "homogeneity", {"marker": "s", "ls": "--", "ms": 9,
                                            "mfc": "none", "mew": 1.5}),
            ("split_half_ari", "split-half ARI", {"marker": "^", "ls": ":", "ms": 6})):
        values = [metrics[i].get(key) for i in order]
        if any(v is not None for v in values):
            left.plot(ks, [np.nan if v is None else v for v in values], label=label, **style)
    left.set_xlabel("number of parcels K")
    left.set_ylim(bottom=0)
    left.set_title("Quality against K")
    left.legend(frameon=False, fontsize=8)
    unit = "voxels"
    for i in order:
        with open(table_files[i]) as stream:
            unit = "voxels" if "n_voxels" in stream.readline().split() else "grayordinates"
        sizes = tables.load_table_column(table_files[i], f"n_{unit}")
        # Log bins and counts: one very large parcel is a visible bar, not a pixel.
        bins = np.geomspace(max(sizes.min(), 1), max(sizes.max(), 2), 31)
        right.hist(sizes, bins=bins, histtype="step", log=True,
                   label=f"K = {metrics[i]['n_parcels']}")
    right.set_xscale("log")
    from matplotlib import ticker

    plain = ticker.FuncFormatter(lambda value, _: f"{value:g}")  # not powers of ten
    some = ticker.FuncFormatter(lambda value, _: f"{value:g}" if f"{value:g}"[0] in "25" else "")
    right.xaxis.set_major_formatter(plain)
    right.xaxis.set_minor_formatter(some)
    right.yaxis.set_major_formatter(plain)
    right.yaxis.set_minor_formatter(some)
    right.set_xlabel(f"{unit} per parcel (log)")
    right.set_ylabel("parcels (log)")
    right.set_title("Parcel sizes")
    right.legend(frameon=False, fontsize=8)
    figure.tight_layout()
    figure.savefig(str(out_png), dpi=100)
    plt.close(figure)
    return out_png


def plot_group_quality(meta: dict, out_png):
    """Each run's R2 on the group atlas against that on its own parcellation (one K).

    ``meta`` is the atlas' ``_dseg.json`` content (its ``Quality``, from
    :class:`~nipype_ward.interfaces.bids.AtlasSidecars`).
    """
    plt = _pyplot()
    quality, k = meta["Quality"], meta["NumberOfParcels"]
    runs = quality["Runs"]
    own = np.array([run["own_r2"] for run in runs])
    group = np.array([run["group_r2"] for run in runs])
    figure, axes = plt.subplots(figsize=(4.6, 4.2))
    axes.scatter(own, group, s=18)
    low, high = min(own.min(), group.min()), max(own.max(), group.max())
    pad = 0.05 * (high - low or 1)
    axes.plot([low - pad, high + pad], [low - pad, high + pad], color="0.6", lw=1,
              label="group = own")
    axes.set_xlabel("R2 on the run's own parcellation")
    axes.set_ylabel("R2 on the group atlas")
    ari = quality.get("SplitHalfARI")
    axes.set_title(f"K = {k}, {len(runs)} runs" + (f", split-half ARI {ari:.2f}"
                                                    if ari is not None else ""), fontsize=10)
    axes.legend(frameon=False, fontsize=8)
    figure.tight_layout()
    figure.savefig(str(out_png), dpi=100)
    plt.close(figure)
    return out_png
