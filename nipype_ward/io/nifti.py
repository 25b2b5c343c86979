"""NIfTI images <-> arrays, with the checks users need.

Every problem with an input file raises :class:`~nipype_ward.io.errors.InputError`,
one message that names the file and says what is wrong with it. Writers go
through a temporary file and a rename (:func:`nipype_ward.io.files.save_atomically`).

A 4D series is read in **one pass** (:func:`read_series`): the file is opened
once, decompressed once (by ISA-L, about 1.4x faster than zlib here), and
read a block of volumes at a time, giving both the temporal mean of every
voxel (for the EPI mask and the mean image) and the voxel series inside the
mask. Writing is :mod:`nipype_ward.io.nifti_write`'s.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

import nibabel as nb
import numpy as np
import rapidgzip
from isal import igzip
from scipy import ndimage

from nipype_ward.core.validation import count_nonfinite_rows
from nipype_ward.io._volumes import gather_volumes
from nipype_ward.io.errors import InputError
from nipype_ward.io.headers import (
    check_extensions,
    check_extensions_of,
    check_gzip_size,
    check_header,
)
from nipype_ward.io.memory import made_ahead, new_rows

__all__ = [
    "AFFINE_ATOL",
    "InputError",
    "check_same_grid",
    "file_order",
    "fortran_positions",
    "header_repetition_time",
    "keep_rows",
    "load_bold",
    "load_image",
    "open_image",
    "read_mean",
    "read_series",
    "series_dtype",
    "volume_blocks",
]

#: Tolerance on affines when checking that two images share a grid (mm).
AFFINE_ATOL = 1e-3

#: Volumes read at once: a block of the 3 mm MNI grid is 22 MB of float32.
BLOCK_VOLUMES = 16

#: Voxels by which the mask of the first block of volumes is grown to guess
#: the run's (:func:`read_series`): 15 % more rows than the mask at 2 mm,
#: 18 % at 3 mm, held while reading.
GUESS_MARGIN = 2

#: A ``.nii.gz`` of at least this many bytes is decompressed by rapidgzip on
#: every usable CPU (twice ISA-L's one thread on 2 cores, for a 2 mm run of
#: 1,200 volumes); smaller ones by ISA-L, which starts sooner.
PARALLEL_GZIP_BYTES = 64 * 2**20

#: Compressed bytes a rapidgzip thread takes at a time (each piece begins with a block
#: search and 32 kB decoded without their window): the 2 mm run of 1,200 volumes (4.5 GB),
#: 2 threads, 7.3-7.5 s and 13.9-14.4 CPU-s with 16 MiB, 8.3-8.4 s and 16.0-16.1 CPU-s with
#: its 4 MiB, 14.0 CPU-s with 32 MiB; 195-245 MB each (2-core VM, 2026-12-07).
RAPIDGZIP_CHUNK_BYTES = 16 << 20


# --------------------------------------------------------------------------
# Opening and checking
# --------------------------------------------------------------------------
def _unreadable_data(path, exc) -> InputError:
    return InputError(path, f"data cannot be read, the file may be truncated or corrupt ({exc}):"
                      " copy or download it again")


def _check_ndim(img, path, ndim) -> nb.Nifti1Image:
    allowed = (ndim,) if isinstance(ndim, int) else tuple(ndim)
    shape = img.shape
    # A 4D image with one volume is a 3D image for our purposes, and back.
    if len(shape) == 4 and shape[3] == 1 and 3 in allowed and 4 not in allowed:
        try:
            return nb.funcs.four_to_three(img)[0]
        except Exception as exc:  # the volume is read here: truncated, corrupt data
            raise _unreadable_data(path, exc) from exc
    if len(shape) not in allowed:
        want = " or ".join(f"{d}D" for d in allowed)
        raise InputError(path, f"expected a {want} image, got shape {shape}")
    return img


def load_image(path, *, ndim: int | tuple[int, ...] = (3, 4)) -> nb.Nifti1Image:
    """Load a NIfTI image lazily, checking it exists, is readable and has ``ndim``.

    Only the header is read here (and a ``.nii.gz``'s last four bytes, which
    find a truncated file: :func:`_check_gzip_size`); use it for headers and
    small images. Read 4D data with :func:`read_series`, which decompresses
    the file once (and fails on a truncated one, naming it).
    """
    path = Path(path)
    if not path.exists():
        raise InputError(path, "no such file")
    check_extensions(path)
    try:
        img = nb.load(path)
    except Exception as exc:  # nibabel raises many types for corrupt files
        raise InputError(path, f"not a readable NIfTI image ({exc})") from exc
    if not isinstance(img, nb.spatialimages.SpatialImage):  # nibabel reads GIFTI too
        raise InputError(path, f"not a NIfTI image (nibabel reads a {type(img).__name__}): "
                         "give a .nii or .nii.gz image")
    check_header(img, path)
    check_gzip_size(img, path)
    return _check_ndim(img, path, ndim)


def load_bold(path, *, min_volumes: int = 2) -> nb.Nifti1Image:
    """Load a 4D BOLD series (header only) with at least ``min_volumes`` volumes."""
    img = load_image(path, ndim=4)
    _check_volumes(img, path, min_volumes)
    return img


def _check_volumes(img, path, min_volumes: int) -> None:
    if img.shape[3] < min_volumes:
        raise InputError(path, f"needs at least {min_volumes} volumes, got {img.shape[3]}")


def _nifti_class(stream):
    """The nibabel image class of an open NIfTI stream, from its header size."""
    head = stream.read(4)
    stream.seek(0)
    if len(head) < 4:
        raise ValueError("file too short for a NIfTI header")
    for order in ("<", ">"):
        size = int(np.frombuffer(head, dtype=f"{order}i4")[0])
        if size == 348:
            return nb.Nifti1Image
        if size == 540:
            return nb.Nifti2Image
    raise ValueError("no NIfTI-1 or NIfTI-2 header (sizeof_hdr is neither 348 nor 540)")


def usable_cpus() -> int:
    """The CPUs this process may run on (its affinity: a Slurm job's, a container's cpuset),
    not the machine's: the default of ``--nprocs`` and of the parallel decompression."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def _open_stream(path: Path, threads: int | None = None):
    """A file's decompressed bytes: ISA-L for a ``.gz``, rapidgzip's threads for a large one."""
    if not path.name.endswith(".gz"):
        return open(path, "rb")
    cpus = usable_cpus() if threads is None else min(threads, usable_cpus())
    if cpus > 1 and path.stat().st_size >= PARALLEL_GZIP_BYTES:
        return rapidgzip.RapidgzipFile(str(path), parallelization=cpus,
                                       chunk_size=RAPIDGZIP_CHUNK_BYTES)
    return igzip.open(path, "rb")


