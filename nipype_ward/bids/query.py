"""Querying fMRIPrep derivatives: the runs to parcellate and the files that go with them.

:func:`collect_runs` indexes an fMRIPrep dataset once with pybids and asks
that layout, by entities, for the preprocessed BOLD series a
:class:`Selection` wants (fMRIPrep's ``--bids-filter-file`` included,
:func:`load_filter_file`: its ``null`` and ``"*"`` are pybids'
``Query.NONE`` and ``Query.ANY``, as fMRIPrep reads them), then for each
run's brain mask, confounds table and, for a GIFTI pair, right hemisphere
(:data:`SIBLINGS`), as XCP-D's ``collect_data`` does. Entities come from
file names only, whatever the folders above the dataset are called.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from nipype_ward.bids.naming import (
    HEMISPHERE_EXTENSIONS,
    SURFACE_EXTENSIONS,
    VOLUME_EXTENSIONS,
    known_entities,
    load_config,
    parse_entities,
)
from nipype_ward.io.errors import InputError


def load_filter_file(path) -> dict:
    """fMRIPrep's ``--bids-filter-file``: ``{"bold": {entity: value}}``.

    ``null`` means the entity must be absent and ``"*"`` that it must be
    present (any value), as in fMRIPrep (the query reads them as pybids'
    ``Query.NONE`` and ``Query.ANY``); a list is any of its values; only the
    ``bold`` query is used.
    Its entities are named as pybids names them
    (:func:`~nipype_ward.bids.naming.known_entities`): an unknown one is an
    error, never a query that matches nothing or everything.
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
    grayordinates are their points): a CIFTI-2 series, or a GIFTI
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


def _without_hemi(name: str) -> str:
    return re.sub(r"_hemi-[LR](?=_)", "", name)


#: fMRIPrep's BOLD series: volumes are ``desc-preproc``, surface series have
#: no ``desc`` (None: pybids' ``Query.NONE``).
BOLD_KINDS = ((VOLUME_EXTENSIONS, "preproc"), (SURFACE_EXTENSIONS, None))

#: The files fMRIPrep writes with each BOLD run, as pybids queries (as XCP-D
#: declares its inputs in ``io_spec.yaml``). Each has its BOLD's entities
#: but those its ``query`` sets and those of its ``not_shared`` (entities of
#: the BOLD alone: the confounds table is one a run, whatever the space).
#: Where a query allows several extensions, the BOLD's own comes first.
SIBLINGS = {
    "mask": {"query": {"desc": "brain", "suffix": "mask",
                       "extension": list(VOLUME_EXTENSIONS)}},
    "right": {"query": {"hemi": "R", "suffix": "bold", "extension": list(HEMISPHERE_EXTENSIONS)}},
    "confounds": {"query": {"desc": "confounds", "suffix": "timeseries", "extension": ".tsv",
                            "space": None},
                  "not_shared": ("cohort", "res", "den", "hemi")},
}

#: Where an entity's pattern may match in the path of a file pybids indexes:
#: from the slash before its name on (the name's entities; ``sub-`` starts
#: at that slash), or, for the datatype, the folder the file is in.
_IN_NAME = r"(?=[/\\][^/\\]*$)(?:[/\\][^/\\]*?)??"
_IN_FOLDER = r"(?=[^/\\]*$)"


def _name_configs() -> list[dict]:
    """pybids' configurations and ours, reading entities from names as ``parse_entities`` does.

    pybids matches each entity's pattern against a file's whole path, so a
    dataset under ``/data/study_res-3mm_run-9/`` would give each of its
    files ``res-3mm`` and ``run-9``. Here each pattern matches in the file's
    name only, and the datatype in the folder the file is in: the layout's
    entities are those of the name, and the datatype.
    """
    from bids.config import get_option

    paths = get_option("config_paths")
    configs = [json.loads(Path(paths[name]).read_text()) for name in ("bids", "derivatives")]
    return [{**config, "entities": [
        {**entity, "pattern": (entity["pattern"] + _IN_FOLDER if entity["name"] == "datatype"
                               else _IN_NAME + entity["pattern"])}
        for entity in config["entities"]]} for config in [*configs, load_config()]]


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
        return BIDSLayout(str(bids_dir), validate=False, config=_name_configs())
    except Exception as exc:  # pybids raises many types for broken datasets
        raise InputError(bids_dir, f"cannot be read as a BIDS dataset ({exc})") from exc


def _pybids_values(filters: dict) -> dict:
    """fMRIPrep's filter file as a pybids query: ``null`` is ``Query.NONE``, ``"*"`` ``Query.ANY``.

    As fMRIPrep's ``_filter_pybids_none_any`` reads it, in lists too (a list
    is any of its values).
    """
    from bids.layout import Query

    def value(wanted):
        return Query.NONE if wanted is None else Query.ANY if wanted == "*" else wanted

    return {name: [value(v) for v in wanted] if isinstance(wanted, (list, tuple)) else value(wanted)
            for name, wanted in filters.items()}


def _bold_query(selection: Selection) -> dict:
    """The pybids query of the BOLD series ``selection`` asks for, its filter file last.

    The filter file has the last word, as in fMRIPrep: ``{"space": "T1w"}``
    there overrides the selection's space.
    """
    query = {"space": selection.space}
    if selection.session_labels:
        query["session"] = list(selection.session_labels)
    if selection.tasks:
        query["task"] = list(selection.tasks)
    if selection.resolution is not None:
        query["res"] = selection.resolution
    if selection.density is not None:
        query["den"] = selection.density
    query.update(_pybids_values(selection.bold_filters))
    return query


