"""EPI brain mask."""

from dataclasses import fields

from nipype.interfaces.base import (
    BaseInterfaceInputSpec, File, SimpleInterface, TraitedSpec, traits,
)

from nipype_ward import steps
from nipype_ward.interfaces._naming import output_path
from nipype_ward.io.masking import MASK_STRATEGIES, EPIMaskOptions


class EPIMaskOptionsInputSpec(BaseInterfaceInputSpec):
    """How a brain mask is computed from an EPI, shared by every interface that
    computes one (``EPIMask``, ``PrepareSignals``): the strategy and the options
    of nilearn's ``compute_epi_mask``."""

    mask_strategy = traits.Enum(
        *MASK_STRATEGIES, usedefault=True,
        desc="how the mask is computed, as nilearn's maskers' mask_strategy: 'epi' "
        "(compute_epi_mask, with the options below) or 'background' "
        "(compute_background_mask with nilearn's defaults: the voxels that differ from the "
        "image's border, for a series whose background is zero already, e.g. skull-stripped)",
    )
    lower_cutoff = traits.Range(
        low=0.0, high=1.0, value=0.2, usedefault=True,
        desc="lower fraction of the histogram to be discarded (nilearn's compute_epi_mask)",
    )
    upper_cutoff = traits.Range(
        low=0.0, high=1.0, value=0.85, usedefault=True,
        desc="upper fraction of the histogram to be discarded (nilearn's compute_epi_mask)",
    )
    connected = traits.Bool(
        True, usedefault=True, desc="keep only the largest connected component"
    )
    opening = traits.Int(
        2, usedefault=True, desc="iterations of morphological opening (0: none)"
    )
    exclude_zeros = traits.Bool(
        False, usedefault=True, desc="ignore zero voxels when computing the threshold"
    )


def epi_options_from_inputs(inputs) -> EPIMaskOptions:
    """The :class:`~nipype_ward.io.masking.EPIMaskOptions` an interface's inputs ask for."""
    names = [item.name for item in fields(EPIMaskOptions) if item.name != "strategy"]
    return EPIMaskOptions(**{name: getattr(inputs, name) for name in names},
                          strategy=inputs.mask_strategy)


class _EPIMaskInputSpec(EPIMaskOptionsInputSpec):
    in_file = File(exists=True, mandatory=True, desc="3D or 4D EPI series (NIfTI)")
    brain_mask_file = File(
        exists=True,
        desc="precomputed brain mask on the EPI grid (e.g. fMRIPrep's desc-brain_mask); "
        "when given, no mask is computed and this one is used",
    )


class _EPIMaskOutputSpec(TraitedSpec):
    mask_file = File(exists=True, desc="brain mask, uint8, on the EPI grid")
    mean_file = File(exists=True, desc="temporal mean of the EPI series, float32")


class EPIMask(SimpleInterface):
    """Brain mask of an EPI series, as :func:`nilearn.masking.compute_epi_mask`.

    With the same options the mask equals nilearn's; with
    ``mask_strategy="background"``, it is
    :func:`nilearn.masking.compute_background_mask`'s (for a series whose
    background is zero already, on which the EPI mask collapses: an error
    naming the series). The series is read once: its temporal mean gives
    both the mask and ``mean_file``. When
    ``brain_mask_file`` is set, it is checked against the EPI grid and used
    instead. (The parcellation workflow computes the mask inside
    ``PrepareSignals``, in the same single read as the series.)
    """

    input_spec = _EPIMaskInputSpec
    output_spec = _EPIMaskOutputSpec

    def _run_interface(self, runtime):
        in_file = self.inputs.in_file
        mask_file, mean_file = steps.epi_mask(
            in_file,
            output_path(in_file, "_mask", runtime.cwd),
            output_path(in_file, "_mean", runtime.cwd),
            brain_mask_path=self.inputs.brain_mask_file or None,
            options=epi_options_from_inputs(self.inputs),
        )
        self._results["mask_file"] = str(mask_file)
        self._results["mean_file"] = str(mean_file)
        return runtime
