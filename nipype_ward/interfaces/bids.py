"""BIDS derivatives: the sink, the parcel tables and the sidecars of a run."""

from datetime import datetime, timezone
from pathlib import Path

import nibabel as nb
import numpy as np
from nipype.interfaces.base import (
    BaseInterfaceInputSpec, Directory, File, InputMultiObject, SimpleInterface, TraitedSpec,
    isdefined, traits,
)

from nipype_ward import bids, steps
from nipype_ward.interfaces._naming import output_path
from nipype_ward.io import errors, files
from nipype_ward.io.formats import file_extension, hemisphere_extension, is_surface
from nipype_ward.io.geometry import split_hemispheres
from nipype_ward.provenance import run_provenance, write_provenance


class _DerivativesSinkInputSpec(BaseInterfaceInputSpec):
    base_directory = Directory(mandatory=True, desc="the derivatives dataset (OUTPUT_DIR)")
    source_file = InputMultiObject(
        File(exists=True), mandatory=True,
        desc="the input(s) the derivative comes from: their common entities name the output",
    )
    in_file = File(exists=True, mandatory=True, desc="the file to deliver")
    entities = traits.Dict(
        desc="entities to set on top of the source's (pybids names: segmentation, scale, "
        "statistic, res, desc, suffix...); a value of None removes one",
    )
    meta_dict = traits.Dict(desc="the JSON sidecar's content; no sidecar when not given")
    labels_file = InputMultiObject(
        traits.Str,
        desc="for a metrics JSON in_file: the delivered label file(s) it measures, set as "
        "its labels_file entry relative to it (not the working file it was computed from)",
    )
    source_dir = Directory(
        desc="the dataset the source files belong to (fMRIPrep's): in a JSON in_file, "
        "entries naming one of its files become BIDS URIs (bids:preprocessed:<path>)",
    )


class _DerivativesSinkOutputSpec(TraitedSpec):
    out_file = File(exists=True, desc="the delivered file")
    out_meta = File(desc="its JSON sidecar (when meta_dict is given)")


class DerivativesSink(SimpleInterface):
    """Deliver one derivative under its BIDS name (pybids' path building, our patterns).

    The role of niworkflows' ``DerivativesDataSink``, without its traps: an
    entity that our path patterns cannot place is an error (never moved into
    the sidecar), as is a name that would lose one. The file and its sidecar
    are written to temporary names, then renamed: each appears complete or
    not at all.
    """

    input_spec = _DerivativesSinkInputSpec
    output_spec = _DerivativesSinkOutputSpec
    _always_run = True

    def _run_interface(self, runtime):
        in_file = Path(self.inputs.in_file)
        extension = file_extension(in_file)
        entities = self.inputs.entities if isdefined(self.inputs.entities) else {}
        relative = bids.derivative_path(list(self.inputs.source_file), entities, extension)
        out_file = Path(self.inputs.base_directory) / relative
        labels = list(self.inputs.labels_file) if isdefined(self.inputs.labels_file) else []
        self._results.update(_deliver(
            in_file, out_file, self.inputs.meta_dict, files.sidecar_path(out_file),
            relative={"labels_file": labels[0] if len(labels) == 1 else labels} if labels
            else None,
            source_dir=self.inputs.source_dir if isdefined(self.inputs.source_dir) else None))
        return runtime


def _deliver(in_file, out_file: Path, meta_dict, sidecar: Path, relative=None,
             source_dir=None) -> dict:
    """Copy a derivative into place and write its sidecar (if any), each written then renamed.

    For a JSON ``in_file``: ``relative`` sets entries to delivered paths
    (:func:`nipype_ward.io.files.copy_json`), and paths of files of
    ``source_dir`` become BIDS URIs.
    """
    out_file.parent.mkdir(parents=True, exist_ok=True)
    if in_file.suffix == ".json" and (relative or source_dir):
        files.copy_json(in_file, out_file, relative=relative or {},
                         uris=None if source_dir is None else
                         lambda text: _as_uris(text, source_dir))
    else:
        files.copy_atomically(in_file, out_file)
    results = {"out_file": str(out_file)}
    if isdefined(meta_dict):
        results["out_meta"] = str(files.save_json(meta_dict, sidecar))
    return results


