"""Ward tree and its cuts.

:class:`WardAgglomerate` does both in one node. Workflows use
:class:`WardTree` and :class:`CutWardTree` as two nodes instead, so that
Nipype's cache keeps the tree when only the numbers of parcels change.
"""

from nipype.interfaces.base import (
    BaseInterfaceInputSpec, File, InputMultiObject, SimpleInterface, TraitedSpec, isdefined,
    traits,
)

from nipype_ward import steps
from nipype_ward.interfaces._naming import output_path
from nipype_ward.interfaces._signals import (
    VoxelSeriesInputSpec,
    preparation_from_inputs,
    series_from_inputs,
    source_of,
)
from nipype_ward.io.errors import InputError
from nipype_ward.io.formats import is_surface, output_extension
from nipype_ward.io.geometry import load_mask


class _WardTreeInputSpec(VoxelSeriesInputSpec):
    mask_file = File(
        exists=True,
        mandatory=True,
        desc="brain mask on the BOLD grid: the mask series_file was taken in, or the "
        "voxels of in_file to cluster",
    )
    connectivity_file = File(
        exists=True,
        mandatory=True,
        desc="adjacency of the mask's voxels (.npz from GridConnectivity)",
    )
    split_half = traits.Bool(
        False,
        usedefault=True,
        desc="also build the trees of the first and of the second half of the volumes, "
        "for the split-half reproducibility of every cut (see ParcelCompress)",
    )


class _WardTreeOutputSpec(TraitedSpec):
    tree_file = File(
        exists=True,
        desc="full Ward tree (.npz: children, distances, sizes, n_components)",
    )
    half_tree_files = traits.List(
        File(exists=True),
        desc="trees of the first and second half of the volumes (empty unless split_half)",
    )


class WardTree(SimpleInterface):
    """Build the full connectivity-constrained Ward tree of a voxel series.

    The series is a prepared ``series_file`` (from ``PrepareSignals``: the
    workflow's way), or a 4D ``in_file`` read inside ``mask_file`` and
    prepared with the ``standardize``, ``detrend``, filtering and confound
    inputs (by default the raw signals).
    """

    input_spec = _WardTreeInputSpec
    output_spec = _WardTreeOutputSpec

    def _run_interface(self, runtime):
        self._write_tree(runtime)
        return runtime

    def _write_tree(self, runtime, n_clusters=()) -> str:
        source = source_of(self.inputs)
        tree_file = output_path(source, "_wardtree", runtime.cwd, ".npz")
        half_tree_files = []
        if self.inputs.split_half:
            half_tree_files = [
                output_path(source, f"_half{half}_wardtree", runtime.cwd, ".npz")
                for half in (1, 2)
            ]
        steps.ward_tree(
            self._connectivity_file(runtime),
            tree_file,
            mask_path=self.inputs.mask_file,
            n_clusters=n_clusters,
            preparation=preparation_from_inputs(self.inputs),
            out_half_trees=half_tree_files or None,
            threads=self.inputs.num_threads,
            **series_from_inputs(self.inputs),
        )
        self._results["tree_file"] = tree_file
        self._results["half_tree_files"] = half_tree_files
        return tree_file

    def _connectivity_file(self, runtime) -> str:
        """The given graph, or the mask's 6-neighbour grid written beside the tree."""
        if isdefined(self.inputs.connectivity_file):
            return self.inputs.connectivity_file
        mask_file = self.inputs.mask_file
        if is_surface(mask_file):
            raise InputError(mask_file, "surface data have no grid: give connectivity_file "
                             "(MeshConnectivity's, from the meshes)")
        out_file = output_path(mask_file, "_conn6", runtime.cwd, ".npz")
        steps.connectivity(mask_file, out_file, neighbourhood=6)
        return out_file


class _CheckParcelCountsInputSpec(BaseInterfaceInputSpec):
    mask_file = File(exists=True, mandatory=True,
                     desc="the mask the tree will be built on (PrepareSignals' mask_file)")
    n_clusters = InputMultiObject(traits.Int, mandatory=True, desc="numbers of parcels")
    source_file = traits.Str(desc="the BOLD the mask is of, named in the error instead of "
                             "the mask (which may be a working file)")


