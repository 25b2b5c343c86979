"""Reading a BOLD series once: mask, mean and prepared voxel signals."""

from pathlib import Path

from nipype.interfaces.base import (
    BaseInterfaceInputSpec, File, InputMultiObject, SimpleInterface, TraitedSpec, traits,
)

from nipype_ward import steps
from nipype_ward.interfaces._naming import output_path
from nipype_ward.interfaces._signals import (
    SignalPreparationInputSpec,
    ThreadsInputSpec,
    preparation_from_inputs,
)
from nipype_ward.interfaces.masking import (
    EPIMaskOptionsInputSpec,
    epi_options_from_inputs,
)
from nipype_ward.io.formats import output_extension


class _PrepareSignalsInputSpec(EPIMaskOptionsInputSpec, SignalPreparationInputSpec,
                               ThreadsInputSpec):
    in_file = InputMultiObject(
        File(exists=True), mandatory=True,
        desc="BOLD series: one file (a 4D NIfTI, a CIFTI-2 dense series), or a GIFTI "
        "pair, the left hemisphere's series then the right's: both are one problem, the "
        "left's vertices with data first",
    )
    brain_mask_file = File(
        exists=True,
        desc="brain mask on the BOLD grid (e.g. fMRIPrep's desc-brain_mask); when not "
        "given, nilearn's mask of the temporal mean is computed (mask_strategy and the "
        "options above)",
    )
    # No default: unset, it leaves the node's hash (and so every cache made
    # before it existed) as it was.
    carpet = traits.Bool(
        desc="also write carpet_file: an evenly spread sample of at most 2,000 points' "
        "series before and after preparation and the DVARS of both, for the carpet plot "
        "(one more pass over the series in memory: a few percent of the node's time)",
    )


class _PrepareSignalsOutputSpec(TraitedSpec):
    series_file = File(
        exists=True,
        desc="the masked, prepared voxel series (.npy, n_voxels x n_volumes, voxels in "
        "C order of the mask; float32 when that is lossless, else float64)",
    )
    series_info = traits.Dict(
        desc="what series_file cannot say of itself: source, t_r (seconds, or None when "
        "unknown), preparation, n_voxels, n_volumes, dtype",
    )
    mask_file = File(exists=True, desc="the brain mask used, uint8, on the BOLD grid")
    mean_file = File(exists=True, desc="temporal mean of the BOLD series, float32")
    n_voxels = traits.Int(desc="number of voxels in the mask (constant voxels left out)")
    n_volumes = traits.Int(desc="number of volumes of the series")
    carpet_file = File(
        exists=True,
        desc="with carpet: the carpet sample (.npz: points, before, after, dvars_before, "
        "dvars_after, kept, n_points; see nipype_ward.io.arrays.save_carpet)",
    )


class PrepareSignals(SimpleInterface):
    """Read a BOLD series once; write its mask, mean and prepared voxel signals.

    The one node of a parcellation that reads the BOLD file: it is opened
    and decompressed once, its temporal mean gives the EPI mask (unless
    ``brain_mask_file`` is given) and ``mean_file``, and the voxel series
    inside the mask, prepared (nilearn's ``signal.clean``: detrending,
    filtering, confounds, standardization; nothing by default), is written
    as a memory-mappable array that the tree, its halves and every
    compression read. Voxels of a given mask whose series is constant are
    left out of ``mask_file`` (counted as ``n_voxels_constant`` in
    ``series_info``, with a warning); an EPI mask of an image without
    background is an error naming the BOLD.
    """

    input_spec = _PrepareSignalsInputSpec
    output_spec = _PrepareSignalsOutputSpec

    def _run_interface(self, runtime):
        in_file = self.inputs.in_file[0]
        points = output_extension(in_file, "points")
        outputs = {
            "series_file": output_path(in_file, "_series", runtime.cwd, ".npy"),
            "mask_file": output_path(in_file, "_mask", runtime.cwd, points),
            "mean_file": output_path(in_file, "_mean", runtime.cwd, points),
        }
        if self.inputs.carpet:
            outputs["carpet_file"] = output_path(in_file, "_carpet", runtime.cwd, ".npz")
        series = steps.prepare_series(
            self.inputs.in_file,
            outputs["series_file"],
            outputs["mask_file"],
            outputs["mean_file"],
            brain_mask_path=self.inputs.brain_mask_file or None,
            epi_options=epi_options_from_inputs(self.inputs),
            preparation=preparation_from_inputs(self.inputs),
            spill_dir=runtime.cwd,
            out_carpet=outputs.get("carpet_file"),
            threads=self.inputs.num_threads,
        )
        self._results.update(outputs)
        self._results["series_info"] = steps.series_info(series)
        self._results["n_voxels"], self._results["n_volumes"] = series.X.shape
        return runtime


class _CombineSeriesInputSpec(BaseInterfaceInputSpec):
    series_files = InputMultiObject(
        File(exists=True), mandatory=True, desc="the prepared series of each run (PrepareSignals)"
    )
    mask_files = InputMultiObject(
        File(exists=True), mandatory=True, desc="the mask each series was taken in, same order"
    )
    series_infos = traits.List(traits.Dict, mandatory=True, desc="each run's series_info")
    mean_files = InputMultiObject(
        File(exists=True), mandatory=True, desc="each run's temporal mean, same order"
    )


class _CombineSeriesOutputSpec(TraitedSpec):
    series_file = File(exists=True, desc="the runs' series one after the other, common voxels")
    series_info = traits.Dict(desc="the combined series' info, with each run's in 'runs'")
    mask_file = File(exists=True, desc="the voxels inside every run's mask")
    mean_file = File(exists=True, desc="the average of the runs' temporal means")
    run_series_files = traits.List(
        File(exists=True), desc="each run's series restricted to the common voxels"
    )
    run_series_infos = traits.List(traits.Dict, desc="each run's series_info")


class CombineSeries(SimpleInterface):
    """Concatenate the prepared series of several runs in time, in their common voxels.

    Each run is prepared on its own first (its confounds, censoring and
    standardization); see :func:`nipype_ward.steps.combine_series`.
    """

    input_spec = _CombineSeriesInputSpec
    output_spec = _CombineSeriesOutputSpec

    def _run_interface(self, runtime):
        cwd = Path(runtime.cwd)
        extension = output_extension(self.inputs.mask_files[0], "points")
        outputs = {
            "series_file": str(cwd / "combined_series.npy"),
            "mask_file": str(cwd / f"combined_mask{extension}"),
            "mean_file": str(cwd / f"combined_mean{extension}"),
            "run_series_files": [str(cwd / f"run{i:02d}_series.npy")
                                 for i in range(len(self.inputs.series_files))],
        }
        info, run_infos = steps.combine_series(
            self.inputs.series_files, self.inputs.mask_files, self.inputs.series_infos,
            self.inputs.mean_files, outputs["series_file"], outputs["mask_file"],
            outputs["mean_file"], outputs["run_series_files"],
        )
        self._results.update(outputs, series_info=info, run_series_infos=run_infos)
        return runtime