@contextlib.contextmanager
def open_image(path, *, ndim: int | tuple[int, ...] = (3, 4), min_volumes: int = 1,
               threads: int | None = None):
    """A NIfTI image whose data are read through one open, decompressing stream.

    Slicing ``img.dataobj[..., a:b]`` in increasing order of volumes reads
    the file once from start to end; a ``.nii.gz`` is decompressed by ISA-L,
    or from :data:`PARALLEL_GZIP_BYTES` on by rapidgzip on ``threads`` CPUs
    (every usable CPU when None; ISA-L when 1). Errors while reading name
    the file.
    """
    path = Path(path)
    if not path.exists():
        raise InputError(path, "no such file")
    try:
        stream = _open_stream(path, threads)
    except (OSError, RuntimeError, ValueError) as exc:
        raise InputError(path, f"cannot be read ({exc})") from exc
    with stream:
        check_extensions_of(stream, path)  # the same stream: the file is opened once
        try:
            klass = _nifti_class(stream)
            holder = nb.FileHolder(filename=str(path), fileobj=stream)
            img = klass.from_file_map({"image": holder, "header": holder})
        except Exception as exc:
            raise InputError(path, f"not a readable NIfTI image ({exc})") from exc
        check_header(img, path)
        img = _check_ndim(img, path, ndim)
        if img.ndim == 4:
            _check_volumes(img, path, min_volumes)
        yield img


def volume_blocks(n_volumes: int) -> list[tuple[int, int]]:
    """(start, stop) of each block of volumes read at once."""
    return [(a, min(a + BLOCK_VOLUMES, n_volumes)) for a in range(0, n_volumes, BLOCK_VOLUMES)]


def _read_block(img, path, start: int | None = None, stop: int | None = None) -> np.ndarray:
    """Volumes ``start`` to ``stop`` of an open image (all its data without them)."""
    slicer = (Ellipsis,) if start is None else (Ellipsis, slice(start, stop))
    try:
        return np.asanyarray(img.dataobj[slicer])
    except Exception as exc:  # truncated or corrupt data: gzip, EOF, size errors
        raise _unreadable_data(path, exc) from exc