def _as_uris(text: str, source_dir) -> str:
    """Paths of files of ``source_dir`` in ``text`` (one, or several joined by "; ") as BIDS URIs."""
    return "; ".join(bids.bids_uri(part, source_dir) if _inside(part, source_dir) else part
                     for part in text.split("; "))


def _inside(path: str, folder) -> bool:
    """Whether ``path`` is an absolute path of a file inside ``folder``."""
    import os

    return os.path.isabs(path) and os.path.abspath(path).startswith(
        os.path.abspath(folder) + os.sep)


class _ParcelTableInputSpec(BaseInterfaceInputSpec):
    labels_file = File(exists=True, mandatory=True, desc="parcel labels (3D NIfTI)")
    prefix = traits.Str("parcel", usedefault=True, desc="parcel names are <prefix>_<index>")


class _ParcelTableOutputSpec(TraitedSpec):
    out_file = File(exists=True, desc="the dseg table (TSV)")


class ParcelTable(SimpleInterface):
    """The BIDS ``_dseg.tsv`` of a label image: index, name, n_voxels, x, y, z (mm)."""

    input_spec = _ParcelTableInputSpec
    output_spec = _ParcelTableOutputSpec

    def _run_interface(self, runtime):
        out_file = output_path(self.inputs.labels_file, "_dseg", runtime.cwd, ".tsv")
        steps.parcel_table(self.inputs.labels_file, out_file, prefix=self.inputs.prefix)
        self._results["out_file"] = out_file
        return runtime


class _SplitHemispheresInputSpec(BaseInterfaceInputSpec):
    in_file = File(exists=True, mandatory=True,
                   desc="cortical CIFTI-2 labels or series of a GIFTI pair's grayordinates")


class _SplitHemispheresOutputSpec(TraitedSpec):
    left_hemisphere = File(exists=True, desc="the left cortex (GIFTI labels or series)")
    right_hemisphere = File(exists=True, desc="the right cortex (GIFTI labels or series)")


class SplitHemispheres(SimpleInterface):
    """A cortical CIFTI-2 file as two GIFTI files, for data that came as a GIFTI pair.

    Labels become GIFTI labels (with the label table), series GIFTI series
    (:func:`nipype_ward.io.geometry.split_hemispheres`); the vertices without
    data hold 0.
    """

    input_spec = _SplitHemispheresInputSpec
    output_spec = _SplitHemispheresOutputSpec

    def _run_interface(self, runtime):
        in_file = self.inputs.in_file
        extension = hemisphere_extension(in_file)
        outputs = {f"{side}_hemisphere": output_path(in_file, f"_hemi-{hemi}", runtime.cwd,
                                                     extension)
                   for side, hemi in (("left", "L"), ("right", "R"))}
        split_hemispheres(in_file, outputs["left_hemisphere"], outputs["right_hemisphere"])
        self._results.update(outputs)
        return runtime


class _RunSidecarsInputSpec(BaseInterfaceInputSpec):
    bold_file = InputMultiObject(
        File(exists=True), mandatory=True,
        desc="the preprocessed BOLD (fMRIPrep); several for runs combined",
    )
    mask_file = InputMultiObject(
        File(exists=True), desc="its brain mask(s) (fMRIPrep), same order; none for surface "
        "data"
    )
    confounds_file = InputMultiObject(
        File(exists=True),
        desc="its confounds table(s) (fMRIPrep), sources when confounds are used",
    )
    source_dir = Directory(
        exists=True, mandatory=True, desc="the fMRIPrep dataset the sources' BIDS URIs refer to"
    )
    n_clusters = InputMultiObject(
        traits.Int, desc="the numbers of parcels (one sidecar of each kind per K); required "
        "unless atlas_file is given",
    )
    atlas_file = File(
        exists=True, desc="an atlas the run was reduced on (--atlas): one sidecar of each "
        "kind, recording the atlas (path, SHA-256, label) instead of a K",
    )
    atlas_label = traits.Str(desc="the atlas' label (seg- entity), with atlas_file")
    series_info = traits.Dict(
        mandatory=True, desc="PrepareSignals' series_info (TR, preparation, censored volumes)"
    )
    parameters = traits.Dict(desc="the parcellation's parameters, recorded in every sidecar")
    metadata = traits.Dict(desc="the BOLD's own sidecar (RepetitionTime, TaskName, ...)")
    resolution = traits.Str(
        desc="the res- entity of the BOLD, when it has one: the sidecars then say what it "
        "means (BIDS requires Resolution with res-)",
    )
    density = traits.Str(
        desc="the den- entity of surface data, when it has one: the sidecars then say what "
        "it means (BIDS requires Density with den-)",
    )


