"""Lateral and medial views of a cortical mesh, drawn by a z-buffer in NumPy.

nilearn's ``plot_surf`` draws with matplotlib's mplot3d, which sorts and
strokes every triangle as a polygon: about 2 s for a view of an fsLR 32k
cortex, and importing ``nilearn.plotting`` costs 2 s more in each process.
A lateral or medial view looks along the x axis from afar, so a view is an
orthographic projection onto the y-z plane: each pixel shows the nearest
triangle covering its centre (a z-buffer), and in it the value of the nearest
vertex (labels) or the linear interpolation of its vertices' values (maps).
The picture is that of nilearn's views, with the cameras of nilearn's
matplotlib engine (left lateral and right medial seen from -x, the frontal
lobe to the left of a left lateral view), flat colours as nilearn's, and the
occlusions exact; a view takes about 0.1 s.

Pure functions on arrays: no file is read here.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

#: (hemisphere, view) of the four panels of a parcellation figure.
VIEWS = (("L", "lateral"), ("L", "medial"), ("R", "medial"), ("R", "lateral"))
#: The grey of the vertices without data (the medial wall), before shading.
NO_DATA_GREY = 0.82
#: Upper bound on the candidate pixels tested at once (memory: about 100 bytes each).
_CHUNK = 1 << 20


def camera(hemisphere: str, view: str) -> float:
    """The side of the x axis the camera of a view sits on (-1 or +1).

    nilearn's matplotlib views: a left lateral and a right medial view are
    seen from -x, a left medial and a right lateral view from +x.
    """
    if hemisphere not in ("L", "R") or view not in ("lateral", "medial"):
        raise ValueError(f"no view {view!r} of hemisphere {hemisphere!r}: "
                         "the views are lateral and medial of L and R")
    return -1.0 if (hemisphere == "L") == (view == "lateral") else 1.0


def screen_coordinates(coordinates: np.ndarray, towards: float) -> np.ndarray:
    """Each vertex's (horizontal, vertical) place in a view from ``towards`` * x.

    Horizontal is ``towards * y`` (anterior to the right when the camera is
    on +x, to the left when on -x), vertical is z.
    """
    coordinates = np.asarray(coordinates, dtype=np.float64)
    return np.column_stack([towards * coordinates[:, 1], coordinates[:, 2]])


class Raster(NamedTuple):
    """What each pixel of a view shows: a triangle and where in it."""

    face: np.ndarray  #: (rows, columns) index of the triangle shown, -1 where none
    weights: np.ndarray  #: (rows, columns, 3) barycentric weights of its vertices there


def rasterize(pixels: np.ndarray, depth: np.ndarray, faces: np.ndarray,
              shape: tuple[int, int]) -> Raster:
    """Z-buffer: for each pixel centre, the nearest triangle covering it.

    ``pixels`` are the vertices' (column, row) positions in pixel units
    (pixel ``(r, c)`` has its centre at ``(c + 0.5, r + 0.5)``), ``depth``
    their nearness (larger is nearer the camera), ``faces`` the triangles to
    draw. A centre on an edge shared by two triangles counts in both (the
    nearer is kept), so a closed mesh leaves no gap. Triangles of zero area
    on the screen cover nothing.
    """
    pixels = np.asarray(pixels, dtype=np.float64)
    depth = np.asarray(depth, dtype=np.float64)
    faces = np.asarray(faces, dtype=np.int64).reshape(-1, 3)
    rows, columns = shape
    corners = pixels[faces]  # (m, 3, 2)
    a = corners[:, 0]
    v0, v1 = corners[:, 1] - a, corners[:, 2] - a
    area = v0[:, 0] * v1[:, 1] - v1[:, 0] * v0[:, 1]
    # The pixel centres a triangle may cover: its bounding box, clipped to the image.
    first = np.maximum(np.ceil(corners.min(axis=1) - 0.5).astype(np.int64), 0)
    last = np.minimum(np.floor(corners.max(axis=1) - 0.5).astype(np.int64),
                      [columns - 1, rows - 1])
    span = last - first + 1
    drawn = np.flatnonzero((area != 0) & (span > 0).all(axis=1))
    # The weights of vertices 1 and 2 are affine in the centre's position:
    # w = gx * column + gy * row + g0, evaluated at the box's first centre, then by steps.
    with np.errstate(divide="ignore", invalid="ignore"):
        g1 = np.column_stack([v1[:, 1], -v1[:, 0]]) / area[:, None]
        g2 = np.column_stack([-v0[:, 1], v0[:, 0]]) / area[:, None]
    start = first + 0.5 - a
    w1_first = np.einsum("ij,ij->i", g1, start)
    w2_first = np.einsum("ij,ij->i", g2, start)
    found_pixel, found_depth, found_face, found_weights = [], [], [], []
    # Triangles grouped by the size of their box, each group tested on one grid.
    key = span[drawn, 0] * (rows + 1) + span[drawn, 1]
    order = np.argsort(key, kind="stable")
    groups, bounds = np.unique(key[order], return_index=True)
    eps = 1e-9
    for group, begin, end in zip(groups, bounds, np.r_[bounds[1:], len(order)]):
        width, height = divmod(int(group), rows + 1)
        dx, dy = (offset.ravel() for offset in np.meshgrid(np.arange(width), np.arange(height)))
        step = max(1, _CHUNK // len(dx))
        for chunk in range(begin, end, step):
            tri = drawn[order[chunk:min(end, chunk + step)]]
            w1 = w1_first[tri, None] + g1[tri, 0, None] * dx + g1[tri, 1, None] * dy
            w2 = w2_first[tri, None] + g2[tri, 0, None] * dx + g2[tri, 1, None] * dy
            w0 = 1.0 - w1 - w2
            t, k = np.nonzero((w0 >= -eps) & (w1 >= -eps) & (w2 >= -eps))
            weights = np.column_stack([w0[t, k], w1[t, k], w2[t, k]])
            face = tri[t]
            found_pixel.append((first[face, 1] + dy[k]) * columns + first[face, 0] + dx[k])
            found_depth.append(np.einsum("ij,ij->i", weights, depth[faces[face]]))
            found_face.append(face)
            found_weights.append(weights)
    face_of = np.full(rows * columns, -1, dtype=np.int64)
    weights_of = np.zeros((rows * columns, 3))
    if found_pixel:
        pixel = np.concatenate(found_pixel)
        order = np.lexsort((-np.concatenate(found_depth), pixel))  # nearest first per pixel
        pixel = pixel[order]
        nearest = order[np.r_[True, pixel[1:] != pixel[:-1]]]
        pixel = np.concatenate(found_pixel)[nearest]
        face_of[pixel] = np.concatenate(found_face)[nearest]
        weights_of[pixel] = np.concatenate(found_weights)[nearest]
    return Raster(face_of.reshape(rows, columns), weights_of.reshape(rows, columns, 3))


class Camera(NamedTuple):
    """Where a view's image sits on the screen plane: its centre and pixels per mm."""

    centre: tuple[float, float]
    scale: float


