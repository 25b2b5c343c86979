"""A BOLD series' files and header, whatever their format: the seam above the format modules.

A series is one file (a 4D NIfTI, a CIFTI-2 dense series) or a GIFTI pair
(the left hemisphere, then the right). What the layers above need to know
of it before any data are read is asked here, once: its volumes, its
points (the grayordinates of surface data; a volume's are its mask's), its
repetition time, the grid other files must share, the memory the heavy
nodes need, and how its results are delivered (one file, or one a
hemisphere; with CIFTI-2 parcel series or not). The format modules
(:mod:`nipype_ward.io.nifti`, :mod:`nipype_ward.io.cifti`,
:mod:`nipype_ward.io.gifti`) sit below and import nothing from here.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import nibabel as nb
import numpy as np

from nipype_ward.io import cifti, gifti, nifti
from nipype_ward.io.errors import InputError
from nipype_ward.io.files import sidecar_path
from nipype_ward.io.formats import is_cifti, is_gifti, is_surface
from nipype_ward.io.geometry import Geometry, SurfaceGeometry, VolumeGeometry, load_geometry


def sources_of(series) -> tuple[Path, ...]:
    """A series given as one path or a sequence of paths (a GIFTI pair), as a tuple of paths."""
    if isinstance(series, (str, os.PathLike)):
        return (Path(series),)
    return tuple(Path(path) for path in series if path is not None)


@dataclass(frozen=True)
class SeriesHeader:
    """What a series' headers say, read without its data (:func:`read_header`)."""

    sources: tuple[Path, ...]
    n_volumes: int
    #: The grayordinates of surface data; None for a volume (its mask decides).
    n_points: int | None
    #: The image other files must share a grid with (a NIfTI or CIFTI-2
    #: header); None for a GIFTI pair, whose meshes are its grid.
    grid: object | None
    #: Surface data: the vertices each cortex of the data has ("L", "R").
    cortex_vertices: dict = field(default_factory=dict)

    @property
    def surface(self) -> bool:
        """Whether the series is surface data (CIFTI-2 or a GIFTI pair)."""
        return is_surface(self.sources[0])

    @property
    def hemispheres(self) -> bool:
        """Whether the series came as one file a hemisphere, and its results go so too."""
        return len(self.sources) == 2

    @property
    def parcel_series(self) -> bool:
        """Whether its parcel series are also delivered as CIFTI-2 parcel series."""
        return self.surface and not self.hemispheres


def read_header(series) -> SeriesHeader:
    """The header of a series (one path, or a GIFTI pair), checked; no data are read.

    A GIFTI pair's hemispheres must have as many volumes; a surface series
    at least 2. Errors name the file.
    """
    sources = sources_of(series)
    first = sources[0]
    if not is_surface(first):
        img = nifti.load_bold(first)
        return SeriesHeader(sources, int(img.shape[3]), None, img)
    if len(sources) == 1:
        if not is_cifti(first):
            raise InputError(first, "a GIFTI series is one hemisphere: give the left "
                             "hemisphere's and the right's")
        img = cifti.load_cifti(first)
        models = cifti.brain_models_of(img)
        counts = {hemi: int(models.nvertices[name]) for hemi, name in cifti.CORTEX.items()
                  if name in models.nvertices}
        header = SeriesHeader(sources, int(img.shape[0]), len(models), img, counts)
    else:
        shapes = [gifti.series_shape(path) for path in sources]
        if shapes[0][1] != shapes[1][1]:
            raise InputError(sources[1], f"{shapes[1][1]} volumes, the left hemisphere "
                             f"{shapes[0][1]}")
        header = SeriesHeader(sources, shapes[0][1], shapes[0][0] + shapes[1][0], None,
                              {"L": shapes[0][0], "R": shapes[1][0]})
    if header.n_volumes < 2:
        raise InputError(first, f"a series needs at least 2 volumes, got {header.n_volumes}")
    return header


def check_meshes(header: SeriesHeader, meshes) -> None:
    """The (left, right) meshes of a surface series have as many vertices as its cortices."""
    for hemi, path in zip("LR", meshes):
        n_vertices = gifti.mesh_shape(path)[0]
        if hemi in header.cortex_vertices and header.cortex_vertices[hemi] != n_vertices:
            raise InputError(header.sources[0], f"the {hemi} cortex has "
                             f"{header.cortex_vertices[hemi]} vertices but its mesh {path} has "
                             f"{n_vertices}: give the data's own meshes with --surfaces")


