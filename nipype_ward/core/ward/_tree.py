"""Connectivity-constrained Ward tree and its cuts (arrays only, no I/O)."""

from __future__ import annotations

import sys
import warnings
from typing import NamedTuple

import numpy as np
from scipy import sparse

from nipype_ward.core.validation import check_int, count_nonfinite_rows
from nipype_ward.core.ward import _ward_fast

#: Above this many disconnected pieces the top joins (a dense pairwise
#: search) would be too slow to be worth it: such a mask is not a brain mask.
MAX_COMPONENTS = 5000

#: Node ids (up to ``2 * n_samples - 2``) are stored as 32-bit integers.
MAX_SAMPLES = 2**30

#: Fresh kernel memory a tree may ask to be backed by transparent huge pages;
#: beyond it, 4 kB pages. Huge pages spare the merge loop's random reads TLB
#: misses while they come hot, but a virtual machine hands free ones back cold
#: (this 2-core VM: a 2 mm tree of 1,200 volumes, 0.9 GB of rows, took 7.3-8.2 s
#: with 4.7-5.1 s in the system, against 3.9-4.2 s in 4 kB pages and 2.4-3.9 s
#: with hot huge pages). A cortical hemisphere or a 3 mm brain needs about 50 MB,
#: which the kernel keeps between trees.
HUGE_PAGE_BYTES = 64 << 20

#: Merged clusters of at most this many samples keep only their centroid in
#: the kernel, not their sums (made again from their samples when a merge
#: needs them: the same bits), in the trees of series of at least
#: :data:`SMALL_CLUSTERS_FROM` values. The kernel's memory is a centroid and
#: a sums row (float64) per merged cluster alive: on a 2 mm brain mask
#: (235,170 voxels, 1,200 volumes) 859 MiB at the peak, 520 MiB this way;
#: the tree node (the full tree beside its two halves) 1.38-1.41 against
#: 0.87-0.88 GB, 4.30-4.57 against 4.52-4.86 s (2 cores, 2026-12-06, four
#: runs each, alternating); pairs of float32 samples then keep no row at
#: all, which takes the tree node to 724-747 MiB in the same time. A
#: cortical mesh or a 3 mm brain needs 50 MB either way, and its tree would
#: be 5 to 10 % slower.
SMALL_CLUSTER_SIZE = 8
SMALL_CLUSTERS_FROM = 2**27  # values: 512 MB of float32, a 2 mm brain x 570 volumes


class WardTree(NamedTuple):
    """A full Ward tree over ``n_leaves`` samples.

    Attributes
    ----------
    children : ndarray of shape (n_leaves - 1, 2), intp
        Row ``i`` merges two nodes into node ``n_leaves + i`` (scikit-learn's
        convention); leaves are ``0 .. n_leaves - 1``.
    distances : ndarray of shape (n_leaves - 1,), float64
        Ward distance of each merge, ``sqrt(2 * inertia)`` as in scikit-learn.
    sizes : ndarray of shape (n_leaves - 1,), intp
        Number of leaves under each new node.
    n_components : int
        Connected pieces of the connectivity graph; the last
        ``n_components - 1`` merges join pieces (see :func:`ward_tree`).
    """

    children: np.ndarray
    distances: np.ndarray
    sizes: np.ndarray
    n_components: int

    @property
    def n_leaves(self) -> int:
        return self.children.shape[0] + 1


