"""Nipype interfaces of nipype-ward: one module per concern, each delegating
to :mod:`nipype_ward.steps`."""
from nipype_ward.interfaces.compression import ParcelCompress
from nipype_ward.interfaces.connectivity import GridConnectivity
from nipype_ward.interfaces.masking import EPIMask
from nipype_ward.interfaces.ward import CutWardTree, WardAgglomerate, WardTree

__all__ = [
    "CutWardTree",
    "EPIMask",
    "GridConnectivity",
    "ParcelCompress",
    "WardAgglomerate",
    "WardTree",
]
