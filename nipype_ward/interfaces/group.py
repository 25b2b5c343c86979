"""The group level: common mask, per-subject reduction, group series, group quality."""

from pathlib import Path

from nipype.interfaces.base import (
    BaseInterfaceInputSpec, File, InputMultiObject, SimpleInterface, TraitedSpec, isdefined,
    traits,
)

from nipype_ward import steps
from nipype_ward.core.reduction import REDUCTIONS
from nipype_ward.io import geometry
from nipype_ward.io.formats import output_extension


class _GroupMaskInputSpec(BaseInterfaceInputSpec):
    mask_files = InputMultiObject(
        File(exists=True), mandatory=True, desc="the mask of every run (PrepareSignals), one grid"
    )
    mean_files = InputMultiObject(
        File(exists=True), mandatory=True, desc="the temporal mean of every run, same order"
    )


class _GroupMaskOutputSpec(TraitedSpec):
    mask_file = File(exists=True, desc="the voxels inside every run's mask (uint8 NIfTI)")
    mean_file = File(exists=True, desc="the average of the runs' means (float32 NIfTI)")
    n_voxels = traits.Int(desc="voxels of the group mask")


class GroupMask(SimpleInterface):
    """The group mask (voxels inside every run's mask) and the group mean image."""

    input_spec = _GroupMaskInputSpec
    output_spec = _GroupMaskOutputSpec

    def _run_interface(self, runtime):
        cwd = Path(runtime.cwd)
        extension = output_extension(self.inputs.mask_files[0], "points")
        mask_file = str(cwd / f"group_mask{extension}")
        mean_file = str(cwd / f"group_mean{extension}")
        n_voxels = steps.group_mask(self.inputs.mask_files, self.inputs.mean_files,
                                    mask_file, mean_file)
        self._results.update(mask_file=mask_file, mean_file=mean_file, n_voxels=n_voxels)
        return runtime


class _ReductionInputSpec(BaseInterfaceInputSpec):
    reduction = traits.Enum(
        *REDUCTIONS, usedefault=True,
        desc="'exact': series concatenated in time; 'migp': MIGP, the incremental group "
        "PCA of Smith et al. (2014), to n_components features",
    )
    n_components = traits.Range(
        low=1, value=500, usedefault=True, desc="features MIGP keeps (ignored by 'exact')"
    )
    group_mask_file = File(exists=True, mandatory=True, desc="the group mask (GroupMask)")


class _ReduceSubjectInputSpec(_ReductionInputSpec):
    subject = traits.Str(mandatory=True, desc="the subject's label")
    series_files = InputMultiObject(
        File(exists=True), mandatory=True, desc="the prepared series of each of its runs"
    )
    mask_files = InputMultiObject(
        File(exists=True), mandatory=True, desc="the mask each series was taken in, same order"
    )
    series_infos = traits.List(traits.Dict, mandatory=True, desc="each run's series_info")


class _ReduceSubjectOutputSpec(TraitedSpec):
    reduced_file = File(
        exists=True, desc="the subject's series in the group mask (.npy, voxels x features)"
    )
    subject_info = traits.Dict(desc="the subject's record: label, sources, volumes, features")


class ReduceSubject(SimpleInterface):
    """One subject's runs in the group mask, concatenated in time, reduced for the group.

    See :func:`nipype_ward.steps.reduce_subject`; one node per subject, so
    that the execution plugin spreads the subjects over cores or jobs.
    """

    input_spec = _ReduceSubjectInputSpec
    output_spec = _ReduceSubjectOutputSpec

    def _run_interface(self, runtime):
        out = str(Path(runtime.cwd) / f"sub-{self.inputs.subject}_reduced.npy")
        info = steps.reduce_subject(
            self.inputs.series_files, self.inputs.mask_files, self.inputs.series_infos,
            self.inputs.group_mask_file, out, subject=self.inputs.subject,
            reduction=self.inputs.reduction, n_components=self.inputs.n_components,
        )
        self._results.update(reduced_file=out, subject_info=info)
        return runtime


class _GroupSeriesInputSpec(_ReductionInputSpec):
    reduced_files = InputMultiObject(
        File(exists=True), xor=["series_files"],
        desc="each subject's reduced series (ReduceSubject); with 'migp', also the group "
        "series of parts of the group (GroupSeries), combined by one more MIGP",
    )
    subject_infos = traits.List(traits.Dict,
                                desc="with reduced_files: the record of every subject the "
                                "result covers")
    series_files = InputMultiObject(
        File(exists=True), xor=["reduced_files"],
        desc="instead of reduced_files, when no subject needs its own reduction: every "
        "run's prepared series (PrepareSignals), restricted to the group mask as read",
    )
    mask_files = InputMultiObject(File(exists=True),
                                  desc="with series_files: each run's mask, same order")
    series_infos = traits.List(traits.Dict,
                               desc="with series_files: each run's series_info, same order")
    run_subjects = traits.List(traits.Str,
                               desc="with series_files: each run's subject, same order")


