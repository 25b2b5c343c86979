"""Exactness, structure and input checks of the compiled Ward tree.

The reference is scikit-learn's ``ward_tree``: on a connected graph ours must
give the same merges and the same distances, bit for bit. Data are continuous
random values drawn from hypothesis-controlled seeds, so exact ties are not
expected (and where they happen, both break them the same way).
"""
from __future__ import annotations

import contextlib
import warnings
from concurrent.futures import ThreadPoolExecutor

import nibabel as nb
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy import sparse
from scipy.sparse.csgraph import connected_components
from sklearn.cluster import AgglomerativeClustering
from sklearn.cluster import ward_tree as sklearn_ward_tree
from sklearn.feature_extraction.image import grid_to_graph
from sklearn.neighbors import kneighbors_graph

from nipype_ward.core.ward import (
    MAX_COMPONENTS,
    _ward_fast,
    build_ward_tree,
    check_connectivity,
    cut_tree,
    ward_tree,
)
from nipype_ward.core.ward import _tree
from nipype_ward.core.ward._tree import check_samples

# No example database in the working tree; no deadline (timings vary on a
# loaded machine, and each example also runs scikit-learn).
SETTINGS = dict(deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow])

seeds = st.integers(0, 2**32 - 1)
dtypes = st.sampled_from([np.float32, np.float64])


# --------------------------------------------------------------------------
# Graphs and data


def random_connected_graph(rng, n, n_extra):
    """A random spanning tree plus ``n_extra`` random edges, symmetric CSR."""
    order = rng.permutation(n)
    rows, cols = [], []
    for i in range(1, n):
        rows.append(order[i])
        cols.append(order[rng.integers(0, i)])
    if n > 1:
        rows.extend(rng.integers(0, n, n_extra))
        cols.extend(rng.integers(0, n, n_extra))
    rows, cols = np.asarray(rows, dtype=int), np.asarray(cols, dtype=int)
    keep = rows != cols
    rows, cols = rows[keep], cols[keep]
    graph = sparse.coo_matrix(
        (np.ones(2 * len(rows)), (np.r_[rows, cols], np.r_[cols, rows])), shape=(n, n)
    ).tocsr()
    graph.data[:] = 1.0  # duplicates were summed
    return graph


def random_blob(rng, shape, size):
    """A 6-connected random mask of ``size`` voxels grown from one seed voxel."""
    mask = np.zeros(shape, dtype=bool)
    start = tuple(int(rng.integers(0, s)) for s in shape)
    mask[start] = True
    frontier = [start]
    steps = [(1, 0, 0), (-1, 0, 0), (0, 1, 0), (0, -1, 0), (0, 0, 1), (0, 0, -1)]
    while mask.sum() < size:
        voxel = frontier[int(rng.integers(0, len(frontier)))]
        step = steps[int(rng.integers(0, 6))]
        nxt = tuple(v + d for v, d in zip(voxel, step))
        if all(0 <= v < s for v, s in zip(nxt, shape)) and not mask[nxt]:
            mask[nxt] = True
            frontier.append(nxt)
    return mask


def simd_levels():
    """The code paths of the kernel's sums this CPU can run (0: plain C++)."""
    previous = _ward_fast._simd_level(-1)  # the best one
    best = _ward_fast._simd_level()
    _ward_fast._simd_level(previous)
    return list(range(best + 1))


SIMD_LEVELS = simd_levels()

#: Sizes up to which merged clusters keep only their centroid in the kernel
#: (1: every one keeps its sums too, the kernel's default; 8: the size of large trees).
SMALL_SIZES = (1, 2, 3, 8)


@contextlib.contextmanager
def small_clusters(size):
    """Every tree made inside keeps only the centroid of clusters of at most ``size``."""
    previous = _tree.SMALL_CLUSTER_SIZE, _tree.SMALL_CLUSTERS_FROM
    _tree.SMALL_CLUSTER_SIZE, _tree.SMALL_CLUSTERS_FROM = size, 0
    try:
        yield
    finally:
        _tree.SMALL_CLUSTER_SIZE, _tree.SMALL_CLUSTERS_FROM = previous


