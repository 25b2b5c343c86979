"""GIFTI: meshes (``.surf.gii``), series (``.func.gii``) and labels (``.label.gii``).

Read with nibabel; every error names the file. A pair of hemispheres is one
problem: the series of the left hemisphere's vertices with data, then the
right's (:func:`load_hemisphere_series`), so the tree, cuts and compression
see one matrix, and the labels are split back per hemisphere on writing.
"""

from __future__ import annotations

import gzip
import zlib
from pathlib import Path
from typing import NamedTuple

import nibabel as nb
import numpy as np

from nipype_ward.io.errors import InputError
from nipype_ward.io.files import save_atomically

HEMISPHERES = ("L", "R")
_INTENTS = nb.nifti1.intent_codes


class Mesh(NamedTuple):
    """A triangulated surface."""

    coordinates: np.ndarray  #: (n_vertices, 3), float
    faces: np.ndarray  #: (n_faces, 3), int

    @property
    def n_vertices(self) -> int:
        return int(self.coordinates.shape[0])


class HemisphereSeries(NamedTuple):
    """The series of both hemispheres' vertices with data, as one matrix."""

    X: np.ndarray  #: (n_kept_left + n_kept_right, n_volumes)
    vertices: tuple  #: per hemisphere, the indices of its vertices with data
    n_vertices: tuple  #: per hemisphere, its number of vertices


def load_gifti(path) -> nb.gifti.GiftiImage:
    """A GIFTI file (``.gii`` or gzipped ``.gii.gz``, as nilearn bundles its meshes)."""
    path = Path(path)
    if not path.is_file():
        raise InputError(path, "no such file")
    try:
        if path.name.endswith(".gz"):
            with gzip.open(path, "rb") as stream:
                return nb.gifti.GiftiImage.from_bytes(stream.read())
        return nb.load(path)
    except Exception as exc:
        raise InputError(path, f"not a readable GIFTI file ({exc})") from exc


def load_mesh(path) -> Mesh:
    """The coordinates and triangles of a ``.surf.gii``."""
    img = load_gifti(path)
    points = img.get_arrays_from_intent(_INTENTS["NIFTI_INTENT_POINTSET"])
    triangles = img.get_arrays_from_intent(_INTENTS["NIFTI_INTENT_TRIANGLE"])
    if len(points) != 1 or len(triangles) != 1:
        raise InputError(path, "a surface holds one POINTSET and one TRIANGLE array; "
                         "give a .surf.gii mesh")
    coordinates = np.asarray(points[0].data, dtype=np.float64)
    faces = np.asarray(triangles[0].data)
    if coordinates.ndim != 2 or coordinates.shape[1] != 3 or faces.ndim != 2 \
            or faces.shape[1] != 3:
        raise InputError(path, f"bad mesh shapes {coordinates.shape} and {faces.shape}")
    if faces.shape[0] == 0:
        raise InputError(path, "the surface has no triangle: give a .surf.gii mesh")
    if faces.dtype.kind not in "iu":
        with np.errstate(invalid="ignore"):
            if faces.dtype.kind != "f" or not np.array_equal(faces, np.round(faces)):
                raise InputError(path, f"triangle indices must be integers, got {faces.dtype}")
    if faces.min() < 0 or faces.max() >= coordinates.shape[0]:
        raise InputError(path, "the triangles index vertices the mesh does not have")
    return Mesh(coordinates, faces.astype(np.int64))


def load_series(path) -> np.ndarray:
    """A ``.func.gii`` series as (n_vertices, n_volumes): one data array per volume."""
    img = load_gifti(path)
    arrays = [np.asarray(darray.data) for darray in img.darrays]
    if not arrays:
        raise InputError(path, "the GIFTI file has no data array")
    if len(arrays) == 1 and arrays[0].ndim == 2:  # one (n_vertices, n_volumes) array
        X = arrays[0]
    else:
        if any(array.ndim != 1 or array.shape != arrays[0].shape for array in arrays):
            raise InputError(path, "data arrays of different shapes: not a vertex series")
        X = np.stack(arrays, axis=1)
    if not np.issubdtype(X.dtype, np.number):
        raise InputError(path, f"data of type {X.dtype} is not numeric")
    return X


