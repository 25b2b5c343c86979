"""Image and array-file I/O: NIfTI <-> arrays, with the checks users need.

Every problem with an input file raises :class:`InputError`, one message that
names the file and says what is wrong with it. Writers go through a temporary
file and a rename, so an interrupted run never leaves a truncated output.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import nibabel as nb
import numpy as np
from scipy import sparse

from nipype_ward.ward import WardTree

#: Tolerance on affines when checking that two images share a grid (mm).
AFFINE_ATOL = 1e-3


class InputError(ValueError):
    """An input file cannot be used; the message names the file and the problem."""

    def __init__(self, path, problem: str):
        self.path = str(path)
        self.problem = problem
        super().__init__(f"{path}: {problem}")


def load_image(path, *, ndim: int | tuple[int, ...] = (3, 4)) -> nb.Nifti1Image:
    """Load a NIfTI image, checking it exists, is readable and has ``ndim``."""
    allowed = (ndim,) if isinstance(ndim, int) else tuple(ndim)
    path = Path(path)
    if not path.exists():
        raise InputError(path, "no such file")
    try:
        # An open handle lets masked_data read a .nii.gz volume block by
        # volume block without decompressing from the start for each block.
        img = nb.load(path, keep_file_open=True)
    except Exception as exc:  # nibabel raises many types for corrupt files
        raise InputError(path, f"not a readable NIfTI image ({exc})") from exc
    shape = img.shape
    # A 4D image with one volume is a 3D image for our purposes, and back.
    if len(shape) == 4 and shape[3] == 1 and 3 in allowed and 4 not in allowed:
        img = nb.funcs.four_to_three(img)[0]
    elif len(shape) not in allowed:
        want = " or ".join(f"{d}D" for d in allowed)
        raise InputError(path, f"expected a {want} image, got shape {shape}")
    return img


def load_bold(path, *, min_volumes: int = 2) -> nb.Nifti1Image:
    """Load a 4D BOLD series with at least ``min_volumes`` volumes."""
    img = load_image(path, ndim=4)
    if img.shape[3] < min_volumes:
        raise InputError(
            path, f"needs at least {min_volumes} volumes, got {img.shape[3]}"
        )
    return img


def check_same_grid(img, img_path, reference, reference_path) -> None:
    """Raise :class:`InputError` unless ``img`` is on the grid of ``reference``."""
    if img.shape[:3] != reference.shape[:3]:
        raise InputError(
            img_path,
            f"grid {img.shape[:3]} differs from the grid {reference.shape[:3]} "
            f"of {reference_path}",
        )
    if not np.allclose(img.affine, reference.affine, atol=AFFINE_ATOL):
        raise InputError(
            img_path,
            f"affine differs from that of {reference_path} (same shape, other "
            "position or voxel size): resample one onto the other first",
        )


def load_mask(path, *, reference=None, reference_path=None) -> tuple[np.ndarray, nb.Nifti1Image]:
    """Load a binary mask as a bool array, optionally checked against a grid.

    Returns
    -------
    mask : ndarray of bool, shape (nx, ny, nz)
    img : the mask image (for its affine and header)
    """
    img = load_image(path, ndim=3)
    if reference is not None:
        check_same_grid(img, path, reference, reference_path)
    data = np.asanyarray(img.dataobj)
    if not np.isfinite(data).all():
        raise InputError(path, "mask has NaN or infinite values")
    mask = data != 0
    if not mask.any():
        raise InputError(path, "mask is empty (no non-zero voxel)")
    return mask, img


def masked_data(bold_img, mask, bold_path, *, block: int = 16) -> np.ndarray:
    """Voxel time series inside ``mask``: shape (n_voxels, n_volumes), float32.

    Voxels are in C order of the mask, as nilearn's maskers give them. The
    series is read ``block`` volumes at a time, so the whole 4D grid is
    never in memory at once (4x less peak memory on a 3 mm MNI series).
    """
    n_volumes = bold_img.shape[3]
    X = np.empty((int(mask.sum()), n_volumes), dtype=np.float32)
    for start in range(0, n_volumes, block):
        stop = min(start + block, n_volumes)
        X[:, start:stop] = np.asarray(bold_img.dataobj[..., start:stop], dtype=np.float32)[mask]
    finite = np.isfinite(X).all(axis=1)
    if not finite.all():
        raise InputError(
            bold_path,
            f"{int((~finite).sum())} voxels inside the mask have NaN or infinite values",
        )
    return X


def load_masked_bold(bold_path, mask_path) -> tuple[np.ndarray, np.ndarray, nb.Nifti1Image]:
    """Read a BOLD series inside a mask, checking that both share a grid.

    Returns
    -------
    X : ndarray of shape (n_voxels, n_volumes), float32
    mask : ndarray of bool, shape (nx, ny, nz)
    bold_img : the BOLD image
    """
    bold_img = load_bold(bold_path)
    mask, _ = load_mask(mask_path, reference=bold_img, reference_path=bold_path)
    return masked_data(bold_img, mask, bold_path), mask, bold_img


def _atomic_target(path) -> tuple[Path, Path]:
    """A temporary path in the target's folder with the target's extension."""
    path = Path(path)
    suffix = "".join(path.suffixes[-2:]) if path.name.endswith(".nii.gz") else path.suffix
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix, dir=path.parent)
    os.close(fd)
    return path, Path(tmp)


def save_atomically(write, path) -> Path:
    """Call ``write(tmp_path)`` then rename onto ``path``; no partial file on failure."""
    path, tmp = _atomic_target(path)
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def unmask(values, mask, reference_img, *, dtype=np.float32) -> nb.Nifti1Image:
    """Put voxel values (n_voxels,) or (n_voxels, n_volumes) back on the grid.

    The output keeps the reference's affine, qform/sform codes and spatial
    zooms (and the TR for 4D outputs); outside the mask is 0.
    """
    values = np.asarray(values)
    shape = mask.shape + values.shape[1:]
    data = np.zeros(shape, dtype=dtype)
    data[mask] = values
    header = reference_img.header.copy()
    header.set_data_dtype(dtype)
    img = nb.Nifti1Image(data, reference_img.affine, header)
    if data.ndim == 3:
        img.header.set_zooms(reference_img.header.get_zooms()[:3])
    # Scaling of the source (e.g. int16 EPI) must not be applied to our values.
    img.header.set_slope_inter(1.0, 0.0)
    return img


def save_image(img, path) -> Path:
    return save_atomically(lambda tmp: nb.save(img, tmp), path)


def save_labels(labels, mask, reference_img, path) -> Path:
    """Write 0-based labels as an int32 image: 1..K inside the mask, 0 outside."""
    img = unmask(np.asarray(labels) + 1, mask, reference_img, dtype=np.int32)
    img.header["intent_code"] = 1002  # NIFTI_INTENT_LABEL
    img.header["cal_min"], img.header["cal_max"] = 0, int(np.max(labels)) + 1
    return save_image(img, path)


def load_labels(
    path, *, mask=None, reference=None, reference_path=None
) -> tuple[np.ndarray, np.ndarray]:
    """Read a label image as 0-based labels of the voxels inside ``mask``.

    Without ``mask``, the mask is the label image's non-zero voxels.

    Returns
    -------
    labels : ndarray of shape (n_voxels,), intp
        ``0 .. K - 1``, renumbered in order of first appearance.
    values : ndarray of shape (K,), int64
        The label written in the image for each parcel.
    """
    img = load_image(path, ndim=3)
    if reference is not None:
        check_same_grid(img, path, reference, reference_path)
    data = np.asanyarray(img.dataobj)
    if not np.isfinite(data).all() or not np.array_equal(data, np.round(data)):
        raise InputError(path, "label image must hold integer labels")
    data = data.astype(np.int64)
    if mask is None:
        mask = data > 0
    values = data[mask]
    if values.size == 0 or (values <= 0).all():
        raise InputError(path, "label image has no label inside the mask")
    if (values <= 0).any():
        raise InputError(
            path, f"{int((values <= 0).sum())} voxels of the mask have no label (0)"
        )
    unique, first, inverse = np.unique(values, return_index=True, return_inverse=True)
    # np.unique sorts by value: renumber in order of first appearance instead.
    order = np.argsort(first)
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))
    return rank[inverse].astype(np.intp), unique[order]


def save_connectivity(connectivity, path) -> Path:
    return save_atomically(
        lambda tmp: sparse.save_npz(tmp, sparse.csr_matrix(connectivity)), path
    )


def load_connectivity(path, *, n_voxels: int | None = None) -> sparse.csr_matrix:
    """Read a ``.npz`` adjacency written by :func:`save_connectivity`."""
    path = Path(path)
    if not path.exists():
        raise InputError(path, "no such file")
    try:
        connectivity = sparse.load_npz(path).tocsr()
    except Exception as exc:
        raise InputError(path, f"not a scipy sparse .npz file ({exc})") from exc
    if n_voxels is not None and connectivity.shape != (n_voxels, n_voxels):
        raise InputError(
            path,
            f"connectivity is {connectivity.shape[0]} x {connectivity.shape[1]} "
            f"but the mask has {n_voxels} voxels: was it computed from another mask?",
        )
    return connectivity


def save_tree(tree: WardTree, path) -> Path:
    """Write a Ward tree (merges, distances, sizes) as ``.npz``."""

    def write(tmp):
        with open(tmp, "wb") as fobj:
            np.savez(
                fobj,
                children=tree.children,
                distances=tree.distances,
                sizes=tree.sizes,
                n_components=np.array(tree.n_components),
            )

    return save_atomically(write, path)


def load_tree(path, *, n_leaves: int | None = None) -> WardTree:
    """Read a tree written by :func:`save_tree`, optionally checking its size."""
    path = Path(path)
    if not path.exists():
        raise InputError(path, "no such file")
    try:
        with np.load(path) as data:
            tree = WardTree(
                data["children"], data["distances"], data["sizes"], int(data["n_components"])
            )
    except Exception as exc:
        raise InputError(path, f"not a Ward tree file ({exc})") from exc
    if n_leaves is not None and tree.n_leaves != n_leaves:
        raise InputError(
            path,
            f"tree has {tree.n_leaves} leaves but the mask has {n_leaves} voxels: "
            "was it built from another mask?",
        )
    return tree


def save_timeseries(means, path, *, column_names=None) -> Path:
    """Write parcel signals (n_parcels, n_volumes) as a TSV, one column per parcel."""
    means = np.asarray(means)
    names = column_names if column_names is not None else [str(i + 1) for i in range(len(means))]

    def write(tmp):
        np.savetxt(tmp, means.T, delimiter="\t", header="\t".join(names), comments="", fmt="%.8g")

    return save_atomically(write, path)


def save_json(payload: dict, path) -> Path:
    def write(tmp):
        Path(tmp).write_text(json.dumps(payload, indent=2, sort_keys=True) + "\n")

    return save_atomically(write, path)


def estimate_mem_gb(bold_path) -> dict[str, float]:
    """Memory (GB) of the heavy nodes for a BOLD series, from its header only.

    Upper bounds, taking the mask as large as the grid:

    * ``mask``: nilearn's EPI mask and the mean load the whole series (as
      float64 when the file stores integers or scaled values) and average it;
    * ``tree``: the masked series (float32, read a block of volumes at a
      time), its prepared copy, and the kernel's sums and centroids;
    * ``compress``: the masked and prepared series, their centred copy in
      float64, and the compressed 4D series.
    """
    img = load_bold(bold_path)
    n_values = int(np.prod(img.shape[:3])) * int(img.shape[3])
    dtype = np.dtype(img.get_data_dtype())
    slope, inter = img.header.get_slope_inter()
    scaled = slope not in (None, 1.0) or inter not in (None, 0.0)
    loaded_itemsize = 8 if scaled or dtype.kind in "iu" else max(dtype.itemsize, 4)
    loaded_gb = n_values * loaded_itemsize / 1e9
    masked_gb = n_values * 4 / 1e9
    return {
        "mask": round(0.3 + 2 * loaded_gb, 2),
        "tree": round(0.3 + 4 * masked_gb, 2),
        "compress": round(0.3 + 7 * masked_gb, 2),
    }


def _sidecar(path) -> Path:
    path = Path(path)
    name = path.name
    for ext in (".nii.gz", ".nii"):
        if name.endswith(ext):
            return path.with_name(name[: -len(ext)] + ".json")
    return path.with_suffix(".json")


def read_repetition_time(bold_path, bold_img=None) -> float | None:
    """Repetition time in seconds of a BOLD series, or None when unknown.

    The BIDS JSON sidecar's ``RepetitionTime`` comes first (it is the
    authority in BIDS datasets such as fMRIPrep's outputs), then the NIfTI
    header's fourth zoom when the header states its time unit.
    """
    sidecar = _sidecar(bold_path)
    if sidecar.exists():
        try:
            t_r = json.loads(sidecar.read_text()).get("RepetitionTime")
        except (json.JSONDecodeError, AttributeError) as exc:
            raise InputError(sidecar, f"not a readable JSON sidecar ({exc})") from exc
        if t_r is not None:
            if not isinstance(t_r, (int, float)) or isinstance(t_r, bool) or t_r <= 0:
                raise InputError(sidecar, f"RepetitionTime must be a positive number, got {t_r!r}")
            return float(t_r)
    img = bold_img if bold_img is not None else load_bold(bold_path)
    zooms = img.header.get_zooms()
    unit = img.header.get_xyzt_units()[1]
    scale = {"sec": 1.0, "msec": 1e-3, "usec": 1e-6}.get(unit)
    if len(zooms) > 3 and scale is not None and zooms[3] > 0:
        return float(zooms[3]) * scale
    return None


def load_confounds(path, n_volumes: int, columns=None) -> np.ndarray:
    """Read confound regressors from a TSV (e.g. fMRIPrep's ``desc-confounds_timeseries``).

    Parameters
    ----------
    path : str or Path
        The TSV file, one row per volume, a header of column names.
    n_volumes : int
        The number of volumes of the BOLD series.
    columns : sequence of str, optional
        Names of the columns to use; all columns when None or empty.

    Returns
    -------
    confounds : ndarray of shape (n_volumes, n_columns), float64
        ``n/a`` cells (fMRIPrep's first row of derivatives and of
        framewise displacement) are replaced by the column's mean, which is
        neutral once nilearn standardizes the confounds.
    """
    import pandas as pd

    path = Path(path)
    if not path.exists():
        raise InputError(path, "no such file")
    try:
        table = pd.read_csv(path, sep="\t", na_values=["n/a"])
    except Exception as exc:
        raise InputError(path, f"not a readable TSV file ({exc})") from exc
    if columns:
        missing = [name for name in columns if name not in table.columns]
        if missing:
            raise InputError(
                path, f"no column named {', '.join(map(repr, missing))} in the confounds"
            )
        table = table[list(columns)]
    if table.shape[1] == 0:
        raise InputError(path, "no confound column")
    if len(table) != n_volumes:
        raise InputError(
            path, f"has {len(table)} rows but the BOLD series has {n_volumes} volumes"
        )
    try:
        values = table.to_numpy(dtype=np.float64)
    except ValueError as exc:
        raise InputError(path, f"confound columns must be numbers ({exc})") from exc
    empty = np.isnan(values).all(axis=0)
    if empty.any():
        names = [str(c) for c, e in zip(table.columns, empty) if e]
        raise InputError(path, f"column {', '.join(names)} has no value")
    fill = np.nanmean(values, axis=0)
    return np.where(np.isnan(values), fill, values)