def reference(X, graph):
    children, _, _, _, distances = sklearn_ward_tree(
        X, connectivity=graph, return_distance=True
    )
    return children, distances


def assert_same_as_sklearn(X, graph, threads=1):
    """Ours, with each SIMD code path and each way of keeping small clusters,
    against scikit-learn: bit-identical."""
    ref_children, ref_distances = reference(X, graph)
    previous = _ward_fast._simd_level()
    try:
        for level in SIMD_LEVELS:
            _ward_fast._simd_level(level)
            for size in SMALL_SIZES:
                with small_clusters(size):
                    children, distances = ward_tree(X, graph, threads=threads)
                np.testing.assert_array_equal(children, ref_children)
                # Bit-identical, not merely close.
                np.testing.assert_array_equal(distances, ref_distances)
    finally:
        _ward_fast._simd_level(previous)
    return children, distances


def leaves_of(children, n_leaves):
    """Leaves under every node, as a list of sets indexed by node id."""
    members = [{i} for i in range(n_leaves)]
    for a, b in children:
        members.append(members[a] | members[b])
    return members


def is_connected_within(graph, leaves):
    sub = graph[leaves][:, leaves]
    return connected_components(sub, directed=False)[0] == 1


def same_partition(labels, other):
    """True if the two labelings are equal up to a renumbering."""
    pairs = set(zip(labels.tolist(), other.tolist()))
    return len(pairs) == len(set(labels.tolist())) == len(set(other.tolist()))


# --------------------------------------------------------------------------
# Exactness against scikit-learn


@settings(max_examples=200, **SETTINGS)
@given(n=st.integers(2, 60), n_features=st.integers(1, 8),
       n_extra=st.integers(0, 400), seed=seeds, dtype=dtypes)
def test_random_graphs_match_sklearn(n, n_features, n_extra, seed, dtype):
    rng = np.random.default_rng(seed)
    graph = random_connected_graph(rng, n, n_extra)
    X = rng.standard_normal((n, n_features)).astype(dtype)
    assert_same_as_sklearn(X, graph)


@settings(max_examples=150, **SETTINGS)
@given(shape=st.tuples(*[st.integers(2, 6)] * 3), fill=st.floats(0.05, 1.0),
       n_features=st.integers(1, 8), seed=seeds, dtype=dtypes)
def test_grid_blobs_match_sklearn(shape, fill, n_features, seed, dtype):
    rng = np.random.default_rng(seed)
    size = max(2, min(60, int(fill * np.prod(shape))))
    mask = random_blob(rng, shape, size)
    graph = grid_to_graph(*shape, mask=mask)  # 6-neighbour, with the diagonal
    # Values of a real scale and offset, like a BOLD series.
    X = (800 + 20 * rng.standard_normal((size, n_features))).astype(dtype)
    assert_same_as_sklearn(X, graph)


def test_simd_levels_are_available():
    assert SIMD_LEVELS[0] == 0 and len(SIMD_LEVELS) >= 1
    assert _ward_fast._simd_level() == SIMD_LEVELS[-1], "the best path is the default"


def test_full_grid_and_larger_graph_match_sklearn(rng):
    mask = np.ones((9, 8, 7), dtype=bool)
    graph = grid_to_graph(*mask.shape, mask=mask)
    X = rng.standard_normal((mask.sum(), 30)).astype(np.float32)
    assert_same_as_sklearn(X, graph)
    graph = random_connected_graph(rng, 1500, 3000)
    assert_same_as_sklearn(rng.standard_normal((1500, 12)), graph)


