"""CIFTI-2: dense series (``.dtseries.nii``) in, dense labels (``.dlabel.nii``) and
parcel series (``.ptseries.nii``) out, through nibabel's ``cifti2`` axes.

A grayordinate file holds brain models: cortical surfaces (vertex indices
on a mesh, e.g. fsLR 32k without the medial wall) and volume structures
(voxel indices on the CIFTI volume, e.g. the subcortical structures of
fMRIPrep's and XCP-D's ``den-91k``). :func:`grayordinate_connectivity`
builds their graph: each surface structure's mesh adjacency over the
vertices it holds, each volume structure's 6-neighbour grid adjacency over
its voxels, and no edge between two structures (hemispheres, surface and
volume, nor two subcortical structures: a parcel never spans the thalamus
and the caudate).
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import nibabel as nb
import numpy as np
from nibabel import cifti2

from nipype_ward.connectivity import block_connectivity, grid_connectivity, mesh_connectivity
from nipype_ward.fileio import InputError, save_atomically


class DenseSeries(NamedTuple):
    """A dense CIFTI series: grayordinates x volumes, with its axes."""

    X: np.ndarray  #: (n_grayordinates, n_volumes)
    brain_models: cifti2.BrainModelAxis
    series: cifti2.SeriesAxis
    img: cifti2.Cifti2Image  #: the file's image (its header)


def load_dtseries(path) -> DenseSeries:
    """A ``.dtseries.nii`` as (grayordinates, volumes), with its brain models."""
    img = load_cifti(path)
    try:
        series, brain_models = (img.header.get_axis(i) for i in range(2))
    except Exception as exc:  # nibabel: ValueError, KeyError... on inconsistent maps
        raise InputError(path, f"its CIFTI-2 header cannot be read ({exc})") from exc
    if not isinstance(series, cifti2.SeriesAxis):
        raise InputError(path, f"a dense series has a series axis (got {type(series).__name__}):"
                         " give a .dtseries.nii")
    try:
        X = np.asanyarray(img.dataobj).T
    except Exception as exc:  # truncated or corrupt data
        raise InputError(path, f"data cannot be read, the file may be truncated or corrupt "
                         f"({exc}): copy or download it again") from exc
    if not np.isfinite(X).all():
        raise InputError(path, f"{int((~np.isfinite(X)).any(axis=1).sum())} grayordinates "
                         "hold NaN or infinite values")
    return DenseSeries(X, brain_models, series, img)


def structures(brain_models: cifti2.BrainModelAxis):
    """``(name, slice, model)`` of each structure, in file order."""
    return list(brain_models.iter_structures())


def grayordinate_connectivity(brain_models: cifti2.BrainModelAxis, faces: dict):
    """The graph of a file's grayordinates (see the module), block-diagonal by structure.

    Parameters
    ----------
    brain_models : BrainModelAxis
    faces : dict
        For each surface structure (``CIFTI_STRUCTURE_CORTEX_LEFT``, ...),
        the triangles of its mesh, whose vertex count must be the one the
        file gives for it (e.g. 32492 for fsLR 32k).
    """
    blocks = []
    for name, part, model in structures(brain_models):
        if model.volume_mask.all():  # a volume structure
            ijk = model.voxel
            mask = np.zeros(brain_models.volume_shape, dtype=bool)
            mask[tuple(ijk.T)] = True
            grid = grid_connectivity(mask)
            # grid_connectivity numbers voxels in C order; the file has its own order.
            order = np.ravel_multi_index(tuple(ijk.T), brain_models.volume_shape)
            rank = np.argsort(np.argsort(order))
            blocks.append(grid[rank][:, rank])
        else:
            if name not in faces:
                raise ValueError(f"no mesh given for the surface structure {name}")
            n_vertices = int(brain_models.nvertices[name])
            if np.asarray(faces[name]).max() >= n_vertices:
                raise ValueError(f"the mesh of {name} has more vertices than the file's "
                                 f"{n_vertices}")
            blocks.append(mesh_connectivity(faces[name], n_vertices, vertices=model.vertex))
    return block_connectivity(blocks)


def _label_dict(n_labels: int, prefix: str) -> dict:
    import colorsys

    width = len(str(n_labels))
    labels = {0: ("???", (1.0, 1.0, 1.0, 0.0))}
    for key in range(1, n_labels + 1):
        red, green, blue = colorsys.hsv_to_rgb((key * 0.618033988749895) % 1.0, 0.65, 0.95)
        labels[key] = (f"{prefix}_{key:0{width}d}", (red, green, blue, 1.0))
    return labels


def save_dlabel(values, brain_models, path, *, name: str = "ward",
                prefix: str = "parcel") -> Path:
    """Write labels 1..K of every grayordinate as a ``.dlabel.nii`` (one map, label table).

    ``brain_models``: a ``BrainModelAxis``, or a CIFTI-2 image of the same
    grayordinates (its map is reused).
    """
    values = np.asarray(values, dtype=np.int32)
    labels = cifti2.LabelAxis([name], [_label_dict(int(values.max()), prefix)])
    header, n_grayordinates = _with_brain_models(labels, brain_models)
    if values.shape != (n_grayordinates,):
        raise ValueError(f"one label per grayordinate ({n_grayordinates}), got {values.shape}")
    img = cifti2.Cifti2Image(values[None, :].astype(np.int32), header=header)
    img.nifti_header.set_intent("NIFTI_INTENT_CONNECTIVITY_DENSE_LABELS")
    return save_atomically(lambda tmp: nb.save(img, str(tmp)), path)


def save_ptseries(means, values, brain_models: cifti2.BrainModelAxis,
                  series: cifti2.SeriesAxis, path, *, prefix: str = "parcel") -> Path:
    """Write parcel series (K, volumes) as a ``.ptseries.nii`` whose parcels are the labels."""
    values = np.asarray(values)
    keys = np.unique(values[values > 0])
    width = len(str(int(keys.max())))
    parcels = cifti2.ParcelsAxis.from_brain_models(
        [(f"{prefix}_{int(key):0{width}d}", brain_models[values == key]) for key in keys]
    )
    img = cifti2.Cifti2Image(np.asarray(means, dtype=np.float32).T,
                             header=cifti2.Cifti2Header.from_axes((series, parcels)))
    img.nifti_header.set_intent("NIFTI_INTENT_CONNECTIVITY_PARCELLATED_SERIES")
    return save_atomically(lambda tmp: nb.save(img, str(tmp)), path)



#: File names CIFTI-2 files end with.
CIFTI_SUFFIXES = (".dtseries.nii", ".dscalar.nii", ".dlabel.nii", ".ptseries.nii")


def is_cifti(path) -> bool:
    """Whether a file name is a CIFTI-2 one (by its double extension)."""
    return str(path).endswith(CIFTI_SUFFIXES)


def load_cifti(path) -> cifti2.Cifti2Image:
    """Any CIFTI-2 file whose second axis is brain models; errors name the file."""
    from nipype_ward.image import _check_extensions

    path = Path(path)
    if not path.is_file():
        raise InputError(path, "no such file")
    _check_extensions(path)  # the CIFTI-2 XML is a NIfTI-2 header extension
    try:
        img = nb.load(path)
    except Exception as exc:
        raise InputError(path, f"not a readable CIFTI-2 file ({exc})") from exc
    try:
        grayordinates = isinstance(img, cifti2.Cifti2Image) and len(img.shape) == 2 and \
            img.header.matrix.get_index_map(1).indices_map_to_data_type \
            == "CIFTI_INDEX_TYPE_BRAIN_MODELS"
        declared = _declared_shape(img) if grayordinates else None
    except Exception as exc:  # a broken CIFTI-2 matrix: nibabel's KeyError, ValueError...
        raise InputError(path, f"its CIFTI-2 header cannot be read ({exc})") from exc
    if not grayordinates:
        raise InputError(path, "not a CIFTI-2 file of grayordinates (brain models)")
    rows, columns = declared
    if img.shape[1] != columns or (rows is not None and img.shape[0] != rows):
        raise InputError(path, f"its data are {img.shape[0]} x {img.shape[1]} (maps x "
                         f"grayordinates) but its CIFTI-2 header describes {rows} x {columns}: "
                         "the file is corrupt")
    proxy = img.dataobj
    n_bytes = int(np.prod(proxy.shape, dtype=object)) * np.dtype(proxy.dtype).itemsize
    if getattr(proxy, "offset", None) is not None and \
            int(proxy.offset) + n_bytes > path.stat().st_size:
        raise InputError(path, f"file is truncated: its header declares {n_bytes} bytes of data "
                         f"from byte {int(proxy.offset)}, but the file has "
                         f"{path.stat().st_size} bytes; copy or download it again")
    return img


def _declared_shape(img) -> tuple[int | None, int]:
    """(maps, grayordinates) a CIFTI-2 header describes, from its index maps.

    Counted from the maps' fields rather than through nibabel's axes (which
    would build the brain-model axis again); None maps for a first
    dimension other than series, scalars and labels.
    """
    matrix = img.header.matrix
    first = matrix.get_index_map(0)
    kind = first.indices_map_to_data_type
    if kind == "CIFTI_INDEX_TYPE_SERIES":
        rows = int(first.number_of_series_points)
    elif kind in ("CIFTI_INDEX_TYPE_SCALARS", "CIFTI_INDEX_TYPE_LABELS"):
        rows = len(list(first.named_maps))
    else:
        rows = None
    columns = sum(int(model.index_count) for model in matrix.get_index_map(1).brain_models)
    return rows, columns


def brain_models_of(img) -> cifti2.BrainModelAxis:
    return img.header.get_axis(1)


def _with_brain_models(axis, brain_models) -> tuple[cifti2.Cifti2Header, int]:
    """A header of ``axis`` (first dimension) and ``brain_models``; its grayordinates.

    ``brain_models`` is a ``BrainModelAxis`` or a CIFTI-2 image of
    grayordinates whose brain-model map is then reused as it is: nibabel
    takes ~0.4 s to turn the 58k grayordinates of fsLR into an axis and back
    into a map, and every surface node writes a file like the one it read.
    """
    if isinstance(brain_models, cifti2.Cifti2Image):
        mapping = brain_models.header.matrix.get_index_map(1)
        n_grayordinates = int(brain_models.shape[1])
    else:
        mapping, n_grayordinates = brain_models.to_mapping(1), len(brain_models)
    matrix = cifti2.Cifti2Matrix()
    matrix.append(axis.to_mapping(0))
    matrix.append(mapping)
    return cifti2.Cifti2Header(matrix), n_grayordinates


def save_points(brain_models, path, values=None, *, name: str = "mask") -> Path:
    """One value per grayordinate as a ``.dscalar.nii`` (ones by default: the data's points).

    The surface counterpart of a volume's mask and mean images: the file the
    tree, cuts and compression read the grayordinates from. ``brain_models``
    as :func:`save_dlabel`'s.
    """
    img = points_image(brain_models, values, name=name)
    img.nifti_header.set_intent("NIFTI_INTENT_CONNECTIVITY_DENSE_SCALARS")
    return save_atomically(lambda tmp: nb.save(img, str(tmp)), path)


def grayordinates_of_gifti(vertices, n_vertices) -> cifti2.BrainModelAxis:
    """The brain models of a GIFTI pair: each cortex's vertices with data."""
    models = None
    for structure, kept, count in zip(("CortexLeft", "CortexRight"), vertices, n_vertices):
        mask = np.zeros(count, dtype=bool)
        mask[kept] = True
        model = cifti2.BrainModelAxis.from_mask(mask, name=structure)
        models = model if models is None else models + model
    return models


def points_image(brain_models, values=None, *, name: str = "mask"):
    """The in-memory ``.dscalar.nii`` of :func:`save_points`."""
    header, n_grayordinates = _with_brain_models(cifti2.ScalarAxis([name]), brain_models)
    values = np.ones(n_grayordinates, np.float32) if values is None \
        else np.asarray(values, dtype=np.float32)
    return cifti2.Cifti2Image(values[None, :], header=header)


def save_dtseries(values, brain_models, path, *, t_r=None) -> Path:
    """Write (grayordinates, volumes) values as a ``.dtseries.nii`` (step ``t_r`` seconds).

    ``brain_models`` as :func:`save_dlabel`'s.
    """
    values = np.asarray(values, dtype=np.float32)
    series = cifti2.SeriesAxis(start=0.0, step=float(t_r or 1.0), size=values.shape[1],
                               unit="SECOND")
    header, _ = _with_brain_models(series, brain_models)
    img = cifti2.Cifti2Image(values.T, header=header)
    img.nifti_header.set_intent("NIFTI_INTENT_CONNECTIVITY_DENSE_SERIES")
    return save_atomically(lambda tmp: nb.save(img, str(tmp)), path)


#: The CIFTI structures of the cortices, by hemisphere.
CORTEX = {"L": "CIFTI_STRUCTURE_CORTEX_LEFT", "R": "CIFTI_STRUCTURE_CORTEX_RIGHT"}


def hemisphere_values(values, brain_models: cifti2.BrainModelAxis, *, fill=0) -> dict:
    """Each cortex's values on its whole mesh (``fill`` where the file has no vertex).

    ``values`` has one row per grayordinate (and any columns). Returns
    ``{"L": array, "R": array}`` for the cortices the file holds, each of
    the mesh's number of vertices; volume structures are left out.
    """
    values = np.asarray(values)
    found = {}
    for name, part, model in structures(brain_models):
        for hemi, cortex in CORTEX.items():
            if name == cortex:
                full = np.full((int(brain_models.nvertices[name]),) + values.shape[1:], fill,
                               dtype=values.dtype)
                full[model.vertex] = values[part]
                found[hemi] = full
    return found


def structure_of_grayordinates(brain_models: cifti2.BrainModelAxis) -> np.ndarray:
    """The short structure name of each grayordinate (``CORTEX_LEFT``, ``THALAMUS_RIGHT``...)."""
    names = np.empty(len(brain_models), dtype=object)
    for name, part, _ in structures(brain_models):
        names[part] = name.replace("CIFTI_STRUCTURE_", "")
    return names
