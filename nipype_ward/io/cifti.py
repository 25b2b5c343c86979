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

The brain models are read from the file's CIFTI-2 map into
:class:`Grayordinates` (what the code needs of nibabel's
``BrainModelAxis``, validated once, in milliseconds), and the headers this
module builds count their sizes from the maps' own fields
(:class:`_Matrix`): nibabel builds a ``BrainModelAxis`` of every
grayordinate each time an image is made, loaded or saved, about 0.2 s for
fsLR's 59k, which every node of a surface run paid several times.
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import nibabel as nb
import numpy as np
from nibabel import cifti2

from nipype_ward._compat import cifti_as_nifti
from nipype_ward.core.connectivity import (
    block_connectivity,
    grid_connectivity,
    mesh_connectivity,
)
from nipype_ward.io.errors import InputError
from nipype_ward.io.files import save_atomically
from nipype_ward.io.headers import check_extensions

_SURFACE = "CIFTI_MODEL_TYPE_SURFACE"
_VOXELS = "CIFTI_MODEL_TYPE_VOXELS"


class Structure(NamedTuple):
    """One brain model of a CIFTI-2 file: a cortex's vertices, or a structure's voxels."""

    name: str  #: its CIFTI name, e.g. ``CIFTI_STRUCTURE_CORTEX_LEFT``
    indices: slice  #: its grayordinates in the file
    vertex: np.ndarray | None  #: surface: its vertices' indices on the mesh
    n_vertices: int | None  #: surface: the mesh's number of vertices
    voxel: np.ndarray | None  #: volume: (n, 3) voxel indices on the CIFTI volume

    @property
    def is_surface(self) -> bool:
        return self.vertex is not None

    @property
    def size(self) -> int:
        return self.indices.stop - self.indices.start