def test_trees_on_threads_from_blocks_faulted_in_ahead_match_sklearn(rng):
    # Large enough rows (641 float64 per merged cluster) and samples for the
    # kernel to fault in blocks of rows on a thread of its own while each tree
    # starts (n // 3 rows: several 2 MB blocks); two trees at once, as a
    # workflow's split halves run, sharing the blocks kept between trees.
    shape = (24, 20, 12)
    graph = grid_to_graph(*shape)
    n = int(np.prod(shape))
    assert n // 3 * (2 * 320 + 1) * 8 >= 4 * 2**21
    series = [rng.standard_normal((n, 320)).astype(np.float32) for _ in range(2)]
    with ThreadPoolExecutor(2) as pool:
        trees = list(pool.map(lambda X: ward_tree(X, graph), series))
    for X, (children, distances) in zip(series, trees):
        ref_children, ref_distances = reference(X, graph)
        np.testing.assert_array_equal(children, ref_children)
        np.testing.assert_array_equal(distances, ref_distances)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_first_pass_on_two_threads_matches_sklearn(rng, dtype):
    # Enough values of pairs (3 pairs a voxel x 24 volumes, over a million)
    # for the kernel, given two threads, to compute the samples' pairs on
    # both, each over the rows of half of them.
    shape = (30, 30, 20)
    graph = grid_to_graph(*shape)
    assert (graph.nnz - graph.shape[0]) // 2 * 24 >= 2**20
    X = (800 + 20 * rng.standard_normal((graph.shape[0], 24))).astype(dtype)
    assert_same_as_sklearn(X, graph, threads=2)


@pytest.mark.parametrize("row", [10, -1])
def test_non_finite_sample_found_by_either_thread(rng, row):
    shape = (30, 30, 20)
    graph = grid_to_graph(*shape)
    X = rng.standard_normal((graph.shape[0], 24))
    X[row, 3] = np.nan
    with pytest.raises(ValueError, match="NaN or infinite values in 1 samples"):
        ward_tree(X, graph, threads=2)
    X[row, 3] = 1e200  # finite, but its square overflows: a tree all the same
    children, distances = ward_tree(X, graph, threads=2)
    assert children.shape == (graph.shape[0] - 1, 2) and np.isinf(distances).any()


def test_input_dtypes_and_layouts(rng):
    graph = random_connected_graph(rng, 40, 40)
    X = rng.standard_normal((40, 5))
    ref = reference(X, graph)
    for variant in (np.asfortranarray(X), X[:, ::-1][:, ::-1], X.tolist()):
        children, distances = ward_tree(variant, graph)
        np.testing.assert_array_equal(children, ref[0])
        np.testing.assert_array_equal(distances, ref[1])
    ints = rng.integers(-1000, 1000, (40, 5))
    assert_same_as_sklearn(ints, graph)
    # The inputs are read, never written.
    X_copy, graph_copy = X.copy(), graph.copy()
    ward_tree(X, graph)
    np.testing.assert_array_equal(X, X_copy)
    assert (graph != graph_copy).nnz == 0 and graph.has_canonical_format
    # Other sparse formats, duplicate entries, a diagonal, and explicit zeros
    # (which are not edges).
    coo = graph.tocoo()
    non_edges = np.argwhere((graph.toarray() == 0) & ~np.eye(40, dtype=bool))[:3]
    rows = np.r_[coo.row, coo.row, np.arange(40), non_edges[:, 0], non_edges[:, 1]]
    cols = np.r_[coo.col, coo.col, np.arange(40), non_edges[:, 1], non_edges[:, 0]]
    data = np.r_[coo.data, 2 * coo.data, np.ones(40), np.zeros(6)]
    messy = sparse.coo_matrix((data, (rows, cols)), shape=graph.shape)
    for variant in (messy, messy.tocsc(), sparse.lil_matrix(messy), sparse.csr_array(messy)):
        children, distances = ward_tree(X, variant)
        np.testing.assert_array_equal(children, ref[0])
        np.testing.assert_array_equal(distances, ref[1])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_row_strided_views_are_read_in_place(rng, dtype):
    """A split half (a slice of the columns), every other row, a column per two:
    the same tree as scikit-learn's on a contiguous copy; rows that are
    contiguous are read where they are, without a copy."""
    graph = random_connected_graph(rng, 40, 60)
    X = rng.standard_normal((80, 12)).astype(dtype)
    views = {"first half": X[:40, :6], "second half": X[:40, 6:],
             "every other row": X[::2, 1:11], "every other column": X[:40, ::2]}
    for name, view in views.items():
        assert np.shares_memory(check_samples(view), X) == (name != "every other column")
        assert_same_as_sklearn(view, graph)


# --------------------------------------------------------------------------
# Structure of the tree


