"""What a carpet plot needs from a series, before and after its preparation (arrays only).

A run's carpet plot (Power, 2017) shows the series of its points as rows of
an image, one column per volume. Drawing all of a brain's points would be
slow and no sharper (a figure has a few hundred pixel rows), so
:func:`carpet_sample` keeps an evenly spread sample of at most
:data:`MAX_CARPET_POINTS` rows, before and after the preparation, with the
DVARS of both series over *all* their points (:func:`dvars`): computed while
the series is in memory anyway, it costs one pass over the data.
:func:`tree_rows` orders the sampled rows as the leaves of the run's Ward
tree, so that each parcel's points are together at every K.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from nipype_ward.core.validation import check_int
from nipype_ward.core.ward import cut_tree

#: Rows a carpet keeps at most: about twice the pixel rows of a report's figure.
MAX_CARPET_POINTS = 2000

#: Rows of a series differenced at a time by :func:`dvars` (bounds its memory:
#: 2048 rows of 1,000 volumes in float64 are 16 MB).
_BLOCK_ROWS = 2048


class CarpetSample(NamedTuple):
    """An evenly spread sample of a series' rows, before and after preparation."""

    points: np.ndarray  #: (n_sampled,) intp: the sampled rows of the series, increasing
    before: np.ndarray  #: (n_sampled, n_volumes) float32: those rows before preparation
    after: np.ndarray  #: (n_sampled, n_kept) float32: the same rows prepared
    dvars_before: np.ndarray  #: (n_volumes - 1,) float64: :func:`dvars` of the whole series
    dvars_after: np.ndarray  #: (n_kept - 1,) float64: :func:`dvars` of the prepared series
    kept: np.ndarray  #: (n_kept,) intp: the volumes the preparation kept (all when none censored)
    n_points: int  #: rows of the whole series


def dvars(X) -> np.ndarray:
    """DVARS of a series: the root mean square over points of its temporal difference.

    Power et al. (2012)'s DVARS, without standardization (nipype's
    ``compute_dvars`` calls it ``dvars_nstd``; fMRIPrep's ``dvars`` column,
    up to its intensity normalization to a median of 1000)::

        DVARS[t - 1] = sqrt(mean_i (X[i, t] - X[i, t - 1]) ** 2),  t = 1 .. n_volumes - 1

    Parameters
    ----------
    X : array of shape (n_points, n_volumes)
        The series (a memory map is read block by block, never copied whole).

    Returns
    -------
    dvars : ndarray of shape (n_volumes - 1,), float64
        Value ``t - 1`` is the change from volume ``t - 1`` to volume ``t``,
        in the units of ``X``.
    """
    X = _check_series(X, "X")
    total = np.zeros(X.shape[1] - 1)
    for start in range(0, X.shape[0], _BLOCK_ROWS):
        block = np.asarray(X[start:start + _BLOCK_ROWS])
        if block.dtype.kind != "f":
            block = block.astype(np.float64)
        # In the data's precision within a block (float32: half the memory
        # traffic, 1e-7 relative), in float64 across blocks.
        diff = block[:, 1:] - block[:, :-1]
        total += np.einsum("ij,ij->j", diff, diff)
    return np.sqrt(total / X.shape[0])


def carpet_points(n_points: int, max_points: int = MAX_CARPET_POINTS) -> np.ndarray:
    """At most ``max_points`` row indices of ``n_points``, evenly spread, first and last included."""
    n_points = check_int(n_points, "n_points")
    max_points = check_int(max_points, "max_points")
    if n_points <= max_points:
        return np.arange(n_points, dtype=np.intp)
    return np.unique(np.linspace(0, n_points - 1, max_points).round().astype(np.intp))


def carpet_sample(before, after, *, kept=None, max_points: int = MAX_CARPET_POINTS
                  ) -> CarpetSample:
    """The rows of a series a carpet plot shows, before and after its preparation, and its DVARS.

    Parameters
    ----------
    before : array of shape (n_points, n_volumes)
        The series as read (masked, not prepared).
    after : array of shape (n_points, n_kept)
        The same points prepared; ``n_kept`` is ``len(kept)``.
    kept : array of int, optional
        The volumes of ``before`` that ``after`` kept (scrubbing), increasing;
        all by default.
    max_points : int, default=MAX_CARPET_POINTS
        Rows kept at most (:func:`carpet_points`).

    The same as :func:`carpet_after` of :func:`carpet_before`: those two let
    a series be prepared in place between them, without a copy kept for its
    carpet.
    """
    return carpet_after(carpet_before(before, max_points=max_points), after, kept=kept,
                        same=after is before)


class CarpetBefore(NamedTuple):
    """What a carpet needs of a series before its preparation (:func:`carpet_before`)."""

    points: np.ndarray  #: the sampled rows, increasing
    before: np.ndarray  #: (n_sampled, n_volumes) float32: those rows
    dvars_before: np.ndarray  #: :func:`dvars` of the whole series
    n_points: int  #: rows of the whole series


def carpet_before(before, *, max_points: int = MAX_CARPET_POINTS) -> CarpetBefore:
    """The sampled rows of a series not yet prepared and its DVARS (one pass over it)."""
    before = _check_series(before, "before")
    points = carpet_points(before.shape[0], max_points)
    return CarpetBefore(points, np.asarray(before[points], dtype=np.float32), dvars(before),
                        before.shape[0])