class Grayordinates:
    """The brain models of a CIFTI-2 file, in file order.

    Made from the file's brain-model map (:meth:`from_mapping`, which
    validates it) and keeping it, so that files written from these
    grayordinates carry the same map. Two are equal when they hold the same
    structures, vertices and voxels in the same order, on the same volume.
    """

    def __init__(self, structures, *, volume_shape=None, affine=None, mapping=None):
        self.structures = tuple(structures)
        self.volume_shape = None if volume_shape is None else tuple(int(n) for n in volume_shape)
        self.affine = None if affine is None else np.asarray(affine, dtype=np.float64)
        self._mapping = mapping

    def __len__(self) -> int:
        return self.structures[-1].indices.stop if self.structures else 0

    def __repr__(self) -> str:
        return f"Grayordinates({', '.join(f'{s.name}: {s.size}' for s in self.structures)})"

    @property
    def nvertices(self) -> dict:
        """Each surface structure's mesh size (as nibabel's ``BrainModelAxis.nvertices``)."""
        return {s.name: s.n_vertices for s in self.structures if s.is_surface}

    def __eq__(self, other) -> bool:
        if not isinstance(other, Grayordinates):
            return NotImplemented
        if len(self.structures) != len(other.structures) or \
                self.volume_shape != other.volume_shape:
            return False
        if (self.affine is None) != (other.affine is None) or (
                self.affine is not None and not np.allclose(self.affine, other.affine)):
            return False
        for mine, theirs in zip(self.structures, other.structures):
            if mine.name != theirs.name or mine.indices != theirs.indices or \
                    mine.n_vertices != theirs.n_vertices:
                return False
            for field in ("vertex", "voxel"):
                a, b = getattr(mine, field), getattr(theirs, field)
                if (a is None) != (b is None) or (a is not None and not np.array_equal(a, b)):
                    return False
        return True

    @classmethod
    def from_mapping(cls, mapping) -> Grayordinates:
        """From a CIFTI-2 brain-model map (``Cifti2MatrixIndicesMap``); ValueError if invalid."""
        if mapping.indices_map_to_data_type != "CIFTI_INDEX_TYPE_BRAIN_MODELS":
            raise ValueError(f"not a map of brain models ({mapping.indices_map_to_data_type})")
        found, offset, volume_shape, affine = [], 0, None, None
        for model in mapping.brain_models:
            name = cifti2.BrainModelAxis.to_cifti_brain_structure_name(model.brain_structure)
            count = int(model.index_count)
            if int(model.index_offset) != offset or count <= 0:
                raise ValueError(f"brain model {name} starts at grayordinate "
                                 f"{model.index_offset} with {count}, after {offset} "
                                 "grayordinates: its map is corrupt")
            indices = slice(offset, offset + count)
            if model.model_type == _SURFACE:
                vertex = np.asarray(model.vertex_indices[:] if model.vertex_indices is not None
                                    else [], dtype=np.int64)
                n_vertices = model.surface_number_of_vertices
                if n_vertices is None or vertex.shape != (count,) or (
                        count and (vertex.min() < 0 or vertex.max() >= int(n_vertices))) \
                        or len(np.unique(vertex)) != count:
                    raise ValueError(f"brain model {name}: {count} grayordinates but "
                                     f"{vertex.size} vertex indices, or indices outside its "
                                     f"{n_vertices} vertices or repeated: its map is corrupt")
                found.append(Structure(name, indices, vertex, int(n_vertices), None))
            elif model.model_type == _VOXELS:
                if mapping.volume is None:
                    raise ValueError(f"brain model {name} has voxels but the map no volume")
                volume_shape = tuple(int(n) for n in mapping.volume.volume_dimensions)
                affine = mapping.volume.transformation_matrix_voxel_indices_ijk_to_xyz.matrix
                voxel = np.asarray(list(model.voxel_indices_ijk or ()), dtype=np.int64)
                voxel = voxel.reshape(-1, 3) if voxel.size else np.zeros((0, 3), np.int64)
                if voxel.shape != (count, 3) or (voxel < 0).any() or \
                        (voxel >= np.asarray(volume_shape)).any():
                    raise ValueError(f"brain model {name}: {count} grayordinates but "
                                     f"{len(voxel)} voxels, or voxels outside its volume "
                                     f"{volume_shape}: its map is corrupt")
                found.append(Structure(name, indices, None, None, voxel))
            else:
                raise ValueError(f"brain model {name} has an unknown type {model.model_type}")
            offset += count
        if not found:
            raise ValueError("the map holds no brain model")
        return cls(found, volume_shape=volume_shape, affine=affine, mapping=mapping)

    @classmethod
    def from_axis(cls, axis: cifti2.BrainModelAxis) -> Grayordinates:
        return cls.from_mapping(axis.to_mapping(1))

    @property
    def mapping(self):
        """The CIFTI-2 map of these grayordinates, as a file's second dimension.

        The file's own map when read from one, else built once.
        """
        if self._mapping is None:
            self._mapping = self._build_mapping()
        return self._mapping

    def _build_mapping(self):
        mapping = cifti2.Cifti2MatrixIndicesMap([1], "CIFTI_INDEX_TYPE_BRAIN_MODELS")
        for s in self.structures:
            if not s.is_surface and mapping.volume is None:
                mapping.volume = cifti2.Cifti2Volume(
                    self.volume_shape,
                    cifti2.Cifti2TransformationMatrixVoxelIndicesIJKtoXYZ(-3, self.affine))
            mapping.append(cifti2.Cifti2BrainModel(
                s.indices.start, s.size, _SURFACE if s.is_surface else _VOXELS, s.name,
                s.n_vertices, None if s.is_surface else cifti2.Cifti2VoxelIndicesIJK(s.voxel),
                cifti2.Cifti2VertexIndices(s.vertex) if s.is_surface else None))
        return mapping


def as_grayordinates(brain_models) -> Grayordinates:
    """Grayordinates from themselves, a nibabel ``BrainModelAxis`` or a CIFTI-2 image."""
    if isinstance(brain_models, Grayordinates):
        return brain_models
    if isinstance(brain_models, cifti2.BrainModelAxis):
        return Grayordinates.from_axis(brain_models)
    if isinstance(brain_models, cifti2.Cifti2Image):
        return brain_models_of(brain_models)
    raise TypeError(f"not grayordinates: {type(brain_models).__name__}")


class _Matrix(cifti2.Cifti2Matrix):
    """nibabel's CIFTI-2 matrix, its data shape counted from its maps' fields.

    nibabel's ``get_data_shape`` builds the axis of every map to take its
    length, on every image made, loaded or saved; the lengths are in the
    maps themselves.
    """

    def get_data_shape(self):
        if len(self.mapped_indices) == 0:
            return ()
        shape = [None] * (max(self.mapped_indices) + 1)
        for mapping in self:
            size = _map_size(mapping)
            for dimension in mapping.applies_to_matrix_dimension:
                shape[dimension] = size
        return tuple(shape)