@settings(max_examples=60, **SETTINGS)
@given(n=st.integers(2, 50), n_extra=st.integers(0, 50), seed=seeds)
def test_every_merge_joins_touching_clusters(n, n_extra, seed):
    rng = np.random.default_rng(seed)
    graph = random_connected_graph(rng, n, n_extra)
    tree = build_ward_tree(rng.standard_normal((n, 3)), graph)
    members = leaves_of(tree.children, n)
    for step, (a, b) in enumerate(tree.children):
        assert a < b < n + step, "children must be existing nodes, smaller first"
        rows, cols = sorted(members[a]), sorted(members[b])
        assert graph[rows][:, cols].nnz > 0, f"merge {step} joins clusters that do not touch"
        assert tree.sizes[step] == len(members[a]) + len(members[b])
    # Every node is merged exactly once, and the root covers everything.
    assert sorted(tree.children.ravel()) == list(range(2 * n - 2))
    assert tree.n_components == 1


@settings(max_examples=40, **SETTINGS)
@given(n=st.integers(2, 50), n_extra=st.integers(0, 50), seed=seeds, data=st.data())
def test_cut_tree_gives_connected_parcels_like_sklearn(n, n_extra, seed, data):
    rng = np.random.default_rng(seed)
    graph = random_connected_graph(rng, n, n_extra)
    X = rng.standard_normal((n, 4))
    children, _ = ward_tree(X, graph)
    for n_clusters in sorted({1, n, *data.draw(st.lists(st.integers(1, n), max_size=3))}):
        labels = cut_tree(children, n_clusters)
        assert labels.shape == (n,)
        assert sorted(set(labels.tolist())) == list(range(n_clusters))
        for label in range(n_clusters):
            assert is_connected_within(graph, np.flatnonzero(labels == label))
        if n_clusters < n:
            model = AgglomerativeClustering(
                n_clusters=n_clusters, connectivity=graph, linkage="ward"
            ).fit(X)
            assert same_partition(labels, model.labels_)


def test_cut_tree_numbering_is_by_first_appearance():
    # Leaves 0,1 merge, then 2,3, then the two pairs.
    children = np.array([[0, 1], [2, 3], [4, 5]])
    np.testing.assert_array_equal(cut_tree(children, 1), [0, 0, 0, 0])
    np.testing.assert_array_equal(cut_tree(children, 2), [0, 0, 1, 1])
    np.testing.assert_array_equal(cut_tree(children, 3), [0, 0, 1, 2])
    np.testing.assert_array_equal(cut_tree(children, 4), [0, 1, 2, 3])


# --------------------------------------------------------------------------
# Disconnected graphs


def pieces_graph(rng, sizes, n_extra):
    """Block-diagonal union of random connected graphs; piece of each node."""
    blocks = [random_connected_graph(rng, size, n_extra) for size in sizes]
    piece = np.repeat(np.arange(len(sizes)), sizes)
    return sparse.block_diag(blocks, format="csr"), piece


@settings(max_examples=50, **SETTINGS)
@given(sizes=st.lists(st.integers(1, 15), min_size=2, max_size=4),
       n_extra=st.integers(0, 20), seed=seeds, shuffle=st.booleans())
def test_disconnected_pieces_join_only_at_the_top(sizes, n_extra, seed, shuffle):
    rng = np.random.default_rng(seed)
    graph, piece = pieces_graph(rng, sizes, n_extra)
    n, n_pieces = len(piece), len(sizes)
    if shuffle:
        order = rng.permutation(n)
        graph, piece = graph[order][:, order], piece[order]
    X = rng.standard_normal((n, 3))
    tree = build_ward_tree(X, graph, warn_components=False)
    assert tree.n_components == n_pieces
    members = leaves_of(tree.children, n)
    for step, (a, b) in enumerate(tree.children):
        joined = {piece[i] for i in members[a] | members[b]}
        if step < n - n_pieces:
            assert len(joined) == 1, f"merge {step} mixes pieces before the top"
        else:
            assert len({piece[i] for i in members[a]} & {piece[i] for i in members[b]}) == 0
    for n_clusters in range(n_pieces, min(n, n_pieces + 4) + 1):
        labels = cut_tree(tree.children, n_clusters)
        for label in range(n_clusters):
            assert len(set(piece[labels == label])) == 1
    # Deterministic: the same tree twice.
    again = build_ward_tree(X, graph, warn_components=False)
    np.testing.assert_array_equal(again.children, tree.children)
    np.testing.assert_array_equal(again.distances, tree.distances)
    assert np.all(np.isfinite(tree.distances))