class _RunSidecarsOutputSpec(TraitedSpec):
    dseg_meta = traits.List(traits.Dict, desc="sidecar of each K's label image")
    timeseries_meta = traits.List(traits.Dict, desc="sidecar of each K's time series")
    bold_meta = traits.List(traits.Dict, desc="sidecar of each K's compressed series")
    source_checksums = traits.Dict(desc="SHA-256 of each source file, by path")


class RunSidecars(SimpleInterface):
    """The JSON sidecars of a run's derivatives, one per K and kind.

    ``Sources`` are BIDS URIs into the fMRIPrep dataset, with their SHA-256;
    every parameter and software version is recorded, so a result can be
    traced to its inputs and repeated.
    """

    input_spec = _RunSidecarsInputSpec
    output_spec = _RunSidecarsOutputSpec

    def _run_interface(self, runtime):
        masks = list(self.inputs.mask_file) if isdefined(self.inputs.mask_file) else []
        sources = [*self.inputs.bold_file, *masks]
        surface = is_surface(self.inputs.bold_file[0])
        preparation = self.inputs.series_info.get("preparation") or {}
        if isdefined(self.inputs.confounds_file) and preparation.get("confounds_strategy"):
            sources += list(self.inputs.confounds_file)
        uris = [bids.bids_uri(path, self.inputs.source_dir) for path in sources]
        checksums = {str(path): bids.sha256(path) for path in sources}
        self._results["source_checksums"] = checksums
        common = {
            "Sources": uris,
            "SourcesSHA256": {uri: checksums[str(path)] for uri, path in zip(uris, sources)},
            "SpatialReference": uris[0],
            "Software": bids.software_versions(),
            "Parameters": self.inputs.parameters if isdefined(self.inputs.parameters) else {},
        }
        info = self.inputs.series_info
        metadata = self.inputs.metadata if isdefined(self.inputs.metadata) else {}
        t_r = info.get("t_r") or metadata.get("RepetitionTime")
        censored = steps.censored_volumes(info)
        if isdefined(self.inputs.resolution) and self.inputs.resolution:
            zooms = nb.load(self.inputs.mask_file[0]).header.get_zooms()[:3]
            common["Resolution"] = (
                f"res-{self.inputs.resolution}: voxels of "
                + " x ".join(f"{z:g}" for z in zooms) + " mm, as the source BOLD"
            )
        if isdefined(self.inputs.density) and self.inputs.density:
            common["Density"] = (f"den-{self.inputs.density}: {info['n_voxels']} "
                                 "grayordinates, as the source series")
        if isdefined(self.inputs.atlas_file):
            atlas = Path(self.inputs.atlas_file)
            values = np.unique(np.asanyarray(nb.load(atlas).dataobj))
            ks = [int((values > 0).sum())]
            common["Atlas"] = {"Label": self.inputs.atlas_label or None,
                               "Path": atlas.absolute().as_uri(), "SHA256": bids.sha256(atlas)}
            what = f"the atlas {self.inputs.atlas_label or atlas.name}"
        elif isdefined(self.inputs.n_clusters):
            ks, what = list(self.inputs.n_clusters), None
        else:
            raise ValueError("RunSidecars needs n_clusters or atlas_file")
        self._results["dseg_meta"] = [
            {**common, **(bids.SURFACE_DSEG_COLUMNS if surface else bids.DSEG_COLUMNS),
             "NumberOfParcels": int(k),
             "Description": f"{k} parcels learned from this run by spatially constrained Ward "
             "clustering of its prepared voxel signals (nipype-ward)"}
            for k in ks
        ]
        self._results["timeseries_meta"] = [
            {**common, "NumberOfParcels": int(k),
             "SamplingFrequency": 1.0 / t_r if t_r else None,
             "NumberOfVolumes": info["n_volumes"], "CensoredVolumes": censored,
             "Description": "mean prepared signal of each parcel's voxels, one column per "
             "parcel (header: its index in the dseg), one row per kept volume"
             + (f"; parcels of {what}, over the run's mask voxels it labels (n/a: a parcel "
                "with no voxel in the mask)" if what else "")}
            for k in ks
        ]
        self._results["bold_meta"] = [
            {**common, "NumberOfParcels": int(k), "RepetitionTime": t_r,
             "TaskName": metadata.get("TaskName"), "SkullStripped": True,
             "CensoredVolumes": censored,
             "Description": "every voxel replaced by its parcel's mean prepared signal"}
            for k in ks
        ]
        return runtime