def _map_size(mapping) -> int:
    kind = mapping.indices_map_to_data_type
    if kind == "CIFTI_INDEX_TYPE_BRAIN_MODELS":
        return sum(int(model.index_count) for model in mapping.brain_models)
    if kind == "CIFTI_INDEX_TYPE_SERIES":
        return int(mapping.number_of_series_points)
    if kind in ("CIFTI_INDEX_TYPE_SCALARS", "CIFTI_INDEX_TYPE_LABELS"):
        return len(list(mapping.named_maps))
    if kind == "CIFTI_INDEX_TYPE_PARCELS":
        return len(list(mapping.parcels))
    from nibabel.cifti2 import cifti2_axes

    return len(cifti2_axes.from_index_mapping(mapping))


class _Header(cifti2.Cifti2Header):
    """nibabel's CIFTI-2 header, copied without copying its maps.

    nibabel deep-copies the header into every image it makes (0.1 s for
    fsLR's 59k vertex indices); the maps of the images made here are never
    modified, so an image may share them with the file they came from.
    """

    def copy(self):
        return type(self)(self.matrix, self.version)


class _Image(cifti2.Cifti2Image):
    """nibabel's CIFTI-2 image, with :class:`_Header`."""

    header_class = _Header


def _header(*mappings, version: str = "2.0") -> _Header:
    """A CIFTI-2 header of these maps (whose sizes are read from the maps)."""
    matrix = _Matrix()
    for mapping in mappings:
        matrix.append(mapping)
    return _Header(matrix, version)


class DenseSeries(NamedTuple):
    """A dense CIFTI series: grayordinates x volumes, with its axes."""

    X: np.ndarray  #: (n_grayordinates, n_volumes)
    brain_models: Grayordinates
    series: cifti2.SeriesAxis
    img: cifti2.Cifti2Image  #: the file's image (its header)


def load_dtseries(path) -> DenseSeries:
    """A ``.dtseries.nii`` as (grayordinates, volumes), with its brain models."""
    img = load_cifti(path)
    brain_models = brain_models_of(img)
    try:
        series = img.header.get_axis(0)
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


def structures(brain_models) -> list:
    """``(name, slice, structure)`` of each structure, in file order.

    ``brain_models``: :class:`Grayordinates`, a ``BrainModelAxis`` or a
    CIFTI-2 image of grayordinates.
    """
    return [(s.name, s.indices, s) for s in as_grayordinates(brain_models).structures]


def grayordinate_connectivity(brain_models, faces: dict):
    """The graph of a file's grayordinates (see the module), block-diagonal by structure.

    Parameters
    ----------
    brain_models : Grayordinates or BrainModelAxis
    faces : dict
        For each surface structure (``CIFTI_STRUCTURE_CORTEX_LEFT``, ...),
        the triangles of its mesh, whose vertex count must be the one the
        file gives for it (e.g. 32492 for fsLR 32k).
    """
    brain_models = as_grayordinates(brain_models)
    blocks = []
    for name, part, model in structures(brain_models):
        if not model.is_surface:
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
            n_vertices = model.n_vertices
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
    img = _Image(values[None, :].astype(np.int32), header=header)
    img.nifti_header.set_intent("NIFTI_INTENT_CONNECTIVITY_DENSE_LABELS")
    return save_atomically(lambda tmp: nb.save(img, str(tmp)), path)


