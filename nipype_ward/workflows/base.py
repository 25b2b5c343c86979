"""The BIDS App's workflow: every selected fMRIPrep run, parcellated and delivered."""

from __future__ import annotations

import re
from collections import defaultdict

from nipype.interfaces import utility as niu
from nipype.pipeline import engine as pe

from nipype_ward.bids import Run, confounds_tables
from nipype_ward.interfaces import (
    CombineSeries,
    ParcelCompress,
    PlotParcellation,
    PlotQuality,
    PrepareSignals,
    RunSummary,
)
from nipype_ward.interfaces.bids import (
    DerivativesSink,
    ParcelTable,
    RunProvenance,
    RunSidecars,
)
from nipype_ward.io.series import estimate_mem_gb, read_header
from nipype_ward.settings import AppSettings
from nipype_ward.templates import surface_meshes
from nipype_ward.workflows.figures import (
    CARPET_INPUTS,
    FIGURE_INPUTS,
    connect_fields,
    init_carpet_figures_wf,
    init_parcellation_figures_wf,
)
from nipype_ward.workflows.outputs import init_ds_run_wf
from nipype_ward.workflows.parcellation import (
    init_prepared_series_wf,
    init_ward_parcellation_wf,
    set_preparation,
)


def init_nipype_ward_wf(*, settings: AppSettings, runs: list[Run], name: str = "nipype_ward_wf"):
    """The participant level: parcellate ``runs`` (from :func:`nipype_ward.bids.collect_runs`).

    One :func:`init_single_run_wf` per run, or with ``settings.combine_runs``
    one :func:`init_combined_runs_wf` per subject and space; side by side in
    one workflow, so the execution plugin runs them in parallel. Each of
    those top-level workflows holds the runs of one subject, named as
    :func:`subject_workflows` names them.

    Parameters
    ----------
    settings : :class:`~nipype_ward.settings.AppSettings`
        The command line's settings.
    runs : list of :class:`~nipype_ward.bids.Run`
        The selected runs.
    name : str
        The workflow's name.

    Inputs and outputs: none; every file is set on the nodes from ``runs``
    and delivered by sink nodes into ``settings.output_dir``.
    """
    workflow = pe.Workflow(name=name)
    for wf_name, (_, group) in subject_workflows(settings, runs).items():
        if settings.combine_runs:
            workflow.add_nodes([init_combined_runs_wf(runs=group, settings=settings,
                                                      name=wf_name)])
        else:
            workflow.add_nodes([init_single_run_wf(run=group[0], settings=settings,
                                                   name=wf_name)])
    return workflow


def subject_workflows(settings: AppSettings, runs: list[Run]) -> dict[str, tuple[str, list[Run]]]:
    """The top-level workflows of :func:`init_nipype_ward_wf`: name -> (subject, runs).

    A runner tells whose a failed node is from this (the subject of the
    top-level workflow that holds it), never from the node's own name.
    """
    if settings.combine_runs:
        return {combined_workflow_name(group): (str(group[0].entities["subject"]), group)
                for group in group_runs(runs)}
    return {run_workflow_name(run): (str(run.entities["subject"]), [run]) for run in runs}


def group_runs(runs: list[Run]) -> list[list[Run]]:
    """The runs of each subject in each space (and resolution), in a stable order."""
    groups = defaultdict(list)
    for run in runs:
        key = tuple(str(run.entities.get(e)) for e in ("subject", "space", "res", "den"))
        groups[key].append(run)
    return [groups[key] for key in sorted(groups)]


def run_workflow_name(run: Run) -> str:
    """A Nipype-safe name for a run's workflow (``sub_01_task_rest_run_1_space_X_wf``)."""
    stem = run.bold.name.split("_desc-")[0]
    if run.is_surface:  # no desc: up to the suffix, the hemisphere left out
        stem = re.sub(r"_hemi-[LR]", "", stem).split("_bold.")[0]
    return re.sub(r"[^a-zA-Z0-9]", "_", stem) + "_wf"


def combined_workflow_name(runs: list[Run]) -> str:
    """A Nipype-safe name for the combined runs of a subject in a space (``--combine-runs``)."""
    first = runs[0]
    return re.sub(r"[^a-zA-Z0-9]", "_", "combined_sub-{}_space-{}{}{}".format(
        first.entities["subject"], first.entities.get("space"),
        f"_res-{first.entities['res']}" if first.entities.get("res") else "",
        f"_den-{first.entities['den']}" if first.entities.get("den") else "")) + "_wf"


