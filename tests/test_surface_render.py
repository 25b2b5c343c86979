"""The z-buffer surface renderer (nipype_ward.reports.surface) against hand-computed
pictures and matplotlib's own 3D projection."""

import numpy as np
import pytest

from nipype_ward.reports import surface

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")


def _red(values):
    """Colours whose red channel is the value (values in [0, 1])."""
    values = np.asarray(values, dtype=np.float64)
    return np.column_stack([values, np.zeros_like(values), np.zeros_like(values),
                            np.ones_like(values)])


def _box(x0, x1, y0, y1, z0, z1):
    """A closed box's 8 corners and 12 triangles, wound outwards."""
    corners = np.array([[x, y, z] for x in (x0, x1) for y in (y0, y1) for z in (z0, z1)],
                       dtype=np.float64)
    quads = [(0, 1, 3, 2), (4, 6, 7, 5), (0, 4, 5, 1), (2, 3, 7, 6), (0, 2, 6, 4),
             (1, 5, 7, 3)]
    faces = []
    for a, b, c, d in quads:
        faces += [(a, b, c), (a, c, d)]
    faces = np.array(faces)
    centre = corners.mean(axis=0)
    normals = np.cross(corners[faces[:, 1]] - corners[faces[:, 0]],
                       corners[faces[:, 2]] - corners[faces[:, 0]])
    inward = np.einsum("ij,ij->i", normals, corners[faces].mean(axis=1) - centre) < 0
    faces[inward] = faces[inward][:, ::-1]
    return corners, faces


@pytest.mark.parametrize("hemisphere, view", [("L", "lateral"), ("L", "medial"),
                                              ("R", "lateral"), ("R", "medial")])
def test_cameras_are_nilearns_and_matplotlibs(hemisphere, view):
    """Which side a view is seen from, and which way is anterior, as mplot3d projects it.

    Reference: nilearn's (elev, azim) of the view and matplotlib's own 3D
    projection of an anterior and a superior point.
    """
    from matplotlib import pyplot as plt
    from mpl_toolkits.mplot3d import proj3d
    from nilearn.plotting.surface._matplotlib_backend import MATPLOTLIB_VIEWS

    elev, azim = MATPLOTLIB_VIEWS["left" if hemisphere == "L" else "right"][view]
    towards = surface.camera(hemisphere, view)
    assert towards == np.sign(np.cos(np.deg2rad(azim)))  # the camera's x side
    figure = plt.figure()
    axis = figure.add_subplot(projection="3d")
    axis.set_xlim(-1, 1), axis.set_ylim(-1, 1), axis.set_zlim(-1, 1)
    axis.view_init(elev=elev, azim=azim)
    points = np.array([[0, 0, 0], [0, 0.5, 0], [0, 0, 0.5]], dtype=np.float64)
    u, v, _ = proj3d.proj_transform(*points.T, axis.get_proj())
    plt.close(figure)
    ours = surface.screen_coordinates(points, towards)
    assert np.sign(u[1] - u[0]) == np.sign(ours[1, 0] - ours[0, 0])  # anterior: same side
    assert v[2] > v[0] and ours[2, 1] > ours[0, 1]  # up is up


