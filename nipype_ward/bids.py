"""BIDS: querying fMRIPrep derivatives, naming our outputs, their sidecars.

Everything BIDS-specific is here: the selection of the runs to parcellate
(with pybids, fMRIPrep's ``--bids-filter-file`` format included), the
entities and path patterns of our outputs (``data/nipype_ward_bids.json``,
a pybids configuration users can load beside pybids' own to query them:
``BIDSLayout(out, config=["bids", "derivatives", BIDS_CONFIG])``; it adds
the ``scale``, ``stat`` and ``cohort`` entities pybids 0.22 lacks), BIDS
URIs, checksums, ``dataset_description.json`` and ``.bidsignore``; and
the group level's BIDS-Atlas dataset (``OUTPUT_DIR/atlases``), named the
way XCP-D's ``collect_atlases`` reads it.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import re
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from nipype_ward import __version__
from nipype_ward.fileio import (
    InputError,
    file_extension,
    fmriprep_confounds_file,
    save_json,
    save_text,
)
from nipype_ward.folders import locked

#: The pybids configuration of our outputs' entities and path patterns.
BIDS_CONFIG = resources.files("nipype_ward") / "data" / "nipype_ward_bids.json"

#: BIDS version our derivatives follow (checked with bids-validator-deno 3.0.2).
BIDS_VERSION = "1.11.1"

#: Name of the fMRIPrep input in our BIDS URIs and DatasetLinks (as XCP-D).
SOURCE_DATASET = "preprocessed"

#: What BIDS does not cover, for the validator to skip. Patterns without a
#: trailing slash ("figures/" would still report the folder), and one star a
#: pattern: bids-validator-deno 3.0.2 fails to match "*_stat-mean*_timeseries.tsv".
BIDSIGNORE = (
    "*_timeseries.tsv",
    "*_timeseries.json",
    "*_timeseries.ptseries.nii",
    "*_metrics.json",
    "*_tree.npz",
    "*.html",
    "figures",
    "log",
    "atlases",  # the group level's BIDS-Atlas dataset, a dataset of its own
)

#: The columns of our ``_dseg.tsv`` beyond BIDS' index and name, described
#: in the ``_dseg.json`` sidecar that the label image and its table share.
DSEG_COLUMNS = {
    "n_voxels": {"Description": "number of voxels of the parcel", "Units": "voxels"},
    "x": {"Description": "x of the parcel's centroid, world coordinates", "Units": "mm"},
    "y": {"Description": "y of the parcel's centroid, world coordinates", "Units": "mm"},
    "z": {"Description": "z of the parcel's centroid, world coordinates", "Units": "mm"},
}

#: The same for surface labels (``.dlabel.nii``, ``.label.gii``).
SURFACE_DSEG_COLUMNS = {
    "n_grayordinates": {"Description": "number of grayordinates (vertices, and voxels of "
                        "CIFTI volume structures) of the parcel"},
    "structure": {"Description": "the CIFTI structure of the parcel's grayordinates (a parcel "
                  "never spans two)"},
}

_LABEL = re.compile(r"^[a-zA-Z0-9]+$")


def load_config() -> dict:
    """Our pybids configuration (entities and path patterns) as a dict."""
    return json.loads(BIDS_CONFIG.read_text())


@functools.lru_cache(maxsize=1)
def _pybids_configs() -> tuple:
    """pybids' own configurations and ours, loaded once a process.

    pybids would load its own from their JSON at every call given their
    names: 0.01 s a file name, for every file the sinks deliver.
    """
    from bids.layout import Config

    return (Config.load("bids"), Config.load("derivatives"), Config(**load_config()))


@functools.lru_cache(maxsize=1)
def known_entities() -> dict[str, str | None]:
    """The entities pybids' ``bids`` and ``derivatives`` configurations and ours know.

    Maps each entity's name (``acquisition``) to its key in file names
    (``acq``), None for those without one (``suffix``, ``extension``...).
    """
    keys = {}
    for config in _pybids_configs():
        for entity in config.entities.values():
            key = re.search(r"([a-zA-Z]+)-[^(]*\(", entity.pattern)
            keys[entity.name] = key.group(1) if key else None
    return keys


def parse_entities(path) -> dict:
    """The BIDS entities of a file name (pybids, with our entities known too).

    The name only: pybids parses the whole path it is given, so a dataset
    under ``/data/study_res-3mm/`` would give each of its files ``res-3mm``.
    """
    from bids.layout import parse_file_entities

    return parse_file_entities("/" + Path(path).name, config=list(_pybids_configs()))


#: Entities of a source file that never pass to a derivative's name.
_NOT_INHERITED = ("desc", "suffix", "extension", "datatype", "fmap", "scans")


def derivative_path(source_file, entities: dict, extension: str) -> str:
    """Where a derivative of ``source_file`` goes, relative to the output folder.

    Its entities are the source's (bar ``desc``, ``suffix`` and ``extension``)
    or, for a list of sources (e.g. the runs of a combined parcellation),
    those all the sources share, updated by ``entities`` (a value of None
    removes one); the name is built by pybids from our path patterns
    (:data:`BIDS_CONFIG`). Unlike niworkflows' sink, an entity that the
    patterns cannot place is an error, never silently moved to the sidecar
    or dropped.
    """
    from bids.layout.writing import build_path

    config = load_config()
    known = set(known_entities())
    sources = [source_file] if isinstance(source_file, (str, os.PathLike)) else list(source_file)
    parsed = [parse_entities(source) for source in sources]
    wanted = {key: value for key, value in parsed[0].items()
              if key not in _NOT_INHERITED and all(p.get(key) == value for p in parsed[1:])}
    wanted.update(entities)
    wanted = {key: value for key, value in wanted.items() if value is not None}
    unknown = sorted(set(wanted) - known)
    if unknown:
        raise ValueError(f"unknown BIDS entities {unknown} for a derivative of {source_file}")
    wanted["extension"] = extension
    path = build_path(wanted, config["default_path_patterns"], strict=True)
    if path is None:
        raise ValueError(
            f"no path pattern names a derivative with entities {wanted} (source {source_file})"
        )
    found = parse_entities("/" + path)
    lost = sorted(key for key in wanted if key not in ("extension", "datatype")
                  and str(found.get(key)) != str(wanted[key]))
    if lost:
        raise ValueError(f"the name {path} loses the entities {lost} of {wanted}")
    return path


def check_label(value: str, entity: str) -> str:
    """A BIDS label without its prefix (``sub-01`` -> ``01``); refuses paths and odd text."""
    prefix = {"subject": "sub-", "session": "ses-", "task": "task-"}.get(entity, "")
    label = value[len(prefix):] if prefix and value.startswith(prefix) else value
    if not _LABEL.match(label):
        raise ValueError(
            f"{entity} label {value!r} is not a BIDS label (letters and digits only)"
        )
    return label


def parse_space(value: str) -> tuple[str, str | None, str | None]:
    """``MNI152NLin2009cAsym:res-2`` -> ``("MNI152NLin2009cAsym", "2", None)``.

    The modifiers are fMRIPrep's: ``res-<label>`` for volumes,
    ``den-<label>`` for surfaces (``fsLR:den-91k``); each at most once.
    """
    space, _, modifiers = value.partition(":")
    check_label(space, "space")
    found = {"res": None, "den": None}
    for modifier in filter(None, modifiers.split(":")):
        key, _, label = modifier.partition("-")
        if key not in found or found[key] is not None or not _LABEL.match(label):
            raise ValueError(f"space modifiers are res-<label> and den-<label>, got "
                             f"{modifier!r} in {value!r}")
        found[key] = label
    return space, found["res"], found["den"]


def load_filter_file(path) -> dict:
    """fMRIPrep's ``--bids-filter-file``: ``{"bold": {entity: value}}``.

    ``null`` means the entity must be absent and ``"*"`` that it must be
    present (any value), as in fMRIPrep; only the ``bold`` query is used.
    Its entities are named as pybids names them (:func:`known_entities`):
    an unknown one is an error, never a query that matches nothing or
    everything.
    """
    path = Path(path)
    try:
        filters = json.loads(path.read_text())
    except FileNotFoundError as exc:
        raise InputError(path, "no such file") from exc
    except (OSError, json.JSONDecodeError) as exc:
        raise InputError(path, f"not a readable JSON file ({exc})") from exc
    if not isinstance(filters, dict) or not all(isinstance(v, dict) for v in filters.values()):
        raise InputError(path, 'a BIDS filter file maps queries to entities: {"bold": {...}}')
    unknown = set(filters) - {"bold"}
    if unknown:
        raise InputError(path, f"only the 'bold' query is used, not {sorted(unknown)}")
    entities = known_entities()
    for name in filters.get("bold", {}):
        if name not in entities:
            full = [entity for entity, key in entities.items() if key == name]
            hint = (f"{full[0]} for {name}-" if full
                    else "subject, session, task, acquisition, run, echo, ...")
            raise InputError(path, f"the 'bold' query has the unknown entity {name!r}: use the "
                             f"entity names of pybids ({hint})")
    return filters.get("bold", {})


@dataclass(frozen=True)
class Selection:
    """Which runs of an fMRIPrep dataset to parcellate."""

    participant_labels: tuple[str, ...] = ()
    session_labels: tuple[str, ...] = ()
    tasks: tuple[str, ...] = ()
    space: str = "MNI152NLin2009cAsym"
    resolution: str | None = None
    density: str | None = None  #: surfaces' den- (``91k`` for fsLR CIFTI)
    bold_filters: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Run:
    """One preprocessed BOLD run and the fMRIPrep files that go with it.

    Volume runs have their ``desc-brain_mask``; surface runs have none (their
    grayordinates are their points): a CIFTI-2 ``.dtseries.nii``, or a GIFTI
    pair whose left hemisphere is ``bold`` and right one ``right``. The
    entities of a GIFTI pair are those both files share (no ``hemi``).
    ``confounds`` is None for a run without fMRIPrep's confounds table
    (a series denoised already, such as XCP-D's), selected without a
    confounds strategy.
    """

    bold: Path
    mask: Path | None
    confounds: Path | None
    entities: dict
    metadata: dict
    right: Path | None = None

    @property
    def name(self) -> str:
        """A short id of the run for node and folder names (``sub-01_ses-1_task-rest_run-1``)."""
        return _without_hemi(self.bold.name).split("_space-")[0]

    @property
    def is_surface(self) -> bool:
        """Whether the run is surface data (CIFTI-2 or a GIFTI pair)."""
        return self.mask is None

    @property
    def sources(self) -> list[Path]:
        """The run's BOLD file(s): one, or the two hemispheres of a GIFTI pair."""
        return [self.bold] if self.right is None else [self.bold, self.right]


def confounds_tables(runs) -> list[str]:
    """The confounds tables of ``runs`` as paths, in their order; a run without one adds none."""
    return [str(run.confounds) for run in runs if run.confounds is not None]


#: The extensions of a BOLD series, volume and surface.
VOLUME_EXTENSIONS = (".nii.gz", ".nii")
SURFACE_EXTENSIONS = (".dtseries.nii", ".func.gii")


def _without_hemi(name: str) -> str:
    return re.sub(r"_hemi-[LR](?=_)", "", name)


def _layout(bids_dir):
    from bids import BIDSLayout

    bids_dir = Path(bids_dir)
    if not bids_dir.is_dir():
        raise InputError(bids_dir, "no such directory (give the fMRIPrep output folder)")
    if not (bids_dir / "dataset_description.json").is_file():
        raise InputError(
            bids_dir, "not a BIDS dataset: no dataset_description.json (give fMRIPrep's output folder)"
        )
    try:
        return BIDSLayout(str(bids_dir), validate=False, config=["bids", "derivatives"])
    except Exception as exc:  # pybids raises many types for broken datasets
        raise InputError(bids_dir, f"cannot be read as a BIDS dataset ({exc})") from exc


def _matches(entities: dict, filters: dict) -> bool:
    """fMRIPrep's filter semantics: None = absent, "*" = present, a list = any of, else equal."""
    for key, wanted in filters.items():
        value = entities.get(key)
        if wanted is None:
            if value is not None:
                return False
        elif wanted == "*":
            if value is None:
                return False
        elif isinstance(wanted, (list, tuple)):
            if str(value) not in {str(w) for w in wanted}:
                return False
        elif str(value) != str(wanted):
            return False
    return True


def collect_runs(bids_dir, selection: Selection, *,
                 require_confounds: bool = True) -> list[Run]:
    """The preprocessed BOLD runs of an fMRIPrep dataset that ``selection`` asks for.

    Each run comes with its ``desc-brain_mask`` (same entities) and its
    ``desc-confounds_timeseries.tsv``, named as fMRIPrep names them; a
    missing one is an error naming the BOLD, the confounds table only when
    ``require_confounds`` (a confounds strategy reads it; without one, a run
    may have none). Errors also name what was asked and what the dataset
    has. Entities are read from file names only (:func:`parse_entities`):
    the folders above the dataset give none.
    """
    bids_dir = Path(bids_dir)
    layout = _layout(bids_dir)
    subjects = sorted(folder.name[4:] for folder in bids_dir.glob("sub-*") if folder.is_dir())
    if not subjects:
        raise InputError(bids_dir, "no subject (sub-*) in this dataset")
    wanted = list(selection.participant_labels) or subjects
    missing = sorted(set(wanted) - set(subjects))
    if missing:
        raise InputError(
            bids_dir,
            f"no participant {', '.join('sub-' + m for m in missing)} in this dataset "
            f"(it has {', '.join('sub-' + s for s in subjects)})",
        )
    filters = {"subject": wanted, "space": selection.space}
    if selection.session_labels:
        filters["session"] = list(selection.session_labels)
    if selection.tasks:
        filters["task"] = list(selection.tasks)
    if selection.resolution is not None:
        filters["res"] = selection.resolution
    if selection.density is not None:
        filters["den"] = selection.density
    filters.update(selection.bold_filters)
    # fMRIPrep names volume series desc-preproc, surface series without a desc.
    kind_filters = {ext: {"desc": "preproc"} for ext in VOLUME_EXTENSIONS}
    kind_filters.update({".dtseries.nii": {"desc": None}, ".func.gii": {"desc": None}})
    candidates = []
    for path in layout.get(suffix="bold", extension=[*VOLUME_EXTENSIONS, *SURFACE_EXTENSIONS],
                           return_type="file"):
        path = Path(path)
        entities = parse_entities(path)
        if path.parent.name == "func" and entities.get("subject") in wanted:
            candidates.append((path, entities))
    bolds = [(path, entities) for path, entities in candidates
             if _matches(entities, {**kind_filters[file_extension(path.name)], **filters})
             and entities.get("hemi") != "R"]  # a GIFTI pair is found by its left half
    if not bolds:
        spaces = sorted({str(e["space"]) for _, e in candidates if e.get("space")})
        raise InputError(
            bids_dir,
            f"no preprocessed BOLD in space {selection.space}"
            + (f" at res-{selection.resolution}" if selection.resolution else "")
            + (f" at den-{selection.density}" if selection.density else "")
            + f" for {', '.join('sub-' + s for s in wanted)} matches the selection"
            + (f" (spaces found: {', '.join(spaces)})" if spaces else ""),
        )
    runs = [_run_of(bold, entities, layout, require_confounds=require_confounds)
            for bold, entities in bolds]
    named: dict[tuple, Path] = {}
    for run in runs:
        key = tuple(sorted((k, str(v)) for k, v in run.entities.items() if k != "extension"))
        if key in named:
            raise InputError(run.bold, f"the same run as {named[key].name} in another format: "
                             "select one with --bids-filter-file (e.g. {\"bold\": "
                             "{\"extension\": \".dtseries.nii\"}})")
        named[key] = run.bold
    return sorted(runs, key=lambda run: str(run.bold))


def _run_of(bold: Path, entities: dict, layout, *, require_confounds: bool) -> Run:
    """A BOLD file's run: its mask (volumes), right hemisphere (GIFTI), confounds, metadata.

    Without ``require_confounds``, a run without its confounds table has
    ``confounds`` None.
    """
    extension = file_extension(bold.name)
    stem = bold.name[: -len(extension)]
    mask = right = None
    if extension in VOLUME_EXTENSIONS:
        if not stem.endswith("_desc-preproc_bold"):
            raise InputError(bold, "not named as fMRIPrep names a BOLD (..._desc-preproc_bold)")
        masks = [bold.with_name(stem[: -len("preproc_bold")] + "brain_mask" + ext)
                 for ext in (extension, *VOLUME_EXTENSIONS)]
        masks = [path for path in masks if path.is_file()]
        if not masks:
            raise InputError(bold, "no desc-brain_mask beside it (fMRIPrep writes one per run)")
        mask = masks[0]
    elif extension == ".func.gii":
        if entities.get("hemi") != "L":
            raise InputError(bold, "a GIFTI series needs its hemi-L or hemi-R entity, as "
                             "fMRIPrep names them")
        right = bold.with_name(bold.name.replace("_hemi-L_", "_hemi-R_"))
        if not right.is_file():
            raise InputError(bold, f"no right hemisphere beside it ({right.name})")
        entities = {key: value for key, value in entities.items() if key != "hemi"}
    confounds = fmriprep_confounds_file(bold)
    if not confounds.is_file():
        if require_confounds:
            raise InputError(bold, "no desc-confounds_timeseries.tsv for this run, which the "
                             "confounds strategy reads: give fMRIPrep's confounds, or use "
                             "--confounds-strategy none for a series denoised already")
        confounds = None
    metadata = dict(layout.get_file(str(bold)).get_metadata())
    return Run(bold, mask, confounds, {**entities, "datatype": "func"}, metadata, right)


def sha256(path) -> str:
    """SHA-256 of a file's bytes, read in blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fobj:
        for block in iter(lambda: fobj.read(1 << 22), b""):
            digest.update(block)
    return digest.hexdigest()


def bids_uri(path, root, dataset: str = SOURCE_DATASET) -> str:
    """``bids:<dataset>:<path relative to the dataset root>`` (BIDS URIs)."""
    # Not resolved: a file of the dataset may be a link to elsewhere (DataLad, ...).
    relative = Path(os.path.abspath(path)).relative_to(os.path.abspath(root))
    return f"bids:{dataset}:{relative.as_posix()}"


def software_versions() -> dict:
    """Versions of the software a result depends on."""
    from importlib import metadata

    versions = {"nipype-ward": __version__}
    for name in ("nipype", "nilearn", "scikit-learn", "numpy", "scipy", "nibabel"):
        versions[name] = metadata.version(name)
    return versions


def linked_source(description) -> Path | None:
    """The folder a ``dataset_description.json`` links as its fMRIPrep input, if it links one.

    Its ``DatasetLinks["preprocessed"]`` (a ``file:`` URI, as we write it);
    None when the file, the link or the URI's form is absent.
    """
    from urllib.parse import unquote, urlparse

    try:
        link = json.loads(Path(description).read_text()).get("DatasetLinks", {}).get(
            SOURCE_DATASET)
    except (OSError, ValueError, AttributeError):
        return None
    if not isinstance(link, str) or not link.startswith("file:"):
        return None
    return Path(unquote(urlparse(link).path))


def write_dataset_description(output_dir, source_dir) -> Path:
    """``dataset_description.json`` of our derivatives, linking their fMRIPrep input."""
    source = Path(source_dir).resolve()
    description = {
        "Name": "nipype-ward: data-driven Ward parcellations of fMRIPrep outputs",
        "BIDSVersion": BIDS_VERSION,
        "DatasetType": "derivative",
        "GeneratedBy": [{"Name": "nipype-ward", "Version": __version__}],
        "SourceDatasets": [{"URL": source.as_uri()}],
        "DatasetLinks": {SOURCE_DATASET: source.as_uri()},
        "HowToAcknowledge": "Cite Ward (1963), Thirion et al. (2014), nilearn and Nipype; see the "
        "methods paragraph of each subject's report.",
    }
    try:
        generated = json.loads((source / "dataset_description.json").read_text())
        description["GeneratedBy"] += [entry for entry in generated.get("GeneratedBy", [])
                                       if isinstance(entry, dict)]
    except (OSError, json.JSONDecodeError):
        pass
    return save_json(description, Path(output_dir) / "dataset_description.json")


def write_bidsignore(output_dir, *, surface_spaces=(), work_dir=None) -> Path:
    """``.bidsignore`` listing what BIDS does not cover, keeping any line already there.

    BIDS 1.11 has no rule for surface data in ``func`` derivatives (its
    schema refuses even fMRIPrep's ``space-fsLR_den-91k_bold.dtseries.nii``:
    no ``den`` nor ``hemi``, no CIFTI or GIFTI extension there), so the
    outputs of each surface space of ``surface_spaces`` are listed too. A
    work folder (``work_dir``) inside the output folder is listed as well,
    for the validator to skip Nipype's files.
    """
    path = Path(output_dir) / ".bidsignore"
    wanted = [*BIDSIGNORE, *(f"*_space-{space}_*" for space in sorted(surface_spaces))]
    if work_dir is not None:
        relative = os.path.relpath(os.path.abspath(work_dir), os.path.abspath(output_dir))
        if not relative.startswith(".."):
            wanted.append("/" + Path(relative).as_posix())
    # Participant runs of an array job share this file: each reads and
    # writes it under a lock (no line lost), written then renamed.
    with locked(output_dir):
        lines = path.read_text().splitlines() if path.exists() else []
        lines += [pattern for pattern in wanted if pattern not in lines]
        return save_text(path, "\n".join(lines) + "\n")


# --------------------------------------------------------------------------
# BIDS-Atlas (the group level's atlases, for XCP-D's --datasets/--atlases)
# --------------------------------------------------------------------------
#: Folder of the atlas dataset inside OUTPUT_DIR.
ATLAS_DIR = "atlases"

#: XCP-D 26's pattern (``xcp_d/data/atlas_bids_config.json``), as a regular
#: expression over a path relative to the atlas dataset.
ATLAS_NAME = re.compile(
    r"^tpl-(?P<template>[a-zA-Z0-9+]+)/tpl-(?P=template)_atlas-(?P<atlas>[a-zA-Z0-9]+)"
    r"(_res-(?P<res>[a-zA-Z0-9]+))?(_den-(?P<den>[a-zA-Z0-9]+))?(_desc-(?P<desc>[a-zA-Z0-9]+))?"
    r"_dseg\.(?P<extension>nii\.gz|dlabel\.nii|tsv|json)$"
)


def atlas_label(n_clusters: int) -> str:
    """The atlas label of a group parcellation: K goes in it (XCP-D has no scale entity)."""
    return f"ward{int(n_clusters)}"


def atlas_path(template: str, atlas: str, extension: str, *, res=None, den=None,
               hemi=None) -> str:
    """``tpl-<template>/tpl-<template>[_hemi-]_atlas-<atlas>[_res-][_den-]_dseg<extension>``.

    Surface atlases are ``.dlabel.nii`` (CIFTI-2: XCP-D reads fsLR ones) or
    one ``.label.gii`` per hemisphere (``hemi``).
    """
    for value, entity in ((template, "tpl"), (atlas, "atlas"), (res, "res"), (den, "den"),
                          (hemi, "hemi")):
        if value is not None and not _LABEL.match(str(value)):
            raise ValueError(f"{entity}-{value} is not a BIDS label (letters and digits only)")
    if extension not in (".nii.gz", ".dlabel.nii", ".label.gii", ".tsv", ".json"):
        raise ValueError(f"an atlas file is .nii.gz, .dlabel.nii, .label.gii, .tsv or .json, "
                         f"not {extension}")
    name = f"tpl-{template}" + (f"_hemi-{hemi}" if hemi is not None else "")
    name += f"_atlas-{atlas}"
    name += f"_res-{res}" if res is not None else ""
    name += f"_den-{den}" if den is not None else ""
    return f"tpl-{template}/{name}_dseg{extension}"


def write_atlas_dataset(atlas_dir, source_dir, *, templates) -> Path:
    """The atlas dataset's ``dataset_description.json``, ``README`` and ``.bidsignore``."""
    atlas_dir = Path(atlas_dir)
    atlas_dir.mkdir(parents=True, exist_ok=True)
    source = Path(source_dir).resolve()
    save_json({
        "Name": "nipype-ward group atlases: data-driven Ward parcellations",
        "BIDSVersion": BIDS_VERSION,
        "DatasetType": "derivative",
        "Authors": ["nipype-ward"],
        "GeneratedBy": [{"Name": "nipype-ward", "Version": __version__}],
        "SourceDatasets": [{"URL": source.as_uri()}],
        "DatasetLinks": {SOURCE_DATASET: source.as_uri()},
        "HowToAcknowledge": "Cite Ward (1963), Thirion et al. (2014), Smith et al. (2014) for "
        "MIGP, nilearn and Nipype.",
    }, atlas_dir / "dataset_description.json")
    readme = atlas_dir / "README"
    text = (
        "# nipype-ward group atlases\n\n"
        "Parcellations learned from the fMRIPrep dataset linked in dataset_description.json\n"
        "by spatially constrained Ward clustering of the group's prepared BOLD signals, one\n"
        "atlas per number of parcels K (atlas-ward<K>), in BIDS-Atlas layout. Each atlas has\n"
        "its label image (_dseg.nii.gz), its table (_dseg.tsv: index, name, size, centroid),\n"
        "their sidecar (_dseg.json: sources, parameters, reduction, quality) and an\n"
        "atlas-<label>_description.json. Give them to XCP-D with\n"
        f"    --datasets nipyward=<this folder> --atlases ward<K>\n"
        f"(templates: {', '.join(templates)}).\n"
    )
    save_text(readme, text)
    ignore = atlas_dir / ".bidsignore"
    save_text(ignore, "figures\n*.html\n")
    return atlas_dir