def check_connectivity(connectivity, n_samples: int) -> sparse.csr_matrix:
    """Validate an adjacency matrix and return it as CSR without diagonal.

    Parameters
    ----------
    connectivity : sparse matrix of shape (n_samples, n_samples)
        Adjacency: any non-zero entry is an edge, the diagonal is ignored.
        A non-symmetric matrix (a directed graph, such as scikit-learn's
        ``kneighbors_graph``) is made undirected, an edge joining ``i`` and
        ``j`` when ``C[i, j]`` or ``C[j, i]`` is non-zero: the graph of
        ``C + C.T``, which scikit-learn's ``ward_tree`` uses. That case emits
        one ``UserWarning``.
    n_samples : int
        Number of samples it must describe.

    Returns
    -------
    csr_matrix with intp indices, sorted, no explicit zeros, no diagonal,
    symmetric (boolean pattern).

    Raises
    ------
    TypeError
        If ``connectivity`` is not a SciPy sparse matrix or array.
    ValueError
        If it is not square or does not describe ``n_samples`` samples.
    """
    if not sparse.issparse(connectivity):
        raise TypeError(
            f"connectivity must be a scipy sparse matrix, got {type(connectivity).__name__}"
        )
    if connectivity.ndim != 2 or connectivity.shape[0] != connectivity.shape[1]:
        raise ValueError(f"connectivity must be square, got shape {connectivity.shape}")
    if connectivity.shape[0] != n_samples:
        raise ValueError(
            f"connectivity describes {connectivity.shape[0]} samples "
            f"but the data has {n_samples}"
        )
    shape = (n_samples, n_samples)
    graph = connectivity.tocsr()  # the caller's matrix is never modified
    if graph.has_canonical_format and graph.data.all():
        # The common case (a mesh, grid_to_graph): sorted, no duplicates nor
        # explicit zeros, symmetric; the diagonal dropped and the symmetry
        # checked in two compiled passes.
        offdiagonal = _ward_fast.symmetric_offdiagonal(graph.indptr, graph.indices)
        if offdiagonal is not None:
            indptr, indices = offdiagonal
            if len(indices) == graph.nnz and _is_pattern(graph):
                # Already what this returns (checked before, e.g. once for a
                # tree and its split halves): shared, not copied again.
                return graph
            pattern = sparse.csr_matrix(
                (np.ones(len(indices), dtype=bool), indices, indptr), shape=shape
            )
            pattern.indptr = indptr  # intp, whatever the constructor chose
            pattern.indices = indices
            return pattern
    if graph.has_canonical_format:
        # The common case (grid_to_graph): sorted, no duplicates; only the
        # diagonal and explicit zeros to drop.
        rows = np.repeat(np.arange(n_samples, dtype=np.intp), np.diff(graph.indptr))
        keep = (graph.indices != rows) & (graph.data != 0)
        indices = graph.indices[keep].astype(np.intp)
        indptr = np.zeros(n_samples + 1, dtype=np.intp)
        np.cumsum(np.bincount(rows[keep], minlength=n_samples), out=indptr[1:])
        pattern = sparse.csr_matrix(
            (np.ones(len(indices), dtype=bool), indices, indptr), shape=shape
        )
    else:
        edges = graph.tocoo()
        keep = (edges.row != edges.col) & (edges.data != 0)
        pattern = sparse.csr_matrix(
            (np.ones(int(keep.sum()), dtype=bool), (edges.row[keep], edges.col[keep])),
            shape=shape,
        )
        pattern.sum_duplicates()
    # Symmetric iff the transpose, also canonical (CSC of the pattern), has
    # the same structure.
    transposed = pattern.tocsc()
    if not (np.array_equal(pattern.indptr, transposed.indptr)
            and np.array_equal(pattern.indices, transposed.indices)):
        # A directed graph (e.g. kneighbors_graph): made undirected, as
        # scikit-learn's _fix_connectivity does with C + C.T.
        n_entries = pattern.nnz
        pattern = (pattern + pattern.T).tocsr()  # boolean: the union of the edges
        pattern.sum_duplicates()
        _warn(
            f"connectivity is not symmetric ({pattern.nnz - n_entries} of its "
            f"{n_entries} entries have no reverse): using C + C.T, as scikit-learn does"
        )
    pattern.indptr = pattern.indptr.astype(np.intp, copy=False)
    pattern.indices = pattern.indices.astype(np.intp, copy=False)
    return pattern


def _is_pattern(graph: sparse.csr_matrix) -> bool:
    """Whether a CSR matrix is stored as :func:`check_connectivity` returns it."""
    return (graph.dtype == bool and graph.indptr.dtype == np.intp
            and graph.indices.dtype == np.intp)


def _warn(message: str) -> None:
    """A ``UserWarning`` attributed to the first caller outside this module.

    The public functions call each other (``ward_tree`` -> ``build_ward_tree``
    -> ``check_connectivity``): the warning points at the user's line whatever
    the depth, so that the default filter shows it once per calling line.
    """
    frame, stacklevel = sys._getframe(1), 2
    while frame is not None and frame.f_code.co_filename == __file__:
        frame, stacklevel = frame.f_back, stacklevel + 1
    warnings.warn(message, UserWarning, stacklevel=stacklevel)


def check_samples(X, *, check_finite: bool = True) -> np.ndarray:
    """Validate the data matrix and return it as a float array with contiguous rows.

    float32 and float64 data are used as given (no copy when each row is
    contiguous, as in a slice of the columns of a C-ordered array, e.g. the
    volumes of a split half): the kernel only reads them, converting to
    float64 on the fly, which is exact.
    Other real dtypes are converted to float64, as scikit-learn does when it
    copies them into its float64 moments. NaN and infinite values raise a
    ``ValueError`` unless ``check_finite`` is False (:func:`build_ward_tree`
    leaves that check to the kernel's first pass over X, see
    ``_ward_fast.ward_merge``).
    """
    X = np.asarray(X)
    if X.ndim != 2:
        raise ValueError(f"X must be 2D (n_samples, n_features), got shape {X.shape}")
    if X.shape[0] < 1 or X.shape[1] < 1:
        raise ValueError(f"X must have at least one sample and one feature, got {X.shape}")
    if not np.issubdtype(X.dtype, np.number) or np.iscomplexobj(X):
        raise TypeError(f"X must be real numbers, got dtype {X.dtype}")
    if X.shape[0] >= MAX_SAMPLES:
        raise ValueError(f"X has {X.shape[0]} samples, more than supported ({MAX_SAMPLES - 1})")
    if X.dtype not in (np.float32, np.float64):
        X = X.astype(np.float64)
    if not _rows_contiguous(X):
        X = np.ascontiguousarray(X)
    if check_finite:
        _check_finite(X)
    return X


