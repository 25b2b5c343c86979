"""Connectivity of the data points: voxels on their grid, vertices on their mesh
(arrays only, no I/O).

Every graph here is a symmetric CSR matrix with ones on the diagonal, the
form the Ward tree takes: :func:`grid_connectivity` for the voxels of a
mask, :func:`mesh_connectivity` for the vertices of a triangulated surface,
and :func:`block_connectivity` for data made of several pieces that never
connect (the two hemispheres, the cortical surfaces and the subcortical
voxels of a CIFTI file).
"""

from __future__ import annotations

import itertools

import numpy as np
from scipy import sparse
from scipy.sparse import csgraph

#: Neighbourhoods of a voxel on a 3D grid: faces (6), faces and edges (18),
#: faces, edges and corners (26).
NEIGHBOURHOODS = (6, 18, 26)


def _half_offsets(neighbourhood: int) -> list[tuple[int, int, int]]:
    """Offsets of one half of the neighbourhood (the other half is symmetric)."""
    max_nonzero = {6: 1, 18: 2, 26: 3}[neighbourhood]
    offsets = []
    for offset in itertools.product((-1, 0, 1), repeat=3):
        nonzero = sum(o != 0 for o in offset)
        # Keep the offsets that are lexicographically positive: one per pair.
        if 0 < nonzero <= max_nonzero and offset > (0, 0, 0):
            offsets.append(offset)
    return offsets


def grid_connectivity(mask, neighbourhood: int = 6) -> sparse.csr_matrix:
    """Adjacency of the voxels of a 3D mask on their grid.

    Parameters
    ----------
    mask : ndarray of shape (nx, ny, nz), bool
        Voxels to connect. They are numbered in C order (``np.flatnonzero``),
        the order of ``data[mask]`` and of nilearn's maskers.
    neighbourhood : {6, 18, 26}, default=6
        Voxels sharing a face (6), a face or an edge (18), or any corner (26).

    Returns
    -------
    connectivity : csr_matrix of shape (n_voxels, n_voxels), int64
        Symmetric, ones on the diagonal. For ``neighbourhood=6`` it equals
        ``sklearn.feature_extraction.image.grid_to_graph(*mask.shape, mask=mask)``.
    """
    mask = np.asarray(mask)
    if mask.ndim != 3:
        raise ValueError(f"mask must be 3D, got shape {mask.shape}")
    if neighbourhood not in NEIGHBOURHOODS:
        raise ValueError(f"neighbourhood must be one of {NEIGHBOURHOODS}, got {neighbourhood!r}")
    mask = mask.astype(bool, copy=False)
    n_voxels = int(mask.sum())
    index = np.full(mask.shape, -1, dtype=np.int64)
    index[mask] = np.arange(n_voxels)

    rows, cols = [np.arange(n_voxels)], [np.arange(n_voxels)]
    for offset in _half_offsets(neighbourhood):
        src = tuple(slice(max(0, -o), s - max(0, o)) for o, s in zip(offset, mask.shape))
        dst = tuple(slice(max(0, o), s - max(0, -o)) for o, s in zip(offset, mask.shape))
        a, b = index[src], index[dst]
        both = (a >= 0) & (b >= 0)
        a, b = a[both], b[both]
        rows += [a, b]
        cols += [b, a]
    rows = np.concatenate(rows)
    cols = np.concatenate(cols)
    data = np.ones(len(rows), dtype=np.int64)
    return sparse.csr_matrix((data, (rows, cols)), shape=(n_voxels, n_voxels))


def mesh_connectivity(faces, n_vertices: int, vertices=None) -> sparse.csr_matrix:
    """Adjacency of a mesh's vertices: two vertices are neighbours when they share an edge.

    Parameters
    ----------
    faces : array of shape (n_faces, 3), int
        Triangles, as vertex indices (GIFTI's ``NIFTI_INTENT_TRIANGLE``).
    n_vertices : int
        Vertices of the mesh.
    vertices : array of int or bool mask, or None, default=None
        The vertices that hold data, in the order of the data (indices) or
        as a mask of length ``n_vertices``; the graph is restricted to them
        (an edge to a vertex without data is dropped). None: all.

    Returns
    -------
    csr_matrix of shape (n_kept, n_kept), int64
        Symmetric, ones on the diagonal; the sparsity of nilearn's surface
        connectivity (``Parcellations(method='ward')`` on a SurfaceImage).
    """
    faces = np.asarray(faces)
    if faces.ndim != 2 or faces.shape[1] != 3 or faces.size == 0:
        raise ValueError(f"faces must be an (n_faces, 3) array, got shape {faces.shape}")
    if not np.issubdtype(faces.dtype, np.integer):
        raise ValueError(f"faces must be integers, got {faces.dtype}")
    if faces.min() < 0 or faces.max() >= n_vertices:
        raise ValueError(f"faces index vertices outside 0..{n_vertices - 1}")
    index = np.arange(n_vertices)
    if vertices is not None:
        vertices = np.asarray(vertices)
        if vertices.dtype == bool:
            if vertices.shape != (n_vertices,):
                raise ValueError(f"a vertex mask has {n_vertices} entries, got {vertices.shape}")
            vertices = np.flatnonzero(vertices)
        if vertices.ndim != 1 or (vertices.size and (vertices.min() < 0
                                                      or vertices.max() >= n_vertices)):
            raise ValueError("vertices must be indices of the mesh's vertices")
        if np.unique(vertices).size != vertices.size:
            raise ValueError("vertices has repeated indices")
        index = np.full(n_vertices, -1)
        index[vertices] = np.arange(vertices.size)
    n_kept = n_vertices if vertices is None else vertices.size
    a = np.concatenate([faces[:, 0], faces[:, 1], faces[:, 2]])
    b = np.concatenate([faces[:, 1], faces[:, 2], faces[:, 0]])
    a, b = index[a], index[b]
    both = (a >= 0) & (b >= 0) & (a != b)
    a, b = a[both], b[both]
    rows = np.concatenate([a, b, np.arange(n_kept)])
    cols = np.concatenate([b, a, np.arange(n_kept)])
    graph = sparse.csr_matrix((np.ones(rows.size, dtype=np.int64), (rows, cols)),
                              shape=(n_kept, n_kept))
    graph.data[:] = 1  # an edge shared by two faces is counted once
    return graph


def block_connectivity(graphs) -> sparse.csr_matrix:
    """Graphs side by side with no edge between them (block diagonal), in the given order."""
    graphs = [sparse.csr_matrix(graph) for graph in graphs]
    if not graphs:
        raise ValueError("no graph to join")
    return sparse.block_diag(graphs, format="csr").astype(np.int64)


def connected_components(connectivity) -> tuple[int, np.ndarray]:
    """Connected pieces of an adjacency matrix.

    Returns
    -------
    n_components : int
        Number of pieces.
    labels : ndarray of shape (n_nodes,)
        The piece of each node (0-based).
    """
    return csgraph.connected_components(connectivity, directed=False)