def _read_fully(stream, target: memoryview) -> None:
    """Fill ``target`` from ``stream``; EOFError if the stream ends first (a truncated file)."""
    filled = 0
    while filled < len(target):
        n = stream.readinto(target[filled:])
        if not n:
            raise EOFError(f"the data end {len(target) - filled} bytes short of a block "
                           "of volumes")
        filled += n


def _blocks_of(img, path):
    """``(start, stop, block)`` for each block of volumes of an open 4D image, in order.

    ``block`` is Fortran-ordered (x, y, z, volumes) and holds nibabel's
    values. Unscaled data (most series) are read from the stream straight
    into two buffers in turn, the next block decompressed by a thread of
    its own while the caller works on this one (the decompressors release
    the GIL): a block must not be kept past its turn. Scaled data go
    through nibabel, which scales them.
    """
    proxy = img.dataobj
    stream = getattr(proxy, "file_like", None)
    blocks = volume_blocks(img.shape[3])
    raw = (hasattr(stream, "readinto") and getattr(proxy, "order", "F") == "F"
           and (float(proxy.slope), float(proxy.inter)) == (1.0, 0.0))
    if not raw:
        for start, stop in blocks:
            yield start, stop, np.asfortranarray(_read_block(img, path, start, stop))
        return
    dtype = np.dtype(proxy.dtype)  # as stored, byte order included: nibabel's unscaled values
    shape = tuple(img.shape[:3]) + (blocks[0][1],)
    buffers = [np.empty(shape, dtype=dtype, order="F") for _ in range(min(2, len(blocks)))]
    try:
        if stream.tell() != proxy.offset:
            stream.seek(proxy.offset)
    except Exception as exc:  # a stream that ends inside its header's extensions
        raise _unreadable_data(path, exc) from exc

    def fill(turn: int, start: int, stop: int) -> np.ndarray:
        view = buffers[turn % len(buffers)][..., : stop - start]  # Fortran-contiguous still
        try:
            _read_fully(stream, memoryview(view.T).cast("B"))
        except Exception as exc:  # truncated or corrupt data: gzip, EOF
            raise _unreadable_data(path, exc) from exc
        return view

    for (start, stop), view in zip(blocks, made_ahead(fill, blocks, name="nifti-read")):
        yield start, stop, view


def data_of(img) -> np.ndarray:
    """The data of an image loaded header only: an error reading them (truncated, corrupt
    file) is an :class:`InputError` naming it."""
    try:
        return np.asanyarray(img.dataobj)
    except Exception as exc:
        raise _unreadable_data(img.get_filename() or "image", exc) from exc


def check_same_grid(img, img_path, reference, reference_path) -> None:
    """Raise :class:`InputError` unless ``img`` is on the grid (shape, affine) of ``reference``."""
    if img.shape[:3] != reference.shape[:3]:
        raise InputError(
            img_path,
            f"grid {img.shape[:3]} differs from the grid {reference.shape[:3]} "
            f"of {reference_path}",
        )
    if not np.allclose(img.affine, reference.affine, atol=AFFINE_ATOL):
        raise InputError(
            img_path,
            f"affine differs from that of {reference_path} (same shape, other "
            "position or voxel size): resample one onto the other first",
        )


# --------------------------------------------------------------------------
# Reading a series in one pass
# --------------------------------------------------------------------------
def series_dtype(data_dtype) -> np.dtype:
    """The dtype voxel series are held in, for data that nibabel reads as ``data_dtype``.

    float32 exactly when it loses nothing: float16/float32 data, and integers
    of at most 16 bits (which float32 represents exactly); float64 otherwise
    (float64 data, wider integers, and scaled data, which nibabel gives as
    float64). The series thus holds exactly the values of
    ``img.get_fdata()``, and the Ward tree on it is scikit-learn's on those.
    """
    data_dtype = np.dtype(data_dtype)
    if data_dtype.kind == "f" and data_dtype.itemsize <= 4:
        return np.dtype(np.float32)
    if data_dtype.kind in "iub" and data_dtype.itemsize <= 2:
        return np.dtype(np.float32)
    return np.dtype(np.float64)


