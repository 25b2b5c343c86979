"""Writing NIfTI images: atomically, ``.nii.gz`` by ISA-L, 4D series a block of volumes at a time.

Writers go through a temporary file and a rename
(:func:`nipype_ward.io.files.save_atomically`): a failed write leaves the
user's previous file as it was. ``.nii.gz`` outputs are compressed by ISA-L
(level :data:`GZIP_LEVEL`), about 8x faster than nibabel's zlib level 1 for
files of the same size, readable by nibabel, nilearn, FSL and any gzip.
"""

from __future__ import annotations

import collections
import contextlib
import io
import struct
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import nibabel as nb
import numpy as np
from isal import igzip, isal_zlib

from nipype_ward.io._volumes import scatter_volumes
from nipype_ward.io.files import save_atomically
from nipype_ward.io.memory import made_ahead
from nipype_ward.io.nifti import BLOCK_VOLUMES, file_order, fortran_positions, volume_blocks

__all__ = [
    "GZIP_LEVEL",
    "save_image",
    "save_series_image",
    "save_volumes",
    "unmask",
]

#: ISA-L compression level of ``.nii.gz`` outputs. Measured on the compressed
#: 4D series of the embedded data (238 MB raw): level 2 took 0.15-0.22 s and
#: gave 11.9 MB, level 1 0.22 s and 12.0 MB, level 3 0.7-0.9 s and 12.9 MB;
#: nibabel's zlib level 1 took 1.65 s for 11.2 MB.
GZIP_LEVEL = 2

#: Bytes a compressing thread of a 4D series takes at a time (pigz's design:
#: each with the 32 kB before it as dictionary). The compress step of a 2 mm
#: run of 1,200 volumes (4.3 GB raw, 2 threads, through python-isal's
#: ``igzip_threaded``): 2.55-2.63 s with 4 MB, 2.69-3.58 s with its default
#: 1 MB (handing blocks between threads cost more than compressing them),
#: 2.7-2.83 s with 8 or 16 MB.
GZIP_BLOCK_BYTES = 4 << 20


# --------------------------------------------------------------------------
# Writing
# --------------------------------------------------------------------------
@contextlib.contextmanager
def _gzip_writer(path):
    """A deterministic ISA-L gzip stream (no name, no time stamp in its header)."""
    with open(path, "wb") as raw, igzip.IGzipFile(
        filename="", mode="wb", fileobj=raw, compresslevel=GZIP_LEVEL, mtime=0
    ) as stream:
        yield stream


#: The gzip header of a 4D series: deflate, no name, no time stamp, no extra
#: flags, operating system unknown (255), as python-isal's ``IGzipFile`` with
#: ``mtime=0`` writes it.
_GZIP_HEADER = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"

#: Bytes of the stream a deflate piece may refer back to (deflate's window).
_DEFLATE_WINDOW = 1 << 15


def _deflate_piece(piece, window) -> tuple[bytes, int, int]:
    """One piece of a gzip stream deflated on its own, the window before it as dictionary.

    Ends on a byte boundary (a sync flush), so that pieces are joined as
    they come; returns the deflated bytes, the piece's CRC-32 and length.
    The GIL is released while ISA-L works.
    """
    deflate = isal_zlib.compressobj(GZIP_LEVEL, isal_zlib.DEFLATED, -15,
                                    **({"zdict": window} if len(window) else {}))
    return (deflate.compress(piece) + deflate.flush(isal_zlib.Z_SYNC_FLUSH),
            isal_zlib.crc32(piece), len(piece))


