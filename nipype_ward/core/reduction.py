"""Group reductions: one voxel-feature matrix from many subjects (arrays only).

Ward's merge costs depend on the voxels' series only through their inner
products (the Gram matrix ``X @ X.T`` of the voxels): a rotation of the
time axis changes no tree. Two ways to bring many subjects to one matrix:

* :func:`concatenate`, the exact one: every subject's prepared series one
  after the other in time (the ``exact`` reduction). Its memory grows with
  the number of subjects.
* :func:`migp`, MIGP (Smith et al. 2014, *NeuroImage* 101, "Group-PCA for
  very large fMRI datasets"), the incremental group PCA of the HCP and UK
  Biobank: a running matrix of ``n_components`` features, updated as
  subjects come: their series are appended in time, then the result is
  projected on its ``n_components`` leading principal axes in time. MIGPs
  of parts of a group combine by one more MIGP of their running matrices.
  Its
  memory is that of the running matrix plus one subject, whatever the
  number of subjects. When the total number of volumes does not exceed
  ``n_components`` nothing is truncated and the Gram matrix (hence the
  tree, up to rounding) is that of :func:`concatenate`.

The projection is :func:`reduce_features`: the leading eigenvectors of the
small ``features x features`` Gram matrix, from SciPy's LAPACK ``eigh``.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
from scipy import linalg

from nipype_ward.core.validation import check_int

REDUCTIONS = ("exact", "migp")

#: ``auto`` keeps the exact reduction while the group matrix (voxels x all the
#: group's volumes, float32) is at most this large: below it the exact tree is
#: exact and about as fast as MIGP's; above it MIGP is faster (3 mm, 176 volumes
#: a subject, 2 cores: group step 4.1 s exact against 4-5 s MIGP at 8 subjects,
#: 10.4 s against 7 s at 16) and its memory stops growing.
EXACT_MAX_BYTES = 5 * 10**8


def choose_reduction(n_voxels: int, n_volumes: int, n_components: int) -> str:
    """``auto``'s choice for a group of ``n_volumes`` volumes in all on ``n_voxels`` voxels.

    ``"exact"`` while the concatenated group matrix in float32 takes at most
    :data:`EXACT_MAX_BYTES` or has at most ``n_components`` volumes (MIGP
    would then truncate nothing), else ``"migp"``, whose memory does not
    grow with the group. It depends on the data's size alone, never on the
    machine: the same group gives the same atlas everywhere.
    """
    if n_volumes <= n_components or 4 * n_voxels * n_volumes <= EXACT_MAX_BYTES:
        return "exact"
    return "migp"


def _check_block(X, n_voxels: int | None) -> np.ndarray:
    X = np.asarray(X)
    if X.ndim != 2 or X.shape[1] == 0:
        raise ValueError(f"a subject's series is (n_voxels, n_features), got shape {X.shape}")
    if n_voxels is not None and X.shape[0] != n_voxels:
        raise ValueError(f"subjects have different voxel counts ({X.shape[0]} vs {n_voxels})")
    return X


def _check_n_components(n_components) -> int:
    return check_int(n_components, "n_components")


def reduce_features(X, n_components: int) -> np.ndarray:
    """``X`` projected on its ``n_components`` leading principal axes in time.

    Parameters
    ----------
    X : array of shape (n_voxels, n_features)
    n_components : int

    Returns
    -------
    ndarray of shape (n_voxels, min(n_features, n_components))
        ``X @ V``, ``V`` the leading eigenvectors of ``X.T @ X`` (largest
        first): the best rank-``n_components`` approximation of the voxels'
        Gram matrix ``X @ X.T``, in ``X``'s precision (float32 for float32
        data, else float64; see :func:`migp`). With
        ``n_features <= n_components``, ``X`` itself: nothing to reduce.
    """
    n_components = _check_n_components(n_components)
    X = _check_block(X, None)
    dtype = _precision(X.dtype)
    n_features = X.shape[1]
    if n_features <= n_components:
        return np.asarray(X, dtype=dtype)
    gram = _gram(X, dtype)  # a block of voxels at a time
    _, vectors = linalg.eigh(gram, subset_by_index=[n_features - n_components, n_features - 1])
    vectors = np.ascontiguousarray(vectors[:, ::-1], dtype=dtype)
    out = np.empty((X.shape[0], n_components), dtype=dtype)
    for rows in _voxel_blocks(X.shape[0]):
        out[rows] = np.asarray(X[rows], dtype=dtype) @ vectors
    return out


def concatenate(blocks: Iterable) -> np.ndarray:
    """The subjects' series one after the other in time (the exact reduction)."""
    blocks = [_check_block(block, None) for block in blocks]
    if not blocks:
        raise ValueError("no subject to combine")
    n_voxels = blocks[0].shape[0]
    for block in blocks:
        _check_block(block, n_voxels)
    return np.concatenate([np.asarray(block, dtype=np.float64) for block in blocks], axis=1)