def collect_runs(bids_dir, selection: Selection, *,
                 require_confounds: bool = True) -> list[Run]:
    """The preprocessed BOLD runs of an fMRIPrep dataset that ``selection`` asks for.

    Each run comes with its ``desc-brain_mask`` and its
    ``desc-confounds_timeseries.tsv``, found by their entities
    (:data:`SIBLINGS`); a missing one is an error naming the BOLD, the
    confounds table only when ``require_confounds`` (a confounds strategy
    reads it; without one, a run may have none). Errors also name what was
    asked and what the dataset has. Entities are read from file names only
    (:func:`~nipype_ward.bids.naming.parse_entities`): the folders above the
    dataset give none.
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
    series = {"datatype": "func", "suffix": "bold", "subject": wanted}
    asked = _bold_query(selection)
    bolds = []
    for extensions, desc in BOLD_KINDS:
        # The series of this kind, a GIFTI pair found by its left half, that
        # the selection asks for.
        found = layout.get(return_type="object", extension=list(extensions), hemi=[None, "L"],
                           **series)
        matching = set(layout.get(return_type="filename", **{"desc": desc, **asked}))
        bolds += [file for file in found if file.path in matching]
    if not bolds:
        spaces = layout.get(return_type="id", target="space",
                            extension=[*VOLUME_EXTENSIONS, *SURFACE_EXTENSIONS], **series)
        spaces = sorted(str(space) for space in spaces)
        raise InputError(
            bids_dir,
            f"no preprocessed BOLD in space {selection.space}"
            + (f" at res-{selection.resolution}" if selection.resolution else "")
            + (f" at den-{selection.density}" if selection.density else "")
            + f" for {', '.join('sub-' + s for s in wanted)} matches the selection"
            + (f" (spaces found: {', '.join(spaces)})" if spaces else ""),
        )
    siblings = _sibling_index(layout, wanted)
    runs = [_run_of(bold, siblings, require_confounds=require_confounds) for bold in bolds]
    named: dict[tuple, Path] = {}
    for run in runs:
        key = tuple(sorted((k, str(v)) for k, v in run.entities.items() if k != "extension"))
        if key in named:
            example = json.dumps({"bold": {"extension": SURFACE_EXTENSIONS[0]}})
            raise InputError(run.bold, f"the same run as {named[key].name} in another format: "
                             f"select one with --bids-filter-file (e.g. {example})")
        named[key] = run.bold
    return sorted(runs, key=lambda run: str(run.bold))


def _sibling_key(entities: dict, kind: str, *, of_bold: bool) -> frozenset:
    """The entities a file of ``kind`` shares with its BOLD: those its query does not set."""
    spec = SIBLINGS[kind]
    dropped = {*spec["query"], *(spec.get("not_shared", ()) if of_bold else ())}
    return frozenset((name, value) for name, value in entities.items() if name not in dropped)


def _sibling_index(layout, subjects) -> dict[str, dict[frozenset, dict[str, Path]]]:
    """The files of each kind of :data:`SIBLINGS` by the entities they share with their BOLD.

    One query a kind for the subjects selected, instead of one a run: the
    files of a kind, by their shared entities, then by their extension.
    """
    index = {}
    for kind, spec in SIBLINGS.items():
        files = index[kind] = {}
        for file in layout.get(return_type="object", datatype="func", subject=subjects,
                               **spec["query"]):
            entities = file.get_entities()
            files.setdefault(_sibling_key(entities, kind, of_bold=False), {})[
                entities["extension"]] = Path(file.path)
    return index


def _run_of(bold, siblings: dict, *, require_confounds: bool) -> Run:
    """A BOLD file's run: its mask (volumes), right hemisphere (GIFTI), confounds, metadata.

    ``bold`` is the layout's file, ``siblings`` the index of
    :func:`_sibling_index`. Without ``require_confounds``, a run without its
    confounds table has ``confounds`` None.
    """
    path = Path(bold.path)
    found = bold.get_entities()

    def sibling(kind: str) -> dict[str, Path]:
        return siblings[kind].get(_sibling_key(found, kind, of_bold=True), {})

    entities = parse_entities(path)
    extension = found["extension"]
    mask = right = None
    if extension in VOLUME_EXTENSIONS:
        if found.get("desc") != "preproc":
            raise InputError(path, "not named as fMRIPrep names a BOLD (..._desc-preproc_bold)")
        masks = sibling("mask")
        mask = next((masks[ext] for ext in (extension, *VOLUME_EXTENSIONS) if ext in masks), None)
        if mask is None:
            raise InputError(path, "no desc-brain_mask beside it (fMRIPrep writes one per run)")
    elif extension in HEMISPHERE_EXTENSIONS:
        if found.get("hemi") != "L":
            raise InputError(path, "a GIFTI series needs its hemi-L or hemi-R entity, as "
                             "fMRIPrep names them")
        right = sibling("right").get(extension)
        if right is None:
            expected = path.name.replace("_hemi-L_", "_hemi-R_")  # as fMRIPrep names it
            raise InputError(path, f"no right hemisphere beside it ({expected})")
        entities = {key: value for key, value in entities.items() if key != "hemi"}
    confounds = sibling("confounds").get(".tsv")
    if confounds is None and require_confounds:
        raise InputError(path, "no desc-confounds_timeseries.tsv for this run, which the "
                         "confounds strategy reads: give fMRIPrep's confounds, or use "
                         "--confounds-strategy none for a series denoised already")
    metadata = dict(bold.get_metadata())
    return Run(path, mask, confounds, {**entities, "datatype": "func"}, metadata, right)