def carpet_after(first: CarpetBefore, after, *, kept=None, same: bool = False) -> CarpetSample:
    """The carpet sample of a series once prepared, from :func:`carpet_before` of it.

    ``after`` and ``kept`` are those of :func:`carpet_sample`; with ``same``,
    ``after`` is the series unprepared (its DVARS is not computed again).
    """
    after = _check_series(after, "after")
    n_points, n_volumes = first.n_points, first.before.shape[1]
    kept = np.arange(n_volumes, dtype=np.intp) if kept is None \
        else np.asarray(kept, dtype=np.intp)
    if kept.ndim != 1 or (kept.size and (kept[0] < 0 or kept[-1] >= n_volumes)) \
            or np.any(np.diff(kept) <= 0):
        raise ValueError(f"kept must be increasing volume indices below {n_volumes}")
    if after.shape != (n_points, kept.size):
        raise ValueError(f"after must have shape {(n_points, kept.size)} (the points of before, "
                         f"its kept volumes), got {after.shape}")
    # Nothing prepared (the series itself): its DVARS once.
    dvars_after = first.dvars_before.copy() if same else dvars(after)
    return CarpetSample(
        first.points, first.before, np.asarray(after[first.points], dtype=np.float32),
        first.dvars_before, dvars_after, kept, n_points,
    )


def leaf_order(children) -> np.ndarray:
    """The leaves of a tree as a depth-first walk from its root meets them (first child first).

    Every subtree's leaves are consecutive in this order, so every cut of
    the tree puts each cluster's leaves together.

    Parameters
    ----------
    children : ndarray of shape (n_leaves - 1, 2)
        Merges in scikit-learn's convention (row ``i`` makes node
        ``n_leaves + i``), a full tree (one root).

    Returns
    -------
    order : ndarray of shape (n_leaves,), intp
        The leaves, in the walk's order.
    """
    children = np.asarray(children)
    if children.ndim != 2 or children.shape[1] != 2:
        raise ValueError(f"children must have shape (n_leaves - 1, 2), got {children.shape}")
    n_leaves = children.shape[0] + 1
    # Each node's first leaf position: the root's is 0, a node's first child
    # starts where it does and its second child after the first's leaves.
    sizes = np.ones(2 * n_leaves - 1, dtype=np.intp)
    for i, (a, b) in enumerate(children.tolist()):
        sizes[n_leaves + i] = sizes[a] + sizes[b]
    if sizes[-1] != n_leaves:
        raise ValueError("children is not a full tree: its last merge does not hold every leaf")
    start = np.zeros(2 * n_leaves - 1, dtype=np.intp)
    for i in range(n_leaves - 2, -1, -1):
        a, b = children[i]
        start[a] = start[n_leaves + i]
        start[b] = start[a] + sizes[a]
    order = np.empty(n_leaves, dtype=np.intp)
    order[start[:n_leaves]] = np.arange(n_leaves)
    return order


def tree_rows(children, points, *, n_branches: int = 5) -> tuple[np.ndarray, np.ndarray]:
    """Sampled rows in the tree's leaf order, with the main branch each lies in.

    Parameters
    ----------
    children : ndarray of shape (n_leaves - 1, 2)
        The Ward tree of the series' points (:func:`leaf_order`).
    points : array of int
        The sampled points (:attr:`CarpetSample.points`), leaves of the tree.
    n_branches : int, default=5
        The tree is cut in that many branches (fewer when it has fewer leaves).

    Returns
    -------
    rows : ndarray of shape (n_sampled,), intp
        Positions in ``points``, in the leaf order of their points.
    branches : ndarray of shape (n_sampled,), intp
        The branch of each of ``rows``, ``0 ..``, numbered in leaf order
        (so non-decreasing).
    """
    children = np.asarray(children)
    n_leaves = children.shape[0] + 1
    points = np.asarray(points, dtype=np.intp)
    if points.size and (points.min() < 0 or points.max() >= n_leaves):
        raise ValueError(f"points must be leaves of the tree (0 to {n_leaves - 1})")
    rank = np.empty(n_leaves, dtype=np.intp)
    rank[leaf_order(children)] = np.arange(n_leaves)
    rows = np.argsort(rank[points], kind="stable")
    labels = cut_tree(children, min(check_int(n_branches, "n_branches"), n_leaves))
    branch = labels[points[rows]]
    # Renumbered by first appearance in leaf order (each branch is consecutive).
    _, first, inverse = np.unique(branch, return_index=True, return_inverse=True)
    return rows, np.argsort(np.argsort(first))[inverse].astype(np.intp)


def expand_volumes(values, kept, n_volumes: int) -> np.ndarray:
    """Rows over the kept volumes placed at their volumes, NaN at the censored ones.

    ``values`` is (n_rows, len(kept)) or (len(kept),); the result has
    ``n_volumes`` columns (float64).
    """
    values = np.asarray(values, dtype=np.float64)
    kept = np.asarray(kept, dtype=np.intp)
    if values.shape[-1] != kept.size:
        raise ValueError(f"values have {values.shape[-1]} volumes, kept has {kept.size}")
    out = np.full(values.shape[:-1] + (n_volumes,), np.nan)
    out[..., kept] = values
    return out


def _check_series(X, name):
    if not hasattr(X, "shape") or len(X.shape) != 2:
        raise ValueError(f"{name} must be a 2D array (points x volumes), got "
                         f"{getattr(X, 'shape', type(X).__name__)}")
    if X.shape[0] < 1 or X.shape[1] < 2:
        raise ValueError(f"{name} needs at least 1 point and 2 volumes, got {X.shape}")
    return X