def _rows_contiguous(X: np.ndarray) -> bool:
    """Whether the kernel reads ``X`` as it is: each row contiguous, rows in order."""
    return (X.shape[1] == 1 or X.strides[1] == X.itemsize) and X.strides[0] > 0


def _check_finite(X: np.ndarray) -> None:
    """Raise a ``ValueError`` if X has NaN or infinite values."""
    bad = count_nonfinite_rows(X)
    if bad:
        raise ValueError(f"X has NaN or infinite values in {bad} samples")


def ward_tree(
    X, connectivity, *, warn_components: bool = True, threads: int = 1
) -> tuple[np.ndarray, np.ndarray]:
    """Exact connectivity-constrained Ward tree, as scikit-learn's but compiled.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features), float32 or float64
        The samples to cluster (voxels x time points for a parcellation).
        Sums are accumulated in float64.
    connectivity : sparse matrix of shape (n_samples, n_samples)
        Adjacency: only touching clusters may merge. Any non-zero entry is
        an edge and the diagonal is ignored. A non-symmetric matrix (a
        directed graph, e.g. ``kneighbors_graph``) is used as ``C + C.T``,
        as scikit-learn does, with a ``UserWarning`` (see
        :func:`check_connectivity`).
    warn_components : bool, default=True
        Emit a ``UserWarning`` when the graph has several connected pieces,
        naming their number and what a cut at ``K`` then means (see
        *Disconnected graphs*). Callers that report the pieces themselves
        (the workflows) pass False.
    threads : int, default=1
        With 2 or more, the kernel's first pass (the inertias of all pairs of
        touching samples, a tenth of a tree on a cortical mesh) runs on two
        threads; the merges are sequential. The tree does not depend on it.

    Returns
    -------
    children : ndarray of shape (n_samples - 1, 2)
        Row ``i`` merges ``children[i]`` into node ``n_samples + i``; the
        smaller id comes first, as in scikit-learn.
    distances : ndarray of shape (n_samples - 1,)
        ``sqrt(2 * inertia)`` of each merge, as in scikit-learn.

    Notes
    -----
    *Exactness.* On a connected graph the merges and distances are those of
    ``sklearn.cluster.ward_tree(X, connectivity=connectivity,
    return_distance=True)``: the same inertia expression is evaluated in the
    same order, and ties are broken the same way, by the larger then the
    smaller node id of the candidate pair: candidates are ordered by
    ``(inertia, larger id, smaller id)``, so among equal inertias the pair
    whose larger id is smallest merges first (scikit-learn's heap tuples).
    The result is deterministic.

    *Cost.* X is read in place when it is C-ordered float32 or float64
    (otherwise converted once), never modified; the kernel keeps the sums and
    centroids of the merged clusters alive at a time (float64; for a series of
    ``SMALL_CLUSTERS_FROM`` values or more, only the centroids of those of
    at most ``SMALL_CLUSTER_SIZE`` samples), plus small per-cluster lists.
    On the MNI 3 mm brain mask (69,765 voxels, 176 volumes) this is about 0.2 s
    and 70 MB, float32 or float64, against 7-8 s and 360 MB for scikit-learn
    (2 cores, 2026-12-06); see ``bench/bench_ward.py``.

    *Disconnected graphs.* Touching clusters are merged until each connected
    piece is one cluster; no edge is invented between far-apart samples (which
    scikit-learn does, with a warning, by nearest neighbours in feature
    space). The pieces are then joined at the top of the tree, greedily by
    unconstrained Ward inertia between whole pieces. Hence a cut at
    ``K >= n_components`` gives parcels that each lie inside one piece, and a
    cut at ``K < n_components`` unites whole pieces. With ``warn_components``
    a ``UserWarning`` says so. The merges inside each piece are
    scikit-learn's on that piece alone, but scikit-learn's tree over the whole
    graph generally differs (its invented edges let clusters of different
    pieces merge early), and so do its labels.
    """
    tree = build_ward_tree(X, connectivity, warn_components=warn_components, threads=threads)
    return tree.children, tree.distances


