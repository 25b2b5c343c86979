"""Voxel-to-voxel grid connectivity of a mask (arrays only, no I/O)."""

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