class _MeanAccumulator:
    """The temporal mean as ``numpy.mean(data, axis=-1)`` computes it, block by block.

    numpy reduces the last axis of nibabel's Fortran-ordered 4D arrays one
    volume after the other, in the data's float type (float64 for integers),
    so adding the volumes in order gives the very same bits as nilearn's
    ``mean_img``, without holding the whole series.
    """

    def __init__(self, shape, data_dtype):
        # Native byte order: nibabel gives a big-endian file's unscaled data as
        # they are ('>f4'), which ufuncs refuse as a ``dtype`` argument.
        data_dtype = np.dtype(data_dtype).newbyteorder("=")
        self._out_dtype = data_dtype if data_dtype.kind == "f" else np.dtype(np.float64)
        acc = np.float32 if self._out_dtype == np.float16 else self._out_dtype
        # Fortran order, as the volumes come: adding them is 10x faster than
        # into a C-ordered sum (the same bits: each voxel adds its own values).
        self._sum = np.zeros(shape, dtype=acc, order="F")
        self._count = 0

    def add(self, block) -> None:
        for t in range(block.shape[3]):
            self._sum += block[..., t]
        self._count += block.shape[3]

    def mean(self) -> np.ndarray:
        mean = np.true_divide(self._sum, self._count, dtype=self._sum.dtype)
        return mean.astype(self._out_dtype, copy=False)


def read_mean(path) -> tuple[np.ndarray, nb.Nifti1Image]:
    """Temporal mean of a 3D or 4D image, read once (nilearn's ``mean_img`` values).

    Returns
    -------
    mean : ndarray of shape (nx, ny, nz), the data's float type
    img : the image (header only: its data stream is closed)
    """
    with open_image(path, ndim=(3, 4)) as img:
        if img.ndim == 3:
            data = np.array(_read_block(img, path))
            return (data if data.dtype.kind == "f" else data.astype(np.float64)), img
        acc = None
        for _, _, block in _blocks_of(img, path):
            if acc is None:
                acc = _MeanAccumulator(img.shape[:3], block.dtype)
            acc.add(block)
        return acc.mean(), img


def fortran_positions(mask) -> np.ndarray:
    """Where the mask's voxels, in C order, lie in a volume flattened in file (F) order."""
    return np.ravel_multi_index(np.nonzero(mask), mask.shape, order="F")


def file_order(positions) -> np.ndarray:
    """The order that takes points at ``positions`` (:func:`fortran_positions`) in file order."""
    return np.argsort(positions, kind="stable")


#: Stored types the compiled gather reads (numpy's type characters: the C
#: integer and float types of NIfTI, native byte order); others go through numpy.
_GATHERED_TYPES = frozenset("bBhHiIfd")

#: Voxels gathered and transposed at once into a series by numpy (types the
#: compiled gather does not read): 16 volumes of them are 256 kB of float32.
_GATHER_VOXELS = 4096


def _put_block(X, start, stop, block, positions, order) -> None:
    """``X[:, start:stop]`` = a Fortran-ordered block's values at ``positions``.

    The block is viewed as (n_volumes, n_grid) rows, one volume each, and
    the points are taken in file ``order`` (:func:`file_order`) by the
    compiled :func:`~nipype_ward.io._volumes.gather_volumes`, 2x numpy's
    ``take`` then transposed copy. Types it does not read go through numpy,
    a cache-sized run of voxels at a time.
    """
    rows = block.T.reshape(block.shape[3], -1)
    if (rows.dtype.isnative and rows.dtype.char in _GATHERED_TYPES and X.flags.c_contiguous
            and rows.flags.c_contiguous and X.dtype in (np.float32, np.float64)):
        gather_volumes(X, start, rows, positions, order)
        return
    for first in range(0, positions.size, _GATHER_VOXELS):
        part = positions[first:first + _GATHER_VOXELS]
        X[first:first + part.size, start:stop] = np.take(rows, part, axis=1).T


def _check_mask_shape(mask, img, where) -> np.ndarray:
    """A boolean mask of the series' grid (its first three dimensions), else an InputError."""
    mask = np.asarray(mask, dtype=bool)
    if mask.shape != tuple(img.shape[:3]):
        raise InputError(where, f"mask of shape {mask.shape} on a series of grid "
                         f"{tuple(img.shape[:3])}: give the mask of this series")
    return mask


