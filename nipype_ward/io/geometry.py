"""Where a series' points are, and the files of values on them: the formats' seam for outputs.

A run's points are the voxels of a brain mask on a volume grid (NIfTI: the
grid's shape, affine and codes) or the grayordinates of surface data
(CIFTI-2 brain models: cortical vertices on meshes, subcortical voxels).
Every file of points a run reads after its series (masks, means, labels,
atlases) is read here, and every one it writes (masks, means, labels,
compressed series, parcel series, the parcel table's columns) is written
by a :class:`Geometry`: :class:`VolumeGeometry` or :class:`SurfaceGeometry`,
chosen once from the file (:func:`geometry_of`). The steps hold a geometry
and never ask which format they have.

Surface data's points, labels and series are CIFTI-2 files whatever the
input; a GIFTI input gets its results back one hemisphere a file
(:func:`split_hemispheres`).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, replace
from pathlib import Path

import nibabel as nb
import numpy as np

from nipype_ward.core.parcels import parcel_centroids, parcel_sizes
from nipype_ward.io import cifti, gifti, masking, nifti, nifti_write
from nipype_ward.io.errors import DataWarning, InputError
from nipype_ward.io.formats import is_cifti

__all__ = [
    "Geometry",
    "SurfaceGeometry",
    "VolumeGeometry",
    "check_same_grid",
    "geometry_of",
    "load",
    "load_geometry",
    "load_labels",
    "load_mask",
    "split_hemispheres",
    "values_of",
]


# --------------------------------------------------------------------------
# Reading files of points
# --------------------------------------------------------------------------
def load(path, *, ndim: int | tuple[int, ...] = 3):
    """A file of values on points, header only: a NIfTI image, or a CIFTI-2 file of maps.

    NIfTI images are checked as :func:`nipype_ward.io.nifti.load_image` checks
    them (``ndim``); a CIFTI-2 file (``.dscalar.nii``, ``.dlabel.nii``: the
    points, means and labels of surface data) is returned as it is:
    :func:`values_of` reads its values.
    """
    if is_cifti(path):
        return cifti.load_cifti(path)
    return nifti.load_image(path, ndim=ndim)


def _is_surface(img) -> bool:
    return isinstance(img, nb.cifti2.Cifti2Image)


def values_of(img) -> np.ndarray:
    """The values of a 3D image, or of the first map of a CIFTI-2 file (one per grayordinate).

    The data of an image from :func:`load` are read here: an error reading
    them (truncated, corrupt file) is an :class:`InputError` naming it.
    """
    data = nifti.data_of(img)
    if _is_surface(img):
        if data.ndim != 2 or data.shape[0] == 0:
            raise InputError(img.get_filename() or "image",
                             f"a CIFTI-2 file of maps holds at least one row, got {data.shape}")
        return data[0]
    return data


def check_same_grid(img, img_path, reference, reference_path) -> None:
    """Raise :class:`InputError` unless ``img`` is on the points of ``reference``.

    Volumes: the same grid and affine
    (:func:`nipype_ward.io.nifti.check_same_grid`); surface data: the same
    brain models (structures, vertices and voxels, in the same order).
    """
    if _is_surface(img) or _is_surface(reference):
        if not (_is_surface(img) and _is_surface(reference)) or \
                cifti.brain_models_of(img) != cifti.brain_models_of(reference):
            raise InputError(img_path, f"its grayordinates differ from those of "
                             f"{reference_path}: both must have the same brain models")
        return
    nifti.check_same_grid(img, img_path, reference, reference_path)


def load_mask(path, *, reference=None, reference_path=None) -> tuple[np.ndarray, object]:
    """Load a binary mask as a bool array, optionally checked against a grid.

    Returns
    -------
    mask : ndarray of bool, shape (nx, ny, nz), or (n_grayordinates,)
    img : the mask image (for its grid: affine and header, or brain models)
    """
    img = load(path)
    if reference is not None:
        check_same_grid(img, path, reference, reference_path)
    data = values_of(img)
    if not np.isfinite(data).all():
        raise InputError(path, "mask has NaN or infinite values")
    mask = data != 0
    if not mask.any():
        raise InputError(path, "mask is empty (no non-zero voxel): give the brain mask of "
                         "this series")
    return mask, img


def load_labels(
    path, *, mask=None, reference=None, reference_path=None
) -> tuple[np.ndarray, np.ndarray]:
    """Read a label image as 0-based labels of the points inside ``mask``.

    Without ``mask``, the mask is the label image's non-zero points.

    Returns
    -------
    labels : ndarray of shape (n_points,), intp
        ``0 .. K - 1``, renumbered in order of first appearance.
    values : ndarray of shape (K,), int64
        The label written in the image for each parcel.
    """
    img = load(path)
    if reference is not None:
        check_same_grid(img, path, reference, reference_path)
    data = values_of(img)
    if not np.isfinite(data).all() or not np.array_equal(data, np.round(data)):
        raise InputError(path, "label image must hold integer labels")
    # Beyond 2^53 floats are not all integers, and past 2^63 the cast to
    # int64 wraps (a parcel would be lost): refuse rather than renumber wrong.
    if data.size and data.dtype.kind in "fu":
        limit = 2**53 if data.dtype.kind == "f" else np.iinfo(np.int64).max
        if data.max() > limit or data.min() < -limit:
            raise InputError(path, f"labels from {data.min():g} to {data.max():g}: labels "
                             "are integers below 2^53")
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


# --------------------------------------------------------------------------
# Writing: one geometry per kind of points
# --------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class Geometry:
    """The points of a run: ``mask`` over a grid, and the image whose grid it is.

    ``mask`` is a volume's voxels (bool, the grid's shape) or which of the
    grayordinates are used (bool, one per grayordinate); ``reference`` is
    the image that gives outputs their grid (a NIfTI header and affine, or
    a CIFTI-2 file of the brain models). Writers take values of the points
    inside ``mask``, in its order.
    """

    mask: np.ndarray
    reference: object

    #: Whether the points are grayordinates of surface data.
    surface = False

    @property
    def n_points(self) -> int:
        return int(self.mask.sum())

    def restricted(self, mask) -> Geometry:
        """The same grid with other points (e.g. those an atlas labels)."""
        return replace(self, mask=mask)

    def check(self, img, img_path, reference_path) -> None:
        """Refuse an image that is not on this grid (errors name ``img_path``)."""
        check_same_grid(img, img_path, self.reference, reference_path)

    @staticmethod
    def _constant(X) -> np.ndarray:
        return X.min(axis=1) == X.max(axis=1)


class VolumeGeometry(Geometry):
    """A brain mask's voxels on a NIfTI grid."""

    def drop_constant(self, X, source):
        """Leave out the voxels whose series is constant: they carry no signal to cluster.

        Inside a given mask (an EPI mask rarely keeps them), voxels outside the
        field of view or zeroed by resampling would each become a parcel of
        their own. Returns the series (``X`` itself, its rows moved up in place
        when it owns them: :func:`~nipype_ward.io.nifti.keep_rows`) and geometry
        without them and their number, and warns (:class:`~nipype_ward.io.errors.DataWarning`) when
        there are any.
        """
        constant = self._constant(X)
        n_constant = int(constant.sum())
        if not n_constant:
            return X, self, 0
        if n_constant == X.shape[0]:
            raise InputError(source, f"all {n_constant} voxels of the mask have a constant "
                             "series: check the mask and the series")
        warnings.warn(DataWarning(
            source, f"{n_constant} of the mask's {X.shape[0]} voxels have a constant series "
            "(no signal): left out of the parcels (label 0), counted as n_voxels_constant"))
        kept_mask = self.mask.copy()
        kept_mask[self.mask] = ~constant
        # In place where X owns its rows (as read): the series is not held twice.
        return nifti.keep_rows(X, ~constant), self.restricted(kept_mask), n_constant

    def save_mask(self, path) -> Path:
        return nifti_write.save_image(masking.mask_image(self.mask, self.reference), path)

    def save_mean(self, mean, path) -> Path:
        """A temporal mean, given on the whole grid."""
        return nifti_write.save_image(masking.mean_image(mean, self.reference), path)

    def save_labels(self, labels, path) -> Path:
        """0-based labels of the mask's voxels as an int32 image: 1..K inside, 0 outside."""
        img = nifti_write.unmask(np.asarray(labels) + 1, self.mask, self.reference, dtype=np.int32)
        img.header["intent_code"] = 1002  # NIFTI_INTENT_LABEL
        img.header["cal_min"], img.header["cal_max"] = 0, int(np.max(labels)) + 1
        return nifti_write.save_image(img, path)

    def save_series(self, volumes, path, *, n_volumes: int, dtype=np.float32, t_r=None,
                    threads: int = 1, rows_of=None) -> Path:
        """A 4D image streamed a block of volumes at a time (``volumes(start, stop)``; its
        rows taken by ``rows_of`` when given), compressed by ``threads`` threads."""
        return nifti_write.save_series_image(volumes, self.mask, self.reference, path,
                                             n_volumes=n_volumes, dtype=dtype, t_r=t_r,
                                             threads=threads, rows_of=rows_of)

    def save_parcel_series(self, means, label_values, labels, path, *, t_r=None) -> None:
        """Volume data have no image of parcel series: their table is it."""
        return None

    def parcel_columns(self, labels, order) -> dict:
        """The parcel table's columns after ``index`` and ``name``: size and centroid (mm)."""
        voxels = np.column_stack(np.nonzero(self.mask))
        world = nb.affines.apply_affine(self.reference.affine, voxels)
        centroids = parcel_centroids(labels, world)[order]
        return {
            "n_voxels": parcel_sizes(labels)[order],
            "x": centroids[:, 0].round(2), "y": centroids[:, 1].round(2),
            "z": centroids[:, 2].round(2),
        }


