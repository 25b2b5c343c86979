"""HTML fragments of the report: a run's summary, the methods and versions."""

from __future__ import annotations

from html import escape
from pathlib import Path

from nipype_ward import __version__
from nipype_ward.io.formats import is_surface
from nipype_ward.steps import censored_volumes

#: References the methods paragraph cites.
CITATIONS = {
    "ward": "Ward, J. H. (1963). Hierarchical grouping to optimize an objective function. "
    "Journal of the American Statistical Association, 58(301), 236-244.",
    "thirion": "Thirion, B., Varoquaux, G., Dohmatob, E., & Poline, J.-B. (2014). Which fMRI "
    "clustering gives good brain parcellations? Frontiers in Neuroscience, 8, 167.",
    "nilearn": "Abraham, A., Pedregosa, F., Eickenberg, M., et al. (2014). Machine learning "
    "for neuroimaging with scikit-learn. Frontiers in Neuroinformatics, 8, 14.",
    "nipype": "Gorgolewski, K., Burns, C. D., Madison, C., et al. (2011). Nipype: a flexible, "
    "lightweight and extensible neuroimaging data processing framework in Python. "
    "Frontiers in Neuroinformatics, 5, 13.",
}

#: The group level's further reference (MIGP).
MIGP_CITATION = ("Smith, S. M., Hyvarinen, A., Varoquaux, G., Miller, K. L., & Beckmann, C. F. "
                 "(2014). Group-PCA for very large fMRI datasets. NeuroImage, 101, 738-749.")

_STRATEGIES = {
    "simple": "motion parameters with their derivatives and squares, the white-matter and CSF "
    "signals and fMRIPrep's cosine drift regressors",
    "scrubbing": "motion parameters, white-matter and CSF signals with their derivatives and "
    "squares and fMRIPrep's cosine drift regressors, the volumes of high framewise "
    "displacement being censored",
    "compcor": "motion parameters with their derivatives and squares, the anatomical CompCor "
    "components and fMRIPrep's cosine drift regressors",
}


def _table(rows, header) -> str:
    head = "".join(f"<th>{escape(str(h))}</th>" for h in header)
    body = "".join(
        "<tr>" + "".join(f"<td>{escape(str(v))}</td>" for v in row) + "</tr>" for row in rows
    )
    return f'<table class="table table-sm"><tr>{head}</tr>{body}</table>'


def run_summary(series_info: dict, metrics: list[dict], *, dvars=None) -> str:
    """A run's summary: the series, the censored volumes, the quality at each K.

    ``dvars``: the DVARS of the series before and after its preparation
    (:attr:`~nipype_ward.core.carpet.CarpetSample.dvars_before`, ``dvars_after``),
    summed up in numbers when given.
    """
    censored = censored_volumes(series_info)
    preparation = series_info.get("preparation") or {}
    lines = [
        # File names only: a report is read on other machines than the one that ran.
        "<p>Source: <code>" + escape("; ".join(
            Path(path).name for path in series_info["source"].split("; "))) + "</code></p>",
        f"<p>{series_info['n_voxels']} {_points(series_info['source'])}; "
        f"{series_info['n_volumes']} of "
        f"{series_info['n_volumes_acquired']} volumes kept"
        + (f"; censored volumes: {', '.join(map(str, censored))}" if censored
           else "; no volume censored") + ".</p>",
        "<p>Preparation: " + escape(", ".join(f"{k}={v}" for k, v in sorted(preparation.items())
                                              if v not in (None, False, ()))) + ".</p>",
    ]
    if dvars is not None:
        lines.append(_dvars_line(*dvars, series_info))
    names = series_info.get("confounds")
    if names is None and series_info.get("runs"):  # combined runs: each run's own
        names = sorted({name for run in series_info["runs"] for name in run.get("confounds", [])})
    if names:
        lines.append(f"<p>Confounds regressed out ({len(names)}): <code>"
                     + escape(", ".join(names)) + "</code>.</p>")
    elif names is not None:
        lines.append("<p>No confound regressed out.</p>")
    rows = [
        (m["n_parcels"], f"{m['r2']:.3f}",
         "n/a" if m.get("homogeneity") is None else f"{m['homogeneity']:.3f}",
         "n/a" if m.get("split_half_ari") is None else f"{m['split_half_ari']:.3f}",
         f"{m['parcel_size_min']}/{m['parcel_size_median']:g}/{m['parcel_size_max']}",
         m.get("n_noncontiguous", "n/a"))
        for m in sorted(metrics, key=lambda m: m["n_parcels"])
    ]
    lines.append(_table(rows, ("K", "R2", "homogeneity", "split-half ARI",
                               "sizes min/median/max", "non-contiguous")))
    return "\n".join(lines)


def _dvars_line(before, after, series_info: dict) -> str:
    """DVARS before and after preparation, median and mean, with the volumes kept."""
    import numpy as np

    def numbers(values):
        return f"median {np.median(values):.4g}, mean {np.mean(values):.4g}"

    return (f"<p>DVARS (the root mean square over the {_points(series_info['source'])} of the "
            f"change from one volume to the next): before preparation {numbers(before)} "
            f"(the BOLD's units); after preparation {numbers(after)} (the prepared series' "
            f"units, over the {series_info['n_volumes']} of "
            f"{series_info['n_volumes_acquired']} volumes kept).</p>")


