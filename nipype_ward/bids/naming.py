"""BIDS names: entities, our derivatives' paths, labels, spaces, BIDS URIs and checksums.

The entities and path patterns of our outputs are data
(``nipype_ward/data/nipype_ward_bids.json``, :data:`BIDS_CONFIG`), a pybids
configuration users can load beside pybids' own to query them:
``BIDSLayout(out, config=["bids", "derivatives", BIDS_CONFIG])``; it adds
the ``scale``, ``stat`` and ``cohort`` entities pybids 0.22 lacks. The
extensions of the files the App reads and writes come from
:mod:`nipype_ward.io.formats`.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import re
from importlib import resources
from pathlib import Path

from nipype_ward.io import formats

#: The pybids configuration of our outputs' entities and path patterns.
BIDS_CONFIG = resources.files("nipype_ward") / "data" / "nipype_ward_bids.json"

#: Name of the fMRIPrep input in our BIDS URIs and DatasetLinks (as XCP-D).
SOURCE_DATASET = "preprocessed"

#: The extensions of a BOLD series, volume and surface (:mod:`nipype_ward.io.formats`).
VOLUME_EXTENSIONS = formats.VOLUME_SERIES
SURFACE_EXTENSIONS = formats.SURFACE_SERIES

#: Surface series stored one hemisphere a file (GIFTI), read as left-right pairs.
HEMISPHERE_EXTENSIONS = formats.HEMISPHERE_SERIES

#: The files of a BIDS-Atlas atlas: a volume or CIFTI-2 label image, a
#: GIFTI label file per hemisphere, the table and the sidecar.
ATLAS_EXTENSIONS = formats.ATLAS

#: What BIDS does not cover, for the validator to skip. Patterns without a
#: trailing slash (``figures/`` would still report the folder), and one star a
#: pattern: bids-validator-deno 3.0.2 fails to match ``*_stat-mean*_timeseries.tsv``.
BIDSIGNORE = (
    "*_timeseries.tsv",
    "*_timeseries.json",
    f"*_timeseries{formats.PARCEL_SERIES}",
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

#: The same for surface labels (CIFTI-2, GIFTI).
SURFACE_DSEG_COLUMNS = {
    "n_grayordinates": {"Description": "number of grayordinates (vertices, and voxels of "
                        "CIFTI volume structures) of the parcel"},
    "structure": {"Description": "the CIFTI structure of the parcel's grayordinates (a parcel "
                  "never spans two)"},
}

_LABEL = re.compile(r"^[a-zA-Z0-9]+$")


def is_label(value) -> bool:
    """Whether ``value`` is a BIDS label: letters and digits only, at least one."""
    return bool(_LABEL.match(str(value)))


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
    if not is_label(label):
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
        if key not in found or found[key] is not None or not is_label(label):
            raise ValueError(f"space modifiers are res-<label> and den-<label>, got "
                             f"{modifier!r} in {value!r}")
        found[key] = label
    return space, found["res"], found["den"]


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