def run_parcellation_wf(run: Run, settings: AppSettings, *, split_half: bool | None = None,
                        save_compressed: bool | None = None):
    """The parcellation of one run, as both analysis levels build it (same names, same cache).

    ``split_half`` and ``save_compressed`` override the settings' (the group
    level needs neither for a run: a participant run with
    ``--no-split-half`` leaves it every node in the cache).
    """
    options = settings.parcellation
    parcellation = init_ward_parcellation_wf(
        n_clusters=options.n_clusters,
        neighbourhood=options.neighbourhood,
        preparation=options.preparation,
        split_half=options.split_half if split_half is None else split_half,
        save_compressed=options.save_compressed if save_compressed is None else save_compressed,
        surfaces=run_meshes(run, settings),
        mem_gb=settings.node_mem_gb(estimate_mem_gb(run.sources, mask=run.mask)),
        omp_nthreads=settings.node_threads(),
        carpet=True,  # both levels: one prepare_signals, one cache
    )
    parcellation.inputs.inputnode.bold_file = [str(path) for path in run.sources]
    if run.mask is not None:
        parcellation.inputs.inputnode.mask_file = str(run.mask)
    return parcellation


def run_series_wf(run: Run, settings: AppSettings):
    """One run read and prepared, as :func:`run_parcellation_wf` does it (same names, same cache)."""
    series = init_prepared_series_wf(
        preparation=settings.parcellation.preparation,
        mem_gb=settings.node_mem_gb(estimate_mem_gb(run.sources, mask=run.mask)),
        omp_nthreads=settings.node_threads(),
        carpet=True,  # as run_parcellation_wf's: one prepare_signals, one cache
    )
    series.inputs.inputnode.bold_file = [str(path) for path in run.sources]
    if run.mask is not None:
        series.inputs.inputnode.mask_file = str(run.mask)
    return series


def run_meshes(run: Run, settings: AppSettings):
    """The (left, right) meshes of a surface run (``--surfaces``, else its space's); None for volumes."""
    if not run.is_surface:
        return None
    return surface_meshes(str(run.entities["space"]), surfaces=settings.surfaces)


def init_single_run_wf(*, run: Run, settings: AppSettings, name: str | None = None):
    """One fMRIPrep run: parcellations at every K, their tables, sidecars, figures, sinks.

    fMRIPrep's ``desc-brain_mask`` replaces the EPI mask; the confounds are
    those the preparation's strategy selects from the run's
    ``desc-confounds_timeseries.tsv`` (nilearn's ``load_confounds_strategy``).
    With ``settings.atlases``, the run's series is also reduced on each
    given atlas.

    .. workflow::
        :graph2use: orig
        :simple_form: yes

        import tempfile
        from pathlib import Path
        from nipype_ward.bids import Selection, collect_runs
        from nipype_ward.datasets import write_fmriprep_example
        from nipype_ward.settings import AppSettings
        from nipype_ward.workflows.base import init_single_run_wf

        root = Path(tempfile.mkdtemp())
        bids_dir = write_fmriprep_example(root / "fmriprep", subjects=("01",))
        runs = collect_runs(bids_dir, Selection())
        settings = AppSettings(bids_dir=bids_dir, output_dir=root / "out",
                               work_dir=root / "work", analysis_level="participant")
        wf = init_single_run_wf(run=runs[0], settings=settings)

    Parameters
    ----------
    run : :class:`~nipype_ward.bids.Run`
        The run: its BOLD series (one file, or a GIFTI pair), its brain mask
        and confounds table.
    settings : :class:`~nipype_ward.settings.AppSettings`
        K, the preparation, the atlases, the output folder.
    name : str
        The workflow's name (default: :func:`run_workflow_name`).

    Inputs and outputs: none; the run's files are set on the nodes, its
    derivatives delivered by sink nodes (:func:`~nipype_ward.workflows.outputs.init_ds_run_wf`).
    """
    workflow = pe.Workflow(name=name or run_workflow_name(run))
    parcellation = run_parcellation_wf(run, settings)
    workflow.add_nodes([parcellation])
    _add_deliveries(workflow, parcellation, [run], settings)
    for label, atlas in settings.atlases:
        _add_atlas_timeseries(workflow, parcellation, run, label, atlas, settings)
    return workflow