class SurfaceGeometry(Geometry):
    """Grayordinates: CIFTI-2 brain models (cortical vertices, subcortical voxels)."""

    surface = True

    def drop_constant(self, X, source):
        """Warn of grayordinates with a constant series: kept, as the brain models list them."""
        n_constant = int(self._constant(X).sum())
        if n_constant:
            warnings.warn(DataWarning(
                source, f"{n_constant} of its {X.shape[0]} grayordinates have a constant "
                "series (no signal): kept, as its brain models list them, they may make "
                "parcels of their own"))
        return X, self, 0

    def _full(self, values, dtype):
        """Values of the points in the mask, on every grayordinate (0 elsewhere)."""
        if self.mask.all():
            return values
        full = np.zeros((len(self.mask),) + np.shape(values)[1:], dtype=dtype)
        full[self.mask] = values
        return full

    def save_mask(self, path) -> Path:
        return cifti.save_points(self.reference, path)

    def save_mean(self, mean, path) -> Path:
        """A temporal mean, one value per grayordinate."""
        return cifti.save_points(self.reference, path, mean, name="mean")

    def save_labels(self, labels, path) -> Path:
        """0-based labels as a ``.dlabel.nii`` with its label table (1..K, 0 elsewhere)."""
        values = np.zeros(self.mask.shape, dtype=np.int32)
        values[self.mask] = np.asarray(labels) + 1
        return cifti.save_dlabel(values, self.reference, path)

    def save_series(self, volumes, path, *, n_volumes: int, dtype=np.float32, t_r=None,
                    threads: int = 1, rows_of=None) -> Path:
        values = np.asarray(volumes(0, n_volumes))
        values = self._full(values if rows_of is None else values[rows_of], np.float32)
        return cifti.save_dtseries(values, self.reference, path, t_r=t_r)

    def save_parcel_series(self, means, label_values, labels, path, *, t_r=None) -> Path:
        """Parcel series (K, volumes) as a ``.ptseries.nii``, parcels in label order."""
        from nibabel import cifti2

        models = cifti.brain_models_of(self.reference)
        values = np.zeros(len(models), dtype=np.int64)
        values[self.mask] = label_values[labels]
        axis = cifti2.SeriesAxis(start=0.0, step=float(t_r or 1.0), size=means.shape[1],
                                 unit="SECOND")
        return cifti.save_ptseries(means[np.argsort(label_values)], values, models, axis, path)

    def parcel_columns(self, labels, order) -> dict:
        """Grayordinates and CIFTI structure of each parcel.

        A parcel never spans two structures (the graph has no edge between
        them), so its structure is that of any of its grayordinates.
        """
        structure = cifti.structure_of_grayordinates(
            cifti.brain_models_of(self.reference))[self.mask]
        first = np.zeros(int(labels.max()) + 1, dtype=np.intp)
        first[labels[::-1]] = np.arange(labels.size)[::-1]  # a grayordinate of each parcel
        return {
            "n_grayordinates": parcel_sizes(labels)[order],
            "structure": structure[first][order],
        }


