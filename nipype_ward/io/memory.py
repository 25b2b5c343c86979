"""Large arrays filled a block at a time: allocated in 4 kB pages, faulted in by the kernel at once.

A series read from a BOLD file is filled a block of volumes at a time: the
first block writes a few bytes in every page of it, so every page is
faulted in, one trap each, in that block. On the benches' 2-core VM a
fault costs 5-7 us (each is a trap to the hypervisor too): filling a 2 mm
series of 1,200 volumes (1.3 GB, 334,000 pages) took 4.6 s, of which
2.7 s were faults. Asked for at once (Linux's ``MADV_POPULATE_WRITE``,
5.14 and later), the same pages took 0.43 s, and the fill 2.0 s.

Blocks are made ahead by a thread of their own (:func:`made_ahead`): the
reader's next decompressed block of volumes, the writer's next block of
volumes to compress.
"""

from __future__ import annotations

import ctypes
import mmap
import sys
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from nipype_ward._compat import small_pages

__all__ = ["made_ahead", "new_rows", "populate"]

#: ``madvise`` advice: fault in the range's pages, writable (Linux >= 5.14).
_MADV_POPULATE_WRITE = 23


def _madvise():
    """libc's ``madvise`` (a symbol of the process), or None where there is none (not Linux)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        function = ctypes.CDLL(None, use_errno=True).madvise
    except (OSError, AttributeError):
        return None
    function.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
    function.restype = ctypes.c_int
    return function


_MADVISE = _madvise()


def populate(array: np.ndarray) -> bool:
    """Fault in the whole pages of a C-contiguous array's memory now, in one call.

    The values are unchanged (the advice only faults pages in). Returns
    False, having done nothing, where the system cannot (not Linux, a kernel
    older than 5.14, an array too small to hold a whole page): the pages are
    then faulted in as they are touched, as for any array.
    """
    if _MADVISE is None or not array.flags.c_contiguous:
        return False
    page = mmap.PAGESIZE
    first = -(-array.ctypes.data // page) * page
    last = (array.ctypes.data + array.nbytes) // page * page
    if last <= first:
        return False
    return _MADVISE(first, last - first, _MADV_POPULATE_WRITE) == 0


def new_rows(shape, dtype) -> np.ndarray:
    """An empty array to fill a block of columns at a time: 4 kB pages, faulted in at once.

    In 4 kB pages (:func:`~nipype_ward._compat.small_pages`: asking for huge
    pages made the kernel compact memory on the spot), so that the array can
    later shrink where it lies, its pages given back a few at a time.
    """
    with small_pages():
        array = np.empty(shape, dtype=dtype)
    populate(array)
    return array


def made_ahead(make, spans, *, name: str):
    """``make(turn, start, stop)`` of each span in turn, the next made by a thread of its own.

    The thread makes the next span's result while the caller works on this
    one (decompressing, or scattering volumes: both release the GIL); a
    result must not be kept past its turn when ``make`` fills buffers in
    turn (two are enough). An error of ``make`` is raised at its turn.
    """
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix=name) as maker:
        pending = maker.submit(make, 0, *spans[0]) if spans else None
        for turn in range(len(spans)):
            made = pending.result()
            if turn + 1 < len(spans):
                pending = maker.submit(make, turn + 1, *spans[turn + 1])
            yield made
