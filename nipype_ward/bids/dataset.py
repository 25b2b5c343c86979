"""The files of our derivatives dataset: ``dataset_description.json``, ``.bidsignore``.

With the link back to the fMRIPrep input (:func:`linked_source`) and the
versions of the software a result depends on.
"""

from __future__ import annotations

import json
import os
from importlib import metadata
from pathlib import Path
from urllib.parse import unquote, urlparse

from nipype_ward import __version__
from nipype_ward.bids.naming import BIDSIGNORE, SOURCE_DATASET
from nipype_ward.io.files import save_json, save_text
from nipype_ward.io.folders import locked

#: BIDS version our derivatives follow (checked with bids-validator-deno 3.0.2).
BIDS_VERSION = "1.11.1"


def software_versions() -> dict:
    """Versions of the software a result depends on."""
    versions = {"nipype-ward": __version__}
    for name in ("nipype", "nilearn", "scikit-learn", "numpy", "scipy", "nibabel"):
        versions[name] = metadata.version(name)
    return versions


def linked_source(description) -> Path | None:
    """The folder a ``dataset_description.json`` links as its fMRIPrep input, if it links one.

    Its ``DatasetLinks["preprocessed"]`` (a ``file:`` URI, as we write it);
    None when the file, the link or the URI's form is absent.
    """
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
    schema refuses even fMRIPrep's ``space-fsLR_den-91k`` CIFTI-2 series:
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
