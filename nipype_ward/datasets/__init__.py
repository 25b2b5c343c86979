"""Default data: an offline, deterministic rest-fMRI simulation and real loaders.

The demo and the test-suite must run without network, so the default data set
is *generated*: :func:`simulate_rest_fmri` builds, in memory and from a seed
only, a 4D series that looks like a preprocessed resting-state EPI run in MNI
space, together with the ground truth it was built from (the brain mask and
the regions whose voxels share a fluctuation). :func:`load_simulated_rest`
caches it on disk as NIfTI files, which is what the command-line tools and
Nipype interfaces consume. :func:`simulate_surface_fmri` is the same model on
cortical meshes. :func:`fetch_adhd_subject` is the real-data counterpart for
online users (nilearn's ADHD-200 subset), and :func:`load_bold_dataset`
dispatches between them by name. :func:`write_fmriprep_example` writes the
simulation as a small fMRIPrep output dataset, for the BIDS App.

Everything the simulation needs ships with nilearn (the MNI152 templates), so
no call in this package touches the network except :func:`fetch_adhd_subject`
when its files are not on disk yet.
"""

# One module per job: _model (the signal model both simulations share), _volume
# (the run on the MNI152 grid), _surface (the run on meshes), _cache (the data
# directory and the cached run), _fetchers (nilearn's data, the loader by name),
# _fmriprep (a small fMRIPrep output dataset of simulated runs), _bunch (the
# dict-with-attributes the loaders return).

from nipype_ward.datasets._bunch import Bunch
from nipype_ward.datasets._cache import DATA_DIR_ENV, get_data_dir, load_simulated_rest
from nipype_ward.datasets._fetchers import fetch_adhd_subject, load_bold_dataset
from nipype_ward.datasets._fmriprep import fmriprep_confounds, write_fmriprep_example
from nipype_ward.datasets._surface import SimulatedSurface, simulate_surface_fmri
from nipype_ward.datasets._volume import (
    SIMULATION_VERSION,
    SimulatedRest,
    SimulatedVolumes,
    simulate_rest_fmri,
    simulate_rest_volumes,
)

__all__ = [
    "DATA_DIR_ENV",
    "SIMULATION_VERSION",
    "Bunch",
    "SimulatedRest",
    "SimulatedSurface",
    "SimulatedVolumes",
    "fetch_adhd_subject",
    "fmriprep_confounds",
    "get_data_dir",
    "load_bold_dataset",
    "load_simulated_rest",
    "simulate_rest_fmri",
    "simulate_rest_volumes",
    "simulate_surface_fmri",
    "write_fmriprep_example",
]