def check_atlas_for(header: SeriesHeader, atlas) -> None:
    """Refuse an atlas a series cannot be reduced on: GIFTI pairs take none (one file a cortex)."""
    if header.hemispheres:
        raise InputError(atlas, "--atlas on GIFTI series is not supported: parcellate "
                         "their CIFTI version (fsLR), with a CIFTI-2 atlas")


def count_volumes(series) -> int:
    """Volumes of a series from its header: NIfTI, CIFTI-2 dense series or GIFTI."""
    path = sources_of(series)[0]
    if is_gifti(path):
        return gifti.series_shape(path)[1]
    if is_cifti(path):
        return int(cifti.load_cifti(path).shape[0])
    return int(nifti.load_bold(path).shape[3])


def estimate_mem_gb(series, *, mask=None) -> dict[str, float]:
    """Memory (GB) of the heavy nodes for a series (one path, or a GIFTI pair), from its header.

    Upper bounds for ``n`` values in all (the mask's voxels x the volumes
    when the brain ``mask`` file is given, else the whole grid's, the mask
    being computed later), held in :func:`nipype_ward.io.nifti.series_dtype`
    (``s`` bytes each):

    * ``prepare``: the masked series and its prepared copy (``2 n s``), one
      block of volumes, and nilearn's cleaning, which works in float64 on
      the transposed series (``+ 2 n 8`` when a preparation is asked);
    * ``tree``: the series (memory-mapped), the kernel's sums and centroids
      (about ``2 n 8`` for the full tree and its halves);
    * ``compress``: the series (memory-mapped) and one block of voxels in
      float64 at a time for the metrics (``n s`` + small).

    Plain bounds, rounded to 0.01 GB (first: a bound rounded up past a
    scheduler's limit would still be refused); the workflows cap them at
    what the scheduler has (:func:`nipype_ward.settings.cap_mem_gb`).
    """
    sources = sources_of(series)
    if is_gifti(sources[0]):  # a GIFTI pair: both hemispheres, float32
        n_values = sum(int(np.prod(gifti.series_shape(path))) for path in sources)
        itemsize = 4
    else:
        img = cifti.load_cifti(sources[0]) if is_cifti(sources[0]) \
            else nifti.load_bold(sources[0])
        n_values = int(np.prod(img.shape))
        if mask is not None and not is_cifti(sources[0]):
            n_values = load_geometry(mask).n_points * int(img.shape[3])
        itemsize = nifti.series_dtype(img.get_data_dtype()).itemsize
        # nibabel moves the scale factors from the header to the data proxy.
        if (getattr(img.dataobj, "slope", 1.0), getattr(img.dataobj, "inter", 0.0)) != (1.0, 0.0):
            itemsize = 8  # scaled data are read as float64
    gb = n_values / 1e9
    bounds = {
        "prepare": 0.3 + gb * (2 * itemsize + 16),
        "tree": 0.3 + gb * (itemsize + 16),
        "compress": 0.3 + gb * (itemsize + 1),
    }
    return {node: round(value, 2) for node, value in bounds.items()}