def test_disconnected_pieces_follow_sklearn_within_each_piece(rng):
    # Within one piece the merges are those of scikit-learn on that piece
    # alone (same order, same distances), with node ids renumbered.
    sizes = [23, 17, 30]
    graph, piece = pieces_graph(rng, sizes, 25)
    X = rng.standard_normal((len(piece), 5))
    tree = build_ward_tree(X, graph, warn_components=False)
    n = len(piece)
    members = leaves_of(tree.children, n)
    for p, size in enumerate(sizes):
        leaves = np.flatnonzero(piece == p)
        ref_children, ref_distances = reference(X[leaves], graph[leaves][:, leaves])
        local = {int(leaf): i for i, leaf in enumerate(leaves)}
        steps = [s for s in range(n - len(sizes))
                 if piece[next(iter(members[tree.children[s][0]]))] == p]
        assert len(steps) == size - 1
        for i, s in enumerate(steps):
            local[n + s] = size + i
        mapped = np.array([[local[int(c)] for c in tree.children[s]] for s in steps])
        np.testing.assert_array_equal(np.sort(mapped, axis=1), ref_children)
        np.testing.assert_array_equal(tree.distances[steps], ref_distances)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_small_pieces_keep_their_sums_exactly(rng, dtype):
    # Pieces of at most 8 samples end as small clusters, whose sums the
    # kernel makes again for the join at the top: the tree is the same, bit
    # for bit, as when every cluster keeps its sums, and the joins are
    # numpy's Ward distances between the pieces.
    sizes = [3, 8, 1, 5, 2]
    graph, piece = pieces_graph(rng, sizes, 6)
    X = (800 + 20 * rng.standard_normal((len(piece), 40))).astype(dtype)
    with small_clusters(1):
        every = build_ward_tree(X, graph, warn_components=False)
    with small_clusters(8):
        small = build_ward_tree(X, graph, warn_components=False)
    np.testing.assert_array_equal(small.children, every.children)
    np.testing.assert_array_equal(small.distances, every.distances)
    members = leaves_of(small.children, len(piece))
    n_inside = len(piece) - len(sizes)
    for step in range(n_inside, len(piece) - 1):
        a, b = (sorted(members[c]) for c in small.children[step])
        x_a, x_b = X[a].astype(np.float64), X[b].astype(np.float64)
        gap = x_a.mean(axis=0) - x_b.mean(axis=0)
        inertia = gap @ gap * len(a) * len(b) / (len(a) + len(b))
        np.testing.assert_allclose(small.distances[step], np.sqrt(2 * inertia), rtol=1e-9)


def test_large_trees_keep_only_small_clusters_centroids(rng, monkeypatch):
    # The switch is the series' size, in values: below it every merged
    # cluster keeps its sums (the kernel is asked for small_size=1), from it
    # the small ones keep only a centroid. Both give scikit-learn's tree.
    mask = np.ones((6, 5, 4), dtype=bool)
    graph = grid_to_graph(*mask.shape, mask=mask)
    X = rng.standard_normal((mask.sum(), 16)).astype(np.float32)
    asked, merge = [], _ward_fast.ward_merge

    def recorded(*args, small_size=1, **kwargs):
        asked.append(small_size)
        return merge(*args, small_size=small_size, **kwargs)

    monkeypatch.setattr(_ward_fast, "ward_merge", recorded)
    for threshold in (X.size + 1, X.size):
        monkeypatch.setattr(_tree, "SMALL_CLUSTERS_FROM", threshold)
        np.testing.assert_array_equal(ward_tree(X, graph)[1], reference(X, graph)[1])
    assert asked == [1, _tree.SMALL_CLUSTER_SIZE] and _tree.SMALL_CLUSTER_SIZE > 1


