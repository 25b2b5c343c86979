"""Compression of a BOLD series by a parcellation."""

from nipype.interfaces.base import File, SimpleInterface, TraitedSpec, isdefined, traits

from nipype_ward import steps
from nipype_ward.interfaces._naming import output_path
from nipype_ward.interfaces._signals import (
    VoxelSeriesInputSpec,
    preparation_from_inputs,
    series_from_inputs,
)
from nipype_ward.io.formats import output_extension


class _ParcelCompressInputSpec(VoxelSeriesInputSpec):
    labels_file = File(
        exists=True,
        mandatory=True,
        desc="parcel labels on the BOLD grid (positive integers inside the mask, 0 outside)",
    )
    mask_file = File(
        exists=True,
        desc="the mask series_file was taken in (needed with series_file); with in_file "
        "the mask is the label image's non-zero voxels unless this is given",
    )
    series_info = traits.Dict(
        desc="PrepareSignals' series_info of series_file: its repetition time goes into "
        "the compressed image's header, its source and preparation into the metrics",
    )
    connectivity_file = File(
        exists=True,
        desc="adjacency of the mask's voxels (.npz from GridConnectivity); when given, "
        "the metrics count the parcels that are not one connected piece",
    )
    half_tree_files = traits.List(
        File(exists=True),
        desc="trees of the two halves of the volumes (WardTree with split_half); when "
        "given, the metrics give the split-half adjusted Rand index at this K",
    )
    true_regions_file = File(
        exists=True,
        desc="known regions on the same grid (e.g. the simulation's ground truth); when "
        "given, the metrics give true_regions_ari and true_regions_ami against them",
    )
    atlas = traits.Bool(
        False, usedefault=True,
        desc="labels_file is an atlas that need not cover the mask (a group atlas, any dseg "
        "on the BOLD grid): only the voxels it labels are used, the time series has one "
        "column per atlas label (n/a for a parcel with no voxel in the mask)",
    )
    save_compressed = traits.Bool(
        True, usedefault=True,
        desc="write the compressed 4D series (as large as the input, once decompressed)",
    )


class _ParcelCompressOutputSpec(TraitedSpec):
    timeseries_file = File(
        exists=True,
        desc="parcel mean signals (TSV): one column per parcel, one row per volume, "
        "header = parcel label",
    )
    compressed_file = File(
        exists=True,
        desc="4D NIfTI where each voxel holds its parcel's mean signal (with save_compressed)",
    )
    ptseries_file = File(
        exists=True,
        desc="surface data: the parcel series as a CIFTI-2 parcel series file (parcels in "
        "increasing label order, with their grayordinates)",
    )
    metrics_file = File(
        exists=True,
        desc="JSON: n_voxels, n_parcels, compression_ratio, r2 of the reconstruction "
        "over the mask, homogeneity, parcel_size_min/q1/median/q3/max, and "
        "n_noncontiguous / split_half_ari / true_regions_ari and _ami when their "
        "inputs are given",
    )


class ParcelCompress(SimpleInterface):
    """Replace each voxel's signal by the mean of its parcel, and measure the loss.

    The signals are a prepared ``series_file`` (the workflow's way) or a 4D
    ``in_file`` prepared with the same options as the tree's; the time
    series, the compressed image and the R2 are those of the prepared
    signals.
    """

    input_spec = _ParcelCompressInputSpec
    output_spec = _ParcelCompressOutputSpec

    def _run_interface(self, runtime):
        labels_file = self.inputs.labels_file
        outputs = {
            "timeseries_file": output_path(labels_file, "_timeseries", runtime.cwd, ".tsv"),
            "metrics_file": output_path(labels_file, "_metrics", runtime.cwd, ".json"),
        }
        parcel_series = output_extension(labels_file, "parcel_series")
        if parcel_series is not None:
            outputs["ptseries_file"] = output_path(labels_file, "_timeseries", runtime.cwd,
                                                   parcel_series)
        if self.inputs.save_compressed:
            outputs["compressed_file"] = output_path(
                labels_file, "_compressed", runtime.cwd, output_extension(labels_file, "series")
            )

        def optional(name):
            value = getattr(self.inputs, name)
            return value if isdefined(value) and value else None

        steps.parcel_compress(
            labels_file,
            outputs["timeseries_file"],
            outputs.get("compressed_file"),
            outputs["metrics_file"],
            mask_path=optional("mask_file"),
            series_info=optional("series_info"),
            preparation=preparation_from_inputs(self.inputs),
            connectivity_path=optional("connectivity_file"),
            half_tree_paths=optional("half_tree_files") or (),
            true_regions_path=optional("true_regions_file"),
            atlas=self.inputs.atlas,
            out_ptseries=outputs.get("ptseries_file"),
            threads=self.inputs.num_threads,
            **series_from_inputs(self.inputs),
        )
        self._results.update(outputs)
        return runtime
