"""File-in, file-out steps of the parcellation, one module a stage.

Each step reads its inputs through :mod:`nipype_ward.io.series` and
:mod:`nipype_ward.io.geometry` (which check them and name the file in every
error) and :mod:`nipype_ward.io`, calls the array core, and writes its
outputs atomically. The Nipype interfaces delegate to these functions one to
one, so scripts, the CLI and the interfaces share a single code path.

* :mod:`~nipype_ward.steps.prepare`: read a run once, mask and prepare it;
* :mod:`~nipype_ward.steps.tree`: the graph, the Ward tree and its cuts;
* :mod:`~nipype_ward.steps.compress`: compression, its metrics, parcel tables;
* :mod:`~nipype_ward.steps.combine`: runs and subjects combined, the group's series.
"""

from nipype_ward.steps.combine import (
    combine_series,
    compare_parcellations,
    group_mask,
    group_series,
    group_series_of_runs,
    reduce_subject,
)
from nipype_ward.steps.compress import compare_labels, parcel_compress, parcel_table
from nipype_ward.steps.prepare import (
    ResolvedPreparation,
    SignalPreparation,
    VoxelSeries,
    censored_volumes,
    epi_mask,
    load_voxel_series,
    prepare_series,
    read_prepared,
    resolve_preparation,
    series_info,
)
from nipype_ward.steps.tree import (
    check_n_clusters_in_mask,
    connectivity,
    cut,
    mesh_connectivity,
    split_half_ari,
    ward_tree,
)

__all__ = [
    "ResolvedPreparation",
    "SignalPreparation",
    "VoxelSeries",
    "censored_volumes",
    "check_n_clusters_in_mask",
    "combine_series",
    "compare_labels",
    "compare_parcellations",
    "connectivity",
    "cut",
    "epi_mask",
    "group_mask",
    "group_series",
    "group_series_of_runs",
    "load_voxel_series",
    "mesh_connectivity",
    "parcel_compress",
    "parcel_table",
    "prepare_series",
    "read_prepared",
    "reduce_subject",
    "resolve_preparation",
    "series_info",
    "split_half_ari",
    "ward_tree",
]