def data_vertices(X) -> np.ndarray:
    """The vertices with data: finite and not constant over time (the medial wall is not)."""
    finite = np.isfinite(X).all(axis=1)
    varying = np.zeros(X.shape[0], dtype=bool)
    varying[finite] = np.ptp(X[finite], axis=1) > 0
    return np.flatnonzero(varying)


def load_hemisphere_series(left_path, right_path, *, meshes=None) -> HemisphereSeries:
    """Both hemispheres' series, restricted to their vertices with data, as one matrix.

    With ``meshes`` (left and right :class:`Mesh`), each series must have
    as many vertices as its mesh.
    """
    parts, vertices, counts = [], [], []
    n_volumes = None
    for index, path in enumerate((left_path, right_path)):
        X = load_series(path)
        if meshes is not None and X.shape[0] != meshes[index].n_vertices:
            raise InputError(path, f"{X.shape[0]} vertices, but the {HEMISPHERES[index]} mesh "
                             f"has {meshes[index].n_vertices}: give the series' own surfaces")
        if n_volumes is not None and X.shape[1] != n_volumes:
            raise InputError(path, f"{X.shape[1]} volumes, the other hemisphere {n_volumes}")
        n_volumes = X.shape[1]
        kept = data_vertices(X)
        if kept.size == 0:
            raise InputError(path, "no vertex has data (all constant or non-finite)")
        parts.append(X[kept])
        vertices.append(kept)
        counts.append(X.shape[0])
    dtype = np.result_type(*parts)
    dtype = np.float32 if dtype == np.float32 else np.float64
    return HemisphereSeries(np.concatenate(parts).astype(dtype, copy=False), tuple(vertices),
                            tuple(counts))


def label_table(n_labels: int, *, prefix: str = "parcel") -> nb.gifti.GiftiLabelTable:
    """Label 0 ``???`` (no parcel, transparent), then ``<prefix>_<k>`` with distinct colours."""
    import colorsys

    table = nb.gifti.GiftiLabelTable()
    unknown = nb.gifti.GiftiLabel(key=0, red=1.0, green=1.0, blue=1.0, alpha=0.0)
    unknown.label = "???"
    table.labels.append(unknown)
    width = len(str(n_labels))
    for key in range(1, n_labels + 1):
        hue = (key * 0.618033988749895) % 1.0  # golden-ratio hues: neighbours differ
        red, green, blue = colorsys.hsv_to_rgb(hue, 0.65, 0.95)
        label = nb.gifti.GiftiLabel(key=key, red=red, green=green, blue=blue, alpha=1.0)
        label.label = f"{prefix}_{key:0{width}d}"
        table.labels.append(label)
    return table


def save_labels(values, n_labels: int, path, *, hemisphere: str) -> Path:
    """Write a hemisphere's labels (0 = none, 1..n_labels) as a ``.label.gii``."""
    values = np.asarray(values, dtype=np.int32)
    if values.ndim != 1:
        raise ValueError(f"labels must be 1D per hemisphere, got shape {values.shape}")
    structure = {"L": "CortexLeft", "R": "CortexRight"}[hemisphere]
    darray = nb.gifti.GiftiDataArray(values, intent="NIFTI_INTENT_LABEL", datatype="int32",
                                     meta=nb.gifti.GiftiMetaData({"Name": "ward_labels"}))
    img = nb.gifti.GiftiImage(labeltable=label_table(n_labels), darrays=[darray],
                              meta=nb.gifti.GiftiMetaData(
                                  {"AnatomicalStructurePrimary": structure}))

    def write(tmp):
        Path(tmp).write_bytes(img.to_bytes())

    return save_atomically(write, path)