def init_combined_runs_wf(*, runs: list[Run], settings: AppSettings, name: str | None = None):
    """One parcellation from several runs of a subject in one space (``--combine-runs``).

    Each run is prepared on its own (:class:`~nipype_ward.interfaces.PrepareSignals`:
    its mask, confounds, censoring, standardization), the prepared series are
    concatenated in time in the voxels of every run's mask
    (:class:`~nipype_ward.interfaces.CombineSeries`), and one tree is built
    on them. Outputs are named after the entities the runs share, with
    ``desc-combined``; each run also gets its own time series and metrics on
    the combined parcellation.

    Parameters
    ----------
    runs : list of :class:`~nipype_ward.bids.Run`
        The runs of one subject in one space.
    settings : :class:`~nipype_ward.settings.AppSettings`
        K, the preparation, the output folder.
    name : str
        The workflow's name (default: :func:`combined_workflow_name`).

    Inputs and outputs: none; the runs' files are set on the nodes, the
    derivatives delivered by sink nodes.
    """
    options = settings.parcellation
    first = runs[0]
    workflow = pe.Workflow(name=name or combined_workflow_name(runs))
    mem_gb = estimate_mem_gb(first.sources, mask=first.mask)
    # The combined series' nodes hold every run: each bound times the runs.
    combined = settings.node_mem_gb({key: value * len(runs) for key, value in mem_gb.items()})
    # Each run's own files (its series' one or two files, its brain mask) are mapped with it.
    masks = [str(run.mask) for run in runs if run.mask is not None]
    prepare = pe.MapNode(PrepareSignals(), iterfield=["in_file"] + (["brain_mask_file"]
                                                                     if masks else []),
                         name="prepare_runs", mem_gb=settings.node_mem_gb(mem_gb["prepare"]),
                         n_procs=settings.node_threads())
    set_preparation(prepare, options.preparation)
    prepare.inputs.in_file = [[str(path) for path in run.sources] for run in runs]
    if masks:
        prepare.inputs.brain_mask_file = masks
    combine = pe.Node(CombineSeries(), name="combine_series", mem_gb=combined["prepare"])
    parcellation = init_ward_parcellation_wf(
        n_clusters=options.n_clusters,
        neighbourhood=options.neighbourhood,
        split_half=options.split_half,
        save_compressed=False,
        prepared=True,
        surfaces=run_meshes(first, settings),
        mem_gb=combined,
        omp_nthreads=settings.node_threads(),
    )
    # fmt: off
    workflow.connect([
        (prepare, combine, [("series_file", "series_files"), ("mask_file", "mask_files"),
                            ("series_info", "series_infos"), ("mean_file", "mean_files")]),
        (combine, parcellation, [("series_file", "inputnode.series_file"),
                                 ("series_info", "inputnode.series_info"),
                                 ("mask_file", "inputnode.mask_file"),
                                 ("mean_file", "inputnode.mean_file")]),
    ])
    # fmt: on
    _add_deliveries(workflow, parcellation, runs, settings, desc="combined")
    if len(runs) > 1:  # alone, a run's series on the parcellation is the combined one
        for index, run in enumerate(runs):
            _add_run_on_combined(workflow, index, run, combine, parcellation, settings)
    return workflow


def _add_atlas_timeseries(workflow, parcellation, run: Run, label: str, atlas,
                          settings: AppSettings):
    """A run's series reduced on a given atlas (``--atlas``): time series, metrics, figure.

    Named as the run's own outputs with the atlas' label in ``seg-``
    (``..._seg-<label>_stat-mean_timeseries.tsv``, as XCP-D names its
    parcellated series).
    """
    prefix = "atlas_" + re.sub(r"[^a-zA-Z0-9]", "_", label)
    compress = pe.Node(ParcelCompress(labels_file=str(atlas), atlas=True, save_compressed=False),
                       name=f"{prefix}_compress")
    sidecars = pe.Node(RunSidecars(
        bold_file=[str(path) for path in run.sources], confounds_file=confounds_tables([run]),
        source_dir=str(settings.bids_dir), n_clusters=[0], atlas_file=str(atlas),
        atlas_label=label, parameters=settings.parcellation.as_dict(), metadata=run.metadata,
    ), name=f"{prefix}_sidecars")
    if run.mask is not None:
        sidecars.inputs.mask_file = [str(run.mask)]
    figure = pe.Node(PlotParcellation(labels_file=str(atlas), title=f"atlas {label}"),
                     name=f"{prefix}_figure")
    for field, path in zip(("left_surface", "right_surface"), run_meshes(run, settings) or ()):
        if path is not None:
            setattr(figure.inputs, field, str(path))
    common = {"base_directory": str(settings.output_dir), "source_dir": str(settings.bids_dir),
              "source_file": [str(path) for path in run.sources]}
    sinks = {
        "timeseries": pe.Node(DerivativesSink(**common, entities={
            "segmentation": label, "statistic": "mean", "suffix": "timeseries"}),
            name=f"ds_{prefix}_timeseries", run_without_submitting=True),
        "metrics": pe.Node(DerivativesSink(**common, entities={
            "segmentation": label, "suffix": "metrics"}),
            name=f"ds_{prefix}_metrics", run_without_submitting=True),
        "figure": pe.Node(DerivativesSink(**common, entities={
            "datatype": "figures", "segmentation": label, "desc": "parcellation",
            "suffix": "bold"}), name=f"ds_{prefix}_figure", run_without_submitting=True),
    }
    select_meta = pe.Node(niu.Select(index=0), name=f"{prefix}_meta",
                          run_without_submitting=True)
    # fmt: off
    workflow.connect([
        (parcellation, compress, [("outputnode.series_file", "series_file"),
                                  ("outputnode.series_info", "series_info"),
                                  ("outputnode.mask_file", "mask_file"),
                                  ("outputnode.connectivity_file", "connectivity_file")]),
        (parcellation, sidecars, [("outputnode.series_info", "series_info")]),
        (parcellation, figure, [("outputnode.mean_file", "mean_file"),
                                ("outputnode.mask_file", "mask_file")]),
        (sidecars, select_meta, [("timeseries_meta", "inlist")]),
        (compress, sinks["timeseries"], [("timeseries_file", "in_file")]),
        (select_meta, sinks["timeseries"], [("out", "meta_dict")]),
        (compress, sinks["metrics"], [("metrics_file", "in_file")]),
        (figure, sinks["figure"], [("out_file", "in_file")]),
    ])
    # fmt: on