class _ParallelGzipWriter:
    """A deterministic gzip stream of large buffers, deflated by ``threads`` threads, never copied.

    pigz's design, as python-isal's ``igzip_threaded``: each
    :data:`GZIP_BLOCK_BYTES` piece deflated on its own with the 32 kB
    before it as dictionary, so the bytes do not depend on the threads.
    ``igzip_threaded`` copies every piece it is given (the caller may
    reuse its buffer at once), 0.5 s of the main thread per 4D series at
    2 mm x 1,200 volumes; :meth:`write` instead deflates the caller's buffer
    where it lies. With ``in_flight`` of 1 or more, a write returns while
    the buffers of the last ``in_flight`` writes are still being deflated
    (the caller must leave them as they are until the write after them
    returns): the threads then always have the next buffer's pieces to
    take. The stream cannot seek.
    """

    def __init__(self, raw, threads: int = 1, in_flight: int = 0):
        self._raw = raw
        self._pool = ThreadPoolExecutor(max_workers=threads) if threads > 1 else None
        self._in_flight = in_flight if self._pool is not None else 0
        self._pending = collections.deque()  # each write's deflating pieces, in order
        self._crc = self._size = 0
        self._window = b""
        raw.write(_GZIP_HEADER)

    def write(self, data) -> int:
        """Deflate and write ``data`` (a contiguous buffer); see the class for its reuse."""
        view = memoryview(data).cast("B")
        pieces = [view[start:start + GZIP_BLOCK_BYTES]
                  for start in range(0, len(view), GZIP_BLOCK_BYTES)]
        if not pieces:
            return 0
        windows = [self._window] + [piece[-_DEFLATE_WINDOW:] for piece in pieces[:-1]]
        self._window = bytes(pieces[-1][-_DEFLATE_WINDOW:])
        if self._pool is None:
            self._put(map(_deflate_piece, pieces, windows))
            return len(view)
        self._pending.append([self._pool.submit(_deflate_piece, piece, window)
                              for piece, window in zip(pieces, windows)])
        while len(self._pending) > self._in_flight:
            self._put(job.result() for job in self._pending.popleft())
        return len(view)

    def _put(self, deflated) -> None:
        for compressed, crc, length in deflated:
            self._raw.write(compressed)
            self._crc = isal_zlib.crc32_combine(self._crc, crc, length)
            self._size += length

    def finish(self) -> None:
        """End the stream: the pieces still deflating, the last (empty) deflate block, the
        CRC-32 and the length."""
        while self._pending:
            self._put(job.result() for job in self._pending.popleft())
        self._raw.write(isal_zlib.compress(b"", wbits=-15))
        self._raw.write(struct.pack("<II", self._crc, self._size & 0xFFFFFFFF))

    def shutdown(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)


@contextlib.contextmanager
def _gzip_stream_writer(path, threads: int = 1, in_flight: int = 0):
    """A :class:`_ParallelGzipWriter` into ``path``, ended on leaving (not on an error)."""
    with open(path, "wb") as raw:
        stream = _ParallelGzipWriter(raw, threads, in_flight)
        try:
            yield stream
            stream.finish()
        finally:
            stream.shutdown()


def save_image(img, path) -> Path:
    """Write an image atomically; ``.nii.gz`` through ISA-L."""

    def write(tmp):
        if str(tmp).endswith(".gz"):
            with _gzip_writer(tmp) as stream:
                holder = nb.FileHolder(fileobj=stream)
                img.to_file_map({"image": holder, "header": holder})
        else:
            nb.save(img, tmp)

    return save_atomically(write, path)


def unmask(values, mask, reference_img, *, dtype=np.float32) -> nb.Nifti1Image:
    """Put voxel values (n_voxels,) or (n_voxels, n_volumes) back on the grid.

    The output keeps the reference's affine, qform/sform codes and spatial
    zooms (and the TR for 4D outputs); outside the mask is 0.
    """
    values = np.asarray(values)
    shape = mask.shape + values.shape[1:]
    data = np.zeros(shape, dtype=dtype)
    data[mask] = values
    header = reference_img.header.copy()
    header.set_data_dtype(dtype)
    img = nb.Nifti1Image(data, reference_img.affine, header)
    if data.ndim == 3:
        img.header.set_zooms(reference_img.header.get_zooms()[:3])
    # Scaling of the source (e.g. int16 EPI) must not be applied to our values.
    img.header.set_slope_inter(1.0, 0.0)
    return img


def _series_header(reference_img, n_volumes: int, dtype, t_r) -> nb.Nifti1Header:
    """A 4D header on the grid of a 3D reference (affine, codes, zooms) with a TR."""
    source = reference_img.header
    header = nb.Nifti1Header()
    header.set_data_shape(tuple(reference_img.shape[:3]) + (n_volumes,))
    header.set_data_dtype(dtype)
    qform, qcode = source.get_qform(coded=True)
    sform, scode = source.get_sform(coded=True)
    header.set_qform(qform if qform is not None else reference_img.affine, int(qcode))
    header.set_sform(sform if sform is not None else reference_img.affine, int(scode))
    header.set_zooms(tuple(source.get_zooms()[:3]) + (float(t_r) if t_r else 0.0,))
    header.set_xyzt_units("mm", "sec" if t_r else "unknown")
    header.set_slope_inter(1.0, 0.0)
    return header


