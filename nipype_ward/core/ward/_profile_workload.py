"""The workload the Ward kernel's build is tuned on (profile-guided optimisation).

``setup.py`` compiles ``_ward_fast`` once with ``-fprofile-generate``, runs this
file on that build (``python _profile_workload.py PATH_TO_SO``), then compiles
the kernel again with ``-fprofile-use``: GCC then lays out the merge loop for
the branches taken here and inlines where the calls are hot. On the fsLR mesh
the merge loop got 12 to 18 % faster (2026-12-07, see ``docs/architecture.rst``).
The profile changes no arithmetic: the build keeps ``-ffp-contract=off`` and
no ``-ffast-math``, and the exactness tests run on the optimised build.

The data are made here, with NumPy only (the build's own requirement: no
SciPy, no files), in the shapes users give the kernel:

* a cortical surface: a triangular lattice (six neighbours a vertex, as on
  fsLR and fsaverage meshes), float32 series;
* a brain mask on a voxel grid: a ball in a cube, six-connected (what
  ``GridConnectivity`` builds), float32 and float64 series;

each spatially smooth (white noise averaged over neighbours a few times, plus
a few large smooth "networks"), as preprocessed BOLD is. Every tree runs on
one thread and on two (the first pass's split), and once with the small
cluster size the tree step uses on large inputs. About a second in all.

It imports no part of the package, so that it runs in the build's isolated
environment, and the package does not import it (``tests/test_profile_workload.py``
checks its graphs and runs it on the installed kernel).
"""
import importlib.machinery
import importlib.util
import sys

import numpy as np

MODULE = "nipype_ward.core.ward._ward_fast"


def load_kernel(path):
    """The extension module at ``path``, under its own name."""
    loader = importlib.machinery.ExtensionFileLoader(MODULE, path)
    spec = importlib.util.spec_from_file_location(MODULE, path, loader=loader)
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


def csr(n, rows, cols):
    """Symmetric CSR arrays (indptr, indices) of the undirected edges given."""
    rows, cols = np.concatenate([rows, cols]), np.concatenate([cols, rows])
    order = np.lexsort((cols, rows))
    indptr = np.zeros(n + 1, dtype=np.intp)
    np.cumsum(np.bincount(rows, minlength=n), out=indptr[1:])
    return indptr, np.ascontiguousarray(cols[order], dtype=np.intp)


def smooth_series(field_shape, n_features, rng, n_smooth, dtype):
    """Smooth random series on a grid of ``field_shape`` (features last)."""
    series = rng.standard_normal((*field_shape, n_features))
    for _ in range(n_smooth):
        total = 2 * series
        for axis in range(len(field_shape)):
            total += np.roll(series, 1, axis=axis) + np.roll(series, -1, axis=axis)
        series = total / (2 + 2 * len(field_shape))
    grids = np.meshgrid(*[np.linspace(0, np.pi, s) for s in field_shape], indexing="ij")
    for k in range(4):  # large smooth "networks", each with its own time course
        pattern = np.prod([np.sin((k + 1 + a) * g) for a, g in enumerate(grids)], axis=0)
        series += pattern[..., None] * rng.standard_normal(n_features)
    return series.astype(dtype)


def lattice(side, n_features, rng):
    """A triangular lattice, side x side vertices, and its series."""
    index = np.arange(side * side).reshape(side, side)
    rows, cols = [], []
    for di, dj in ((1, 0), (0, 1), (1, 1)):
        rows.append(index[: side - di, : side - dj].ravel())
        cols.append(index[di:, dj:].ravel())
    X = smooth_series((side, side), n_features, rng, 3, np.float32)
    return X.reshape(side * side, n_features), csr(side * side, np.concatenate(rows),
                                                   np.concatenate(cols))


def ball(side, n_features, rng, dtype):
    """The voxels of a ball in a side^3 cube, six-connected, and their series."""
    centre = (side - 1) / 2
    grid = np.indices((side,) * 3) - centre
    inside = (grid ** 2).sum(axis=0) <= centre ** 2
    index = np.full(inside.shape, -1, dtype=np.intp)
    index[inside] = np.arange(inside.sum())
    rows, cols = [], []
    for axis in range(3):
        lo = [slice(None)] * 3
        hi = [slice(None)] * 3
        lo[axis] = slice(0, side - 1)
        hi[axis] = slice(1, side)
        both = inside[tuple(lo)] & inside[tuple(hi)]
        rows.append(index[tuple(lo)][both])
        cols.append(index[tuple(hi)][both])
    X = smooth_series((side,) * 3, n_features, rng, 2, dtype)[inside]
    return np.ascontiguousarray(X), csr(int(inside.sum()), np.concatenate(rows),
                                        np.concatenate(cols))


def run(kernel):
    """Build the trees of the workload with ``kernel`` (the module)."""
    rng = np.random.default_rng(0)
    kernel._huge_page_budget(64 << 20)
    cases = [lattice(110, 160, rng), ball(30, 120, rng, np.float32),
             ball(24, 120, rng, np.float64)]
    for X, (indptr, indices) in cases:
        n = X.shape[0]
        kernel.symmetric_offdiagonal(indptr, indices)
        for threads, small_size in ((1, 1), (2, 1), (1, 8)):
            children = np.empty((n - 1, 2), dtype=np.intp)
            merged = kernel.ward_merge(X, indptr, indices, children, np.empty(n - 1),
                                       np.empty(n - 1, dtype=np.intp), check_finite=True,
                                       small_size=small_size, threads=threads)
            if merged is None or merged[0] != n - 1:
                raise RuntimeError("the profiling workload's tree is not whole")
        kernel.cut_labels(children, n, 100)


if __name__ == "__main__":
    run(load_kernel(sys.argv[1]))