def test_isolated_samples_and_single_sample():
    X = np.arange(12, dtype=float).reshape(4, 3)
    with pytest.warns(UserWarning, match="4 connected pieces"):
        tree = build_ward_tree(X, sparse.csr_matrix((4, 4)))
    assert tree.n_components == 4
    assert tree.children.shape == (3, 2)
    np.testing.assert_array_equal(cut_tree(tree.children, 4), [0, 1, 2, 3])
    children, distances = ward_tree(np.ones((1, 2)), sparse.csr_matrix((1, 1)))
    assert children.shape == (0, 2) and distances.shape == (0,)
    np.testing.assert_array_equal(cut_tree(children, 1), [0])


def test_too_many_pieces_is_refused():
    n = MAX_COMPONENTS + 1
    with pytest.raises(ValueError, match="disconnected pieces"):
        ward_tree(np.zeros((n, 1)), sparse.csr_matrix((n, n)))


def test_several_pieces_warn_with_their_number(rng):
    graph, piece = pieces_graph(rng, [8, 5, 11], 6)
    X = rng.standard_normal((len(piece), 3))
    with pytest.warns(UserWarning) as record:
        children, distances = ward_tree(X, graph)
    assert len(record) == 1, [str(w.message) for w in record]
    message = str(record[0].message)
    assert "3 connected pieces" in message
    # What K then means, and that scikit-learn's labels differ.
    assert "K >= 3" in message and "K < 3" in message and "scikit-learn" in message
    assert record[0].filename == __file__, "the warning points at the caller's line"
    # Without the warning (the workflows report the pieces themselves): the same tree.
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        quiet = build_ward_tree(X, graph, warn_components=False)
    np.testing.assert_array_equal(quiet.children, children)
    np.testing.assert_array_equal(quiet.distances, distances)
    assert quiet.n_components == 3
    # A connected graph does not warn.
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ward_tree(X[piece == 0], graph[piece == 0][:, piece == 0])


def test_workflow_step_does_not_warn_about_pieces(tmp_path):
    from nipype_ward import steps

    rng = np.random.default_rng(0)
    affine = np.diag([3.0, 3.0, 3.0, 1.0])
    mask = np.ones((6, 5, 4), dtype=np.uint8)
    mask[3] = 0  # two slabs that no 6-neighbour edge joins
    paths = {name: tmp_path / f"{name}.nii.gz" for name in ("bold", "mask")}
    nb.save(nb.Nifti1Image(rng.normal(100, 5, (6, 5, 4, 8)).astype(np.float32), affine),
            paths["bold"])
    nb.save(nb.Nifti1Image(mask, affine), paths["mask"])
    from nipype_ward.io.errors import DataWarning

    # The pieces are said once, by the connectivity step, naming the mask.
    with pytest.warns(DataWarning, match=r"mask.nii.gz: the mask is 2 separate pieces \(60, 40"):
        assert steps.connectivity(paths["mask"], tmp_path / "conn.npz") == 2
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        tree = steps.ward_tree(
            tmp_path / "conn.npz", tmp_path / "tree.npz", bold_path=paths["bold"],
            mask_path=paths["mask"],
            out_half_trees=[tmp_path / "half1.npz", tmp_path / "half2.npz"],
        )
    assert tree.n_components == 2
    assert not [w for w in record if "connected pieces" in str(w.message)]