def read_repetition_time(bold_path, bold_img=None) -> float | None:
    """Repetition time in seconds of a BOLD series, or None when unknown.

    The BIDS JSON sidecar's ``RepetitionTime`` comes first (it is the
    authority in BIDS datasets such as fMRIPrep's outputs), then the header:
    a NIfTI's fourth zoom when the header states its time unit, a CIFTI-2
    series' step. GIFTI series say nothing of their timing.
    """
    sidecar = sidecar_path(bold_path)
    if sidecar.exists():
        try:
            t_r = json.loads(sidecar.read_text()).get("RepetitionTime")
        except (OSError, ValueError, RecursionError, AttributeError) as exc:
            # ValueError: JSONDecodeError, UnicodeDecodeError; RecursionError: too deep.
            raise InputError(sidecar, f"not a readable JSON sidecar ({exc})") from exc
        if t_r is not None:
            # JSON as Python reads it allows NaN and Infinity (and 1e400 is inf).
            if not isinstance(t_r, (int, float)) or isinstance(t_r, bool) \
                    or not np.isfinite(t_r) or t_r <= 0:
                raise InputError(sidecar, f"RepetitionTime must be a positive number, got {t_r!r}")
            return float(t_r)
    if is_gifti(bold_path):
        return None
    if bold_img is not None:
        img = bold_img
    else:
        img = cifti.load_cifti(bold_path) if is_cifti(bold_path) \
            else nifti.load_bold(bold_path)
    if isinstance(img, nb.cifti2.Cifti2Image):
        try:
            axis = img.header.get_axis(0)
        except Exception as exc:  # an inconsistent CIFTI-2 matrix
            raise InputError(bold_path, f"its CIFTI-2 header cannot be read ({exc})") from exc
        if not isinstance(axis, nb.cifti2.SeriesAxis):
            return None  # maps, not a series: no timing
        unit = getattr(axis, "unit", "SECOND")
        return float(axis.step) if unit == "SECOND" and np.isfinite(axis.step) \
            and axis.step > 0 else None
    return nifti.header_repetition_time(img)


class SeriesData(NamedTuple):
    """A series read: its values at its points, where they are, and its temporal mean."""

    X: np.ndarray  #: (n_points, n_volumes)
    geometry: Geometry  #: its points, on the series' own grid (its header)
    mean_img: object  #: the temporal mean: a 3D NIfTI, or a CIFTI-2 map of the points
    header_img: object  #: the header its timing is read from (None for GIFTI)


def read_series(series, *, mask=None, mask_path=None, compute_mask=None, before_reading=None,
                spill_dir=None, threads: int | None = None) -> SeriesData:
    """Read a series (one path, or a GIFTI pair) once: its values at its points and their mean.

    A volume's points are the voxels of ``mask`` (or of the mask file
    ``mask_path``, read here when ``mask`` is not given) or of
    ``compute_mask(mean_img)``, read in one pass
    (:func:`nipype_ward.io.nifti.read_series`); surface data's are every
    grayordinate (no mask is taken). ``before_reading(img, n_volumes)`` is
    called with the header before the data are read (for a GIFTI pair, once
    both are read). ``threads`` CPUs may decompress a large ``.nii.gz`` (all
    usable when None). Errors name the file.
    """
    sources = sources_of(series)
    first = sources[0]
    if not is_surface(first):
        if mask is None and mask_path is not None:
            mask = load_geometry(mask_path).mask
        X, mask, mean_img, img = nifti.read_series(
            first, mask=mask, mask_path=mask_path, compute_mask=compute_mask,
            before_reading=None if before_reading is None
            else lambda img: before_reading(img, img.shape[3]), spill_dir=spill_dir,
            threads=threads)
        return SeriesData(X, VolumeGeometry(mask, img), mean_img, img)
    if mask_path is not None:
        raise InputError(mask_path, "surface data need no brain mask: its vertices with "
                         "data are the grayordinates")
    if is_cifti(first):
        if len(sources) > 1:
            raise InputError(sources[1], "a CIFTI series holds both hemispheres: give it alone")
        dense = cifti.load_dtseries(first)
        X, models, header_img = dense.X, dense.brain_models, dense.img
    else:
        if len(sources) < 2:
            raise InputError(first, "a GIFTI series is one hemisphere: give the left "
                             "hemisphere's and the right's, the left first")
        pair = gifti.load_hemisphere_series(*sources)
        X, header_img = pair.X, None
        models = cifti.grayordinates_of_gifti(pair.vertices, pair.n_vertices)
    if X.shape[1] < 2:
        raise InputError(first, f"a series needs at least 2 volumes, got {X.shape[1]}")
    X = np.asarray(X, dtype=nifti.series_dtype(X.dtype))
    if before_reading is not None:
        before_reading(header_img, X.shape[1])
    points_img = cifti.points_image(header_img if header_img is not None else models)
    mean_img = cifti.points_image(points_img, X.mean(axis=1), name="mean")
    return SeriesData(X, SurfaceGeometry(np.ones(X.shape[0], dtype=bool), points_img),
                      mean_img, header_img)
