"""The workload setup.py profiles the Ward kernel on (``_profile_workload``).

The build runs it on an instrumented kernel; were it to stop making whole
trees (a changed signature, a graph the kernel rejects), setup.py would fall
back to a plain build, and only CI's check of ``PROFILE_GUIDED`` would say so.
Here: its graphs are what users give the kernel, and it runs on the installed
kernel, in this process as in the build's.
"""
import numpy as np
from scipy import sparse
from sklearn.cluster import ward_tree as sklearn_ward_tree
from sklearn.feature_extraction.image import grid_to_graph

from nipype_ward.core.ward import _profile_workload as workload
from nipype_ward.core.ward import _ward_fast


def _matrix(n, indptr, indices):
    return sparse.csr_matrix((np.ones(len(indices)), indices, indptr), shape=(n, n))


def test_ball_graph_is_scikit_learns_six_neighbourhood_of_the_mask():
    X, (indptr, indices) = workload.ball(9, 5, np.random.default_rng(0), np.float64)
    centre = 4.0
    mask = ((np.indices((9, 9, 9)) - centre) ** 2).sum(axis=0) <= centre ** 2
    reference = grid_to_graph(9, 9, 9, mask=mask).tocsr()
    reference.setdiag(0)
    reference.eliminate_zeros()
    assert X.shape == (mask.sum(), 5) and X.dtype == np.float64
    assert (_matrix(len(X), indptr, indices).astype(bool) != reference.astype(bool)).nnz == 0
    assert all(np.all(np.diff(indices[indptr[i]:indptr[i + 1]]) > 0) for i in range(len(X)))


def test_lattice_is_a_triangulated_grid():
    X, (indptr, indices) = workload.lattice(3, 4, np.random.default_rng(0))
    # By hand, for 3 x 3 vertices: 6 horizontal, 6 vertical, 4 diagonal edges;
    # the centre touches all 6 of its neighbours, corners (0, 2) and (2, 0) 2.
    assert X.shape == (9, 4) and X.dtype == np.float32
    degree = np.diff(indptr)
    assert degree.sum() == 2 * 16
    assert degree.tolist() == [3, 4, 2, 4, 6, 4, 2, 4, 3]
    A = _matrix(9, indptr, indices)
    assert (A != A.T).nnz == 0 and A.diagonal().sum() == 0


def test_its_trees_on_the_installed_kernel_are_scikit_learns():
    X, (indptr, indices) = workload.lattice(12, 20, np.random.default_rng(1))
    n = len(X)
    children = np.empty((n - 1, 2), dtype=np.intp)
    merged = _ward_fast.ward_merge(X, indptr, indices, children, np.empty(n - 1),
                                   np.empty(n - 1, dtype=np.intp), threads=2)
    assert merged[0] == n - 1
    expected = sklearn_ward_tree(X, connectivity=_matrix(n, indptr, indices))[0]
    np.testing.assert_array_equal(children, expected)


def test_the_whole_workload_runs_on_the_kernel_loaded_as_the_build_loads_it():
    # As in the build: the extension loaded from its file, under its own name.
    kernel = workload.load_kernel(_ward_fast.__file__)
    assert kernel.__name__ == "nipype_ward.core.ward._ward_fast"
    workload.run(kernel)  # raises unless every tree is whole