class _RunProvenanceInputSpec(BaseInterfaceInputSpec):
    source_files = InputMultiObject(
        File(exists=True), mandatory=True, desc="the fMRIPrep inputs of the run"
    )
    source_dir = Directory(exists=True, mandatory=True, desc="the fMRIPrep dataset")
    derivatives = InputMultiObject(
        File(exists=True), mandatory=True, desc="every file the run delivered"
    )
    output_dir = Directory(exists=True, mandatory=True, desc="the derivatives dataset")
    parameters = traits.Dict(mandatory=True, desc="the run's parameters")
    run_id = traits.Str(mandatory=True, desc="the App's run (its log/<run_id> folder)")
    run_name = traits.Str(mandatory=True, desc="the BOLD run's name (sub-01_task-rest_run-1)")
    subject = traits.Str(mandatory=True, desc="the subject label, for the log folder")
    source_checksums = traits.Dict(
        desc="SHA-256 of source files already computed (RunSidecars'), by path; the others "
        "are computed here",
    )
    written_after = traits.List(
        traits.Str, usedefault=True,
        desc="paths, relative to output_dir, of files written once the graph has run (the "
        "subject's report, dataset_description.json): recorded without a checksum",
    )


class _RunProvenanceOutputSpec(TraitedSpec):
    out_file = File(exists=True, desc="the PROV-JSON document (a PROV-N copy beside it)")


class RunProvenance(SimpleInterface):
    """The W3C PROV record of a run, in ``sub-<label>/log/<run_id>/<run>_prov.json``.

    See :mod:`nipype_ward.provenance`: the derivatives, each derived from
    the inputs by one activity carrying the parameters and the software.
    """

    input_spec = _RunProvenanceInputSpec
    output_spec = _RunProvenanceOutputSpec
    _always_run = True

    def _run_interface(self, runtime):
        started = datetime.strptime(self.inputs.run_id[:15], "%Y%m%d-%H%M%S").replace(
            tzinfo=timezone.utc)
        document = run_provenance(
            sources=self.inputs.source_files, source_dir=self.inputs.source_dir,
            outputs=self.inputs.derivatives, output_dir=self.inputs.output_dir,
            parameters=self.inputs.parameters, run_id=self.inputs.run_id,
            run_name=self.inputs.run_name, started=started,
            checksums=self.inputs.source_checksums if isdefined(self.inputs.source_checksums)
            else None, written_after=self.inputs.written_after,
        )
        folder = Path(self.inputs.output_dir) / f"sub-{self.inputs.subject}" / "log" \
            / self.inputs.run_id
        folder.mkdir(parents=True, exist_ok=True)
        out_file = write_provenance(document, folder / f"{self.inputs.run_name}_prov.json")
        self._results["out_file"] = str(out_file)
        return runtime


class _AtlasSinkInputSpec(BaseInterfaceInputSpec):
    base_directory = Directory(mandatory=True, desc="the atlas dataset (OUTPUT_DIR/atlases)")
    template = traits.Str(mandatory=True, desc="the template (tpl- entity): the runs' space")
    atlas = traits.Str(mandatory=True, desc="the atlas label (atlas- entity), e.g. ward1000")
    res = traits.Str(desc="the res- entity of the runs, when they have one")
    den = traits.Str(desc="the den- entity of surface runs, when they have one")
    hemi = traits.Enum("L", "R", desc="the hemisphere of a GIFTI label atlas (GIFTI data)")
    in_file = File(exists=True, mandatory=True,
                   desc="the file to deliver: a label image (NIfTI, CIFTI-2, or one GIFTI a "
                   "hemisphere) or its table")
    meta_dict = traits.Dict(desc="the JSON sidecar's content; no sidecar when not given")
    description = traits.Dict(
        desc="the atlas-<label>_description.json content (BIDS-Atlas); not written when not given"
    )
    figure_desc = traits.Str(
        desc="in_file is a figure (PNG): delivered to figures/, named with desc-<figure_desc>"
    )