def _points(source: str) -> str:
    """What a series' rows are: voxels, or grayordinates for surface data."""
    return "grayordinates" if is_surface(source.split("; ")[-1]) else "voxels"


def methods(parameters: dict, versions: dict, *, surface: bool = False) -> str:
    """The methods paragraph (with citations) and the software versions of a run.

    ``surface``: the runs were surface data (CIFTI-2 or GIFTI), parcellated
    on their meshes.
    """
    preparation = parameters.get("preparation", {})
    strategy = preparation.get("confounds_strategy")
    steps = []
    if strategy:
        steps.append(f"the confounds selected by nilearn's '{strategy}' strategy "
                     f"({_STRATEGIES[strategy]}) were regressed out")
    if preparation.get("high_pass") or preparation.get("low_pass"):
        steps.append("the signals were Butterworth filtered")
    if preparation.get("standardize"):
        steps.append(f"each series was standardized ({preparation['standardize']})")
    prepared = ("; ".join(steps) + ", with nilearn [3]") if steps else \
        "the signals were used as they are"
    ks = ", ".join(map(str, parameters.get("n_clusters", [])))
    if surface:
        where = "on its grayordinates (a CIFTI-2 file's, or a GIFTI pair's vertices with data)"
        what = "Grayordinates"
        neighbours = ("neighbours on the cortical mesh (or, for subcortical voxels, voxels "
                      "sharing a face within their structure)")
    else:
        where, what = "inside fMRIPrep's brain mask", "Voxels"
        neighbours = (f"voxels sharing a face "
                      f"({escape(str(parameters.get('neighbourhood', 6)))}-neighbourhood)")
    text = (
        f"<p>Parcellations were learned with nipype-ward {escape(__version__)}, built on "
        f"Nipype [4]. For each preprocessed BOLD run, {where}, "
        f"{escape(prepared)}. {what} were then grouped by spatially constrained Ward "
        f"clustering [1, 2]: agglomerative clustering minimising the increase of "
        f"within-cluster variance at each merge, where only {neighbours} may merge. The "
        f"full tree was built once (an exact, compiled equivalent of scikit-learn's) and cut "
        f"at {escape(ks)} parcels. Each parcellation was measured by the share of the "
        f"temporal variance its parcel means keep (R2), the mean within-parcel correlation "
        f"(homogeneity) and the adjusted Rand index between the parcellations of the two "
        f"halves of the run (split-half reproducibility).</p>"
    )
    references = "<ol>" + "".join(f"<li>{escape(ref)}</li>" for ref in CITATIONS.values()) \
        + "</ol>"
    software = _table(sorted(versions.items()), ("software", "version"))
    return text + "<h4>References</h4>" + references + "<h4>Software</h4>" + software


def group_summary(metas: list[dict], figures: dict) -> str:
    """The group report's body: the reduction, then each K's atlas, figures and quality.

    ``metas`` are the atlases' ``_dseg.json`` contents; ``figures`` maps
    ``(K, kind)`` (kind ``parcellation`` or ``quality``) to a relative path.
    """
    first = metas[0]
    reduction = first["Reduction"]
    how = ("the subjects' prepared series were concatenated in time (exact)"
           if reduction["reduction"] == "exact" else
           f"the subjects were combined by MIGP [5] into {reduction['n_features']} features")
    lines = [
        f"<p>{len(first['Subjects'])} subjects ({escape(', '.join(first['Subjects']))}), "
        f"{reduction['n_volumes_total']} volumes in all; {escape(how)}; one Ward tree on the "
        "voxels inside every run's mask, cut at each K.</p>",
    ]
    measured = all("Quality" in meta for meta in metas)
    if not measured:
        lines.append("<p>Quality not measured: the group level's <code>--group-quality</code> "
                     "adds the split-half agreement of two halves of the subjects and each "
                     "run's R2 on the atlases against its own parcellation.</p>")
    else:
        rows = [(m["NumberOfParcels"],
                 "n/a" if m["Quality"]["SplitHalfARI"] is None
                 else f"{m['Quality']['SplitHalfARI']:.3f}",
                 f"{m['Quality']['MeanGroupR2']:.3f}", f"{m['Quality']['MeanOwnR2']:.3f}")
                for m in metas]
        lines.append(_table(rows, ("K", "split-half ARI (subjects)", "mean R2, group atlas",
                                   "mean R2, own parcellation")))
    for meta in metas:
        k = meta["NumberOfParcels"]
        lines.append(f"<h3>K = {k}</h3>")
        for kind in ("parcellation", "quality"):
            if (k, kind) in figures:
                lines.append(f'<img src="{escape(figures[k, kind])}" alt="{kind}, K = {k}" '
                             'style="max-width: 48%">')
        if not measured:
            continue
        lines.append(_table(
            [(run["source"], f"{run['group_r2']:.3f}", f"{run['own_r2']:.3f}",
              f"{run['group_homogeneity']:.3f}", f"{run['own_homogeneity']:.3f}")
             for run in meta["Quality"]["Runs"]],
            ("run", "R2 group", "R2 own", "homogeneity group", "homogeneity own")))
    return "\n".join(lines)