def geometry_of(mask, reference) -> Geometry:
    """The geometry of ``mask`` on the grid of ``reference`` (NIfTI, or CIFTI-2 grayordinates)."""
    kind = SurfaceGeometry if _is_surface(reference) else VolumeGeometry
    return kind(np.asarray(mask, dtype=bool), reference)


def load_geometry(path, *, reference=None, reference_path=None) -> Geometry:
    """The geometry of a mask file (:func:`load_mask`)."""
    return geometry_of(*load_mask(path, reference=reference, reference_path=reference_path))


def split_hemispheres(in_path, out_left, out_right) -> tuple[Path, Path]:
    """A cortical CIFTI-2 file as two GIFTI files, as fMRIPrep delivers fsaverage data.

    Labels become GIFTI label files (0 on the vertices without data, the
    same label table in both), a series GIFTI series (0 on the vertices
    without data).
    """
    img = cifti.load_cifti(in_path)
    models = cifti.brain_models_of(img)
    kinds = {name for name, _, _ in cifti.structures(models)}
    if kinds - set(cifti.CORTEX.values()) or len(kinds) != 2:
        raise InputError(in_path, "GIFTI holds one cortex a file: this file has the "
                         f"structures {sorted(kinds)}")
    data = np.asanyarray(img.dataobj)
    if isinstance(img.header.get_axis(0), nb.cifti2.LabelAxis):
        values = cifti.hemisphere_values(data[0].astype(np.int32), models)
        n_labels = int(data.max())
        return tuple(gifti.save_labels(values[hemi], n_labels, out, hemisphere=hemi)
                     for hemi, out in zip("LR", (out_left, out_right)))
    step = img.header.get_axis(0).step
    values = cifti.hemisphere_values(data.T.astype(np.float32), models)
    return tuple(gifti.save_series(values[hemi], out, hemisphere=hemi, t_r=step)
                 for hemi, out in zip("LR", (out_left, out_right)))