def test_a_face_of_a_box_interpolates_and_keeps_labels_by_nearest_vertex():
    """The face of a box seen head on: every pixel covered, values hand-computed.

    The box spans y in [-10, 10], z in [-5, 5]; at 2 pixels per mm the view
    from -x is 40 x 20 pixels and exactly covered. A map linear in y and z
    (values = (z + 5) / 10 on the face's corners, as the box's corners carry)
    gives pixel (r, c) the z of its centre: (10 - (r + 0.5)) / 2.
    """
    coordinates, faces = _box(-1, 1, -10, 10, -5, 5)
    values = (coordinates[:, 2] + 5) / 10
    camera = surface.Camera((0.0, 0.0), 2.0)
    rgba = surface.render(coordinates, faces, values, "L", "lateral", (20, 40),
                          camera_of=camera, colours=_red, labels=False, shade=False,
                          supersample=1)
    rows = np.arange(20)
    z = (10 - (rows + 0.5)) / 2
    assert np.allclose(rgba[..., 3], 1)
    np.testing.assert_allclose(rgba[..., 0], np.repeat(((z + 5) / 10)[:, None], 40, axis=1),
                               atol=1e-12)
    # Labels: in each pixel the value of the vertex weighing most there. Reference:
    # matplotlib's linear interpolation (matplotlib.tri) of each corner's indicator
    # on the face's two triangles, which gives that corner's weight at each centre.
    from matplotlib.tri import LinearTriInterpolator, Triangulation

    labels = np.array([0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8])
    rgba = surface.render(coordinates, faces, labels, "L", "lateral", (20, 40),
                          camera_of=camera, colours=_red, labels=True, shade=False,
                          supersample=1)
    near = faces[(coordinates[faces, 0] == -1).all(axis=1)]  # the face seen from -x
    triangulation = Triangulation(-coordinates[:, 1] * 2 + 20, 10 - coordinates[:, 2] * 2, near)
    r, c = np.mgrid[0:20, 0:40] + 0.5
    weights = np.stack([np.ma.filled(LinearTriInterpolator(
        triangulation, (np.arange(8) == i).astype(float))(c, r), np.nan) for i in range(8)])
    ranked = np.sort(weights, axis=0)
    clear = ranked[-1] - ranked[-2] > 1e-9  # centres with no tie between two corners
    assert clear.mean() > 0.9
    np.testing.assert_array_equal(rgba[..., 0][clear], labels[np.argmax(weights, axis=0)][clear])
    assert set(np.unique(rgba[..., 0])) <= set(labels[np.unique(near)])


def test_zbuffer_keeps_the_nearest_triangle():
    """Two overlapping triangles: where both cover a centre the nearer wins, else its own.

    Hand-made in pixel units: A covers the lower-left half of a 10 x 10
    image (c + r < 10 at pixel centres, below the anti-diagonal) at depth 1,
    B the upper-right half plus a band (c + r > 8) at depth 2 (nearer).
    """
    # A: (0, 0), (10, 0), (0, 10); B: (12, 12), (-4, 12), (12, -4), partly off the image.
    pixels = np.array([[0, 0], [10, 0], [0, 10], [12, 12], [-4, 12], [12, -4]],
                      dtype=np.float64)
    depth = np.array([1, 1, 1, 2, 2, 2], dtype=np.float64)
    faces = np.array([[0, 1, 2], [3, 4, 5]])
    raster = surface.rasterize(pixels, depth, faces, (10, 10))
    r, c = np.mgrid[0:10, 0:10] + 0.5
    # B: the triangle (12,12), (-4,12), (12,-4) is x + y >= 8 (its hypotenuse).
    in_b = c + r >= 8
    in_a = c + r <= 10
    expected = np.where(in_b, 1, np.where(in_a, 0, -1))
    np.testing.assert_array_equal(raster.face, expected)
    # Depth order does not depend on the order of the triangles.
    swapped = surface.rasterize(pixels, depth, faces[::-1], (10, 10))
    np.testing.assert_array_equal(swapped.face, np.where(expected >= 0, 1 - expected, -1))
    # The weights locate each centre in its triangle: they rebuild its position.
    covered = raster.face >= 0
    corners = pixels[faces[raster.face[covered]]]
    rebuilt = np.einsum("ij,ijk->ik", raster.weights[covered], corners)
    np.testing.assert_allclose(rebuilt, np.column_stack([c[covered], r[covered]]), atol=1e-9)


