"""Carpet plots: what the preparation did to a run, and its parcel time series.

The carpets are drawn by nireports' ``plot_carpet`` (fMRIPrep's carpet plot),
with the rows we give it in the order we give (``sort_rows=False``), each
row z-scored by us first (``detrend=False``: the drifts that the
preparation removes stay visible before it). The traces above them
(framewise displacement, DVARS) are drawn here rather than by nireports'
``confoundplot``, whose axis sits in a nested grid (1:100) and spans
``0 .. n - 1`` where the carpet's columns span ``-0.5 .. n - 0.5``: every
panel here shares the carpet's x axis, one column per acquired volume, so a
spike in a trace stands above its column. Censored volumes are shaded in
every panel and left blank in the carpets after preparation.
"""

from __future__ import annotations

import inspect
import textwrap

import numpy as np

from nipype_ward.core.carpet import CarpetSample, expand_volumes, tree_rows

#: How the censored volumes are shaded in every panel.
CENSORED = {"color": "#d62728", "alpha": 0.25, "lw": 0}

#: The figures' width (inches, at 100 dpi: fMRIPrep's 1920 pixels).
WIDTH = 19.2

_TRACE_COLOURS = {"fd": "#ff7f0e", "dvars": "#1f77b4", "after": "#2ca02c"}


def censoring_thresholds(preparation: dict) -> dict:
    """The censoring thresholds of a preparation (:class:`~nipype_ward.steps.SignalPreparation`
    as a dict), by confounds column: nilearn's 0.5 mm and 1.5 for 'scrubbing' unless set."""
    if preparation.get("confounds_strategy") != "scrubbing":
        return {}
    return {"framewise_displacement": preparation.get("fd_threshold") or 0.5,
            "std_dvars": preparation.get("dvars_threshold") or 1.5}


def describe_preparation(series_info: dict) -> str:
    """A run's preparation in a few words: confounds (strategy, count), filters, scaling."""
    preparation = series_info.get("preparation") or {}
    words = []
    confounds = series_info.get("confounds") or []
    if preparation.get("confounds_strategy"):
        words.append(f"{len(confounds)} confounds regressed out "
                     f"('{preparation['confounds_strategy']}')")
    elif confounds:
        words.append(f"{len(confounds)} confounds regressed out")
    if preparation.get("detrend"):
        words.append("detrended")
    cutoffs = [f"{name.replace('_', '-')} {preparation[name]:g} Hz"
               for name in ("high_pass", "low_pass") if preparation.get(name)]
    if cutoffs:
        words.append("filtered (" + ", ".join(cutoffs) + ")")
    if preparation.get("standardize"):
        words.append(f"standardized ({preparation['standardize']})")
    return ", ".join(words) or "nothing done"


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")  # figures are files; never open a window
    from matplotlib import pyplot as plt

    return plt