@pytest.mark.parametrize("threads, halves, per_tree", [
    (1, False, [1]), (2, False, [2]), (1, True, [1, 1, 1]), (2, True, [1, 1, 1]),
    (4, True, [2, 2, 2]),
])
def test_tree_step_gives_each_tree_the_threads_left_over(tmp_path, monkeypatch, threads,
                                                          halves, per_tree):
    # The node's threads run the full tree beside its halves first; only what
    # is left goes to each tree's first pass. The trees do not depend on it.
    from nipype_ward import steps
    from nipype_ward.steps import tree as tree_step

    rng = np.random.default_rng(1)
    affine = np.diag([3.0, 3.0, 3.0, 1.0])
    paths = {name: tmp_path / f"{name}.nii.gz" for name in ("bold", "mask")}
    nb.save(nb.Nifti1Image(rng.normal(100, 5, (6, 5, 4, 8)).astype(np.float32), affine),
            paths["bold"])
    nb.save(nb.Nifti1Image(np.ones((6, 5, 4), dtype=np.uint8), affine), paths["mask"])
    steps.connectivity(paths["mask"], tmp_path / "conn.npz")
    asked = []

    def recorded(*args, threads=1, **kwargs):
        asked.append(threads)
        return build_ward_tree(*args, threads=threads, **kwargs)

    monkeypatch.setattr(tree_step, "build_ward_tree", recorded)
    tree = steps.ward_tree(
        tmp_path / "conn.npz", tmp_path / "tree.npz", bold_path=paths["bold"],
        mask_path=paths["mask"], threads=threads,
        out_half_trees=[tmp_path / "h1.npz", tmp_path / "h2.npz"] if halves else None,
    )
    assert sorted(asked) == per_tree
    series = steps.load_voxel_series(bold_path=paths["bold"], mask_path=paths["mask"])
    graph = grid_to_graph(6, 5, 4)
    np.testing.assert_array_equal(tree.children, reference(series.X, graph)[0])


# --------------------------------------------------------------------------
# Ties: documented, deterministic, the same as scikit-learn


def test_tie_breaking_is_documented():
    doc = ward_tree.__doc__
    assert "ties are broken" in doc and "larger then the" in doc


@settings(max_examples=30, **SETTINGS)
@given(n=st.integers(2, 40), n_extra=st.integers(0, 40), seed=seeds,
       value=st.sampled_from([0.0, 0.1, 1.0, -3.7]), dtype=dtypes)
def test_constant_data_ties_as_sklearn(n, n_extra, seed, value, dtype):
    rng = np.random.default_rng(seed)
    graph = random_connected_graph(rng, n, n_extra)
    X = np.full((n, 3), value, dtype=dtype)
    children, _ = assert_same_as_sklearn(X, graph)
    np.testing.assert_array_equal(ward_tree(X, graph)[0], children)


def test_grid_ties_as_sklearn(rng):
    # Few distinct values on a full grid: many exactly equal inertias.
    mask = np.ones((5, 4, 3), dtype=bool)
    graph = grid_to_graph(*mask.shape, mask=mask)
    X = rng.integers(0, 3, (mask.sum(), 2)).astype(np.float32)
    assert_same_as_sklearn(X, graph)
    assert_same_as_sklearn(np.zeros_like(X), graph)


# --------------------------------------------------------------------------
# Bad input: one clear error each


@pytest.fixture
def small():
    rng = np.random.default_rng(0)
    return rng.standard_normal((6, 2)), random_connected_graph(rng, 6, 3)


def test_connectivity_must_be_square(small):
    X, _ = small
    with pytest.raises(ValueError, match="square"):
        ward_tree(X, sparse.csr_matrix((6, 5)))


def test_directed_knn_graph_is_symmetrised_as_sklearn(rng):
    # scikit-learn's kneighbors_graph is directed; scikit-learn's ward_tree
    # uses C + C.T, and so does ours, with one warning.
    X = rng.standard_normal((150, 4))
    knn = kneighbors_graph(X, 5, include_self=False)
    assert (knn != knn.T).nnz > 0, "the test needs a directed graph"
    assert connected_components(knn, directed=False)[0] == 1
    knn_copy = knn.copy()
    ref_children, ref_distances = reference(X, knn)
    with pytest.warns(UserWarning) as record:
        children, distances = ward_tree(X, knn)
    assert len(record) == 1, [str(w.message) for w in record]
    message = str(record[0].message)
    assert "not symmetric" in message and "C + C.T" in message and "scikit-learn" in message
    assert record[0].filename == __file__, "the warning points at the caller's line"
    # Bit-identical to scikit-learn's.
    np.testing.assert_array_equal(children, ref_children)
    np.testing.assert_array_equal(distances, ref_distances)
    # The same as the symmetric graph given explicitly, which does not warn;
    # the caller's matrix is left as it was.
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        sym_children, sym_distances = ward_tree(X, knn + knn.T)
    np.testing.assert_array_equal(sym_children, children)
    np.testing.assert_array_equal(sym_distances, distances)
    assert (knn != knn_copy).nnz == 0


