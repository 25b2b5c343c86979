"""Voxel-series inputs shared by the interfaces that read BOLD signals.

The preparation traits are declared once, here: ``PrepareSignals`` (the
workflow's one reader of the BOLD) takes them, and so do ``WardTree``,
``WardAgglomerate`` and ``ParcelCompress`` for standalone use on a 4D NIfTI
(``in_file``). Given a prepared ``series_file`` instead, those interfaces
refuse a preparation: the series is prepared already.
"""

from nipype.interfaces.base import BaseInterfaceInputSpec, File, isdefined, traits

from nipype_ward.core.signals import CONFOUND_STRATEGIES, STANDARDIZE
from nipype_ward.steps import SignalPreparation


class SignalPreparationInputSpec(BaseInterfaceInputSpec):
    standardize = traits.Enum(
        *STANDARDIZE,
        usedefault=True,
        desc="scaling of each voxel's series before use (nilearn's meanings): False "
        "(none, the seed example), 'zscore_sample' (z-score in time) or 'psc' "
        "(percent signal change)",
    )
    detrend = traits.Bool(False, usedefault=True, desc="remove each voxel's linear trend")
    high_pass = traits.Float(desc="high-pass Butterworth cutoff in Hz (needs the TR)")
    low_pass = traits.Float(desc="low-pass Butterworth cutoff in Hz (needs the TR)")
    t_r = traits.Float(
        desc="repetition time in seconds; when not given, read from the JSON sidecar "
        "(RepetitionTime) or the NIfTI header"
    )
    confounds_file = File(
        exists=True,
        desc="confound regressors (TSV with a header, one row per volume, e.g. fMRIPrep's "
        "desc-confounds_timeseries.tsv); when given, regressed out of every voxel",
    )
    confounds_columns = traits.List(
        traits.Str,
        desc="columns of confounds_file to regress out; all columns when not given",
    )
    confounds_strategy = traits.Enum(
        *CONFOUND_STRATEGIES,
        xor=["confounds_file"],
        desc="instead of confounds_file, the confounds of an fMRIPrep BOLD file (found "
        "beside it) by nilearn's load_confounds_strategy: 'simple' (motion, WM/CSF, "
        "cosine drifts), 'scrubbing' (the same, fuller, and the volumes of high motion "
        "censored) or 'compcor' (motion, anatomical CompCor, cosine drifts)",
    )
    fd_threshold = traits.Float(
        desc="framewise displacement (mm) above which 'scrubbing' censors a volume "
        "(nilearn's default, 0.5, when not given)",
    )
    dvars_threshold = traits.Float(
        desc="standardized DVARS above which 'scrubbing' censors a volume (nilearn's "
        "std_dvars_threshold; its default, 1.5, when not given)",
    )


class ThreadsInputSpec(BaseInterfaceInputSpec):
    # Nipype sets num_threads from the node's n_procs (and n_procs from it):
    # the workflows set n_procs to their omp_nthreads. Not hashed: the
    # outputs are the same on any number of threads.
    num_threads = traits.Int(
        1,
        usedefault=True,
        nohash=True,
        desc="CPUs the node may use (the node's n_procs): to decompress a large .nii.gz, "
        "to build the two split-half trees at once, to compress a 4D .nii.gz output",
    )


class VoxelSeriesInputSpec(SignalPreparationInputSpec, ThreadsInputSpec):
    """Either a prepared series and its mask, or a 4D BOLD series to read now."""

    series_file = File(
        exists=True,
        mandatory=True,
        xor=["in_file"],
        desc="prepared voxel series (.npy from PrepareSignals), taken in mask_file; "
        "what the workflow passes (the BOLD is then never read again)",
    )
    in_file = File(
        exists=True,
        mandatory=True,
        xor=["series_file"],
        desc="4D BOLD series (NIfTI), read inside mask_file and prepared with the "
        "preparation inputs; for standalone use",
    )


def preparation_from_inputs(inputs) -> SignalPreparation:
    """The :class:`~nipype_ward.steps.SignalPreparation` an interface's inputs ask for."""

    names = SignalPreparationInputSpec.class_editable_traits()
    return SignalPreparation.from_options(
        {name: getattr(inputs, name) for name in names if isdefined(getattr(inputs, name))})


def series_from_inputs(inputs) -> dict:
    """Keyword arguments of the steps that take a series or a 4D BOLD."""
    if isdefined(inputs.series_file):
        return {"series_path": inputs.series_file}
    return {"bold_path": inputs.in_file}


def source_of(inputs) -> str:
    """The file outputs are named after: the series or the BOLD."""
    return inputs.series_file if isdefined(inputs.series_file) else inputs.in_file
