"""Connectivity of the data points: voxels on their grid, vertices on their meshes."""

from nipype.interfaces.base import (
    BaseInterfaceInputSpec, File, SimpleInterface, TraitedSpec, traits,
)

from nipype_ward import steps
from nipype_ward.core.connectivity import NEIGHBOURHOODS
from nipype_ward.interfaces._naming import output_path


class _GridConnectivityInputSpec(BaseInterfaceInputSpec):
    mask_file = File(exists=True, mandatory=True, desc="binary mask (3D NIfTI)")
    neighbourhood = traits.Enum(
        *NEIGHBOURHOODS,
        usedefault=True,
        desc="voxels sharing a face (6), a face or an edge (18), or a corner (26)",
    )


class _GridConnectivityOutputSpec(TraitedSpec):
    connectivity_file = File(
        exists=True,
        desc="adjacency of the mask's voxels (scipy sparse .npz), voxels in C order "
        "of the mask as in nilearn's maskers",
    )
    n_components = traits.Int(desc="number of connected pieces of the mask")


class GridConnectivity(SimpleInterface):
    """Voxel-to-voxel adjacency of a mask on its grid.

    For ``neighbourhood=6`` the matrix equals
    ``sklearn.feature_extraction.image.grid_to_graph(*shape, mask=mask)``.
    """

    input_spec = _GridConnectivityInputSpec
    output_spec = _GridConnectivityOutputSpec

    def _run_interface(self, runtime):
        neighbourhood = self.inputs.neighbourhood
        out_file = output_path(
            self.inputs.mask_file, f"_conn{neighbourhood}", runtime.cwd, ".npz"
        )
        self._results["n_components"] = steps.connectivity(
            self.inputs.mask_file, out_file, neighbourhood=neighbourhood
        )
        self._results["connectivity_file"] = out_file
        return runtime


class _MeshConnectivityInputSpec(BaseInterfaceInputSpec):
    mask_file = File(
        exists=True, mandatory=True,
        desc="the grayordinates of surface data (.dscalar.nii from PrepareSignals)",
    )
    left_surface = File(exists=True, desc="the left cortex's mesh (.surf.gii), e.g. midthickness")
    right_surface = File(exists=True, desc="the right cortex's mesh (.surf.gii)")


class MeshConnectivity(SimpleInterface):
    """Grayordinate adjacency of surface data: mesh neighbours, block-diagonal by structure.

    Each cortex's vertices with data are joined along its mesh's edges
    (nilearn's surface connectivity), a CIFTI file's subcortical voxels
    along the 6-neighbour grid within each structure; no edge joins two
    structures. The same ``.npz`` as :class:`GridConnectivity`, so the tree,
    cuts and compression do not change.
    """

    input_spec = _MeshConnectivityInputSpec
    output_spec = _GridConnectivityOutputSpec

    def _run_interface(self, runtime):
        from nipype.interfaces.base import isdefined

        surfaces = {}
        for name, structure in (("left_surface", "CIFTI_STRUCTURE_CORTEX_LEFT"),
                                ("right_surface", "CIFTI_STRUCTURE_CORTEX_RIGHT")):
            if isdefined(getattr(self.inputs, name)):
                surfaces[structure] = getattr(self.inputs, name)
        out_file = output_path(self.inputs.mask_file, "_meshconn", runtime.cwd, ".npz")
        self._results["n_components"] = steps.mesh_connectivity(
            self.inputs.mask_file, out_file, surfaces)
        self._results["connectivity_file"] = out_file
        return runtime
