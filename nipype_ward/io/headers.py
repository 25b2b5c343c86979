"""Checks of NIfTI-1 and NIfTI-2 headers that nibabel leaves late or unchecked.

The header's dimensions, data type, affine and size against the file
(:func:`check_header`), a ``.nii.gz``'s size from its last four bytes
(:func:`check_gzip_size`), and the header extensions (:func:`check_extensions`).
Shared by the NIfTI reader (:mod:`nipype_ward.io.nifti`) and the CIFTI-2 one
(:mod:`nipype_ward.io.cifti`, whose XML is a NIfTI-2 header extension); it
imports neither.
"""

from __future__ import annotations

import functools
import os

import nibabel as nb
import numpy as np
from isal import igzip

from nipype_ward.io.errors import InputError


def check_extensions(path) -> None:
    """Refuse NIfTI header extensions that overrun the data (a corrupt header).

    nibabel reads each extension at the size it states (up to 2 GB, or the
    whole file for a negative size) before checking it against the data
    offset; this walks their 8-byte headers first. Anything else wrong is
    left to nibabel, which names it.
    """
    try:
        with (igzip.open(path, "rb") if path.name.endswith(".gz") else open(path, "rb")) as stream:
            check_extensions_of(stream, path)
    except InputError:
        raise
    except Exception:  # unreadable (OSError, EOFError, IsalError...): nibabel's error names it
        return


def check_extensions_of(stream, path) -> None:
    """:func:`check_extensions` on an open stream, left at its start."""
    try:
        head = stream.read(544)
        for order in ("<", ">"):
            size = int(np.frombuffer(head[:4], dtype=f"{order}i4")[0]) if len(head) >= 4 \
                else 0
            if size in (348, 540):
                break
        else:
            return
        field = (108, f"{order}f4") if size == 348 else (168, f"{order}i8")
        if len(head) < size + 4 or head[size] == 0:  # no extension
            return
        offset = float(np.frombuffer(head, dtype=field[1], count=1, offset=field[0])[0])
        if not np.isfinite(offset):
            return
        position = size + 4
        stream.seek(position)
        while offset - position >= 16:
            ext = stream.read(8)
            if len(ext) < 8:
                return
            esize = int(np.frombuffer(ext, dtype=f"{order}i4", count=1)[0])
            if esize < 8 or position + esize > offset:
                raise InputError(path, f"its header extension at byte {position} states "
                                 f"{esize} bytes, which do not fit before the data at byte "
                                 f"{int(offset)}: the header is corrupt")
            position += esize
            stream.seek(position)
    except InputError:
        raise
    except Exception:  # unreadable (OSError, EOFError, IsalError...): nibabel's error names it
        return
    finally:
        stream.seek(0)


#: Deflate compresses at most 1032:1, so a ``.nii.gz`` of n bytes holds at most
#: about 1032 n bytes (a little more for gzip's and the header's own bytes).
_MAX_DEFLATE_RATIO = 1032


def check_header(img, path) -> None:
    """Raise :class:`InputError` on a header that no reader here can use.

    Refused, though nibabel takes them: dimensions less than 1, voxels that
    are not numbers (complex, RGB), a non-finite affine, and more data than
    the file can hold: exactly for an uncompressed ``.nii`` (else nibabel
    fails only when the data are used, far from the check of the inputs),
    and for a ``.nii.gz`` past deflate's largest ratio, which catches corrupt
    dimensions before a reader allocates their product.
    """
    if any(int(n) < 1 for n in img.shape):
        raise InputError(path, f"its header gives the dimensions {img.shape}, each must be at "
                         "least 1: the header is corrupt")
    dtype = img.get_data_dtype()
    if dtype.fields is not None or dtype.kind not in "biuf":
        raise InputError(path, f"its voxels are {img.header.get_value_label('datatype')} "
                         "values: give an image of integer or real values")
    if img.affine is not None and not np.isfinite(img.affine).all():
        raise InputError(path, "its affine has NaN or infinite values (the header's sform, "
                         "qform or voxel sizes): the header is corrupt")
    proxy = img.dataobj  # the header's offset is reset once loaded, the proxy's kept
    if not isinstance(img, (nb.Nifti1Image, nb.Nifti2Image)) or not hasattr(proxy, "offset"):
        return  # other formats (pairs, MGH...), data in memory: nibabel's own checks
    n_bytes = int(np.prod(proxy.shape, dtype=object)) * np.dtype(proxy.dtype).itemsize
    offset = int(proxy.offset)
    size = path.stat().st_size
    if path.name.endswith(".gz"):
        if n_bytes > _MAX_DEFLATE_RATIO * size + 4096:
            raise InputError(path, f"its header declares {n_bytes} bytes of data {img.shape}, "
                             f"more than a {size}-byte gzip file can hold: the header is "
                             "corrupt or the file truncated")
    elif offset + n_bytes > size:
        raise InputError(path, f"file is truncated: its header declares {n_bytes} bytes of data "
                         f"{img.shape} from byte {offset}, but the file has {size} bytes; "
                         "copy or download it again")


def check_gzip_size(img, path) -> None:
    """Refuse a truncated or corrupt ``.nii.gz`` from its header, cheaply.

    A gzip stream ends with ISIZE, the size of its last member's data
    modulo 2**32: for a file of one member (what fMRIPrep, nibabel and our
    writers make), that of the NIfTI, its data's offset plus the data,
    which the header gives. Reading those four bytes finds a truncated file
    without decompressing it. When they differ, the file is decompressed
    whole to tell a broken one from a valid file of several members (bgzip,
    ``cat a.gz b.gz``), which is never refused.
    """
    proxy = img.dataobj
    if not path.name.endswith(".gz") or not hasattr(proxy, "offset"):
        return
    n_bytes = int(proxy.offset) \
        + int(np.prod(proxy.shape, dtype=object)) * np.dtype(proxy.dtype).itemsize
    stat = path.stat()
    if stat.st_size >= 4:
        with open(path, "rb") as stream:
            stream.seek(-4, os.SEEK_END)
            if int.from_bytes(stream.read(4), "little") == n_bytes % 2**32:
                return
    problem = _gzip_problem(str(path), stat.st_size, stat.st_mtime_ns, n_bytes)
    if problem is not None:
        raise InputError(path, f"truncated or corrupt gzip ({problem}): re-run fMRIPrep or copy "
                         "the file again")


@functools.lru_cache(maxsize=64)
def _gzip_problem(path: str, size: int, mtime_ns: int, n_bytes: int) -> str | None:
    """What is wrong with a gzip file once decompressed whole (ISA-L), or None.

    Once per file (its size and time stamp) and process: a header is
    checked several times in a run.
    """
    total = 0
    try:
        with igzip.open(path, "rb") as stream:
            while block := stream.read(1 << 24):
                total += len(block)
    except Exception as exc:  # EOFError, BadGzipFile, IsalError...
        return str(exc)
    if total < n_bytes:
        return f"{total} bytes once decompressed, where its header declares {n_bytes}"
    return None