def _save_stream(header: nb.Nifti1Header, blocks, path, n_volumes: int, threads: int = 1,
                 in_flight: int = 0) -> Path:
    """Write a 4D image atomically from its header and its data in blocks of whole volumes.

    ``blocks`` yields C-contiguous arrays of shape (volumes, grid voxels in
    Fortran order), the NIfTI on-disk order, of the header's data type; they
    must hold ``n_volumes`` volumes in all; ``threads`` compress them
    (:func:`_gzip_stream_writer`), the last ``in_flight`` blocks still being
    compressed as the next is asked for (left as they are until then).
    """

    def write(tmp):
        opener = (lambda p: _gzip_stream_writer(p, threads, in_flight)) \
            if str(tmp).endswith(".gz") \
            else (lambda p: open(p, "wb"))
        written = 0
        head = io.BytesIO()
        header.write_to(head)
        head.write(b"\x00" * (int(header["vox_offset"]) - head.tell()))
        with opener(tmp) as stream:
            stream.write(head.getvalue())
            for rows in blocks:
                stream.write(rows.data)
                written += rows.shape[0]
        if written != n_volumes:  # the header would promise volumes the file lacks
            raise ValueError(f"{written} volumes written, the header says {n_volumes}")

    return save_atomically(write, path)


def save_series_image(volumes, mask, reference_img, path, *, n_volumes: int, dtype=np.float32,
                      t_r=None, threads: int = 1, rows_of=None) -> Path:
    """Write a 4D image a block of volumes at a time, never holding it whole.

    ``volumes(start, stop)`` returns the values inside ``mask`` of volumes
    ``start`` to ``stop``, shape (n_voxels, stop - start); outside the mask
    is 0. With ``rows_of`` (one index per voxel), it returns rows of values
    instead (e.g. a parcel's mean per row), and voxel ``i`` takes row
    ``rows_of[i]``. The grid, affine and codes are those of the 3D
    ``reference_img``, the TR ``t_r`` (seconds). A ``.nii.gz`` is
    compressed by ``threads`` threads while a thread of its own makes the
    next block of volumes, the bytes the same for any ``threads``: the
    compress step of a 2 mm run of 1,200 volumes (4.3 GB raw) took 4.2 s
    with one, 2.55-2.63 s with two (2-core VM, 2026-12-06). Its buffers
    deflated where they lie (:class:`_ParallelGzipWriter`): the step 2.92-4.06
    s against 3.59-4.16 s through python-isal's ``igzip_threaded``, which
    copies them (four runs each, alternating, 2026-12-07); and the block
    before still deflating while the next is asked for, the write alone
    2.13-2.22 s against 2.38-2.48 s (three each, alternating).
    """
    positions = fortran_positions(mask)
    order = file_order(positions)
    if rows_of is not None:
        rows_of = np.ascontiguousarray(rows_of, dtype=np.intp)
    n_grid = int(np.prod(mask.shape))
    dtype = np.dtype(dtype)
    compiled = dtype in (np.float32, np.float64)
    spans = volume_blocks(n_volumes)
    # Three buffers in turn: the block made ahead, the block being deflated,
    # the block before it still deflating (``in_flight``; the threads then
    # always have pieces to take). Outside the mask each stays 0 throughout.
    buffers = [np.zeros((min(BLOCK_VOLUMES, n_volumes), n_grid), dtype=dtype)
               for _ in range(min(3, len(spans)))]

    def fill(turn: int, start: int, stop: int) -> np.ndarray:
        rows = buffers[turn % len(buffers)][: stop - start]
        if compiled:  # 1.6x numpy's transposed copy
            values = np.ascontiguousarray(volumes(start, stop), dtype=dtype)
            scatter_volumes(rows, values, positions, order, rows_of)
        else:
            values = np.asarray(volumes(start, stop))
            rows[:, positions] = (values if rows_of is None else values[rows_of]).T
        return rows

    # The next block is made while this one and the one before are deflated
    # where they lie: made in turn, the compressing threads waited for each
    # block, and each block for them.
    return _save_stream(_series_header(reference_img, n_volumes, dtype, t_r),
                        made_ahead(fill, spans, name="nifti-write"), path, n_volumes, threads,
                        in_flight=len(buffers) - 2)


def save_volumes(volumes, reference_img, path, *, n_volumes: int, dtype=np.float32,
                 t_r=None) -> Path:
    """Write a 4D image from its volumes, given one at a time, never holding it whole.

    ``volumes`` yields the ``n_volumes`` 3D arrays on the grid of the 3D
    ``reference_img`` (affine, codes, zooms); ``t_r`` is the TR (seconds).
    """
    blocks = (np.asarray(volume, dtype=dtype).ravel(order="F")[None] for volume in volumes)
    return _save_stream(_series_header(reference_img, n_volumes, dtype, t_r), blocks, path,
                        n_volumes)
