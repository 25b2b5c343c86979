"""Checks of NIfTI-1 and NIfTI-2 headers that nibabel leaves late or unchecked.

Shared by the NIfTI reader (:mod:`nipype_ward.image`) and the CIFTI-2 one
(:mod:`nipype_ward.cifti`, whose XML is a NIfTI-2 header extension); it
imports neither.
"""

from __future__ import annotations

import numpy as np
from isal import igzip

from nipype_ward.fileio import InputError


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
