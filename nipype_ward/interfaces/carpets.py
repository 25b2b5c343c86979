"""Carpet plots of a run, as cached nodes: its denoising, its parcel time series."""

from nipype.interfaces.base import (
    BaseInterfaceInputSpec, File, SimpleInterface, TraitedSpec, isdefined, traits,
)

from nipype_ward.interfaces._naming import output_path
from nipype_ward.io import arrays, geometry, tables
from nipype_ward.io.formats import is_surface
from nipype_ward.reports.carpet import (
    censoring_thresholds,
    describe_preparation,
    parcel_rows,
    plot_denoising_carpet,
    plot_parcel_carpet,
)


class _PlotOutputSpec(TraitedSpec):
    out_file = File(exists=True, desc="the figure (PNG)")


class _PlotDenoisingCarpetInputSpec(BaseInterfaceInputSpec):
    carpet_file = File(exists=True, mandatory=True,
                       desc="the run's carpet sample (PrepareSignals' carpet_file, .npz)")
    series_info = traits.Dict(mandatory=True, desc="PrepareSignals' series_info (TR, "
                              "preparation, confounds, source)")
    tree_file = File(exists=True, desc="the run's Ward tree (.npz, on the same points as the "
                     "series): rows in its leaf order; in the mask's order when not given")
    confounds_file = File(exists=True, desc="fMRIPrep's confounds table of the run "
                          "(desc-confounds_timeseries.tsv): its framewise_displacement and "
                          "std_dvars are drawn; without it, DVARS computed from the data")


class PlotDenoisingCarpet(SimpleInterface):
    """A run before and after its preparation: FD and DVARS traces above two carpets, as PNG.

    Reads the small carpet sample PrepareSignals wrote, never the BOLD; see
    :func:`nipype_ward.reports.carpet.plot_denoising_carpet`.
    """

    input_spec = _PlotDenoisingCarpetInputSpec
    output_spec = _PlotOutputSpec

    def _run_interface(self, runtime):
        info = self.inputs.series_info
        sample = arrays.load_carpet(self.inputs.carpet_file)
        traces = tables.load_motion_traces(self.inputs.confounds_file, sample.before.shape[1]) \
            if isdefined(self.inputs.confounds_file) else {}
        children = None
        if isdefined(self.inputs.tree_file):
            children = arrays.load_tree(self.inputs.tree_file, n_leaves=sample.n_points).children
        out_file = output_path(self.inputs.carpet_file, "", runtime.cwd, ".png")
        source = info.get("source", "")
        plot_denoising_carpet(
            sample, out_file, t_r=info.get("t_r"), traces=traces,
            thresholds=censoring_thresholds(info.get("preparation") or {}), children=children,
            what="grayordinates" if is_surface(source.split("; ")[-1]) else "voxels",
            preparation=describe_preparation(info),
        )
        self._results["out_file"] = out_file
        return runtime


class _PlotParcelCarpetInputSpec(BaseInterfaceInputSpec):
    timeseries_file = File(exists=True, mandatory=True,
                           desc="the parcel time series of one K (TSV, a column per parcel)")
    labels_file = File(exists=True, mandatory=True, desc="the parcellation they come from")
    mask_file = File(exists=True, mandatory=True, desc="the mask of the series' points")
    tree_file = File(exists=True, mandatory=True,
                     desc="the Ward tree the parcellation was cut from: parcels in its leaf order")
    series_info = traits.Dict(mandatory=True,
                              desc="the series' info (TR, acquired and kept volumes)")


class PlotParcelCarpet(SimpleInterface):
    """The parcel time series of one K as a carpet, parcels in the tree's leaf order, as PNG."""

    input_spec = _PlotParcelCarpetInputSpec
    output_spec = _PlotOutputSpec

    def _run_interface(self, runtime):
        info = self.inputs.series_info
        mask, _ = geometry.load_mask(self.inputs.mask_file)
        parcels, values = geometry.load_labels(self.inputs.labels_file, mask=mask)
        tree = arrays.load_tree(self.inputs.tree_file, n_leaves=parcels.size)
        series = tables.load_parcel_series(self.inputs.timeseries_file, values)
        order, branches = parcel_rows(tree.children, parcels)
        k = len(values)
        out_file = output_path(self.inputs.labels_file, "_parcelcarpet", runtime.cwd, ".png")
        plot_parcel_carpet(
            series, out_file, kept=info.get("sample_mask"),
            n_volumes=info.get("n_volumes_acquired"), parcel_order=order, branches=branches,
            t_r=info.get("t_r"),
            title=f"Parcel time series, K = {k}: a row per parcel (its mean, z-scored), in the "
            "leaf order of the Ward tree; coloured bars: its 5 main branches",
        )
        self._results["out_file"] = out_file
        return runtime
