"""Exact, compiled, connectivity-constrained Ward clustering (arrays only).

The public functions validate their inputs and delegate the merge loop to
the Cython kernel :mod:`nipype_ward.core.ward._ward_fast`.
"""
from nipype_ward.core.ward._tree import (
    MAX_COMPONENTS,
    WardTree,
    build_ward_tree,
    check_connectivity,
    cut_tree,
    ward_tree,
)

__all__ = [
    "MAX_COMPONENTS",
    "WardTree",
    "build_ward_tree",
    "check_connectivity",
    "cut_tree",
    "ward_tree",
]