def test_a_sphere_shows_its_near_side_and_its_outline():
    """A closed sphere from -x: its disc covered, the visible x that of the near side.

    Reference: geometry alone. Seen along x, the pixel at screen (u, v) shows
    the sphere's point with x = -sqrt(R^2 - u^2 - v^2); the triangulated
    sphere is within 1% of R everywhere (7,000 vertices).
    """
    from scipy.spatial import ConvexHull

    n, radius = 7000, 40.0
    golden = np.pi * (3 - np.sqrt(5))
    z = 1 - 2 * (np.arange(n) + 0.5) / n
    theta = golden * np.arange(n)
    points = radius * np.column_stack([np.sqrt(1 - z ** 2) * np.cos(theta),
                                       np.sqrt(1 - z ** 2) * np.sin(theta), z])
    faces = ConvexHull(points).simplices
    normals = np.cross(points[faces[:, 1]] - points[faces[:, 0]],
                       points[faces[:, 2]] - points[faces[:, 0]])
    inward = np.einsum("ij,ij->i", normals, points[faces].mean(axis=1)) < 0
    faces[inward] = faces[inward][:, ::-1]
    values = (points[:, 0] + radius) / (2 * radius)  # 0 at the near pole, 1 at the far
    shape = (100, 100)
    camera = surface.Camera((0.0, 0.0), 1.2)  # 96 pixels across
    rgba = surface.render(points, faces, values, "L", "lateral", shape, camera_of=camera,
                          colours=_red, labels=False, shade=False, supersample=1)
    r, c = np.mgrid[0:100, 0:100] + 0.5
    u, v = (c - 50) / 1.2, (50 - r) / 1.2
    rho = np.hypot(u, v)
    inside, outside = rho < 0.98 * radius, rho > 1.01 * radius
    assert (rgba[..., 3][inside] == 1).all() and (rgba[..., 3][outside] == 0).all()
    near_x = -np.sqrt(np.maximum(radius ** 2 - rho ** 2, 0))
    expected = (near_x + radius) / (2 * radius)
    centre = rho < 0.9 * radius
    np.testing.assert_allclose(rgba[..., 0][centre], expected[centre], atol=0.012)


def test_supersampling_averages_the_edge():
    """At 2x, a pixel half covered by the box gets alpha 1/2 and its full colour."""
    coordinates, faces = _box(-1, 1, -10, 10, -5, 5)
    values = np.full(len(coordinates), 0.5)
    # 1 pixel per mm, the box shifted by half a pixel: its left column is half covered.
    rgba = surface.render(coordinates, faces, values, "L", "lateral", (12, 22),
                          camera_of=surface.Camera((-0.5, 0.0), 1.0), colours=_red,
                          labels=False, shade=False, supersample=2)
    # Horizontal u = -y spans [-10, 10]: columns at (u + 0.5) + 11 in [1.5, 21.5].
    np.testing.assert_allclose(rgba[6, 1, 3], 0.5)
    np.testing.assert_allclose(rgba[6, 2:21, 3], 1)
    np.testing.assert_allclose(rgba[6, 1:21, 0], 0.5)
    assert rgba[6, 0, 3] == 0


def test_views_fit_one_scale():
    """Every view of both hemispheres fits, at one scale, the largest filling the image."""
    left, faces = _box(-60, -5, -100, 60, -40, 70)
    right, _ = _box(5, 60, -90, 60, -40, 60)
    cameras = surface.fit_cameras({"L": (left, faces), "R": (right, faces)}, (200, 300),
                                  margin=0.05)
    # The widest view is 160 mm (left, y), the tallest 110 mm: 0.9 * min(300/160, 200/110).
    assert [camera.scale for camera in cameras.values()] == \
        [pytest.approx(0.9 * min(300 / 160, 200 / 110))] * 4
    assert cameras["L", "lateral"].centre == pytest.approx((20.0, 15.0))  # u = -y: [-60, 100]
    assert cameras["L", "medial"].centre == pytest.approx((-20.0, 15.0))


def test_unknown_view_is_refused():
    with pytest.raises(ValueError, match="lateral and medial"):
        surface.camera("L", "dorsal")
