"""The BIDS App's workflow: every selected fMRIPrep run, parcellated and delivered."""

from __future__ import annotations

import re

from nipype.interfaces import utility as niu
from nipype.pipeline import engine as pe

from nipype_ward.bids import Run
from nipype_ward.image import estimate_mem_gb
from nipype_ward.interfaces import PlotCompression, PlotParcellation, PlotQuality, RunSummary
from nipype_ward.interfaces.bids import ParcelTable, RunProvenance, RunSidecars
from nipype_ward.settings import AppSettings
from nipype_ward.workflows.outputs import init_ds_run_wf
from nipype_ward.workflows.parcellation import init_ward_parcellation_wf


def init_nipype_ward_wf(settings: AppSettings, runs: list[Run], *, name: str = "nipype_ward_wf"):
    """Parcellate each run of ``runs`` (from :func:`nipype_ward.bids.collect_runs`).

    One :func:`init_single_run_wf` per run, side by side in one workflow, so
    the execution plugin runs the runs in parallel.
    """
    workflow = pe.Workflow(name=name)
    workflow.add_nodes([init_single_run_wf(run, settings) for run in runs])
    return workflow


def run_workflow_name(run: Run) -> str:
    """A Nipype-safe name for a run's workflow (``sub_01_task_rest_run_1_space_X_wf``)."""
    stem = run.bold.name.split("_desc-")[0]
    return re.sub(r"[^a-zA-Z0-9]", "_", stem) + "_wf"


def init_single_run_wf(run: Run, settings: AppSettings, *, name: str | None = None):
    """One fMRIPrep run: parcellations at every K, their tables, sidecars, figures, sinks.

    fMRIPrep's ``desc-brain_mask`` replaces the EPI mask; the confounds are
    those the preparation's strategy selects from the run's
    ``desc-confounds_timeseries.tsv`` (nilearn's ``load_confounds_strategy``).
    """
    options = settings.parcellation
    workflow = pe.Workflow(name=name or run_workflow_name(run))
    inputnode = pe.Node(
        niu.IdentityInterface(fields=["bold_file", "mask_file", "confounds_file"]),
        name="inputnode",
    )
    inputnode.inputs.bold_file = str(run.bold)
    inputnode.inputs.mask_file = str(run.mask)
    inputnode.inputs.confounds_file = str(run.confounds)
    parcellation = init_ward_parcellation_wf(
        n_clusters=options.n_clusters,
        neighbourhood=options.neighbourhood,
        preparation=options.preparation,
        split_half=options.split_half,
        save_compressed=options.save_compressed,
        mem_gb=estimate_mem_gb(run.bold),
    )
    sidecars = pe.Node(
        RunSidecars(
            source_dir=str(settings.bids_dir),
            n_clusters=list(options.n_clusters),
            parameters=options.as_dict(),
            metadata=run.metadata,
            confounds_file=str(run.confounds),
        ),
        name="sidecars",
    )
    if run.entities.get("res") is not None:
        sidecars.inputs.resolution = str(run.entities["res"])
    tables = pe.MapNode(ParcelTable(), iterfield=["labels_file"], name="dseg_tables")
    plot_parcellation = pe.MapNode(
        PlotParcellation(), iterfield=["labels_file"], name="plot_parcellation"
    )
    plot_compression = pe.MapNode(
        PlotCompression(), iterfield=["labels_file"], name="plot_compression"
    )
    quality = pe.Node(PlotQuality(), name="plot_quality")
    summary = pe.Node(RunSummary(), name="run_summary")
    ds_run = init_ds_run_wf(
        output_dir=settings.output_dir,
        source_file=run.bold,
        n_clusters=options.n_clusters,
        save_compressed=options.save_compressed,
    )
    # fmt: off
    workflow.connect([
        (inputnode, parcellation, [("bold_file", "inputnode.bold_file"),
                                   ("mask_file", "inputnode.mask_file")]),
        (inputnode, sidecars, [("bold_file", "bold_file"), ("mask_file", "mask_file")]),
        (parcellation, sidecars, [("outputnode.series_info", "series_info")]),
        (parcellation, tables, [("outputnode.labels_files", "labels_file")]),
        (parcellation, plot_parcellation, [("outputnode.labels_files", "labels_file"),
                                           ("outputnode.mean_file", "mean_file"),
                                           ("outputnode.mask_file", "mask_file")]),
        (parcellation, plot_compression, [("outputnode.labels_files", "labels_file"),
                                          ("outputnode.series_file", "series_file"),
                                          ("outputnode.mask_file", "mask_file")]),
        (parcellation, ds_run, [("outputnode.labels_files", "inputnode.labels_files"),
                                ("outputnode.timeseries_files", "inputnode.timeseries_files"),
                                ("outputnode.metrics_files", "inputnode.metrics_files"),
                                ("outputnode.tree_file", "inputnode.tree_file")]),
        (tables, ds_run, [("out_file", "inputnode.dseg_tables")]),
        (sidecars, ds_run, [("dseg_meta", "inputnode.dseg_meta"),
                            ("timeseries_meta", "inputnode.timeseries_meta"),
                            ("bold_meta", "inputnode.bold_meta")]),
        (plot_parcellation, ds_run, [("out_file", "inputnode.parcellation_figures")]),
        (plot_compression, ds_run, [("out_file", "inputnode.compression_figures")]),
        (parcellation, quality, [("outputnode.metrics_files", "metrics_files")]),
        (tables, quality, [("out_file", "table_files")]),
        (parcellation, summary, [("outputnode.series_info", "series_info"),
                                 ("outputnode.metrics_files", "metrics_files")]),
        (quality, ds_run, [("out_file", "inputnode.quality_figure")]),
        (summary, ds_run, [("out_file", "inputnode.summary_html")]),
    ])
    # fmt: on
    if options.save_compressed:
        workflow.connect([
            (parcellation, ds_run, [("outputnode.compressed_files", "inputnode.compressed_files")]),
        ])
    if settings.write_provenance:
        sources = [str(run.bold), str(run.mask)]
        if options.preparation.confounds_strategy:
            sources.append(str(run.confounds))
        provenance = pe.Node(
            RunProvenance(source_files=sources, source_dir=str(settings.bids_dir),
                          output_dir=str(settings.output_dir), parameters=options.as_dict(),
                          run_id=settings.run_id, run_name=run.name,
                          subject=run.entities["subject"]),
            name="provenance", run_without_submitting=True,
        )
        workflow.connect([(ds_run, provenance, [("outputnode.out_files", "derivatives")])])
    return workflow