def _add_run_on_combined(workflow, index, run, combine, parcellation, settings):
    """A run's own time series and metrics on a combined parcellation, delivered."""
    options = settings.parcellation
    prefix = f"run{index:02d}"
    select = pe.Node(niu.Select(index=index), name=f"{prefix}_series",
                     run_without_submitting=True)
    select_info = pe.Node(niu.Select(index=index), name=f"{prefix}_info",
                          run_without_submitting=True)
    compress = pe.MapNode(ParcelCompress(save_compressed=False), iterfield=["labels_file"],
                          name=f"{prefix}_compress")
    sidecars = pe.Node(RunSidecars(
        bold_file=[str(path) for path in run.sources], confounds_file=confounds_tables([run]),
        source_dir=str(settings.bids_dir), n_clusters=list(options.n_clusters),
        parameters=options.as_dict(), metadata=run.metadata,
    ), name=f"{prefix}_sidecars")
    if run.mask is not None:
        sidecars.inputs.mask_file = str(run.mask)
    ds_run = init_ds_run_wf(
        output_dir=settings.output_dir, source_file=run.sources, n_clusters=options.n_clusters,
        source_dir=settings.bids_dir, desc="combined",
        fields=("timeseries_files", "metrics_files", "timeseries_meta", "delivered_labels"),
        name=f"ds_{prefix}_wf",
    )
    delivered = workflow.get_node("ds_run_wf")  # the combined parcellation's own delivery
    # fmt: off
    workflow.connect([
        (combine, select, [("run_series_files", "inlist")]),
        (combine, select_info, [("run_series_infos", "inlist")]),
        (select, compress, [("out", "series_file")]),
        (select_info, compress, [("out", "series_info")]),
        (select_info, sidecars, [("out", "series_info")]),
        (combine, compress, [("mask_file", "mask_file")]),
        (parcellation, compress, [("outputnode.labels_files", "labels_file"),
                                  ("outputnode.connectivity_file", "connectivity_file")]),
        (compress, ds_run, [("timeseries_file", "inputnode.timeseries_files"),
                            ("metrics_file", "inputnode.metrics_files")]),
        (sidecars, ds_run, [("timeseries_meta", "inputnode.timeseries_meta")]),
        (delivered, ds_run, [("outputnode.labels_files", "inputnode.delivered_labels")]),
    ])
    # fmt: on