def _guess_points(block, img, compute_mask) -> np.ndarray | None:
    """Where the mask of the whole run will lie, guessed from its first block of volumes.

    ``compute_mask`` on the first block's mean, grown by :data:`GUESS_MARGIN`
    voxels: the mask of the whole run's mean is, on any run whose volumes
    look alike, inside it. None where the first block gives no mask (an
    error, or an empty one): the run is then read without a guess.
    """
    mean = block.mean(axis=-1, dtype=np.float64)
    try:
        guess = np.asarray(compute_mask(type(img)(mean, img.affine, img.header)), dtype=bool)
    except InputError:
        return None
    if guess.shape != tuple(img.shape[:3]) or not guess.any():
        return None
    return ndimage.binary_dilation(guess, iterations=GUESS_MARGIN)


def _finite_rows(X, path) -> None:
    """Refuse rows with NaN or infinite values (:func:`~nipype_ward.core.validation.count_nonfinite_rows`)."""
    bad = count_nonfinite_rows(X)
    if bad:
        raise InputError(
            path, f"{bad} of the mask's {X.shape[0]} voxels have NaN or infinite values: "
            "check the series, or leave those voxels out of the brain mask"
        )


def read_series(path, *, mask=None, mask_path=None, compute_mask=None, before_reading=None,
                spill_dir=None, min_volumes: int = 2, threads: int | None = None):
    """Read a 4D series once: its temporal mean and the voxel series inside a mask.

    Parameters
    ----------
    path : path of a 4D NIfTI image
    mask : ndarray of bool (nx, ny, nz), optional
        The voxels to keep (checked against the grid when ``mask_path``,
        naming its file, is given). Without it, ``compute_mask(mean_img)``
        is called once the mean is known, and must return the mask.
    before_reading : callable, optional
        ``before_reading(img)`` is called with the image (header only) before
        any data are read: checks that must fail before the heavy work.
    spill_dir : path, optional
        Where the decompressed series waits while the mask is computed, when
        the first volumes give no guess of it (an unnamed temporary file,
        deleted when closed); system default when None.
    threads : int, optional
        CPUs the decompression of a large ``.nii.gz`` may use (see
        :func:`open_image`).

    Without ``mask``, the series is still read in one pass: the voxels kept
    while reading are those of ``compute_mask`` on the first block's mean,
    grown by :data:`GUESS_MARGIN` voxels (:func:`_guess_points`); once the
    whole mean is known and its mask computed, the rows outside it are
    dropped in place. Should the mask reach beyond the guess (volumes that
    change a lot along the run), the missing voxels are read in a second
    pass; should the first block give no mask, the decompressed volumes wait
    on disk (``spill_dir``). Either way the result is the same, and the
    memory is the masked series (or the guess's) plus one block of volumes.

    Returns
    -------
    X : ndarray of shape (n_voxels, n_volumes), dtype :func:`series_dtype`
        Voxels in C order of the mask (as nilearn's maskers give them).
    mask : ndarray of bool
    mean_img : 3D image of the temporal mean (nilearn's ``mean_img`` values)
    img : the BOLD image (header only)

    Raises
    ------
    InputError
        On an unreadable, truncated or 3D file, a mask on another grid, or
        NaN/infinite values inside the mask.
    """
    with open_image(path, ndim=4, min_volumes=min_volumes, threads=threads) as img:
        if mask is not None and mask_path is not None:
            mask_img = load_image(mask_path, ndim=3)
            check_same_grid(mask_img, mask_path, img, path)
        if mask is not None:
            mask = _check_mask_shape(mask, img, mask_path or path)
        if before_reading is not None:
            before_reading(img)
        n_volumes = img.shape[3]
        blocks = volume_blocks(n_volumes)
        acc = X = kept = None
        with contextlib.ExitStack() as stack:
            spill = None
            for start, stop, block in _blocks_of(img, path):
                if acc is None:
                    acc = _MeanAccumulator(img.shape[:3], block.dtype)
                    dtype = series_dtype(block.dtype)
                    kept = mask if mask is not None else _guess_points(block, img, compute_mask)
                    if kept is None:
                        spill = stack.enter_context(tempfile.TemporaryFile(dir=spill_dir))
                    else:
                        positions = fortran_positions(kept)
                        order = file_order(positions)
                        X = new_rows((positions.size, n_volumes), dtype)
                acc.add(block)
                if spill is None:
                    _put_block(X, start, stop, block, positions, order)
                else:
                    # The transpose of a Fortran-ordered block is C-contiguous
                    # over the same memory: written as is, without a copy.
                    spill.write(block.T.data)
            # The series' own image class: a NIfTI-2 header is not converted
            # (nibabel would refuse its negative pixdims on the way).
            mean_img = type(img)(acc.mean(), img.affine, img.header)
            if mask is None:
                mask = _check_mask_shape(compute_mask(mean_img), img, path)
                if spill is not None:
                    X = _gather(_spill_blocks(spill, img, blocks, block.dtype), mask,
                                n_volumes, dtype)
                elif (mask & ~kept).any():
                    X = _read_beyond(path, X, kept, mask)
                else:
                    X = keep_rows(X, mask[kept])
    _finite_rows(X, path)
    return X, mask, mean_img, img