def test_check_connectivity_symmetrises(small):
    X, graph = small
    upper = sparse.triu(graph, format="csr")
    with pytest.warns(UserWarning, match="not symmetric"):
        pattern = check_connectivity(upper, 6)
    assert (pattern != pattern.T).nnz == 0
    edges = (graph.toarray() != 0) & ~np.eye(6, dtype=bool)
    np.testing.assert_array_equal(pattern.toarray(), edges)


def test_a_checked_graph_is_shared_not_copied_again():
    # The tree step checks its graph once for a tree and its two halves:
    # checking the result again returns it as it is (no copy per tree), while
    # a pattern that gained a diagonal entry or lost its reverse is still
    # cleaned or refused (numpy's reference: the edges off the diagonal).
    graph = grid_to_graph(5, 4, 3)
    checked = check_connectivity(graph, 60)
    assert checked is not graph and checked.dtype == bool
    assert check_connectivity(checked, 60) is checked
    edges = (graph.toarray() != 0) & ~np.eye(60, dtype=bool)
    looped = checked.tolil()
    looped[0, 0] = True
    cleaned = check_connectivity(looped.tocsr(), 60)
    np.testing.assert_array_equal(cleaned.toarray(), edges)
    one_way = checked.tolil()
    one_way[0, 1] = False
    one_way = one_way.tocsr()
    one_way.eliminate_zeros()
    with pytest.warns(UserWarning, match="not symmetric"):
        again = check_connectivity(one_way, 60)
    np.testing.assert_array_equal(again.toarray(), edges)
    X = np.random.default_rng(0).standard_normal((60, 7)).astype(np.float32)
    np.testing.assert_array_equal(ward_tree(X, checked)[0], reference(X, graph)[0])


def test_connectivity_must_match_X(small):
    X, graph = small
    with pytest.raises(ValueError, match="6 samples but the data has 5"):
        ward_tree(X[:5], graph)


def test_connectivity_must_be_sparse(small):
    X, graph = small
    with pytest.raises(TypeError, match="scipy sparse"):
        ward_tree(X, graph.toarray())


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_X_must_be_finite(small, bad):
    X, graph = small
    X = X.copy()
    X[2, 1] = bad
    with pytest.raises(ValueError, match="NaN or infinite values in 1 samples"):
        ward_tree(X, graph)
    with pytest.raises(ValueError, match="NaN or infinite"):
        ward_tree(X.astype(np.float32), graph)


@pytest.mark.parametrize("threads", [0, -1, 1.5, True, "2"])
def test_threads_must_be_a_positive_integer(small, threads):
    X, graph = small
    with pytest.raises(ValueError, match="threads must be"):
        ward_tree(X, graph, threads=threads)


def test_X_must_be_2d(small):
    X, graph = small
    with pytest.raises(ValueError, match="2D"):
        ward_tree(X[:, 0], graph)
    with pytest.raises(ValueError, match="2D"):
        ward_tree(X[None], graph)


def test_X_must_be_real(small):
    X, graph = small
    with pytest.raises(TypeError, match="real"):
        ward_tree(X.astype(complex), graph)


@pytest.mark.parametrize("n_clusters", [0, -1, 7])
def test_cut_tree_n_clusters_range(small, n_clusters):
    X, graph = small
    children, _ = ward_tree(X, graph)
    with pytest.raises(ValueError, match="between 1 and the number of leaves"):
        cut_tree(children, n_clusters)


@pytest.mark.parametrize("n_clusters", [2.0, 2.5, "3", None, True])
def test_cut_tree_n_clusters_integer(small, n_clusters):
    X, graph = small
    children, _ = ward_tree(X, graph)
    with pytest.raises(TypeError, match="integer"):
        cut_tree(children, n_clusters)


def test_cut_tree_accepts_numpy_integers(small):
    X, graph = small
    children, _ = ward_tree(X, graph)
    np.testing.assert_array_equal(cut_tree(children, np.int64(3)), cut_tree(children, 3))


def test_cut_tree_children_shape():
    with pytest.raises(ValueError, match="shape"):
        cut_tree(np.zeros((3, 3), dtype=int), 2)