def build_ward_tree(
    X, connectivity, *, warn_components: bool = True, threads: int = 1
) -> WardTree:
    """Like :func:`ward_tree`, returning a :class:`WardTree` with sizes."""
    threads = check_int(threads, "threads")
    samples = check_samples(X, check_finite=False)  # checked by the kernel
    n_samples = samples.shape[0]
    graph = check_connectivity(connectivity, n_samples)

    n_merges_total = n_samples - 1
    children = np.empty((n_merges_total, 2), dtype=np.intp)
    inertia = np.empty(n_merges_total, dtype=np.float64)
    sizes = np.empty(n_merges_total, dtype=np.intp)
    arrays = (samples, graph.indptr, graph.indices, children, inertia, sizes)
    small = SMALL_CLUSTER_SIZE if samples.size >= SMALL_CLUSTERS_FROM else 1
    _ward_fast._huge_page_budget(HUGE_PAGE_BYTES)
    merged = _ward_fast.ward_merge(*arrays, check_finite=True, small_size=small,
                                   threads=threads)
    if merged is None:
        # A sample's squared norm is not finite: NaN or infinite values
        # (raised here), or float64 values too large to square.
        _check_finite(samples)
        merged = _ward_fast.ward_merge(*arrays, check_finite=False, small_size=small,
                                       threads=threads)
    n_merges, roots, root_sums, root_sizes = merged
    n_components = len(roots)
    if n_components > 1:
        if n_components > MAX_COMPONENTS:
            raise ValueError(
                f"the connectivity graph has {n_components} disconnected pieces "
                f"(more than {MAX_COMPONENTS}); use a larger neighbourhood or "
                "remove isolated voxels from the mask"
            )
        if warn_components:
            _warn(
                f"the connectivity graph has {n_components} connected pieces: they are "
                f"joined only by the last {n_components - 1} merges of the tree, by the "
                f"Ward distance between whole pieces; a cut at K >= {n_components} gives "
                f"parcels inside one piece each, and a cut at K < {n_components} merges "
                "whole pieces (scikit-learn instead bridges the pieces with edges between "
                "nearest samples, so its tree and labels generally differ)"
            )
        _join_components(
            root_sums, root_sizes.astype(np.float64), roots,
            first_node=n_samples + n_merges,
            children=children[n_merges:], inertia=inertia[n_merges:], sizes=sizes[n_merges:],
        )
    distances = np.sqrt(2.0 * inertia)
    return WardTree(children, distances, sizes, n_components)


def _join_components(sums, weights, node_ids, *, first_node, children, inertia, sizes):
    """Greedy unconstrained Ward over the roots of the connected pieces.

    Fills ``children``, ``inertia`` and ``sizes`` (views on the tree's arrays)
    in place. Ties go to the lowest pair of positions, so the result is
    deterministic.
    """
    sums = sums.copy()
    weights = weights.copy()
    node_ids = node_ids.copy()
    n = len(weights)
    alive = np.ones(n, dtype=bool)

    def inertia_to(a):
        centroids = sums / weights[:, None]
        sq = ((centroids - centroids[a]) ** 2).sum(axis=1)
        out = sq * (weights * weights[a]) / (weights + weights[a])
        out[a] = np.inf
        out[~alive] = np.inf
        return out

    pairwise = np.vstack([inertia_to(a) for a in range(n)])
    for step in range(n - 1):
        flat = int(np.argmin(pairwise))
        a, b = divmod(flat, n)
        a, b = min(a, b), max(a, b)
        lo, hi = sorted((node_ids[a], node_ids[b]))
        children[step] = (lo, hi)
        inertia[step] = pairwise[a, b]
        # The merged cluster takes position a; position b dies.
        sums[a] += sums[b]
        weights[a] += weights[b]
        sizes[step] = int(weights[a])
        node_ids[a] = first_node + step
        alive[b] = False
        pairwise[b, :] = np.inf
        pairwise[:, b] = np.inf
        row = inertia_to(a)
        pairwise[a, :] = row
        pairwise[:, a] = row


def cut_tree(children, n_clusters: int) -> np.ndarray:
    """Labels of the leaves for a cut of the tree into ``n_clusters`` clusters.

    Parameters
    ----------
    children : ndarray of shape (n_leaves - 1, 2)
        Merges in scikit-learn's convention (see :func:`ward_tree`).
    n_clusters : int
        Number of clusters, ``1 <= n_clusters <= n_leaves``.

    Returns
    -------
    labels : ndarray of shape (n_leaves,), intp
        ``0 .. n_clusters - 1``, numbered in order of first appearance over
        the leaves. Runs in O(n_leaves).
    """
    children = np.ascontiguousarray(children, dtype=np.intp)
    if children.ndim != 2 or children.shape[1] != 2:
        raise ValueError(f"children must have shape (n_leaves - 1, 2), got {children.shape}")
    n_leaves = children.shape[0] + 1
    n_clusters = check_int(n_clusters, "n_clusters (between 1 and the number of leaves)",
                           high=n_leaves)
    return _ward_fast.cut_labels(children, n_leaves, n_clusters)
