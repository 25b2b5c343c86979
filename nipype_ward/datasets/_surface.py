"""The surface simulation: the volume's signal model on cortical meshes."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from scipy import sparse
from scipy.spatial import cKDTree

from nipype_ward.core.connectivity import mesh_connectivity
from nipype_ward.core.validation import check_int, check_real
from nipype_ward.datasets._model import (
    GLOBAL_PCT,
    REGION_PCT,
    SMOOTH_PCT,
    WHITE_PCT,
    band_limited_noise,
)


class SimulatedSurface(NamedTuple):
    """Output of :func:`simulate_surface_fmri`: one entry per hemisphere.

    Attributes
    ----------
    series : tuple of ndarray
        Per hemisphere, (n_vertices, n_volumes) float32; vertices without
        data (outside ``cortex``) hold zeros, as fMRIPrep's medial wall.
    regions : tuple of ndarray
        Per hemisphere, int32 ground-truth regions of each vertex, 0 outside
        the cortex; labels run on across hemispheres (no region spans both).
    t_r : float
    """

    series: tuple
    regions: tuple
    t_r: float


def _mesh_smoothing(faces, n_vertices: int):
    """The row-normalised vertex adjacency (with self-loops): one smoothing step."""
    graph = mesh_connectivity(np.asarray(faces), n_vertices) + sparse.identity(
        n_vertices, format="csr")
    degree = np.asarray(graph.sum(axis=1)).ravel()
    return sparse.diags(1.0 / degree) @ graph


def simulate_surface_fmri(
    meshes,
    *,
    cortex=None,
    n_volumes: int = 120,
    t_r: float = 2.0,
    n_regions: int = 100,
    random_state=0,
) -> SimulatedSurface:
    """Simulate a resting-state series on cortical meshes, with its ground truth.

    The surface counterpart of :func:`simulate_rest_fmri`, same model:
    ``S_v(t) = B_v (1 + 0.01 (1.2 a_v s_r(t) + 0.6 g(t) + 0.8 n_v(t) +
    0.5 w_v(t)))``, the regions ``r`` compact patches of each hemisphere
    (each vertex joins the nearest of ``n_regions / 2`` random seed
    vertices of its hemisphere, in 3D), ``n_v`` white noise smoothed by
    four steps of averaging over mesh neighbours, a baseline ``B`` of about
    1000 varying smoothly over the mesh. No thermal (Rician) noise: surface
    series are sampled from volumes.

    Parameters
    ----------
    meshes : sequence of :class:`nipype_ward.io.gifti.Mesh`
        The hemispheres' meshes (left, right).
    cortex : sequence of bool arrays, optional
        Per hemisphere, the vertices with data (e.g. without the medial
        wall); all by default.
    n_volumes, t_r, n_regions, random_state
        As :func:`simulate_rest_fmri`; ``n_regions`` counts both hemispheres.
    """
    n_volumes = check_int(n_volumes, "n_volumes")
    n_regions = check_int(n_regions, "n_regions")
    t_r = check_real(t_r, "t_r", what="number of seconds")
    rng = np.random.default_rng(random_state)
    global_signal = band_limited_noise(rng, 1, n_volumes, t_r)[0]
    series, regions, offset = [], [], 0
    for index, mesh in enumerate(meshes):
        n_vertices = mesh.n_vertices
        kept = np.ones(n_vertices, bool) if cortex is None else np.asarray(cortex[index], bool)
        if kept.shape != (n_vertices,):
            raise ValueError(f"cortex[{index}] has {kept.shape} values for {n_vertices} vertices")
        vertices = np.flatnonzero(kept)
        n_here = max(1, min(n_regions // len(meshes), vertices.size))
        seeds = rng.choice(vertices, size=n_here, replace=False)
        _, nearest = cKDTree(mesh.coordinates[seeds]).query(mesh.coordinates[vertices])
        region = np.zeros(n_vertices, np.int32)
        region[vertices] = offset + 1 + nearest
        smoothing = _mesh_smoothing(mesh.faces, n_vertices)
        field = rng.standard_normal(n_vertices)
        for _ in range(20):
            field = smoothing @ field
        baseline = 1000.0 * (1.0 + 0.1 * field / (np.abs(field).max() or 1.0))
        loadings = rng.uniform(0.5, 1.5, size=n_vertices)
        signals = band_limited_noise(rng, n_here, n_volumes, t_r)
        smooth = rng.standard_normal((n_vertices, n_volumes))
        for _ in range(4):
            smooth = smoothing @ smooth
        smooth /= smooth.std(axis=1, keepdims=True)
        percent = REGION_PCT * loadings[:, None] * signals[np.maximum(region - offset - 1, 0)]
        percent += GLOBAL_PCT * global_signal
        percent += SMOOTH_PCT * smooth
        percent += WHITE_PCT * rng.standard_normal((n_vertices, n_volumes))
        data = (baseline[:, None] * (1.0 + 0.01 * percent)).astype(np.float32)
        data[~kept] = 0.0
        series.append(data)
        regions.append(region)
        offset += n_here
    return SimulatedSurface(tuple(series), tuple(regions), t_r)