class _CheckParcelCountsOutputSpec(TraitedSpec):
    mask_file = File(exists=True, desc="the same mask, once checked")


class CheckParcelCounts(SimpleInterface):
    """Every K must fit in the mask: checked once the mask is known, before any tree.

    A pass-through for ``mask_file``: the tree and cuts take the mask from
    here, so a K larger than the mask (an EPI mask being known only once
    the series is read) fails in a second, not after the trees. K is not
    an input of the nodes before it: changing K re-reads nothing.
    """

    input_spec = _CheckParcelCountsInputSpec
    output_spec = _CheckParcelCountsOutputSpec

    def _run_interface(self, runtime):
        n_voxels = int(load_mask(self.inputs.mask_file)[0].sum())
        where = self.inputs.source_file if isdefined(self.inputs.source_file) \
            else self.inputs.mask_file
        steps.check_n_clusters_in_mask(self.inputs.n_clusters, n_voxels, where)
        self._results["mask_file"] = self.inputs.mask_file
        return runtime


class _CutWardTreeInputSpec(BaseInterfaceInputSpec):
    tree_file = File(exists=True, mandatory=True, desc="Ward tree (.npz from WardTree)")
    mask_file = File(exists=True, mandatory=True, desc="the mask the tree was built on")
    n_clusters = traits.Int(mandatory=True, desc="number of parcels")


class _CutWardTreeOutputSpec(TraitedSpec):
    labels_file = File(
        exists=True, desc="parcel labels (int32 NIfTI): 1..K inside the mask, 0 outside"
    )


class CutWardTree(SimpleInterface):
    """Cut a Ward tree into ``n_clusters`` parcels, in O(number of voxels)."""

    input_spec = _CutWardTreeInputSpec
    output_spec = _CutWardTreeOutputSpec

    def _run_interface(self, runtime):
        k = self.inputs.n_clusters
        # <bold>_wardtree.npz -> <bold>_ward<K>.nii.gz
        source = self.inputs.tree_file.replace("_wardtree.npz", ".npz")
        labels_file = output_path(source, f"_ward{k}", runtime.cwd,
                                  output_extension(self.inputs.mask_file, "labels"))
        steps.cut(self.inputs.tree_file, self.inputs.mask_file, k, labels_file)
        self._results["labels_file"] = labels_file
        return runtime


class _WardAgglomerateInputSpec(_WardTreeInputSpec):
    connectivity_file = File(
        exists=True,
        desc="adjacency of the mask's voxels (.npz from GridConnectivity or "
        "MeshConnectivity); when not given, the mask's grid with 6 neighbours "
        "(GridConnectivity's default; volume data only)",
    )
    n_clusters = InputMultiObject(
        traits.Int, mandatory=True, desc="numbers of parcels; the tree is cut at each"
    )


class _WardAgglomerateOutputSpec(_WardTreeOutputSpec):
    labels_files = traits.List(
        File(exists=True),
        desc="one label image (int32; 1..K inside the mask, 0 outside) per requested K, "
        "in the order of n_clusters",
    )


class WardAgglomerate(WardTree):
    """Spatially constrained Ward parcellation: build the tree once, cut it at every K.

    Without ``connectivity_file`` the graph is the mask's grid with 6
    neighbours (:func:`nipype_ward.core.connectivity.grid_connectivity`), so one
    node parcellates a 4D ``in_file`` inside ``mask_file``.

    With the same data and K, the labels equal those of scikit-learn's
    ``FeatureAgglomeration(n_clusters=K, connectivity=grid_to_graph(mask),
    linkage='ward')`` up to numbering, on a mask of one connected piece.
    """

    input_spec = _WardAgglomerateInputSpec
    output_spec = _WardAgglomerateOutputSpec

    def _run_interface(self, runtime):
        # n_clusters is checked before the tree is built, so a bad K fails fast.
        tree_file = self._write_tree(runtime, n_clusters=self.inputs.n_clusters)
        labels_files = []
        for k in self.inputs.n_clusters:
            labels_file = output_path(source_of(self.inputs), f"_ward{k}", runtime.cwd, ".nii.gz")
            steps.cut(tree_file, self.inputs.mask_file, k, labels_file)
            labels_files.append(labels_file)
        self._results["labels_files"] = labels_files
        return runtime