def save_series(X, path, *, hemisphere: str, t_r=None) -> Path:
    """Write a hemisphere's (n_vertices, n_volumes) series as a ``.func.gii``, one array a volume."""
    X = np.asarray(X, dtype=np.float32)
    structure = {"L": "CortexLeft", "R": "CortexRight"}[hemisphere]
    meta = {"AnatomicalStructurePrimary": structure}
    if t_r:
        meta["TimeStep"] = f"{float(t_r) * 1000:g}"  # milliseconds, as Workbench writes it
    img = nb.gifti.GiftiImage(
        darrays=[nb.gifti.GiftiDataArray(X[:, t], intent="NIFTI_INTENT_TIME_SERIES",
                                         datatype="float32") for t in range(X.shape[1])],
        meta=nb.gifti.GiftiMetaData(meta))
    return save_atomically(lambda tmp: Path(tmp).write_bytes(img.to_bytes()), path)


def _data_array_tags(path) -> list[dict]:
    """The attributes of each ``DataArray`` of a GIFTI file, without decoding its data.

    The XML is parsed (expat, as nibabel does, any quoting and spacing of the
    attributes) but the data arrays' text is not decoded; a truncated or
    broken file is an :class:`InputError`.
    """
    from xml.parsers import expat

    path = Path(path)
    if not path.is_file():
        raise InputError(path, "no such file")
    tags = []

    def start(name, attributes):
        if name == "DataArray":
            tags.append(dict(attributes))

    parser = expat.ParserCreate()
    parser.StartElementHandler = start
    try:
        with (gzip.open(path, "rb") if path.name.endswith(".gz") else open(path, "rb")) as stream:
            parser.ParseFile(stream)
    except (OSError, EOFError, zlib.error, expat.ExpatError, ValueError) as exc:
        raise InputError(path, f"not a readable GIFTI file ({exc})") from exc
    return tags


def _shape_of(tag: dict) -> list[int]:
    """nibabel's reading of a DataArray's shape: Dim0 .. Dim<Dimensionality - 1>."""
    n_dims = int(tag.get("Dimensionality", 0))
    return [int(tag[f"Dim{i}"]) for i in range(n_dims) if f"Dim{i}" in tag]


def mesh_shape(path) -> tuple[int, int]:
    """(vertices, triangles) of a ``.surf.gii`` from its XML tags, without decoding its data."""
    found = {}
    try:
        for tag in _data_array_tags(path):
            intent = tag.get("Intent")
            if intent in ("NIFTI_INTENT_POINTSET", "NIFTI_INTENT_TRIANGLE"):
                found.setdefault(intent, []).append(_shape_of(tag))
    except ValueError as exc:  # a Dim that is not a number
        raise InputError(path, f"not a readable GIFTI file ({exc})") from exc
    points, triangles = found.get("NIFTI_INTENT_POINTSET", []), \
        found.get("NIFTI_INTENT_TRIANGLE", [])
    if len(points) != 1 or len(triangles) != 1:
        raise InputError(path, "a surface holds one POINTSET and one TRIANGLE array; "
                         "give a .surf.gii mesh")
    if len(points[0]) != 2 or points[0][1] != 3 or len(triangles[0]) != 2 \
            or triangles[0][1] != 3 or points[0][0] < 0 or triangles[0][0] < 0:
        raise InputError(path, f"bad mesh shapes {tuple(points[0])} and {tuple(triangles[0])}")
    return points[0][0], triangles[0][0]


def series_shape(path) -> tuple[int, int]:
    """(vertices, volumes) of a ``.func.gii`` from its XML tags, without decoding its data.

    A truncated or broken file is an :class:`InputError`.
    """
    try:
        shapes = [_shape_of(tag) for tag in _data_array_tags(path)]
    except ValueError as exc:
        raise InputError(path, f"not a readable GIFTI file ({exc})") from exc
    if not shapes:
        raise InputError(path, "the GIFTI file has no data array")
    if any(n < 0 for shape in shapes for n in shape):
        raise InputError(path, f"negative dimensions {shapes[0]} in its data arrays")
    if len(shapes) == 1 and len(shapes[0]) == 2:
        return shapes[0][0], shapes[0][1]
    return (shapes[0][0] if shapes[0] else 0), len(shapes)
