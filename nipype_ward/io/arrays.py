"""The arrays a run passes between its nodes: the prepared series, the graph, the tree.

The *prepared series* (:func:`save_series`, :func:`load_series`) is the seam
between the reader of a format and everything downstream: a memory-mappable
``.npy`` array of shape (n_points, n_volumes), points in the order of their
geometry (the C order of a volume mask). What the array cannot hold
(repetition time, source, preparation) travels beside it as a plain dict
(``PrepareSignals``' ``series_info`` output), not as a file Nipype would
not know to keep. A run's *carpet sample* (:func:`save_carpet`) is the few
rows of its series, before and after preparation, that its carpet plot shows.
"""

from __future__ import annotations

import errno
import mmap
import os
from pathlib import Path

import numpy as np
from scipy import sparse

from nipype_ward.core.carpet import CarpetSample
from nipype_ward.core.ward import WardTree
from nipype_ward.io.errors import InputError
from nipype_ward.io.files import save_atomically


# --------------------------------------------------------------------------
# Prepared series
# --------------------------------------------------------------------------
#: Bytes of a series copied at once by :func:`save_series`.
CONSUME_BLOCK_BYTES = 64 << 20


def _reserve(fobj, size: int) -> bool:
    """Allocate ``size`` bytes of a file's blocks now; False where the system cannot.

    A memory map of a file with holes would die of ``SIGBUS`` writing into
    a full disk: with its blocks reserved first, a full disk (or a file-size
    limit) is an ``OSError`` here, before anything is written.
    """
    if not hasattr(os, "posix_fallocate"):
        return False
    try:
        os.posix_fallocate(fobj.fileno(), 0, size)
    except OSError as exc:
        if exc.errno in (errno.EOPNOTSUPP, errno.EINVAL, errno.ENODEV):
            return False
        raise
    return True