class _GroupSeriesOutputSpec(TraitedSpec):
    series_file = File(exists=True, desc="the group's voxel-feature matrix (.npy)")
    series_info = traits.Dict(desc="its info for the tree, with the reduction and subjects")


class GroupSeries(SimpleInterface):
    """The group's voxel-feature matrix that the group tree is built on.

    See :func:`nipype_ward.steps.group_series`: the subjects concatenated
    (``exact``) or MIGP (``migp``), whose memory does not grow with the
    number of subjects. From the subjects' reduced series
    (:class:`ReduceSubject`), or, when no subject needs its own reduction,
    straight from every run's prepared series
    (:func:`nipype_ward.steps.group_series_of_runs`: the same matrix,
    without a file per subject).
    """

    input_spec = _GroupSeriesInputSpec
    output_spec = _GroupSeriesOutputSpec

    def _run_interface(self, runtime):
        out = str(Path(runtime.cwd) / "group_series.npy")
        options = {"reduction": self.inputs.reduction, "n_components": self.inputs.n_components}
        if isdefined(self.inputs.series_files):
            needed = ("mask_files", "series_infos", "run_subjects")
            missing = [name for name in needed if not isdefined(getattr(self.inputs, name))]
            if missing:
                raise ValueError(f"series_files need {', '.join(missing)} too")
            info, _ = steps.group_series_of_runs(
                self.inputs.series_files, self.inputs.mask_files, self.inputs.series_infos,
                self.inputs.run_subjects, self.inputs.group_mask_file, out, **options)
        elif isdefined(self.inputs.reduced_files) and isdefined(self.inputs.subject_infos):
            info = steps.group_series(self.inputs.reduced_files, self.inputs.subject_infos,
                                      self.inputs.group_mask_file, out, **options)
        else:
            raise ValueError("give reduced_files and subject_infos, or series_files with "
                             "mask_files, series_infos and run_subjects")
        self._results.update(series_file=out, series_info=info)
        return runtime


class _GroupSplitHalfInputSpec(BaseInterfaceInputSpec):
    half_tree_files = traits.List(
        File(exists=True), minlen=2, maxlen=2, mandatory=True,
        desc="the group trees of the two halves of the subjects",
    )
    mask_file = File(exists=True, mandatory=True, desc="the group mask the trees were built on")
    n_clusters = InputMultiObject(traits.Int, mandatory=True, desc="the numbers of parcels")


class _GroupSplitHalfOutputSpec(TraitedSpec):
    split_half_ari = traits.List(traits.Float, desc="ARI of the two halves' atlases, per K")


class GroupSplitHalf(SimpleInterface):
    """Split-half agreement across subjects: ARI of the atlases of two halves of the group."""

    input_spec = _GroupSplitHalfInputSpec
    output_spec = _GroupSplitHalfOutputSpec

    def _run_interface(self, runtime):
        mask, _ = geometry.load_mask(self.inputs.mask_file)
        self._results["split_half_ari"] = [
            steps.split_half_ari(self.inputs.half_tree_files, int(k), int(mask.sum()))
            for k in self.inputs.n_clusters
        ]
        return runtime


class _CompareParcellationsInputSpec(BaseInterfaceInputSpec):
    series_file = File(exists=True, mandatory=True, desc="a run's prepared series")
    series_info = traits.Dict(desc="its series_info")
    mask_file = File(exists=True, mandatory=True, desc="the mask the series was taken in")
    atlas_files = InputMultiObject(
        File(exists=True), mandatory=True, desc="the group atlas at each K"
    )
    own_files = InputMultiObject(
        File(exists=True), mandatory=True, desc="the run's own parcellation at each K, same order"
    )
    n_clusters = InputMultiObject(traits.Int, mandatory=True, desc="the Ks, same order")


class _CompareParcellationsOutputSpec(TraitedSpec):
    records = traits.List(
        traits.Dict, desc="per K: R2 and homogeneity of the group atlas and of the own "
        "parcellation, on the run's voxels the atlas labels",
    )


class CompareParcellations(SimpleInterface):
    """A run's R2 and homogeneity on the group atlas against those of its own parcellation."""

    input_spec = _CompareParcellationsInputSpec
    output_spec = _CompareParcellationsOutputSpec

    def _run_interface(self, runtime):
        if len(self.inputs.atlas_files) != len(self.inputs.own_files):
            raise ValueError("give one atlas and one own parcellation per K")
        records = []
        for k, atlas, own in zip(self.inputs.n_clusters, self.inputs.atlas_files,
                                 self.inputs.own_files):
            records += steps.compare_parcellations(
                self.inputs.series_file, self.inputs.mask_file, atlas, [own],
                series_info=self.inputs.series_info or None, n_clusters=[k],
            )
        self._results["records"] = records
        return runtime