def zscore_rows(values) -> np.ndarray:
    """Each row minus its mean, over its standard deviation (NaN ignored; a flat row is 0)."""
    values = np.asarray(values, dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        centred = values - np.nanmean(values, axis=1, keepdims=True)
        std = np.nanstd(centred, axis=1, keepdims=True)
        return np.where(std > 0, centred / np.where(std > 0, std, 1), 0.0)


def _segments(n_rows, children, points, what: str, n_branches: int = 5):
    """(row order, {label: positions in that order}) for nireports' ``segments``."""
    if children is None:
        return np.arange(n_rows), {f"{what} (in the mask's order)": list(range(n_rows))}
    rows, branches = tree_rows(children, points, n_branches=n_branches)
    segments = {}
    for branch in range(int(branches.max()) + 1):
        segments[f"branch {branch + 1}"] = list(np.flatnonzero(branches == branch))
    return rows, segments


def _carpet(figure, cell, rows, segments, *, t_r, censored, title, bars):
    """nireports' carpet of ``rows`` (already z-scored; NaN: blank) in ``cell``; its axes.

    ``bars`` gets each axes' branch colour (for :func:`_restore_carpets`).
    """
    from nireports.reportlets.nuisance import plot_carpet

    blank = np.isnan(rows)
    before = list(figure.axes)
    options = {"fontsize": 18} if "fontsize" in inspect.signature(plot_carpet).parameters else {}
    plot_carpet(np.where(blank, 0.0, rows), segments=segments, tr=t_r, detrend=False,
                subplot=cell, sort_rows=False, legend=False, drop_trs=0,
                # No decimation: every row and every volume (columns = volumes).
                size=(2 * rows.shape[0] + 2, rows.shape[1]), **options)
    axes = [ax for ax in figure.axes if ax not in before and ax.images]
    n_volumes = rows.shape[1]
    for ax, index in zip(axes, segments.values(), strict=True):
        bars[ax] = ax.spines["left"].get_edgecolor()  # its branch's colour
        if blank.any():  # each axis shows its segment's rows, in order
            image = ax.images[0]
            image.set_data(np.ma.masked_where(blank[index], image.get_array()))
        ax.set_xlim(-0.5, n_volumes - 0.5)
        for volume in censored:
            ax.axvspan(volume - 0.5, volume + 0.5, **CENSORED)
    axes[0].set_title(textwrap.fill(title, 125), loc="left", fontsize=17)
    return axes


def _restore_carpets(bars, bottom):
    """Undo what each nireports carpet did to the axes drawn before it.

    nireports 26's ``plot_carpet`` hides the spines and axes of every
    axes already in the figure: the carpets drawn first get back their
    coloured branch bars; only the bottom carpet keeps its time axis.
    """
    for ax, colour in bars.items():
        ax.spines["left"].set_visible(True)
        ax.spines["left"].set_color(colour)
        ax.set_ylabel("")  # one segment's label: the title says it
        ax.get_xaxis().set_visible(ax is bottom)
        ax.spines["bottom"].set_visible(ax is bottom)  # nireports 23 draws each one's
    bottom.tick_params(axis="x", labelsize=14)
    bottom.xaxis.label.set_fontsize(14)


def _trace(figure, cell, values, *, label, colour, n_volumes, censored, threshold=None,
           unit=""):
    """One trace over the volumes (NaN: a gap), on the carpet's x axis."""
    ax = figure.add_subplot(cell)
    x = np.arange(n_volumes)
    ax.plot(x, values, color=colour, lw=1.5)
    ax.set_xlim(-0.5, n_volumes - 0.5)
    for volume in censored:
        ax.axvspan(volume - 0.5, volume + 0.5, **CENSORED)
    finite = values[np.isfinite(values)]
    stats = f"mean {finite.mean():.3g}{unit}, max {finite.max():.3g}{unit}" if finite.size \
        else "no value"
    if threshold is not None:
        ax.axhline(threshold, color="0.3", lw=1, ls="--")
        stats += f"; censored above {threshold:g}{unit}"
    ax.set_title(label, loc="left", color=colour, fontsize=16, fontweight="bold")
    ax.set_title(stats, loc="right", color="0.25", fontsize=14)
    if finite.size:  # the data's range, and the threshold's line
        low, high = float(finite.min()), float(finite.max())
        if threshold is not None:
            low, high = min(low, threshold), max(high, threshold)
        pad = 0.1 * (high - low) or 0.5
        ax.set_ylim(low - pad, high + pad)
    ax.set_xticks([])
    ax.tick_params(axis="y", labelsize=12)
    for side in ("top", "right", "bottom"):
        ax.spines[side].set_visible(False)
    return ax


def plot_denoising_carpet(sample: CarpetSample, out_png, *, t_r=None, traces=None,
                          thresholds=None, children=None, what: str = "voxels",
                          preparation: str = "") -> str:
    """A run before and after its preparation: traces, two carpets, censored volumes shaded.

    Parameters
    ----------
    sample : CarpetSample
        The run's rows before and after preparation and their DVARS.
    out_png : path
        Where the PNG goes.
    t_r : float, optional
        Seconds per volume (the time axis in mm:ss; volumes otherwise).
    traces : dict, optional
        ``framewise_displacement`` and ``std_dvars`` of fMRIPrep's confounds
        table, one value per acquired volume (NaN where it has none). Without
        a table, DVARS computed from the data is drawn and no framewise
        displacement.
    thresholds : dict, optional
        The same keys: the censoring thresholds (scrubbing), drawn as lines.
    children : ndarray, optional
        The run's Ward tree (:class:`~nipype_ward.core.ward.WardTree` children):
        rows in its leaf order, grouped by its 5 main branches; in the mask's
        order otherwise.
    what : str
        What the rows are (``voxels``, ``grayordinates``).
    preparation : str
        The preparation, in words, for the title.
    """
    plt = _pyplot()
    traces = {name: np.asarray(values, dtype=np.float64)
              for name, values in (traces or {}).items() if values is not None}
    thresholds = thresholds or {}
    n_volumes = sample.before.shape[1]
    censored = sorted(set(range(n_volumes)) - set(sample.kept.tolist()))
    dvars_before = np.r_[np.nan, sample.dvars_before]
    dvars_after = expand_volumes(np.r_[np.nan, sample.dvars_after], sample.kept, n_volumes)
    panels = []  # (values, label, colour, threshold key, unit)
    if "framewise_displacement" in traces:
        panels.append((traces["framewise_displacement"], "FD (mm), fMRIPrep", "fd",
                       "framewise_displacement", " mm"))
    if "std_dvars" in traces:
        panels.append((traces["std_dvars"], "standardized DVARS, fMRIPrep", "dvars",
                       "std_dvars", ""))
    else:
        panels.append((dvars_before, "DVARS before preparation (from the data)", "dvars",
                       None, ""))
    rows, segments = _segments(sample.points.size, children, sample.points, what)
    order = "rows in the leaf order of the run's Ward tree (each parcel's points together " \
        "at every K), coloured bars: its 5 main branches" if children is not None else \
        "rows in the mask's order"
    heights = [1.2] * len(panels) + [6.0, 1.2, 6.0]
    figure = plt.figure(figsize=(WIDTH, sum(heights) + 0.4 * len(heights)))
    grid = figure.add_gridspec(len(heights), 1, height_ratios=heights, hspace=0.45)
    source = "" if traces else " (no confounds table: no framewise displacement, DVARS " \
        "computed from the data)"
    n_rows = f"{sample.points.size:,} of {sample.n_points:,} {what}"
    bars = {}
    _carpet(figure, grid[len(panels)], zscore_rows(sample.before[rows]), segments, t_r=t_r,
            censored=censored, bars=bars, title=f"Before preparation: {n_rows} as read, each row "
            f"z-scored; {order}{source}")
    after_rows = expand_volumes(zscore_rows(sample.after[rows]), sample.kept, n_volumes)
    bottom = _carpet(figure, grid[len(panels) + 2], after_rows, segments, t_r=t_r,
                     censored=censored, bars=bars, title="After preparation"
                     + (f" ({preparation})" if preparation else "") + ": the same rows, each "
                     "z-scored" + (f"; {len(censored)} censored volumes blank" if censored
                                   else ""))
    _restore_carpets(bars, bottom[-1])
    for index, (values, label, colour, key, unit) in enumerate(panels):
        _trace(figure, grid[index], values, label=label, colour=_TRACE_COLOURS[colour],
               n_volumes=n_volumes, censored=censored, threshold=thresholds.get(key),
               unit=unit)
    _trace(figure, grid[len(panels) + 1], dvars_after, label="DVARS after preparation",
           colour=_TRACE_COLOURS["after"], n_volumes=n_volumes, censored=censored)
    figure.savefig(str(out_png), dpi=100, bbox_inches="tight")
    plt.close(figure)
    return str(out_png)


def plot_parcel_carpet(series, out_png, *, kept=None, n_volumes=None, parcel_order=None,
                       branches=None, t_r=None, title="") -> str:
    """A parcellation's parcel time series as a carpet, one row per parcel.

    Parameters
    ----------
    series : array of shape (n_parcels, n_kept)
        The parcel means over the kept volumes.
    kept, n_volumes : optional
        The kept volumes among ``n_volumes`` acquired: the censored ones
        are blank columns (all kept by default).
    parcel_order : array of int, optional
        The rows in the order to draw (parcels in the tree's order).
    branches : array of int, optional
        The branch of each row of ``parcel_order``, non-decreasing: coloured
        bars at the left.
    """
    plt = _pyplot()
    series = np.asarray(series, dtype=np.float64)
    n_parcels = series.shape[0]
    order = np.arange(n_parcels) if parcel_order is None else np.asarray(parcel_order)
    n_volumes = series.shape[1] if n_volumes is None else int(n_volumes)
    kept = np.arange(n_volumes) if kept is None else np.asarray(kept, dtype=np.intp)
    rows = expand_volumes(zscore_rows(series[order]), kept, n_volumes)
    if branches is None:
        segments = {"parcels": list(range(n_parcels))}
    else:
        branches = np.asarray(branches)
        segments = {f"branch {b + 1}": list(np.flatnonzero(branches == b))
                    for b in range(int(branches.max()) + 1)}
    censored = sorted(set(range(n_volumes)) - set(kept.tolist()))
    figure = plt.figure(figsize=(WIDTH, 7.5))
    grid = figure.add_gridspec(1, 1)
    bars = {}
    axes = _carpet(figure, grid[0], rows, segments, t_r=t_r, censored=censored, title=title,
                   bars=bars)
    _restore_carpets(bars, axes[-1])
    figure.savefig(str(out_png), dpi=100, bbox_inches="tight")
    plt.close(figure)
    return str(out_png)


def parcel_rows(children, point_parcels, *, n_branches: int = 5):
    """Parcels in the leaf order of the tree they were cut from, with their main branch.

    ``point_parcels`` gives each point's parcel (``0 .. K - 1``, the leaves'
    order). Each parcel's points are consecutive in leaf order; parcels are
    ordered by their first point there.
    """
    point_parcels = np.asarray(point_parcels, dtype=np.intp)
    leaves = np.arange(point_parcels.size)
    rows, branches = tree_rows(children, leaves, n_branches=n_branches)
    ordered = point_parcels[rows]
    _, first = np.unique(ordered, return_index=True)
    parcel_order = ordered[np.sort(first)]
    return parcel_order, branches[np.sort(first)]


__all__ = ["censoring_thresholds", "describe_preparation", "parcel_rows", "plot_denoising_carpet", "plot_parcel_carpet", "zscore_rows"]