def migp(blocks: Iterable, n_components: int) -> np.ndarray:
    """MIGP: the group's series reduced to ``n_components`` features, a few subjects at a time.

    Parameters
    ----------
    blocks : iterable of arrays of shape (n_voxels, n_features_s)
        Each subject's (prepared, e.g. z-scored) series, or the running
        matrices of parts of the group (MIGP of MIGPs); taken from the
        iterable as needed, so memory maps or a generator keep the memory
        flat.
    n_components : int
        Size of the running matrix (features).

    Returns
    -------
    ndarray of shape (n_voxels, min(total features, n_components))
        float32 when every block is float32 (the prepared series are), else
        float64.

    Notes
    -----
    Smith et al. (2014)'s update: the running matrix ``W`` and the new
    series ``X`` side by side, projected on the ``n_components`` leading
    eigenvectors of the Gram matrix of ``[W, X]``. Here ``X`` gathers
    subjects until it has at least ``n_components`` features (each update
    then costs about what it keeps, rather than once per subject); the Gram
    matrix is assembled from ``W.T @ W`` (diagonal after a projection),
    ``W.T @ X`` and ``X.T @ X``, and the projection is taken a block of
    voxels at a time, so ``[W, X]`` is never built. Memory: the running
    matrix, its successor, and the pending subjects' series.

    Precision: the products run in the blocks' precision (float32 for
    float32 series: half the time and memory of float64) and the Gram
    matrices are summed in float64, a block of voxels at a time; the
    eigendecomposition is float64. MIGP approximates the group's Gram matrix
    by design; float32 rounding (1e-7 relative) is far below that.
    """
    n_components = _check_n_components(n_components)
    running, gram_running, n_voxels = None, None, None
    pending, n_pending = [], 0
    for block in blocks:
        block = _check_block(block, n_voxels)
        n_voxels = block.shape[0]
        pending.append(block)
        n_pending += block.shape[1]
        if n_pending >= n_components:
            running, gram_running = _migp_update(running, gram_running, pending, n_components)
            pending, n_pending = [], 0
    if pending:
        running, gram_running = _migp_update(running, gram_running, pending, n_components)
    if running is None:
        raise ValueError("no subject to combine")
    return running


def _migp_update(running, gram_running, pending, n_components):
    """``[running, *pending]`` projected on the leading eigenvectors of its Gram matrix."""
    n_voxels = pending[0].shape[0]
    dtype = _precision(*(block.dtype for block in pending),
                       *(() if running is None else (running.dtype,)))
    r = 0 if running is None else running.shape[1]
    t = sum(block.shape[1] for block in pending)
    gram = np.empty((r + t, r + t))
    cross, own = np.zeros((r, t)), np.zeros((t, t))
    for rows in _voxel_blocks(n_voxels):
        part = _side_by_side(pending, rows, dtype)
        own += part.T @ part
        if r:
            cross += running[rows].T @ part
    if r:
        gram[:r, :r], gram[:r, r:], gram[r:, :r] = gram_running, cross, cross.T
    gram[r:, r:] = own
    keep = min(n_components, r + t)
    values, vectors = linalg.eigh(gram, subset_by_index=[r + t - keep, r + t - 1])
    values = values[::-1]
    vectors = np.ascontiguousarray(vectors[:, ::-1], dtype=dtype)
    updated = np.empty((n_voxels, keep), dtype=dtype)
    for rows in _voxel_blocks(n_voxels):
        updated[rows] = _side_by_side(pending, rows, dtype) @ vectors[r:]
        if r:
            updated[rows] += running[rows] @ vectors[:r]
    return updated, np.diag(np.clip(values, 0.0, None))


def _side_by_side(blocks, rows, dtype) -> np.ndarray:
    """The rows ``rows`` of every block, one block after the other in features."""
    return np.hstack([np.asarray(block[rows], dtype=dtype) for block in blocks])


def _precision(*dtypes) -> np.dtype:
    """float32 when every given dtype is float32, else float64."""
    single = all(np.dtype(dtype) == np.float32 for dtype in dtypes)
    return np.dtype(np.float32 if single else np.float64)


def _gram(X, dtype) -> np.ndarray:
    gram = np.zeros((X.shape[1], X.shape[1]))
    for rows in _voxel_blocks(X.shape[0]):
        part = np.asarray(X[rows], dtype=dtype)
        gram += part.T @ part
    return gram


def _voxel_blocks(n_voxels: int, size: int = 8192):
    return [slice(start, min(start + size, n_voxels)) for start in range(0, n_voxels, size)]


def split_subjects(subjects: list[str]) -> tuple[list[str], list[str]]:
    """Two halves of a list of subjects, alternating in sorted order (deterministic)."""
    ordered = sorted(subjects)
    if len(ordered) < 2:
        raise ValueError("split-half agreement needs at least two subjects")
    return ordered[0::2], ordered[1::2]
