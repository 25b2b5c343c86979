"""Grid connectivity of a mask."""

from nipype.interfaces.base import (
    BaseInterfaceInputSpec,
    File,
    SimpleInterface,
    TraitedSpec,
    traits,
)

from nipype_ward import steps
from nipype_ward.connectivity import NEIGHBOURHOODS
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