def _add_deliveries(workflow, parcellation, runs: list[Run], settings: AppSettings, *,
                    desc: str | None = None):
    """Tables, sidecars, figures, summary and sinks of a parcellation of ``runs``."""
    options = settings.parcellation
    strategy = options.preparation.confounds_strategy
    sidecars = pe.Node(
        RunSidecars(
            bold_file=[str(path) for run in runs for path in run.sources],
            mask_file=[str(run.mask) for run in runs if run.mask is not None],
            confounds_file=confounds_tables(runs),
            source_dir=str(settings.bids_dir),
            n_clusters=list(options.n_clusters),
            parameters=options.as_dict(),
            metadata=runs[0].metadata,
        ),
        name="sidecars",
    )
    if runs[0].entities.get("res") is not None:
        sidecars.inputs.resolution = str(runs[0].entities["res"])
    if runs[0].entities.get("den") is not None:
        sidecars.inputs.density = str(runs[0].entities["den"])
    tables = pe.MapNode(ParcelTable(), iterfield=["labels_file"], name="dseg_tables",
                        run_without_submitting=True)
    figures = init_parcellation_figures_wf(surfaces=run_meshes(runs[0], settings))
    connect_fields(workflow, parcellation, figures, FIGURE_INPUTS)
    quality = pe.Node(PlotQuality(), name="plot_quality")
    summary = pe.Node(RunSummary(), name="run_summary")
    save_compressed = options.save_compressed and desc is None
    # A run's own carpets (runs combined: each was prepared in its own mask, without a tree).
    carpets = desc is None
    header = read_header(runs[0].sources)
    ds_run = init_ds_run_wf(
        output_dir=settings.output_dir,
        source_file=[path for run in runs for path in run.sources],
        n_clusters=options.n_clusters,
        source_dir=settings.bids_dir,
        save_compressed=save_compressed,
        desc=desc,
        hemispheres=header.hemispheres,
        parcel_series=header.parcel_series,
        carpets=carpets,
    )
    # fmt: off
    workflow.connect([
        (parcellation, sidecars, [("outputnode.series_info", "series_info")]),
        (parcellation, tables, [("outputnode.labels_files", "labels_file")]),
        (parcellation, ds_run, [("outputnode.labels_files", "inputnode.labels_files"),
                                ("outputnode.timeseries_files", "inputnode.timeseries_files"),
                                ("outputnode.metrics_files", "inputnode.metrics_files"),
                                ("outputnode.tree_file", "inputnode.tree_file")]),
        (tables, ds_run, [("out_file", "inputnode.dseg_tables")]),
        (sidecars, ds_run, [("dseg_meta", "inputnode.dseg_meta"),
                            ("timeseries_meta", "inputnode.timeseries_meta"),
                            ("bold_meta", "inputnode.bold_meta")]),
        (figures, ds_run, [("outputnode.parcellation_figures", "inputnode.parcellation_figures"),
                           ("outputnode.compression_figures", "inputnode.compression_figures")]),
        (parcellation, quality, [("outputnode.metrics_files", "metrics_files")]),
        (tables, quality, [("out_file", "table_files")]),
        (parcellation, summary, [("outputnode.series_info", "series_info"),
                                 ("outputnode.metrics_files", "metrics_files")]),
        (quality, ds_run, [("out_file", "inputnode.quality_figure")]),
        (summary, ds_run, [("out_file", "inputnode.summary_html")]),
    ])
    # fmt: on
    if save_compressed:
        workflow.connect([
            (parcellation, ds_run, [("outputnode.compressed_files", "inputnode.compressed_files")]),
        ])
    if carpets:
        carpet_figures = init_carpet_figures_wf(confounds_file=runs[0].confounds)
        connect_fields(workflow, parcellation, carpet_figures, CARPET_INPUTS)
        workflow.connect([(parcellation, summary, [("outputnode.carpet_file", "carpet_file")])])
        workflow.connect([(carpet_figures, ds_run, [
            ("outputnode.carpet_figure", "inputnode.carpet_figure"),
            ("outputnode.parcel_carpet_figures", "inputnode.parcel_carpet_figures"),
        ])])
    if header.parcel_series:
        workflow.connect([
            (parcellation, ds_run, [("outputnode.parcel_series_files", "inputnode.parcel_series_files")]),
        ])
    if settings.write_provenance:
        sources = [str(path) for run in runs for path in run.sources]
        sources += [str(run.mask) for run in runs if run.mask is not None]
        if strategy:
            sources += confounds_tables(runs)
        name = runs[0].name if len(runs) == 1 else f"sub-{runs[0].entities['subject']}_combined"
        provenance = pe.Node(
            RunProvenance(source_files=sources, source_dir=str(settings.bids_dir),
                          output_dir=str(settings.output_dir), parameters=options.as_dict(),
                          run_id=settings.run_id, run_name=name,
                          subject=runs[0].entities["subject"],
                          written_after=[f"sub-{runs[0].entities['subject']}.html",
                                         "dataset_description.json"]),
            name="provenance", run_without_submitting=True,
        )
        workflow.connect([
            (ds_run, provenance, [("outputnode.out_files", "derivatives")]),
            (sidecars, provenance, [("source_checksums", "source_checksums")]),
        ])