class AtlasSink(SimpleInterface):
    """Deliver a group atlas file under its BIDS-Atlas name (XCP-D's ``collect_atlases``).

    ``tpl-<template>/tpl-<template>_atlas-<label>[_res-<res>]_dseg.<ext>``,
    with its JSON sidecar and, when given, the atlas' description file at
    the dataset's root; each written to a temporary name, then renamed.
    """

    input_spec = _AtlasSinkInputSpec
    output_spec = _DerivativesSinkOutputSpec
    _always_run = True

    def _run_interface(self, runtime):
        in_file = Path(self.inputs.in_file)
        extension = file_extension(in_file)
        entities = {name: getattr(self.inputs, name) for name in ("res", "den", "hemi")
                    if isdefined(getattr(self.inputs, name)) and getattr(self.inputs, name)}
        shared = {key: value for key, value in entities.items() if key != "hemi"}
        root = Path(self.inputs.base_directory)
        if isdefined(self.inputs.figure_desc):
            name = Path(bids.atlas_path(self.inputs.template, self.inputs.atlas, ".json",
                                        **shared)).name
            name = name.replace("_dseg.json", f"_desc-{self.inputs.figure_desc}_dseg{extension}")
            out_file = root / "figures" / name
        else:
            out_file = root / bids.atlas_path(self.inputs.template, self.inputs.atlas,
                                              extension, **entities)
        sidecar = root / bids.atlas_path(self.inputs.template, self.inputs.atlas, ".json",
                                         **shared)
        self._results.update(_deliver(in_file, out_file, self.inputs.meta_dict, sidecar))
        if isdefined(self.inputs.description):
            files.save_json(self.inputs.description,
                             root / f"atlas-{self.inputs.atlas}_description.json")
        return runtime


class _AtlasSidecarsInputSpec(BaseInterfaceInputSpec):
    bold_file = InputMultiObject(File(exists=True), mandatory=True,
                                 desc="every run's preprocessed BOLD (fMRIPrep)")
    mask_file = InputMultiObject(File(exists=True),
                                 desc="every run's brain mask, same order; none for surface data")
    confounds_file = InputMultiObject(File(exists=True),
                                      desc="every run's confounds table, when confounds are used")
    source_dir = Directory(exists=True, mandatory=True, desc="the fMRIPrep dataset")
    template = traits.Str(mandatory=True, desc="the template the atlases are in")
    n_clusters = InputMultiObject(traits.Int, mandatory=True, desc="the numbers of parcels")
    series_info = traits.Dict(mandatory=True, desc="GroupSeries' series_info")
    parameters = traits.Dict(desc="the parcellation's parameters")
    split_half_ari = traits.List(traits.Float, desc="GroupSplitHalf's ARI per K")
    records = traits.List(desc="CompareParcellations' records of every run (lists are flattened)")
    resolution = traits.Str(desc="the runs' res- entity, when they have one")
    density = traits.Str(desc="the surface runs' den- entity, when they have one")


class _AtlasSidecarsOutputSpec(TraitedSpec):
    dseg_meta = traits.List(traits.Dict, desc="the _dseg.json of each K's atlas")
    descriptions = traits.List(traits.Dict, desc="the atlas-<label>_description.json of each K")


