"""Values moved between a series (points x volumes) and volumes in file order (volumes x grid).

The two loops of a NIfTI series' reading and writing, compiled:
:func:`gather_volumes` takes a block of volumes, as decompressed, into
the columns of the series (:func:`nipype_ward.io.nifti._put_block`);
:func:`scatter_volumes` puts columns of a series back at their places in a
block of volumes to compress (:func:`nipype_ward.io.nifti_write.save_series_image`).
For each point the values of the block's volumes are one run of the
series' row (one cache line for 16 volumes of float32); the points are
taken in the ``order`` given: in file order (``numpy.argsort`` of their
places), each volume is read from its start to its end. numpy has no one
call for this transposing gather: in two (``take``, then a transposed
copy), the blocks of a 2 mm run of 1,200 volumes took 1.9-2.3 s to gather
and 1.1 s to scatter; here 0.95-1.0 s and 0.7 s (2-core VM; the rest is
reading the blocks from memory). A compressed series' values are scattered
from its parcels' means (``row_of``: each voxel's parcel), not from a block
of its voxels' values made first.

Any stored type of a NIfTI series is read (as numpy would convert it: a
C cast); the series is float32 or float64. Types not listed (big-endian
data, complex) are left to numpy by the callers.
"""

# cython: language_level=3, boundscheck=False, wraparound=False

ctypedef fused stored_t:
    unsigned char
    signed char
    short
    unsigned short
    int
    unsigned int
    float
    double

ctypedef fused series_t:
    float
    double


def gather_volumes(series_t[:, ::1] X, Py_ssize_t start, const stored_t[:, ::1] rows,
                   const Py_ssize_t[::1] positions, const Py_ssize_t[::1] order):
    """``X[i, start + t] = rows[t, positions[i]]`` for every volume ``t`` of ``rows``.

    ``rows`` is a block of volumes, one per row, each flattened in file
    order; ``positions`` the points' places in a volume (in range: the
    caller's to check), taken in ``order`` (a permutation of the points);
    ``X`` has a row per point and room for the block's columns.
    """
    cdef Py_ssize_t n_points = positions.shape[0], n_volumes = rows.shape[0]
    cdef Py_ssize_t i, j, t, place
    if (X.shape[0] != n_points or order.shape[0] != n_points or start < 0
            or start + n_volumes > X.shape[1]):
        raise ValueError("the series has no room for this block")
    with nogil:
        for j in range(n_points):
            i = order[j]
            place = positions[i]
            for t in range(n_volumes):
                X[i, start + t] = <series_t>rows[t, place]


def scatter_volumes(series_t[:, ::1] rows, const series_t[:, ::1] values,
                    const Py_ssize_t[::1] positions, const Py_ssize_t[::1] order,
                    const Py_ssize_t[::1] row_of=None):
    """``rows[t, positions[i]] = values[i, t]`` for every volume ``t`` of ``rows``.

    ``values`` holds a row per point and a column per volume of the block
    ``rows`` (one volume per row, flattened in file order); the points are
    taken in ``order`` (a permutation); the places not in ``positions`` are
    left as they are. With ``row_of``, point ``i``'s values are row
    ``row_of[i]`` of ``values`` instead (a parcel's mean for each of its
    voxels: no (points x volumes) block is made).
    """
    cdef Py_ssize_t n_points = positions.shape[0], n_volumes = rows.shape[0]
    cdef Py_ssize_t n_rows = values.shape[0]
    cdef Py_ssize_t i, j, t, place, source
    cdef bint mapped = row_of is not None, bad = False
    if values.shape[1] != n_volumes or order.shape[0] != n_points or (
            row_of.shape[0] != n_points if mapped else n_rows != n_points):
        raise ValueError("the values do not match the block's points and volumes")
    with nogil:
        for j in range(n_points):
            i = order[j]
            place = positions[i]
            source = row_of[i] if mapped else i
            if source < 0 or source >= n_rows:
                bad = True
                break
            for t in range(n_volumes):
                rows[t, place] = values[source, t]
    if bad:
        raise ValueError("a point's row is not a row of the values")
