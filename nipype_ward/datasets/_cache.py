"""The data directory and the simulated run cached there as NIfTI files.

The folder of a cached run names every parameter of the simulation and its
version (``SIMULATION_VERSION``), so a later call with the same parameters
finds it and a changed simulation never reuses it.
"""

from __future__ import annotations

import os
from pathlib import Path

from nipype_ward.core.validation import check_int, check_real
from nipype_ward.datasets._bunch import Bunch
from nipype_ward.datasets._volume import SIMULATION_VERSION, simulate_rest_volumes
from nipype_ward.io.nifti_write import save_image, save_volumes

#: Environment variable that overrides the default data directory.
DATA_DIR_ENV = "NIPYPE_WARD_DATA"


def get_data_dir(data_dir=None) -> Path:
    """Directory where nipype-ward stores its data, created if missing.

    Parameters
    ----------
    data_dir : str or os.PathLike or None, default=None
        Explicit directory. If None, the environment variable
        ``NIPYPE_WARD_DATA`` is used, else ``~/nipype_ward_data``.

    Returns
    -------
    pathlib.Path
        The (existing) directory, with ``~`` expanded.
    """
    if data_dir is None:
        data_dir = os.environ.get(DATA_DIR_ENV) or "~/nipype_ward_data"
    path = Path(data_dir).expanduser()
    path.mkdir(parents=True, exist_ok=True)
    return path


def _simulation_dir_name(resolution, n_volumes, t_r, n_regions, random_state) -> str:
    # Every parameter is in the name, so two parameter sets never share files;
    # ``g`` formatting keeps 2.0 -> "2" and 0.72 -> "0.72" readable and exact
    # enough (repr would put "2.0" and "2" in different folders).
    return (
        f"v{SIMULATION_VERSION}_res-{resolution}mm_vols-{n_volumes}"
        f"_tr-{t_r:.10g}s_regions-{n_regions}_seed-{random_state}"
    )


def load_simulated_rest(
    *,
    resolution: int = 3,
    n_volumes: int = 176,
    t_r: float = 2.0,
    n_regions: int = 300,
    random_state: int = 0,
    data_dir=None,
) -> Bunch:
    """Simulated rest-fMRI run as NIfTI files, generated once then cached.

    See :func:`simulate_rest_fmri` for the model and the parameters. Files are
    stored under ``get_data_dir(data_dir)/simulated_rest/<parameters>/``; a
    later call with the same parameters returns them without regenerating.

    Parameters
    ----------
    resolution, n_volumes, t_r, n_regions
        As in :func:`simulate_rest_fmri`.
    random_state : int, default=0
        Seed; must be a non-negative integer, since it names the cache.
    data_dir : str or os.PathLike or None, default=None
        Root data directory, see :func:`get_data_dir`.

    Returns
    -------
    Bunch
        ``func`` (str, path of the 4D ``.nii.gz``), ``mask`` (str, path of the
        true brain mask), ``regions`` (str, path of the ground-truth regions),
        ``t_r`` (float, seconds) and ``description`` (str).
    """
    resolution = check_int(resolution, "resolution")
    n_volumes = check_int(n_volumes, "n_volumes")
    n_regions = check_int(n_regions, "n_regions")
    t_r = check_real(t_r, "t_r", what="number of seconds")
    # An integer seed names the cached data set: simulate_rest_fmri takes other seeds.
    random_state = check_int(random_state, "random_state", low=0)

    folder = (
        get_data_dir(data_dir)
        / "simulated_rest"
        / _simulation_dir_name(resolution, n_volumes, t_r, n_regions, random_state)
    )
    folder.mkdir(parents=True, exist_ok=True)
    paths = {
        "func": folder / "bold.nii.gz",
        "mask": folder / "brain_mask.nii.gz",
        "regions": folder / "regions.nii.gz",
    }

    # Each file is written atomically, so existing means complete; if only
    # some exist (run interrupted between two files) regenerate them all, the
    # simulation being deterministic.
    if not all(p.is_file() for p in paths.values()):
        run = simulate_rest_volumes(
            resolution=resolution,
            n_volumes=n_volumes,
            t_r=t_r,
            n_regions=n_regions,
            random_state=random_state,
        )
        # The series last: it is the slowest write, and the small files being
        # present alone does not count as a complete cache. It is written a
        # volume at a time as they are drawn (a 2 mm run of 1,200 volumes is
        # 4.3 GB of float32).
        save_image(run.brain_mask_img, paths["mask"])
        save_image(run.regions_img, paths["regions"])
        save_volumes(run.volumes, run.brain_mask_img, paths["func"], n_volumes=n_volumes,
                     t_r=t_r)

    description = (
        "Simulated resting-state fMRI (nipype-ward, simulation version "
        f"{SIMULATION_VERSION}): {n_volumes} volumes, TR {t_r:g} s, "
        f"{resolution} mm MNI152 grid (nilearn), up to {n_regions} compact "
        f"ground-truth regions, seed {random_state}. Each region shares a "
        "slow (0.01-0.1 Hz) fluctuation with voxel-specific loadings, on top "
        "of a global signal, spatially smooth noise and white noise (~2 % of "
        "an EPI-like baseline), in a Rician magnitude image. 'mask' is the "
        "true brain mask, 'regions' the ground-truth labels (0 outside)."
    )
    return Bunch(
        func=str(paths["func"]),
        mask=str(paths["mask"]),
        regions=str(paths["regions"]),
        t_r=t_r,
        description=description,
    )