class AtlasSidecars(SimpleInterface):
    """What the group atlases record: sources, subjects, parameters, reduction, quality.

    ``Sources`` are BIDS URIs of every run's BOLD and mask; ``Reduction``
    says how the subjects were combined; ``Quality`` (when the group level
    measured it, ``--group-quality``: ``records`` or ``split_half_ari`` are
    given) holds the split-half agreement across subjects and, for every
    run, the R2 and homogeneity of the group atlas against those of the
    run's own parcellation at the same K (on the same voxels).
    """

    input_spec = _AtlasSidecarsInputSpec
    output_spec = _AtlasSidecarsOutputSpec

    def _run_interface(self, runtime):
        info = self.inputs.series_info
        masks = list(self.inputs.mask_file) if isdefined(self.inputs.mask_file) else []
        sources = [*self.inputs.bold_file, *masks]
        surface = is_surface(self.inputs.bold_file[0])
        if isdefined(self.inputs.confounds_file) and (info.get("preparation") or {}).get(
                "confounds_strategy"):
            sources += list(self.inputs.confounds_file)
        uris = [bids.bids_uri(path, self.inputs.source_dir) for path in sources]
        flat = []
        for item in (self.inputs.records if isdefined(self.inputs.records) else []):
            flat += item if isinstance(item, list) else [item]
        ari = self.inputs.split_half_ari if isdefined(self.inputs.split_half_ari) else []
        measured = isdefined(self.inputs.records) or isdefined(self.inputs.split_half_ari)
        reduction = {key: info.get(key) for key in ("reduction", "n_components", "n_volumes_total",
                                                    "n_volumes")}
        reduction["n_features"] = reduction.pop("n_volumes")
        common = {
            "Sources": uris,
            "Subjects": info.get("subjects", []),
            "Software": bids.software_versions(),
            "Parameters": self.inputs.parameters if isdefined(self.inputs.parameters) else {},
            "Reduction": reduction,
        }
        if isdefined(self.inputs.resolution) and self.inputs.resolution:
            zooms = nb.load(self.inputs.mask_file[0]).header.get_zooms()[:3]
            common["Resolution"] = (f"res-{self.inputs.resolution}: voxels of "
                                    + " x ".join(f"{z:g}" for z in zooms) + " mm, as the runs")
        if isdefined(self.inputs.density) and self.inputs.density:
            common["Density"] = (f"den-{self.inputs.density}: {info['n_voxels']} "
                                 "grayordinates, those of every run")
        tasks = {bids.parse_entities(path).get("task") for path in self.inputs.bold_file}
        derived_from = "resting-state" if all("rest" in str(task).lower() for task in tasks) \
            else "fMRI (tasks " + ", ".join(sorted(map(str, tasks))) + ")"
        try:
            license_ = files.load_json(Path(self.inputs.source_dir) / "dataset_description.json"
                                        ).get("License")
        except errors.InputError:
            license_ = None
        license_ = license_ or "not stated: that of the source dataset applies"
        metas, descriptions = [], []
        for index, k in enumerate(self.inputs.n_clusters):
            runs = [{key: value for key, value in record.items() if key != "n_clusters"}
                    for record in flat if record["n_clusters"] == k]
            for run in runs:
                run["source"] = bids.bids_uri(run["source"], self.inputs.source_dir)
            quality = {
                "SplitHalfARI": ari[index] if index < len(ari) else None,
                "MeanGroupR2": float(np.mean([r["group_r2"] for r in runs])) if runs else None,
                "MeanOwnR2": float(np.mean([r["own_r2"] for r in runs])) if runs else None,
                "Runs": runs,
            }
            description = (
                f"{k} parcels learned from {len(common['Subjects'])} subjects by spatially "
                "constrained Ward clustering of their prepared BOLD signals (nipype-ward, "
                f"{reduction['reduction']} reduction), in the voxels inside every run's mask"
            )
            columns = bids.SURFACE_DSEG_COLUMNS if surface else bids.DSEG_COLUMNS
            meta = {**common, **columns, "NumberOfParcels": int(k), "Description": description,
                    "SpatialReference": self.inputs.template}
            if measured:
                meta["Quality"] = quality
            metas.append(meta)
            described = {
                "AtlasName": bids.atlas_label(k),
                "Name": f"nipype-ward group Ward atlas, {k} parcels",
                "Description": description,
                "License": license_,
                "LevelType": "group",
                "DerivedFrom": derived_from,
                "AtlasSampleSize": len(common["Subjects"]),
                "SpatialReference": self.inputs.template,
                "NumberOfParcels": int(k),
                "Sources": uris,
                "Subjects": common["Subjects"],
                "Reduction": reduction,
                "Quality": {key: value for key, value in quality.items() if key != "Runs"},
                "Software": common["Software"],
            }
            if not measured:
                del described["Quality"]
            descriptions.append(described)
        self._results.update(dseg_meta=metas, descriptions=descriptions)
        return runtime
