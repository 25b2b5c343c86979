"""The figures of a parcellation, as a sub-workflow of cached nodes."""

from __future__ import annotations

from nipype.interfaces import utility as niu
from nipype.pipeline import engine as pe

from nipype_ward.interfaces import PlotCompression, PlotParcellation

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


def connect_figures(workflow, parcellation, figures) -> None:
    """Feed a figures sub-workflow from a parcellation workflow, inside ``workflow``."""
    workflow.connect([(parcellation, figures, [
        (f"outputnode.{field}", f"inputnode.{field}") for field in FIGURE_INPUTS
    ])])
