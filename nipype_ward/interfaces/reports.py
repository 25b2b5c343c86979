"""Figures of a parcellation, as cached nodes of the graph."""

from nipype.interfaces.base import (
    BaseInterfaceInputSpec,
    File,
    SimpleInterface,
    TraitedSpec,
    traits,
)

from nipype_ward.interfaces._naming import output_path


class _PlotParcellationInputSpec(BaseInterfaceInputSpec):
    labels_file = File(exists=True, mandatory=True, desc="parcel labels (3D NIfTI)")
    mean_file = File(exists=True, mandatory=True, desc="mean EPI drawn under the labels")
    mask_file = File(
        exists=True, mandatory=True,
        desc="brain mask; its centre gives the cuts, the same in every figure",
    )
    title = traits.Str(desc="figure title; by default 'Ward parcellation (K parcels)'")


class _PlotOutputSpec(TraitedSpec):
    out_file = File(exists=True, desc="the figure (PNG)")


class PlotParcellation(SimpleInterface):
    """The parcellation over the mean EPI (nilearn's ``plot_roi``), as PNG."""

    input_spec = _PlotParcellationInputSpec
    output_spec = _PlotOutputSpec

    def _run_interface(self, runtime):
        from nipype_ward.reports import cut_coords_of, plot_parcellation

        out_file = output_path(self.inputs.labels_file, "_parcellation", runtime.cwd, ".png")
        plot_parcellation(
            self.inputs.labels_file, self.inputs.mean_file, out_file,
            title=self.inputs.title or None, cut_coords=cut_coords_of(self.inputs.mask_file),
        )
        self._results["out_file"] = out_file
        return runtime


class _PlotCompressionInputSpec(BaseInterfaceInputSpec):
    series_file = File(
        exists=True, mandatory=True, desc="prepared voxel series (.npy from PrepareSignals)"
    )
    mask_file = File(exists=True, mandatory=True, desc="the mask the series was taken in")
    labels_file = File(exists=True, mandatory=True, desc="parcel labels (3D NIfTI)")
    volume = traits.Int(0, usedefault=True, desc="index of the volume drawn")


class PlotCompression(SimpleInterface):
    """One volume of the series above the same volume compressed by the parcels, as PNG."""

    input_spec = _PlotCompressionInputSpec
    output_spec = _PlotOutputSpec

    def _run_interface(self, runtime):
        from nipype_ward.reports import cut_coords_of, plot_compression

        out_file = output_path(self.inputs.labels_file, "_compression", runtime.cwd, ".png")
        plot_compression(
            self.inputs.series_file, self.inputs.mask_file, self.inputs.labels_file, out_file,
            cut_coords=cut_coords_of(self.inputs.mask_file), volume=self.inputs.volume,
        )
        self._results["out_file"] = out_file
        return runtime
