"""The figures of a parcellation and a run's carpets, as sub-workflows of cached nodes."""

from __future__ import annotations

from nipype.interfaces import utility as niu
from nipype.pipeline import engine as pe

from nipype_ward.interfaces import (
    PlotCompression,
    PlotDenoisingCarpet,
    PlotParcelCarpet,
    PlotParcellation,
)

#: inputnode fields, fed by the parcellation workflow's outputnode fields of the same names.
FIGURE_INPUTS = ("labels_files", "mean_file", "mask_file", "series_file")


def init_parcellation_figures_wf(*, surfaces=None, name: str = "parcellation_figures_wf"):
    """Two figures per K: the parcels over the mean EPI, a volume beside its compression.

    With ``surfaces`` (the left and right meshes of surface data), both are
    drawn on the cortices instead.

    Inputs
    ------
    labels_files, mean_file, mask_file, series_file
        As :func:`~nipype_ward.workflows.init_ward_parcellation_wf` outputs them.

    Outputs
    -------
    parcellation_figures, compression_figures
        One PNG per K, in the order of ``labels_files``.
    """
    workflow = pe.Workflow(name=name)
    inputnode = pe.Node(niu.IdentityInterface(fields=list(FIGURE_INPUTS)), name="inputnode")
    outputnode = pe.Node(
        niu.IdentityInterface(fields=["parcellation_figures", "compression_figures"]),
        name="outputnode",
    )
    plot_parcellation = pe.MapNode(
        PlotParcellation(), iterfield=["labels_file"], name="plot_parcellation"
    )
    plot_compression = pe.MapNode(
        PlotCompression(), iterfield=["labels_file"], name="plot_compression"
    )
    for node in (plot_parcellation, plot_compression):
        for field, path in zip(("left_surface", "right_surface"), surfaces or ()):
            if path is not None:
                setattr(node.inputs, field, str(path))
    # fmt: off
    workflow.connect([
        (inputnode, plot_parcellation, [("labels_files", "labels_file"),
                                        ("mean_file", "mean_file"),
                                        ("mask_file", "mask_file")]),
        (inputnode, plot_compression, [("labels_files", "labels_file"),
                                       ("series_file", "series_file"),
                                       ("mask_file", "mask_file")]),
        (plot_parcellation, outputnode, [("out_file", "parcellation_figures")]),
        (plot_compression, outputnode, [("out_file", "compression_figures")]),
    ])
    # fmt: on
    return workflow


def connect_fields(workflow, source, target, fields) -> None:
    """Feed a sub-workflow's ``inputnode`` fields from another's ``outputnode`` fields of the
    same names (:data:`FIGURE_INPUTS`, :data:`CARPET_INPUTS`), inside ``workflow``."""
    workflow.connect([(source, target, [
        (f"outputnode.{field}", f"inputnode.{field}") for field in fields
    ])])


#: inputnode fields of :func:`init_carpet_figures_wf`, fed by the parcellation
#: workflow's outputnode fields of the same names (built with ``carpet=True``).
CARPET_INPUTS = ("carpet_file", "series_info", "tree_file", "labels_files", "timeseries_files",
                 "mask_file")


def init_carpet_figures_wf(*, confounds_file=None, name: str = "carpet_figures_wf"):
    """A run's carpets: its denoising (before and after preparation), its parcel series per K.

    The denoising carpet reads the small carpet sample that
    ``prepare_signals`` wrote (never the BOLD): framewise displacement and
    DVARS above the carpets of the sampled points before and after the
    preparation, rows in the leaf order of the run's Ward tree, censored
    volumes shaded. The parcel carpet draws each K's parcel time series,
    parcels in the tree's leaf order. Both are cached nodes: a re-run with
    another K draws only the new K's parcel carpet.

    .. workflow::
        :graph2use: orig
        :simple_form: yes

        from nipype_ward.workflows.figures import init_carpet_figures_wf
        wf = init_carpet_figures_wf()

    Parameters
    ----------
    confounds_file : path, optional
        fMRIPrep's confounds table of the run: its ``framewise_displacement``
        and ``std_dvars`` are drawn. Without it, no framewise displacement
        and DVARS computed from the data.
    name : str
        The workflow's name.

    Inputs
    ------
    carpet_file, series_info, tree_file, labels_files, timeseries_files, mask_file
        As :func:`~nipype_ward.workflows.init_ward_parcellation_wf` outputs
        them (with ``carpet=True``).

    Outputs
    -------
    carpet_figure
        The run's denoising carpet (PNG).
    parcel_carpet_figures
        One PNG per K, in the order of ``labels_files``.
    """
    workflow = pe.Workflow(name=name)
    inputnode = pe.Node(niu.IdentityInterface(fields=list(CARPET_INPUTS)), name="inputnode")
    outputnode = pe.Node(
        niu.IdentityInterface(fields=["carpet_figure", "parcel_carpet_figures"]),
        name="outputnode",
    )
    plot_carpet = pe.Node(PlotDenoisingCarpet(), name="plot_carpet")
    if confounds_file is not None:
        plot_carpet.inputs.confounds_file = str(confounds_file)
    plot_parcel_carpet = pe.MapNode(
        PlotParcelCarpet(), iterfield=["labels_file", "timeseries_file"],
        name="plot_parcel_carpet",
    )
    # fmt: off
    workflow.connect([
        (inputnode, plot_carpet, [("carpet_file", "carpet_file"),
                                  ("series_info", "series_info"),
                                  ("tree_file", "tree_file")]),
        (inputnode, plot_parcel_carpet, [("labels_files", "labels_file"),
                                         ("timeseries_files", "timeseries_file"),
                                         ("mask_file", "mask_file"),
                                         ("tree_file", "tree_file"),
                                         ("series_info", "series_info")]),
        (plot_carpet, outputnode, [("out_file", "carpet_figure")]),
        (plot_parcel_carpet, outputnode, [("out_file", "parcel_carpet_figures")]),
    ])
    # fmt: on
    return workflow
