"""Nipype interfaces of nipype-ward: one module per concern, each delegating
to :mod:`nipype_ward.steps` (figures: :mod:`nipype_ward.reports`)."""
from nipype_ward.interfaces.carpets import PlotDenoisingCarpet, PlotParcelCarpet
from nipype_ward.interfaces.compression import ParcelCompress
from nipype_ward.interfaces.connectivity import GridConnectivity, MeshConnectivity
from nipype_ward.interfaces.group import (
    CompareParcellations,
    GroupMask,
    GroupSeries,
    GroupSplitHalf,
    ReduceSubject,
)
from nipype_ward.interfaces.io import ExportFiles
from nipype_ward.interfaces.masking import EPIMask
from nipype_ward.interfaces.reports import (
    PlotCompression,
    PlotGroupQuality,
    PlotParcellation,
    PlotQuality,
    RunSummary,
)
from nipype_ward.interfaces.signals import CombineSeries, PrepareSignals
from nipype_ward.interfaces.ward import (
    CheckParcelCounts,
    CutWardTree,
    WardAgglomerate,
    WardTree,
)

__all__ = [
    "CombineSeries",
    "CompareParcellations",
    "CheckParcelCounts",
    "CutWardTree",
    "EPIMask",
    "ExportFiles",
    "GridConnectivity",
    "GroupMask",
    "GroupSeries",
    "GroupSplitHalf",
    "MeshConnectivity",
    "ParcelCompress",
    "PlotCompression",
    "PlotDenoisingCarpet",
    "PlotGroupQuality",
    "PlotParcelCarpet",
    "PlotParcellation",
    "PlotQuality",
    "PrepareSignals",
    "ReduceSubject",
    "RunSummary",
    "WardAgglomerate",
    "WardTree",
]