def _copy_rows(X, put, consume: bool) -> None:
    """``put(start, rows)`` for each block of ``X``'s rows from the last to the first,
    ``X`` shrunk as it goes with ``consume``."""
    step = max(1, CONSUME_BLOCK_BYTES // max(1, X.shape[1] * X.itemsize))
    for start in range((X.shape[0] - 1) // step * step, -1, -step):
        put(start, X[start:start + step])
        if consume:  # realloc: the copied rows are given back where they lie.
            X.resize((start, X.shape[1]), refcheck=False)


def _put_into(out):
    """``put(start, rows)`` for :func:`_copy_rows` into the array ``out``."""

    def put(start, rows):
        out[start:start + rows.shape[0]] = rows

    return put


def _pwrite_all(fd, data, offset: int) -> None:
    """All of ``data`` at ``offset`` (a write may stop short of its bytes)."""
    data = memoryview(data).cast("B")
    done = 0
    while done < len(data):
        done += os.pwrite(fd, data[done:], offset + done)


def save_series(X, path, *, consume: bool = False) -> Path:
    """Write a (n_voxels, n_volumes) series as a C-ordered ``.npy``.

    The rows are copied into a shared memory map of the file, its blocks
    reserved first (:func:`_reserve`), from the last rows to the first, 64
    MB at a time. Written through ``write`` instead, the page cache of the
    file comes in large folios, and on the benches' 2-core VM those come
    from memory the host has taken back: writing a 2 mm series of 1,200
    volumes (1.1 GB) took 1.1-3.9 s that way, against 1.05-1.3 s through the
    map (its pages faulted one at a time). Where the blocks cannot be
    reserved, the rows are written (``pwrite``) in the same order.

    With ``consume``, a series that owns its memory (as read) shrinks
    where it lies as its rows are copied: the process never holds the
    series beside its copy in the page cache. ``X`` is then left empty;
    any other array is written as it is.
    """
    X = np.ascontiguousarray(X)
    consume = consume and X.ndim == 2 and X.flags.owndata

    def write(tmp):
        with open(tmp, "w+b") as fobj:
            np.lib.format.write_array_header_1_0(
                fobj, np.lib.format.header_data_from_array_1_0(X))
            fobj.flush()
            offset, fd = fobj.tell(), fobj.fileno()
            if X.size == 0:
                return
            if X.ndim != 2:
                _pwrite_all(fd, X, offset)
                return
            row = X.shape[1] * X.itemsize
            if not _reserve(fobj, offset + X.nbytes):
                _copy_rows(X, lambda start, rows: _pwrite_all(fd, rows, offset + start * row),
                           consume)
                return
            mapped = mmap.mmap(fd, offset + X.nbytes)
            try:
                _copy_rows(X, _put_into(np.frombuffer(
                    mapped, dtype=X.dtype, count=X.size, offset=offset).reshape(X.shape)),
                    consume)
            finally:
                try:
                    mapped.close()
                except BufferError:  # an error's traceback still views it: unmapped when freed
                    pass

    return save_atomically(write, path)


def save_series_in_time(parts, path, *, block_rows: int = 8192) -> Path:
    """Write series one after the other in time, each restricted to some of its rows.

    ``parts`` are ``(X, rows)`` pairs: ``X`` a (memory-mapped) series, ``rows``
    the indices of its rows to keep, in order (None: every row); every part
    keeps as many rows. The ``.npy`` is filled through its memory map a block
    of rows at a time (in the parts' common dtype), so that the whole matrix
    is never in memory and no part is copied whole: a tenth of the time of
    concatenating in memory then saving (3 mm, 8 runs of 176 volumes).
    """
    parts = [(X, None if rows is None else np.asarray(rows, dtype=np.intp)) for X, rows in parts]
    if not parts:
        raise ValueError("no series to write")
    n_rows = {X.shape[0] if rows is None else rows.size for X, rows in parts}
    if len(n_rows) != 1:
        raise ValueError(f"the parts keep different numbers of rows: {sorted(n_rows)}")
    shape = (n_rows.pop(), sum(X.shape[1] for X, _ in parts))
    dtype = np.result_type(*(X.dtype for X, _ in parts))

    def write(tmp):
        out = np.lib.format.open_memmap(tmp, mode="w+", dtype=dtype, shape=shape)
        offset = 0
        for X, rows in parts:
            for start in range(0, shape[0], block_rows):
                block = slice(start, min(start + block_rows, shape[0]))
                out[block, offset:offset + X.shape[1]] = X[block] if rows is None \
                    else X[rows[block]]
            offset += X.shape[1]
        out.flush()
        del out

    return save_atomically(write, path)


def load_series(path, *, n_voxels: int | None = None) -> np.ndarray:
    """Read a series written by :func:`save_series`, memory-mapped (read-only).

    Returns
    -------
    X : memory map of shape (n_voxels, n_volumes), float32 or float64
    """
    path = Path(path)
    if not path.exists():
        raise InputError(path, "no such file")
    try:
        X = np.load(path, mmap_mode="r", allow_pickle=False)
    except Exception as exc:
        raise InputError(path, f"not a .npy series ({exc})") from exc
    if X.ndim != 2 or X.dtype not in (np.float32, np.float64):
        raise InputError(
            path, f"a series is a 2D float array (voxels x volumes), got {X.dtype} {X.shape}"
        )
    if n_voxels is not None and X.shape[0] != n_voxels:
        raise InputError(
            path,
            f"series has {X.shape[0]} voxels but the mask has {n_voxels}: "
            "was it taken in another mask?",
        )
    return X


# --------------------------------------------------------------------------
# Graphs and trees
# --------------------------------------------------------------------------
def save_connectivity(connectivity, path) -> Path:
    """Write an adjacency as an uncompressed ``.npz``: a graph is written once and read by
    every tree and compression, and at 2 mm zlib took 0.38 s to write it (2.8 MB instead
    of 20 MB) and 4x longer to read it."""
    return save_atomically(
        lambda tmp: sparse.save_npz(tmp, sparse.csr_matrix(connectivity), compressed=False),
        path,
    )


def load_connectivity(path, *, n_voxels: int | None = None) -> sparse.csr_matrix:
    """Read a ``.npz`` adjacency written by :func:`save_connectivity`."""
    path = Path(path)
    if not path.exists():
        raise InputError(path, "no such file")
    try:
        connectivity = sparse.load_npz(path).tocsr()
    except Exception as exc:
        raise InputError(path, f"not a scipy sparse .npz file ({exc})") from exc
    if n_voxels is not None and connectivity.shape != (n_voxels, n_voxels):
        raise InputError(
            path,
            f"connectivity is {connectivity.shape[0]} x {connectivity.shape[1]} "
            f"but the mask has {n_voxels} voxels: was it computed from another mask?",
        )
    return connectivity


def save_tree(tree: WardTree, path) -> Path:
    """Write a Ward tree (merges, distances, sizes) as ``.npz``."""

    def write(tmp):
        with open(tmp, "wb") as fobj:
            np.savez(
                fobj,
                children=tree.children,
                distances=tree.distances,
                sizes=tree.sizes,
                n_components=np.array(tree.n_components),
            )

    return save_atomically(write, path)


def load_tree(path, *, n_leaves: int | None = None) -> WardTree:
    """Read a tree written by :func:`save_tree`, optionally checking its size."""
    path = Path(path)
    if not path.exists():
        raise InputError(path, "no such file")
    try:
        with np.load(path) as data:
            tree = WardTree(
                data["children"], data["distances"], data["sizes"], int(data["n_components"])
            )
    except Exception as exc:
        raise InputError(path, f"not a Ward tree file ({exc})") from exc
    if n_leaves is not None and tree.n_leaves != n_leaves:
        raise InputError(
            path,
            f"tree has {tree.n_leaves} leaves but the mask has {n_leaves} voxels: "
            "was it built from another mask?",
        )
    return tree


# --------------------------------------------------------------------------
# Carpet samples
# --------------------------------------------------------------------------
def save_carpet(sample: CarpetSample, path) -> Path:
    """Write a :class:`~nipype_ward.core.carpet.CarpetSample` as ``.npz`` (uncompressed)."""

    def write(tmp):
        with open(tmp, "wb") as fobj:
            np.savez(fobj, **sample._asdict())

    return save_atomically(write, path)


def load_carpet(path) -> CarpetSample:
    """Read a carpet sample written by :func:`save_carpet`, its shapes checked."""
    path = Path(path)
    if not path.exists():
        raise InputError(path, "no such file")
    try:
        with np.load(path, allow_pickle=False) as data:
            sample = CarpetSample(**{name: data[name] for name in CarpetSample._fields})
    except Exception as exc:
        raise InputError(path, f"not a carpet sample file ({exc})") from exc
    n_sampled = sample.points.size
    if sample.before.shape[0] != n_sampled or sample.after.shape != (n_sampled, sample.kept.size) \
            or sample.dvars_before.size != sample.before.shape[1] - 1 \
            or sample.dvars_after.size != sample.kept.size - 1:
        raise InputError(path, "a carpet sample's arrays do not agree in shape")
    return sample._replace(n_points=int(sample.n_points))
