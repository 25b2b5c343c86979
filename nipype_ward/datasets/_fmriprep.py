"""A small fMRIPrep output dataset, simulated offline: to try the BIDS App and draw its graphs."""

from __future__ import annotations

import json
from pathlib import Path

import nibabel as nb
import numpy as np

from nipype_ward.datasets._volume import simulate_rest_fmri

#: fMRIPrep's motion parameters and tissue signals, as its confounds table names them.
_MOTION = ("trans_x", "trans_y", "trans_z", "rot_x", "rot_y", "rot_z")
_TISSUES = ("csf", "white_matter", "global_signal")
_SPACE = "MNI152NLin2009cAsym"


def fmriprep_confounds(n_volumes: int, rng, *, n_compcor: int = 5, n_cosine: int = 3):
    """An fMRIPrep-style confounds table (name -> column) and its JSON metadata.

    Motion with derivatives and squares, tissue signals, cosine drifts,
    framewise displacement and DVARS (``NaN`` in the first row, which fMRIPrep
    writes ``n/a``), and anatomical CompCor components whose metadata give the
    ``Mask`` nilearn's ``load_confounds`` selects them by: what nilearn's
    strategies (``simple``, ``scrubbing``, ``compcor``) read.
    """
    columns = {}
    motion = np.cumsum(rng.normal(0, 0.02, (n_volumes, 6)), axis=0)
    columns.update(zip(_MOTION, motion.T))
    for name in _TISSUES:
        columns[name] = rng.normal(0, 1, n_volumes).cumsum()
    for name in list(columns):
        derivative = np.r_[np.nan, np.diff(columns[name])]
        columns[f"{name}_derivative1"] = derivative
        columns[f"{name}_power2"] = columns[name] ** 2
        columns[f"{name}_derivative1_power2"] = derivative**2
    columns["framewise_displacement"] = np.abs(rng.normal(0.1, 0.03, n_volumes))
    columns["framewise_displacement"][0] = np.nan
    columns["dvars"] = np.r_[np.nan, np.abs(rng.normal(20, 2, n_volumes - 1))]
    columns["std_dvars"] = np.r_[np.nan, np.abs(rng.normal(1.0, 0.1, n_volumes - 1))]
    time = np.arange(n_volumes)
    for k in range(n_cosine):
        columns[f"cosine{k:02d}"] = np.sqrt(2 / n_volumes) * np.cos(
            np.pi * (2 * time + 1) * (k + 1) / (2 * n_volumes))
    metadata = {}
    for k in range(n_compcor):
        name = f"a_comp_cor_{k:02d}"
        columns[name] = rng.normal(0, 1, n_volumes)
        metadata[name] = {"Method": "aCompCor", "Mask": "combined", "Retained": True,
                          "SingularValue": float(10 - k), "VarianceExplained": 0.1}
    return columns, metadata


def _write_table(columns: dict, path: Path) -> None:
    rows = ["\t".join(columns)]
    for values in zip(*columns.values()):
        rows.append("\t".join("n/a" if np.isnan(v) else f"{v:.6g}" for v in values))
    path.write_text("\n".join(rows) + "\n")


def write_fmriprep_example(root, *, subjects=("01",), resolution: int = 6, n_volumes: int = 100,
                           t_r: float = 2.0) -> Path:
    """Write a small fMRIPrep output dataset of simulated rest runs; return its folder.

    One run a subject (``task-rest``, in ``MNI152NLin2009cAsym``): the BOLD
    series (:func:`simulate_rest_fmri` at ``resolution`` mm, seeded by the
    subject's position), its JSON sidecar (``RepetitionTime``), its
    ``desc-brain_mask`` and its ``desc-confounds_timeseries.tsv`` with JSON
    (:func:`fmriprep_confounds`), and the dataset's ``dataset_description.json``
    as fMRIPrep writes it. Enough to run the BIDS App on, offline, in
    seconds; the data are a simulation, not a brain.
    """
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    (root / "dataset_description.json").write_text(json.dumps({
        "Name": "fMRIPrep - fMRI PREProcessing workflow (simulated by nipype-ward)",
        "BIDSVersion": "1.9.0", "DatasetType": "derivative",
        "GeneratedBy": [{"Name": "fMRIPrep", "Version": "25.1.4"}],
    }, indent=2))
    for seed, subject in enumerate(subjects):
        folder = root / f"sub-{subject}" / "func"
        folder.mkdir(parents=True, exist_ok=True)
        sim = simulate_rest_fmri(resolution=resolution, n_volumes=n_volumes, t_r=t_r,
                                 n_regions=60, random_state=seed)
        stem = f"sub-{subject}_task-rest"
        bold = folder / f"{stem}_space-{_SPACE}_desc-preproc_bold.nii.gz"
        nb.save(sim.bold_img, bold)
        bold.with_name(bold.name.replace(".nii.gz", ".json")).write_text(
            json.dumps({"RepetitionTime": t_r, "TaskName": "rest", "SkullStripped": False}))
        nb.save(sim.brain_mask_img, folder / f"{stem}_space-{_SPACE}_desc-brain_mask.nii.gz")
        columns, metadata = fmriprep_confounds(n_volumes, np.random.default_rng(seed))
        _write_table(columns, folder / f"{stem}_desc-confounds_timeseries.tsv")
        (folder / f"{stem}_desc-confounds_timeseries.json").write_text(json.dumps(metadata))
    return root
