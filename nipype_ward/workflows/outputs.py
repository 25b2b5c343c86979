"""Writing a run's results as BIDS derivatives, from inside the graph."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from nipype.interfaces import utility as niu
from nipype.pipeline import engine as pe

from nipype_ward.interfaces.bids import DerivativesSink, SplitHemispheres

#: What is delivered per K: inputnode field -> (entities, sidecar field or None).
PER_K_OUTPUTS = {
    "labels_files": ({"segmentation": "ward", "suffix": "dseg"}, "dseg_meta"),
    "dseg_tables": ({"segmentation": "ward", "suffix": "dseg"}, None),
    "timeseries_files": (
        {"segmentation": "ward", "statistic": "mean", "suffix": "timeseries"}, "timeseries_meta"
    ),
    "metrics_files": ({"segmentation": "ward", "suffix": "metrics"}, None),
    "parcellation_figures": (
        {"datatype": "figures", "segmentation": "ward", "desc": "parcellation", "suffix": "bold"},
        None,
    ),
    "compression_figures": (
        {"datatype": "figures", "segmentation": "ward", "desc": "compression", "suffix": "bold"},
        None,
    ),
    "parcel_carpet_figures": (
        {"datatype": "figures", "segmentation": "ward", "desc": "parcelcarpet", "suffix": "bold"},
        None,
    ),
    # Surface data: the parcel series as a CIFTI-2 file too, as XCP-D names it.
    "parcel_series_files": (
        {"segmentation": "ward", "statistic": "mean", "suffix": "timeseries"}, None
    ),
}

#: What a GIFTI pair gets as two GIFTI files, one per hemisphere (hemi-L, hemi-R).
PER_HEMISPHERE = ("labels_files", "compressed_files")


#: What is delivered once per run: inputnode field -> entities.
PER_RUN_OUTPUTS = {
    "tree_file": {"segmentation": "ward", "suffix": "tree"},
    "quality_figure": {"datatype": "figures", "segmentation": "ward", "desc": "quality",
                       "suffix": "bold"},
    "summary_html": {"datatype": "figures", "segmentation": "ward", "desc": "summary",
                     "suffix": "bold"},
    # The run's denoising, rows in its tree's order (a run's, not a K's).
    "carpet_figure": {"datatype": "figures", "desc": "carpet", "suffix": "bold"},
}

#: What only a run parcellated with its carpet sample delivers (``carpets=True``).
CARPET_OUTPUTS = ("carpet_figure", "parcel_carpet_figures")


def init_ds_run_wf(
    *,
    output_dir,
    source_file,
    n_clusters: Sequence[int],
    source_dir=None,
    save_compressed: bool = False,
    desc: str | None = None,
    fields: Sequence[str] | None = None,
    hemispheres: bool = False,
    parcel_series: bool = False,
    carpets: bool = False,
    name: str = "ds_run_wf",
):
    """Deliver a run's parcellations, tables, time series and metrics under BIDS names.

    One :class:`~nipype_ward.interfaces.bids.DerivativesSink` map node (over
    K) per kind of file, as fMRIPrep's ``init_func_derivatives_wf`` does with
    ``DerivativesDataSink``; names are built from ``source_file``'s entities
    (its ``desc`` dropped) and those of :data:`PER_K_OUTPUTS`, e.g.
    ``sub-01_task-rest_space-MNI152NLin2009cAsym_seg-ward_scale-1000_dseg.nii.gz``.
    ``source_file`` may be a list (runs combined): their common entities
    name the outputs; with ``source_dir`` (their dataset), the metrics name
    them by BIDS URI, not by machine path. ``desc`` (e.g. ``"combined"``) marks every output, in
    the ``desc`` entity of data files and as a prefix of the figures'.
    ``fields`` restricts the delivery to those inputs (all by default).
    With ``hemispheres`` (data that came as a GIFTI pair, ``source_file``
    both hemispheres), the labels and compressed series are delivered as
    one GIFTI file per hemisphere (``hemi-L``, ``hemi-R``), everything else
    once for both. With ``parcel_series`` (CIFTI data), the parcel series are
    also delivered as CIFTI-2 parcel series (sharing the TSV's sidecar).
    With ``carpets``, the run's carpet figures too (:data:`CARPET_OUTPUTS`).

    Inputs
    ------
    labels_files, dseg_tables, timeseries_files, metrics_files, compressed_files
        One per K, in the order of ``n_clusters``.
    parcel_series_files
        Surface data: the parcel series as CIFTI-2 files, one per K.
    parcellation_figures, compression_figures
        One PNG per K.
    carpet_figure, parcel_carpet_figures
        With ``carpets``: the run's denoising carpet, its parcel carpet per K.
    tree_file, quality_figure, summary_html
        The run's Ward tree, its quality figure and its summary for the report.
    dseg_meta, timeseries_meta, bold_meta
        The sidecars, one per K
        (:class:`~nipype_ward.interfaces.bids.RunSidecars`).
    delivered_labels
        When this workflow delivers no labels itself (a run's series on its
        subject's combined parcellation): the label files delivered beside
        it, one per K (a pair per K for GIFTI data), which its metrics name.

    Outputs
    -------
    out_files
        Every delivered file (sidecars apart), one flat list.
    labels_files
        The delivered label files, one per K (a [left, right] pair per K for
        GIFTI data).
    """
    inputs = [*PER_K_OUTPUTS, *PER_RUN_OUTPUTS, "compressed_files", "dseg_meta",
              "timeseries_meta", "bold_meta", "delivered_labels"]
    wanted = set(fields) if fields is not None else set(inputs)
    if not parcel_series:
        wanted.discard("parcel_series_files")
    if not carpets:
        wanted -= set(CARPET_OUTPUTS)
    workflow = pe.Workflow(name=name)
    inputnode = pe.Node(niu.IdentityInterface(fields=inputs), name="inputnode")
    outputnode = pe.Node(niu.IdentityInterface(fields=["out_files", "labels_files"]),
                         name="outputnode")
    sinks = []
    sources = [str(source_file)] if isinstance(source_file, (str, Path)) \
        else [str(path) for path in source_file]
    common = {"base_directory": str(output_dir), "source_file": sources}
    if source_dir is not None:
        common["source_dir"] = str(source_dir)

    def marked(entities):
        if desc is None:
            return entities
        if entities.get("datatype") == "figures":
            return {**entities, "desc": desc + entities["desc"]}
        return {**entities, "desc": desc}

    per_k = {field: ([marked({**entities, "scale": int(k)}) for k in n_clusters], meta_field)
             for field, (entities, meta_field) in PER_K_OUTPUTS.items() if field in wanted}
    if save_compressed and "compressed_files" in wanted:
        # A BOLD series of its own: K goes in desc (BIDS has no scale there).
        per_k["compressed_files"] = (
            [{"desc": f"{desc or ''}ward{int(k)}", "suffix": "bold"} for k in n_clusters],
            "bold_meta",
        )
    label_sinks = []
    for field, (entities, meta_field) in per_k.items():
        source, out_fields = inputnode, [(field, "")]
        if hemispheres and field in PER_HEMISPHERE:
            source = pe.MapNode(SplitHemispheres(), iterfield=["in_file"], name=f"split_{field}",
                                run_without_submitting=True)
            workflow.connect([(inputnode, source, [(field, "in_file")])])
            out_fields = [("left_hemisphere", "L"), ("right_hemisphere", "R")]
        # A metrics JSON names the delivered labels it measures, not a working file:
        # those this workflow delivered, else those delivered beside it.
        with_labels = field == "metrics_files" and (
            bool(label_sinks) or "delivered_labels" in wanted)
        for out_field, hemi in out_fields:
            node = pe.MapNode(
                DerivativesSink(**common),
                iterfield=["in_file", "entities"] + (["meta_dict"] if meta_field else [])
                + (["labels_file"] if with_labels else []),
                name=f"ds_{field}" + (f"_hemi{hemi}" if hemi else ""),
                run_without_submitting=True,
            )
            node.inputs.entities = [{**e, "hemi": hemi} for e in entities] if hemi else entities
            sinks.append(node)
            workflow.connect([(source, node, [(out_field, "in_file")])])
            if meta_field:
                workflow.connect([(inputnode, node, [(meta_field, "meta_dict")])])
            if field == "labels_files":
                label_sinks.append(node)
            if with_labels and label_sinks:
                source_node, source_field = _delivered_labels(workflow, label_sinks)
                workflow.connect([(source_node, node, [(source_field, "labels_file")])])
            elif with_labels:
                workflow.connect([(inputnode, node, [("delivered_labels", "labels_file")])])
    for field, entities in PER_RUN_OUTPUTS.items():
        if field not in wanted:
            continue
        node = pe.Node(DerivativesSink(**common, entities=marked(entities)), name=f"ds_{field}",
                       run_without_submitting=True)
        workflow.connect([(inputnode, node, [(field, "in_file")])])
        sinks.append(node)
    gather = pe.Node(niu.Merge(len(sinks)), name="gather_outputs", run_without_submitting=True)
    workflow.connect(
        [(node, gather, [("out_file", f"in{index}")]) for index, node in enumerate(sinks, 1)]
        + [(gather, outputnode, [("out", "out_files")])]
    )
    if label_sinks:
        source_node, source_field = _delivered_labels(workflow, label_sinks)
        workflow.connect([(source_node, outputnode, [(source_field, "labels_files")])])
    return workflow


def _delivered_labels(workflow, label_sinks) -> tuple:
    """The (node, field) giving the delivered label file(s) of each K (both hemispheres')."""
    if len(label_sinks) == 1:
        return label_sinks[0], "out_file"
    pairs = workflow.get_node("labels_per_k")
    if pairs is None:
        pairs = pe.Node(niu.Function(function=_per_k, input_names=["left", "right"],
                                     output_names=["pairs"]),
                        name="labels_per_k", run_without_submitting=True)
        workflow.connect([
            (label_sinks[0], pairs, [("out_file", "left")]),
            (label_sinks[1], pairs, [("out_file", "right")]),
        ])
    return pairs, "pairs"


def _per_k(left, right):
    """[[left_1, right_1], [left_2, right_2], ...] from the two hemispheres' lists."""
    return [[a, b] for a, b in zip(left, right)]
