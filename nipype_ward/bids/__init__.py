"""BIDS: querying fMRIPrep derivatives, naming our outputs, the files of our datasets.

Everything BIDS-specific is here, one module a job:

- :mod:`nipype_ward.bids.query`: the selection of the runs to parcellate
  (with pybids, fMRIPrep's ``--bids-filter-file`` format included) and the
  fMRIPrep files that go with each;
- :mod:`nipype_ward.bids.naming`: the entities and path patterns of our
  outputs (``data/nipype_ward_bids.json``, a pybids configuration users can
  load beside pybids' own), labels, spaces, BIDS URIs and checksums;
- :mod:`nipype_ward.bids.dataset`: ``dataset_description.json`` and
  ``.bidsignore`` of our derivatives, the link to their fMRIPrep input;
- :mod:`nipype_ward.bids.atlas`: the group level's BIDS-Atlas dataset
  (``OUTPUT_DIR/atlases``), named the way XCP-D's ``collect_atlases`` reads it.

The public names of all four are importable from here
(``from nipype_ward import bids; bids.collect_runs(...)``).
"""

from nipype_ward.bids.atlas import (
    ATLAS_DIR,
    ATLAS_NAME,
    atlas_label,
    atlas_path,
    write_atlas_dataset,
)
from nipype_ward.bids.dataset import (
    BIDS_VERSION,
    linked_source,
    software_versions,
    write_bidsignore,
    write_dataset_description,
)
from nipype_ward.bids.naming import (
    ATLAS_EXTENSIONS,
    BIDS_CONFIG,
    BIDSIGNORE,
    DSEG_COLUMNS,
    HEMISPHERE_EXTENSIONS,
    SOURCE_DATASET,
    SURFACE_DSEG_COLUMNS,
    SURFACE_EXTENSIONS,
    VOLUME_EXTENSIONS,
    bids_uri,
    check_label,
    derivative_path,
    is_label,
    known_entities,
    load_config,
    parse_entities,
    parse_space,
    sha256,
)
from nipype_ward.bids.query import (
    Run,
    Selection,
    collect_runs,
    confounds_tables,
    load_filter_file,
)

__all__ = [
    "ATLAS_DIR",
    "ATLAS_EXTENSIONS",
    "ATLAS_NAME",
    "BIDSIGNORE",
    "BIDS_CONFIG",
    "BIDS_VERSION",
    "DSEG_COLUMNS",
    "HEMISPHERE_EXTENSIONS",
    "SOURCE_DATASET",
    "SURFACE_DSEG_COLUMNS",
    "SURFACE_EXTENSIONS",
    "VOLUME_EXTENSIONS",
    "Run",
    "Selection",
    "atlas_label",
    "atlas_path",
    "bids_uri",
    "check_label",
    "collect_runs",
    "confounds_tables",
    "derivative_path",
    "is_label",
    "known_entities",
    "linked_source",
    "load_config",
    "load_filter_file",
    "parse_entities",
    "parse_space",
    "sha256",
    "software_versions",
    "write_atlas_dataset",
    "write_bidsignore",
    "write_dataset_description",
]
