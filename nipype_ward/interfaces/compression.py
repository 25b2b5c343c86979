"""Compression of a BOLD series by a parcellation."""

from nipype.interfaces.base import (
    File,
    SimpleInterface,
    TraitedSpec,
    traits,
)

from nipype_ward import steps
from nipype_ward.interfaces._naming import output_path
from nipype_ward.interfaces._signals import SignalPreparationInputSpec, preparation_from_inputs


class _ParcelCompressInputSpec(SignalPreparationInputSpec):
    in_file = File(exists=True, mandatory=True, desc="4D BOLD series (NIfTI)")
    labels_file = File(
        exists=True,
        mandatory=True,
        desc="parcel labels on the BOLD grid (positive integers inside the mask, 0 outside)",
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


class _ParcelCompressOutputSpec(TraitedSpec):
    timeseries_file = File(
        exists=True,
        desc="parcel mean signals (TSV): one column per parcel, one row per volume, "
        "header = parcel label",
    )
    compressed_file = File(
        exists=True, desc="4D NIfTI where each voxel holds its parcel's mean signal"
    )
    metrics_file = File(
        exists=True,
        desc="JSON: n_voxels, n_parcels, compression_ratio, r2 of the reconstruction "
        "over the mask, homogeneity, parcel_size_min/q1/median/q3/max, and "
        "n_noncontiguous / split_half_ari when their inputs are given",
    )


class ParcelCompress(SimpleInterface):
    """Replace each voxel's signal by the mean of its parcel, and measure the loss.

    With preparation options (the same as the tree's), the time series, the
    compressed image and the R2 are those of the prepared signals.
    """

    input_spec = _ParcelCompressInputSpec
    output_spec = _ParcelCompressOutputSpec

    def _run_interface(self, runtime):
        labels_file = self.inputs.labels_file
        outputs = {
            "timeseries_file": output_path(labels_file, "_timeseries", runtime.cwd, ".tsv"),
            "compressed_file": output_path(labels_file, "_compressed", runtime.cwd, ".nii.gz"),
            "metrics_file": output_path(labels_file, "_metrics", runtime.cwd, ".json"),
        }
        steps.parcel_compress(
            self.inputs.in_file,
            labels_file,
            outputs["timeseries_file"],
            outputs["compressed_file"],
            outputs["metrics_file"],
            preparation=preparation_from_inputs(self.inputs),
            connectivity_path=self.inputs.connectivity_file or None,
            half_tree_paths=self.inputs.half_tree_files or (),
        )
        self._results.update(outputs)
        return runtime