def fit_cameras(meshes: dict, shape: tuple[int, int], *, margin: float = 0.04) -> dict:
    """One scale for every view of these meshes, each view centred on its mesh.

    ``meshes`` maps a hemisphere to its (coordinates, faces); the largest
    extent of any view fills ``shape`` but for ``margin`` on each side, so the
    hemispheres keep their sizes relative to one another.
    """
    rows, columns = shape
    boxes = {}
    for hemisphere, (coordinates, _) in meshes.items():
        for view in ("lateral", "medial"):
            uv = screen_coordinates(coordinates, camera(hemisphere, view))
            boxes[hemisphere, view] = uv.min(axis=0), uv.max(axis=0)
    width = max(high[0] - low[0] for low, high in boxes.values())
    height = max(high[1] - low[1] for low, high in boxes.values())
    scale = (1 - 2 * margin) * min(columns / width, rows / height)
    return {key: Camera(tuple((low + high) / 2), scale) for key, (low, high) in boxes.items()}


def render(coordinates, faces, values, hemisphere: str, view: str, shape: tuple[int, int], *,
           camera_of: Camera, colours, labels: bool, shade: bool = True,
           supersample: int = 2) -> np.ndarray:
    """A view of a map on a mesh as an RGBA image of ``shape`` (rows, columns).

    ``values`` has one value per vertex (NaN where there are no data);
    ``colours`` turns an array of finite values into RGBA (a colormap with its
    normalisation). ``labels`` picks the nearest vertex's value in each
    triangle instead of interpolating. Vertices without data are drawn
    light grey. ``shade`` darkens each triangle by the angle between it and
    the camera (Lambert, ambient 0.65): the folds stay visible on flat
    colours. Edges are smoothed by drawing ``supersample`` times larger and
    averaging. Background pixels are transparent.
    """
    coordinates = np.asarray(coordinates, dtype=np.float64)
    faces = np.asarray(faces, dtype=np.int64)
    values = np.asarray(values, dtype=np.float64)
    towards = camera(hemisphere, view)
    rows, columns = shape[0] * supersample, shape[1] * supersample
    scale = camera_of.scale * supersample
    uv = screen_coordinates(coordinates, towards)
    pixels = np.column_stack([(uv[:, 0] - camera_of.centre[0]) * scale + columns / 2,
                              rows / 2 - (uv[:, 1] - camera_of.centre[1]) * scale])
    corners = coordinates[faces]
    normals = np.cross(corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0])
    # Outward is away from the mesh's centre on average; the triangles facing away
    # from the camera are hidden and not drawn.
    outward = 1.0 if np.sum(normals * (corners.mean(axis=1) - coordinates.mean(axis=0))) >= 0 \
        else -1.0
    facing = np.flatnonzero(outward * normals[:, 0] * towards > 0)
    raster = rasterize(pixels, towards * coordinates[:, 0], faces[facing], (rows, columns))
    covered = raster.face >= 0
    face = facing[raster.face[covered]]
    weights = raster.weights[covered]
    corner_values = values[faces[face]]
    if labels:
        shown = corner_values[np.arange(len(face)), np.argmax(weights, axis=1)]
    else:
        shown = np.einsum("ij,ij->i", weights, corner_values)
    rgba = np.zeros((rows, columns, 4))
    colour = np.empty((len(face), 4))
    data = np.isfinite(shown)
    if data.any():
        colour[data] = colours(shown[data])
    colour[~data] = (NO_DATA_GREY, NO_DATA_GREY, NO_DATA_GREY, 1.0)
    cosine = np.abs(normals[face, 0]) / np.maximum(np.linalg.norm(normals[face], axis=1), 1e-300)
    light = 0.65 + 0.35 * cosine
    lit = ~data | shade
    colour[lit, :3] *= light[lit, None]
    rgba[covered] = colour
    rgba[covered, 3] = 1.0
    if supersample > 1:
        rgba = rgba.reshape(shape[0], supersample, shape[1], supersample, 4)
        alpha = rgba[..., 3].mean(axis=(1, 3))
        premultiplied = (rgba[..., :3] * rgba[..., 3:]).mean(axis=(1, 3))
        rgba = np.concatenate([premultiplied / np.maximum(alpha, 1e-12)[..., None],
                               alpha[..., None]], axis=-1)
    return rgba
