"""Figures of a parcellation, as cached nodes of the graph."""

from pathlib import Path

from nipype.interfaces.base import (
    BaseInterfaceInputSpec, File, InputMultiObject, SimpleInterface, TraitedSpec, isdefined,
    traits,
)

from nipype_ward.interfaces._naming import output_path
from nipype_ward.io.arrays import load_carpet
from nipype_ward.io.files import load_json
from nipype_ward.reports import (
    cut_coords_of,
    plot_compression,
    plot_parcellation,
    plot_surface_compression,
    plot_surface_parcellation,
)
from nipype_ward.reports.figures import plot_group_quality, plot_quality
from nipype_ward.reports.html import run_summary


class _SurfacesInputSpec(BaseInterfaceInputSpec):
    left_surface = File(exists=True, desc="surface data: the left cortex's mesh (.surf.gii)")
    right_surface = File(exists=True, desc="surface data: the right cortex's mesh (.surf.gii)")


def _surfaces(inputs):
    """The (left, right) meshes given, or None for volume data."""
    found = tuple(getattr(inputs, name) if isdefined(getattr(inputs, name)) else None
                  for name in ("left_surface", "right_surface"))
    return found if any(found) else None


class _PlotParcellationInputSpec(_SurfacesInputSpec):
    labels_file = File(exists=True, mandatory=True,
                       desc="parcel labels (3D NIfTI, or CIFTI-2 labels for surface data)")
    mean_file = File(exists=True, mandatory=True, desc="mean EPI drawn under the labels")
    mask_file = File(
        exists=True, mandatory=True,
        desc="brain mask; its centre gives the cuts, the same in every figure",
    )
    title = traits.Str(desc="figure title; by default 'Ward parcellation (K parcels)'")


class _PlotOutputSpec(TraitedSpec):
    out_file = File(exists=True, desc="the figure (PNG)")


class PlotParcellation(SimpleInterface):
    """The parcellation over the mean EPI (nilearn's ``plot_roi``), as PNG.

    Surface data (with the meshes): the parcels on both cortices, lateral
    and medial views (nilearn's views, drawn without mplot3d by
    :mod:`nipype_ward.reports.surface`).
    """

    input_spec = _PlotParcellationInputSpec
    output_spec = _PlotOutputSpec

    def _run_interface(self, runtime):
        out_file = output_path(self.inputs.labels_file, "_parcellation", runtime.cwd, ".png")
        surfaces = _surfaces(self.inputs)
        if surfaces is not None:
            plot_surface_parcellation(self.inputs.labels_file, surfaces, out_file,
                                      title=self.inputs.title or None)
        else:
            plot_parcellation(
                self.inputs.labels_file, self.inputs.mean_file, out_file,
                title=self.inputs.title or None, cut_coords=cut_coords_of(self.inputs.mask_file),
            )
        self._results["out_file"] = out_file
        return runtime


class _PlotCompressionInputSpec(_SurfacesInputSpec):
    series_file = File(
        exists=True, mandatory=True, desc="prepared voxel series (.npy from PrepareSignals)"
    )
    mask_file = File(exists=True, mandatory=True, desc="the mask the series was taken in")
    labels_file = File(exists=True, mandatory=True,
                       desc="parcel labels (3D NIfTI, or CIFTI-2 labels for surface data)")
    volume = traits.Int(0, usedefault=True, desc="index of the volume drawn")


class PlotCompression(SimpleInterface):
    """One volume of the series above the same volume compressed by the parcels, as PNG.

    Surface data (with the meshes): drawn on both cortices.
    """

    input_spec = _PlotCompressionInputSpec
    output_spec = _PlotOutputSpec

    def _run_interface(self, runtime):
        out_file = output_path(self.inputs.labels_file, "_compression", runtime.cwd, ".png")
        surfaces = _surfaces(self.inputs)
        if surfaces is not None:
            plot_surface_compression(self.inputs.series_file, self.inputs.mask_file,
                                     self.inputs.labels_file, surfaces, out_file,
                                     volume=self.inputs.volume)
        else:
            plot_compression(
                self.inputs.series_file, self.inputs.mask_file, self.inputs.labels_file,
                out_file, cut_coords=cut_coords_of(self.inputs.mask_file),
                volume=self.inputs.volume,
            )
        self._results["out_file"] = out_file
        return runtime


class _PlotQualityInputSpec(BaseInterfaceInputSpec):
    metrics_files = InputMultiObject(
        File(exists=True), mandatory=True, desc="the metrics JSON of each K (ParcelCompress)"
    )
    table_files = InputMultiObject(
        File(exists=True), mandatory=True, desc="the dseg table of each K (ParcelTable), same order"
    )


class PlotQuality(SimpleInterface):
    """A run's R2, homogeneity and split-half ARI against K, and its parcel sizes, as PNG."""

    input_spec = _PlotQualityInputSpec
    output_spec = _PlotOutputSpec

    def _run_interface(self, runtime):
        out_file = str(Path(runtime.cwd) / "quality.png")
        plot_quality(self.inputs.metrics_files, self.inputs.table_files, out_file)
        self._results["out_file"] = out_file
        return runtime


class _RunSummaryInputSpec(BaseInterfaceInputSpec):
    series_info = traits.Dict(mandatory=True, desc="PrepareSignals' series_info")
    metrics_files = InputMultiObject(
        File(exists=True), mandatory=True, desc="the metrics JSON of each K (ParcelCompress)"
    )
    carpet_file = File(exists=True, desc="the run's carpet sample (PrepareSignals' "
                       "carpet_file): its DVARS before and after preparation, in numbers")


class _RunSummaryOutputSpec(TraitedSpec):
    out_file = File(exists=True, desc="the summary (an HTML fragment of the report)")


class RunSummary(SimpleInterface):
    """A run's summary for the report: volumes kept and censored, DVARS, the quality at each K."""

    input_spec = _RunSummaryInputSpec
    output_spec = _RunSummaryOutputSpec

    def _run_interface(self, runtime):
        out_file = Path(runtime.cwd) / "summary.html"
        metrics = [load_json(path) for path in self.inputs.metrics_files]
        dvars = None
        if isdefined(self.inputs.carpet_file):
            sample = load_carpet(self.inputs.carpet_file)
            dvars = (sample.dvars_before, sample.dvars_after)
        out_file.write_text(run_summary(self.inputs.series_info, metrics, dvars=dvars))
        self._results["out_file"] = str(out_file)
        return runtime


class _PlotGroupQualityInputSpec(BaseInterfaceInputSpec):
    meta_dict = traits.Dict(mandatory=True, desc="an atlas' _dseg.json content (AtlasSidecars)")


class PlotGroupQuality(SimpleInterface):
    """Each run's R2 on a group atlas against that on its own parcellation, as PNG."""

    input_spec = _PlotGroupQualityInputSpec
    output_spec = _PlotOutputSpec

    def _run_interface(self, runtime):
        k = self.inputs.meta_dict["NumberOfParcels"]
        out_file = str(Path(runtime.cwd) / f"group_quality_ward{k}.png")
        plot_group_quality(self.inputs.meta_dict, out_file)
        self._results["out_file"] = out_file
        return runtime
