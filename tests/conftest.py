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


#: nilearn 0.14's fetch_adhd looks in <data_dir>/adhd for the phenotypic CSV
#: (always required) and, for each of the first subjects of its fixed id
#: list, data/<id>/<id>_rest_tshift_RPI_voreg_mni.nii.gz and
#: data/<id>/<id>_regressors.csv. These are its first two ids.
ADHD_IDS = ("0010042", "0010064")


def write_fake_adhd(root, ids=ADHD_IDS[:1], func_img=None):
    """Files where nilearn's ADHD fetcher looks first, so it needs no network.

    Returns ``{subject id: (func path, confounds path)}``. ``func_img`` is the
    4D image to store for every subject (a small random one by default).
    """
    adhd = Path(root) / "adhd"
    adhd.mkdir(parents=True)
    # "Subject" must be an integer column: nilearn formats it with 07d.
    (adhd / "ADHD200_40subs_motion_parameters_and_phenotypics.csv").write_text(
        "Subject,site,adhd\n" + "".join(f"{int(i)},1,0\n" for i in ids)
    )
    paths = {}
    rng = np.random.default_rng(0)
    for subject in ids:
        folder = adhd / "data" / subject
        folder.mkdir(parents=True)
        func = folder / f"{subject}_rest_tshift_RPI_voreg_mni.nii.gz"
        img = func_img
        if img is None:
            img = nb.Nifti1Image(rng.random((4, 4, 4, 5), dtype=np.float32), np.eye(4))
        nb.save(img, func)
        confounds = folder / f"{subject}_regressors.csv"
        confounds.write_text("motion-x\tmotion-y\n0.1\t0.2\n")
        paths[subject] = (str(func), str(confounds))
    return paths
