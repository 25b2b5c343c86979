"""Shared fixtures: small real-shaped data, written once per test session.

Each dataset is the embedded simulation at a coarse resolution, so tests run
the real code on brain-shaped data in seconds. Tests that need their own
random numbers take the ``rng`` fixture (seeded per test).
"""

from __future__ import annotations

import zlib
from pathlib import Path

import nibabel as nb
import numpy as np
import pytest

#: Small enough for seconds per test, large enough to be brain-shaped.
SMALL = {"resolution": 6, "n_volumes": 40, "n_regions": 60, "random_state": 0}


@pytest.fixture
def rng(request):
    """A random generator seeded from the test's name: reproducible, not shared."""
    seed = zlib.crc32(request.node.nodeid.encode())
    return np.random.default_rng(seed)


@pytest.fixture(scope="session")
def small_data(tmp_path_factory):
    """Paths of a small simulated rest-fMRI dataset: bold, brain mask, regions."""
    from nipype_ward.datasets import simulate_rest_fmri

    sim = simulate_rest_fmri(**SMALL)
    folder = tmp_path_factory.mktemp("small_data")
    paths = {
        "bold": folder / "sub-01_task-rest_bold.nii.gz",
        "mask": folder / "sub-01_desc-brain_mask.nii.gz",
        "regions": folder / "sub-01_regions.nii.gz",
    }
    nb.save(sim.bold_img, paths["bold"])
    nb.save(sim.brain_mask_img, paths["mask"])
    nb.save(sim.regions_img, paths["regions"])
    return {key: Path(value) for key, value in paths.items()} | {"t_r": sim.t_r}


@pytest.fixture(scope="session")
def small_arrays(small_data):
    """The small dataset as arrays: X (n_voxels, n_volumes), mask, affine."""
    bold = nb.load(small_data["bold"])
    mask = np.asanyarray(nb.load(small_data["mask"]).dataobj) > 0
    X = np.asanyarray(bold.dataobj)[mask].astype(np.float32)
    return {"X": X, "mask": mask, "affine": bold.affine}