def save_ptseries(means, values, brain_models, series: cifti2.SeriesAxis, path, *,
                  prefix: str = "parcel") -> Path:
    """Write parcel series (K, volumes) as a ``.ptseries.nii`` whose parcels are the labels.

    ``values`` gives each grayordinate its label (0: none); the parcels,
    in label order, list their vertices per cortex and their voxels, as
    nibabel's ``ParcelsAxis.from_brain_models`` makes them (built here from
    the map's fields: nibabel's way cuts one ``BrainModelAxis`` per parcel,
    about a millisecond each).
    """
    models = as_grayordinates(brain_models)
    values = np.asarray(values)
    keys = np.unique(values[values > 0])
    width = len(str(int(keys.max())))
    mapping = cifti2.Cifti2MatrixIndicesMap([1], "CIFTI_INDEX_TYPE_PARCELS")
    surfaces = [s for s in models.structures if s.is_surface]
    volumes = [s for s in models.structures if not s.is_surface]
    if volumes:
        mapping.volume = cifti2.Cifti2Volume(
            models.volume_shape,
            cifti2.Cifti2TransformationMatrixVoxelIndicesIJKtoXYZ(-3, models.affine))
    for s in surfaces:
        mapping.append(cifti2.Cifti2Surface(s.name, s.n_vertices))
    # Each structure's grayordinates sorted by label, cut where the label changes.
    members = {}
    for s in models.structures:
        labels = values[s.indices]
        order = np.argsort(labels, kind="stable")
        found, starts = np.unique(labels[order], return_index=True)
        for key, piece in zip(found, np.split(order, starts[1:])):
            if key > 0:
                members.setdefault(int(key), []).append((s, piece))
    for key in keys:
        voxels, vertices = [], []
        for s, piece in members[int(key)]:
            if s.is_surface:
                vertices.append(cifti2.Cifti2Vertices(s.name, s.vertex[piece]))
            else:
                voxels.append(s.voxel[piece])
        mapping.append(cifti2.Cifti2Parcel(
            f"{prefix}_{int(key):0{width}d}",
            cifti2.Cifti2VoxelIndicesIJK(np.concatenate(voxels)) if voxels else None,
            vertices))
    img = _Image(np.asarray(means, dtype=np.float32).T,
                 header=_header(series.to_mapping(0), mapping))
    img.nifti_header.set_intent("NIFTI_INTENT_CONNECTIVITY_PARCELLATED_SERIES")
    return save_atomically(lambda tmp: nb.save(img, str(tmp)), path)


#: File names CIFTI-2 files end with.
CIFTI_SUFFIXES = (".dtseries.nii", ".dscalar.nii", ".dlabel.nii", ".ptseries.nii")


def is_cifti(path) -> bool:
    """Whether a file name is a CIFTI-2 one (by its double extension)."""
    return str(path).endswith(CIFTI_SUFFIXES)


def load_cifti(path) -> cifti2.Cifti2Image:
    """Any CIFTI-2 file whose second axis is brain models; errors name the file."""
    path = Path(path)
    if not path.is_file():
        raise InputError(path, "no such file")
    check_extensions(path)  # the CIFTI-2 XML is a NIfTI-2 header extension
    try:
        img = _read(path)
    except Exception as exc:
        raise InputError(path, f"not a readable CIFTI-2 file ({exc})") from exc
    try:
        grayordinates = len(img.shape) == 2 and \
            img.header.matrix.get_index_map(1).indices_map_to_data_type \
            == "CIFTI_INDEX_TYPE_BRAIN_MODELS"
        declared = _declared_shape(img) if grayordinates else None
        if grayordinates:
            Grayordinates.from_mapping(img.header.matrix.get_index_map(1))
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


def _read(path) -> cifti2.Cifti2Image:
    """nibabel's reading of a CIFTI-2 file (``Cifti2Image.from_file_map``), with our matrix.

    The NIfTI-2 part and the XML are read and parsed by nibabel; only the
    image is made with :class:`_Header` and :class:`_Matrix`, so that
    making it neither copies nor builds the axes.
    """
    from nibabel.arrayproxy import reshape_dataobj
    from nibabel.cifti2.parse_cifti2 import Cifti2Extension

    is_cifti, _ = cifti2.Cifti2Image.path_maybe_image(str(path))  # nibabel.load's sniffing
    if not is_cifti:
        raise ValueError("not a NIfTI-2 file")
    nifti = cifti_as_nifti(path)
    for extension in nifti.header.extensions:
        if isinstance(extension, Cifti2Extension):
            parsed = extension.get_content()
            break
    else:
        raise ValueError("NIfTI2 header does not contain a CIFTI-2 extension")
    header = _header(*parsed.matrix, version=parsed.version)
    header.matrix.metadata = parsed.matrix.metadata
    dataobj = nifti.dataobj
    return _Image(reshape_dataobj(dataobj, dataobj.shape[4:]), header=header,
                  nifti_header=nifti.header, file_map=nifti.file_map)


def _declared_shape(img) -> tuple[int | None, int]:
    """(maps, grayordinates) a CIFTI-2 header describes, from its index maps.

    None maps for a first dimension other than series, scalars and labels.
    """
    matrix = img.header.matrix
    first = matrix.get_index_map(0)
    rows = _map_size(first) if first.indices_map_to_data_type in (
        "CIFTI_INDEX_TYPE_SERIES", "CIFTI_INDEX_TYPE_SCALARS", "CIFTI_INDEX_TYPE_LABELS") \
        else None
    return rows, _map_size(matrix.get_index_map(1))


