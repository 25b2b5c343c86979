"""The group level's BIDS-Atlas dataset (``OUTPUT_DIR/atlases``), for XCP-D.

Named the way XCP-D's ``collect_atlases`` reads it, so that XCP-D's
``--datasets``/``--atlases`` take our group atlases as they are.
"""

from __future__ import annotations

import re
from pathlib import Path

from nipype_ward import __version__
from nipype_ward.bids.dataset import BIDS_VERSION
from nipype_ward.bids.naming import ATLAS_EXTENSIONS, SOURCE_DATASET, is_label
from nipype_ward.io.files import save_json, save_text

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

    Surface atlases are CIFTI-2 label images (XCP-D reads fsLR ones) or one
    GIFTI label file per hemisphere (``hemi``): the extensions are those of
    :data:`~nipype_ward.bids.naming.ATLAS_EXTENSIONS`.
    """
    for value, entity in ((template, "tpl"), (atlas, "atlas"), (res, "res"), (den, "den"),
                          (hemi, "hemi")):
        if value is not None and not is_label(value):
            raise ValueError(f"{entity}-{value} is not a BIDS label (letters and digits only)")
    if extension not in ATLAS_EXTENSIONS:
        raise ValueError(f"an atlas file is {', '.join(ATLAS_EXTENSIONS[:-1])} or "
                         f"{ATLAS_EXTENSIONS[-1]}, not {extension}")
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