def _gather(blocks, inside, n_volumes: int, dtype) -> np.ndarray:
    """The series of the voxels ``inside`` a mask, from ``(start, stop, block)`` of every volume."""
    positions = fortran_positions(inside)
    order = file_order(positions)
    X = new_rows((positions.size, n_volumes), dtype)
    for start, stop, block in blocks:
        _put_block(X, start, stop, block, positions, order)
    return X


def _spill_blocks(spill, img, blocks, block_dtype):
    """``(start, stop, block)`` of the decompressed volumes ``spill`` holds, as :func:`_blocks_of`."""
    spill.seek(0)
    part = np.empty(img.shape[:3] + (BLOCK_VOLUMES,), dtype=block_dtype, order="F")
    for start, stop in blocks:
        view = part[..., : stop - start]  # Fortran-contiguous still
        spill.readinto(view.T.data)
        yield start, stop, view


def _read_beyond(path, X, kept, mask) -> np.ndarray:
    """The series inside ``mask`` from ``X`` (read inside ``kept``) and a second pass for the rest."""
    in_kept = kept[mask]  # the mask's voxels, in its C order, that X holds
    full = new_rows((int(mask.sum()), X.shape[1]), X.dtype)
    full[in_kept] = X[mask[kept]]
    del X
    with open_image(path, ndim=4) as img:
        full[~in_kept] = _gather(_blocks_of(img, path), mask & ~kept, full.shape[1], full.dtype)
    return full


def keep_rows(X: np.ndarray, keep) -> np.ndarray:
    """``X[keep]`` for a C-contiguous 2D array, made in place: the rows moved up, the rest freed.

    No second copy of ``X`` is made (the kept rows are moved a block at a
    time, each to a row at or before its own, then the array is shrunk):
    ``X`` is consumed, and no view of it may be used after. An array that
    does not own its memory (a view, a memory map) is copied instead.
    """
    keep = np.asarray(keep, dtype=bool)
    if keep.all():
        return X
    if not (X.flags.owndata and X.flags.c_contiguous and X.ndim == 2):
        return np.ascontiguousarray(X[keep])
    rows = np.flatnonzero(keep)
    step = max(1, (1 << 22) // max(1, X.shape[1]))  # about 16 MB of float32 at a time
    for start in range(0, rows.size, step):
        # Every source row is at or after start, and the block's sources are
        # gathered (copied) before any row of it is written.
        chunk = rows[start:start + step]
        X[start:start + chunk.size] = X[chunk]
    # realloc: a large array shrinks where it lies, without a copy.
    X.resize((rows.size, X.shape[1]), refcheck=False)
    return X


# --------------------------------------------------------------------------
# Headers
# --------------------------------------------------------------------------
def header_repetition_time(img) -> float | None:
    """The repetition time (seconds) a NIfTI header gives: its fourth zoom, when it states a time unit."""
    zooms = img.header.get_zooms()
    try:  # the time unit's bits (NIfTI's XYZT_TO_TIME): nibabel's get_xyzt_units
        # raises on an unknown space unit, which says nothing of the time.
        unit = int(img.header["xyzt_units"]) & 0x38
    except (KeyError, TypeError, ValueError):  # a header without units
        return None
    scale = {8: 1.0, 16: 1e-3, 24: 1e-6}.get(unit)  # sec, msec, usec
    if len(zooms) > 3 and scale is not None and np.isfinite(zooms[3]) and zooms[3] > 0:
        return float(zooms[3]) * scale
    return None
