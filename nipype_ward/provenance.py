"""W3C PROV records of a run: every derivative derived from its inputs.

:func:`run_provenance` builds, with the ``prov`` library, a PROV document in
which one activity (a run of nipype-ward on one BOLD series, with its
parameters) used the fMRIPrep inputs and generated each derivative; each
derivative ``wasDerivedFrom`` every input, and every file carries its
SHA-256. It is written as PROV-JSON (read it back with
``prov.model.ProvDocument.deserialize(path, format="json")``) and PROV-N.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

from nipype_ward import __version__
from nipype_ward.bids import bids_uri, sha256, software_versions
from nipype_ward.fileio import save_atomically

#: Our namespace, for activities, agents and attributes.
NAMESPACE = ("nw", "https://github.com/nipype-ward/nipype-ward#")


def run_provenance(*, sources, source_dir, outputs, output_dir, parameters: dict, run_id: str,
                   run_name: str, started=None, checksums=None):
    """The PROV document of one run (see the module's docstring).

    Parameters
    ----------
    sources : paths of the inputs, inside ``source_dir`` (the fMRIPrep dataset)
    outputs : paths of the derivatives, inside ``output_dir``
    parameters : the run's parameters (JSON-able), recorded on the activity
    run_id, run_name : the App's run (``log/<run_id>``) and the BOLD run's name
    started : datetime, optional; when the App's run began
    checksums : dict, optional
        SHA-256 of files already hashed, by path (the sources' are in every
        sidecar): not read again.
    """
    checksums = dict(checksums or {})

    def checksum(path):
        return checksums.get(str(path)) or sha256(path)

    from prov.model import ProvDocument

    document = ProvDocument()
    nw = document.add_namespace(*NAMESPACE)
    src = document.add_namespace("src", Path(source_dir).absolute().as_uri() + "/")
    out = document.add_namespace("out", Path(output_dir).absolute().as_uri() + "/")
    software = document.agent(nw[f"nipype-ward-{__version__}"], {
        "prov:type": "prov:SoftwareAgent",
        **{nw[f"version-{name}"]: version for name, version in software_versions().items()},
    })
    activity = document.activity(
        nw[f"{run_id}/{run_name}"], startTime=started, endTime=datetime.now(timezone.utc),
        other_attributes={"prov:label": f"nipype-ward on {run_name}",
                          nw["parameters"]: json.dumps(parameters, sort_keys=True)},
    )
    document.wasAssociatedWith(activity, software)
    inputs = []
    for path in sources:
        relative = Path(path).absolute().relative_to(Path(source_dir).absolute()).as_posix()
        entity = document.entity(src[relative], {
            "prov:location": bids_uri(path, source_dir), nw["sha256"]: checksum(path),
        })
        document.used(activity, entity)
        inputs.append(entity)
    for path in outputs:
        relative = Path(path).absolute().relative_to(Path(output_dir).absolute()).as_posix()
        entity = document.entity(out[relative], {nw["sha256"]: sha256(path)})
        document.wasGeneratedBy(entity, activity)
        for source in inputs:
            document.wasDerivedFrom(entity, source, activity)
    return document


def write_provenance(document, path) -> Path:
    """PROV-JSON at ``path`` and PROV-N beside it (``.provn``), each written atomically."""
    path = Path(path)
    save_atomically(lambda tmp: Path(tmp).write_text(document.serialize(format="json")), path)
    save_atomically(lambda tmp: Path(tmp).write_text(document.get_provn()),
                    path.with_suffix(".provn"))
    return path