def brain_models_of(img) -> Grayordinates:
    """The grayordinates of a CIFTI-2 image (its second dimension)."""
    return Grayordinates.from_mapping(img.header.matrix.get_index_map(1))


def _with_brain_models(axis, brain_models) -> tuple[cifti2.Cifti2Header, int]:
    """A header of ``axis`` (first dimension) and ``brain_models``; its grayordinates.

    ``brain_models`` is :class:`Grayordinates`, a ``BrainModelAxis`` or a
    CIFTI-2 image of grayordinates, whose brain-model map is then reused as
    it is: nibabel takes ~0.4 s to turn the 58k grayordinates of fsLR into
    an axis and back into a map, and every surface node writes a file like
    the one it read.
    """
    if isinstance(brain_models, cifti2.Cifti2Image):
        mapping = brain_models.header.matrix.get_index_map(1)
    else:
        mapping = as_grayordinates(brain_models).mapping
    return _header(axis.to_mapping(0), mapping), _map_size(mapping)


def save_points(brain_models, path, values=None, *, name: str = "mask") -> Path:
    """One value per grayordinate as a ``.dscalar.nii`` (ones by default: the data's points).

    The surface counterpart of a volume's mask and mean images: the file the
    tree, cuts and compression read the grayordinates from. ``brain_models``
    as :func:`save_dlabel`'s.
    """
    img = points_image(brain_models, values, name=name)
    img.nifti_header.set_intent("NIFTI_INTENT_CONNECTIVITY_DENSE_SCALARS")
    return save_atomically(lambda tmp: nb.save(img, str(tmp)), path)


def grayordinates_of_gifti(vertices, n_vertices) -> Grayordinates:
    """The brain models of a GIFTI pair: each cortex's vertices with data."""
    found, offset = [], 0
    for name, kept, count in zip(CORTEX.values(), vertices, n_vertices):
        kept = np.unique(np.asarray(kept, dtype=np.int64))
        found.append(Structure(name, slice(offset, offset + len(kept)), kept, int(count), None))
        offset += len(kept)
    return Grayordinates(found)


def points_image(brain_models, values=None, *, name: str = "mask"):
    """The in-memory ``.dscalar.nii`` of :func:`save_points`."""
    header, n_grayordinates = _with_brain_models(cifti2.ScalarAxis([name]), brain_models)
    values = np.ones(n_grayordinates, np.float32) if values is None \
        else np.asarray(values, dtype=np.float32)
    return _Image(values[None, :], header=header)


def save_dtseries(values, brain_models, path, *, t_r=None) -> Path:
    """Write (grayordinates, volumes) values as a ``.dtseries.nii`` (step ``t_r`` seconds).

    ``brain_models`` as :func:`save_dlabel`'s.
    """
    values = np.asarray(values, dtype=np.float32)
    series = cifti2.SeriesAxis(start=0.0, step=float(t_r or 1.0), size=values.shape[1],
                               unit="SECOND")
    header, _ = _with_brain_models(series, brain_models)
    img = _Image(values.T, header=header)
    img.nifti_header.set_intent("NIFTI_INTENT_CONNECTIVITY_DENSE_SERIES")
    return save_atomically(lambda tmp: nb.save(img, str(tmp)), path)


#: The CIFTI structures of the cortices, by hemisphere.
CORTEX = {"L": "CIFTI_STRUCTURE_CORTEX_LEFT", "R": "CIFTI_STRUCTURE_CORTEX_RIGHT"}


def hemisphere_values(values, brain_models, *, fill=0) -> dict:
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
                full = np.full((model.n_vertices,) + values.shape[1:], fill,
                               dtype=values.dtype)
                full[model.vertex] = values[part]
                found[hemi] = full
    return found


def structure_of_grayordinates(brain_models) -> np.ndarray:
    """The short structure name of each grayordinate (``CORTEX_LEFT``, ``THALAMUS_RIGHT``...)."""
    brain_models = as_grayordinates(brain_models)
    names = np.empty(len(brain_models), dtype=object)
    for name, part, _ in structures(brain_models):
        names[part] = name.replace("CIFTI_STRUCTURE_", "")
    return names
