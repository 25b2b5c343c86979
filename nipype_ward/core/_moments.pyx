# cython: language_level=3, boundscheck=False, wraparound=False, initializedcheck=False
"""Moments of the rows of a series, compiled: per parcel, and each row's z-scores.

:func:`add_moments` is the loop of :func:`nipype_ward.core.moments.parcel_moments`,
one pass per voxel; :func:`zscore_rows` the z-scoring of
:func:`nipype_ward.core.signals.prepare_signals`, nilearn's numbers bit for
bit (a few rows at a time, each read from the caches in every pass).

For each voxel, in the order of its parcel, the row is read once from the
series into the caches and used there: its minimum, maximum and sum, then
its centred values (added to its parcel's centred sums, and their squares
summed), then those scaled to unit norm (added to its parcel's unit-norm
sums). numpy did the same a block of rows at a time in nine passes, each
over a block that no longer fits in the caches: on a 2 mm run of 1,200
volumes (235,170 voxels, K = 1,000, two threads; 2-core VM, 2026-12-06,
fresh processes back to back) 0.67-0.94 s, here 0.20-0.32 s.

Each sum over a row is kept in 8 partial sums (lane j adds the terms at
j, j + 8, ...), added in a fixed order at the end: the same bits
vectorised or not, AVX2 where the CPU has it or SSE2.
"""

from libc.stdlib cimport free, malloc

ctypedef Py_ssize_t intp_t

ctypedef fused real:
    float
    double


cdef extern from * nogil:
    """
    #include <math.h>
    #include <float.h>
    #include <cmath>

    #define NW_MOMENT_LANES 8

    #if (defined(__GNUC__) || defined(__clang__)) && (defined(__x86_64__) || defined(__i386__))
    #define NW_MOMENTS_AVX2 1
    #define NW_MOMENTS_AVX2_FN __attribute__((target("avx2")))
    #endif

    #if defined(__GNUC__) || defined(__clang__)
    #define NW_ALWAYS_INLINE __attribute__((always_inline)) inline
    #else
    #define NW_ALWAYS_INLINE inline
    #endif

    /* One voxel's row x (n values): its centred values added to s0 and, scaled
       to unit norm, to s1 (c: n doubles of scratch); returns its centred sum of
       squares, *mean its mean, *varying 0 for a constant row (nothing added). */
    template <typename T>
    static NW_ALWAYS_INLINE double nw_row_body(const T* x, Py_ssize_t n, double* s0,
                                               double* s1, double* c, double* mean,
                                               int* varying) {
        const int L = NW_MOMENT_LANES;
        double acc[NW_MOMENT_LANES] = {0.0};
        T lo[NW_MOMENT_LANES], hi[NW_MOMENT_LANES];
        Py_ssize_t t = 0;
        for (int j = 0; j < L; ++j) { lo[j] = x[0]; hi[j] = x[0]; }
        for (; t + L <= n; t += L) {
            for (int j = 0; j < L; ++j) {
                T v = x[t + j];
                acc[j] += (double)v;
                lo[j] = v < lo[j] ? v : lo[j];
                hi[j] = v > hi[j] ? v : hi[j];
            }
        }
        for (int j = 0; t < n; ++t, ++j) {
            T v = x[t];
            acc[j] += (double)v;
            lo[j] = v < lo[j] ? v : lo[j];
            hi[j] = v > hi[j] ? v : hi[j];
        }
        double total = 0.0;
        T low = lo[0], high = hi[0];
        for (int j = 0; j < L; ++j) {
            total += acc[j];
            low = lo[j] < low ? lo[j] : low;
            high = hi[j] > high ? hi[j] : high;
        }
        *mean = total / (double)n;
        /* Constant when all its values are equal, exactly: the rounding of
           its mean must not become a unit-norm series. */
        *varying = high != low;
        if (!*varying) return 0.0;
        double m = *mean;
        double sq[NW_MOMENT_LANES] = {0.0};
        t = 0;
        for (; t + L <= n; t += L) {
            for (int j = 0; j < L; ++j) {
                double d = (double)x[t + j] - m;
                c[t + j] = d;
                s0[t + j] += d;
                sq[j] += d * d;
            }
        }
        for (int j = 0; t < n; ++t, ++j) {
            double d = (double)x[t] - m;
            c[t] = d;
            s0[t] += d;
            sq[j] += d * d;
        }
        double squares = 0.0;
        for (int j = 0; j < L; ++j) squares += sq[j];
        if (squares > 0.0) {
            double scale = 1.0 / sqrt(squares);
            for (t = 0; t < n; ++t) s1[t] += c[t] * scale;
        }
        return squares;
    }

    template <typename T>
    static double nw_row_plain(const T* x, Py_ssize_t n, double* s0, double* s1,
                               double* c, double* mean, int* varying) {
        return nw_row_body<T>(x, n, s0, s1, c, mean, varying);
    }

    #if defined(NW_MOMENTS_AVX2)
    template <typename T>
    NW_MOMENTS_AVX2_FN static double nw_row_avx2(const T* x, Py_ssize_t n, double* s0,
                                                  double* s1, double* c, double* mean,
                                                  int* varying) {
        return nw_row_body<T>(x, n, s0, s1, c, mean, varying);
    }
    #endif

    static int nw_moments_avx2() {
    #if defined(NW_MOMENTS_AVX2)
        __builtin_cpu_init();
        return __builtin_cpu_supports("avx2") ? 1 : 0;
    #else
        return 0;
    #endif
    }

    template <typename T>
    static double nw_row_moments(int avx2, const T* x, Py_ssize_t n, double* s0,
                                 double* s1, double* c, double* mean, int* varying) {
    #if defined(NW_MOMENTS_AVX2)
        if (avx2) return nw_row_avx2<T>(x, n, s0, s1, c, mean, varying);
    #endif
        return nw_row_plain<T>(x, n, s0, s1, c, mean, varying);
    }

    /* z-scores of rows r0 to r1 of X (rows of n values), into out (X itself
       allowed): numpy's arithmetic on nilearn's (volumes, voxels) layout,
       each sum a running sum from 0 in the series' own type, rows taken G
       at a time (G independent sums: what numpy's loop over voxels does). */
    template <typename T, int G>
    static NW_ALWAYS_INLINE void nw_zscore_group(const T* x, T* out, Py_ssize_t n) {
        T s[G], mean[G], m2[G], q[G], sd[G];
        for (int k = 0; k < G; ++k) s[k] = 0;
        for (Py_ssize_t t = 0; t < n; ++t)
            for (int k = 0; k < G; ++k) s[k] += x[k * n + t];
        for (int k = 0; k < G; ++k) {
            /* numpy divides by the count (an intp) in double, then rounds. */
            mean[k] = (T)((double)s[k] / (double)n);
            s[k] = 0;
        }
        for (Py_ssize_t t = 0; t < n; ++t)
            for (int k = 0; k < G; ++k) s[k] += (T)(x[k * n + t] - mean[k]);
        for (int k = 0; k < G; ++k) {
            m2[k] = (T)((double)s[k] / (double)n);
            q[k] = 0;
        }
        for (Py_ssize_t t = 0; t < n; ++t)
            for (int k = 0; k < G; ++k) {
                T z = (T)((T)(x[k * n + t] - mean[k]) - m2[k]);
                q[k] += (T)(z * z);
            }
        for (int k = 0; k < G; ++k) {
            sd[k] = std::sqrt((T)((double)q[k] / (double)(n - 1)));
            if ((double)sd[k] < DBL_EPSILON) sd[k] = 1;
        }
        for (Py_ssize_t t = 0; t < n; ++t)
            for (int k = 0; k < G; ++k)
                out[k * n + t] = (T)((T)(x[k * n + t] - mean[k]) / sd[k]);
    }

    template <typename T>
    static void nw_zscore_rows(const T* x, T* out, Py_ssize_t r0, Py_ssize_t r1,
                               Py_ssize_t n) {
        const int G = 8;
        Py_ssize_t r = r0;
        for (; r + G <= r1; r += G) nw_zscore_group<T, G>(x + r * n, out + r * n, n);
        for (; r < r1; ++r) nw_zscore_group<T, 1>(x + r * n, out + r * n, n);
    }
    """
    int nw_moments_avx2()
    double nw_row_moments[T](int avx2, const T* x, intp_t n, double* s0, double* s1,
                             double* c, double* mean, int* varying)
    void __builtin_prefetch(const void* p, int rw, int locality)
    void nw_zscore_rows[T](const T* x, T* out, intp_t r0, intp_t r1, intp_t n)


cdef int _AVX2 = nw_moments_avx2()


def add_moments(const real[:, :] X, const intp_t[::1] rows, const intp_t[::1] row_labels,
                double[:, :, ::1] sums, double[::1] mean_sums, double[::1] n_varying,
                avx2=None):
    """Add the moments of ``X[rows]`` (sorted by parcel, of parcels ``row_labels``) in place.

    ``sums`` (2, n_parcels, n_samples): the centred then the unit-norm sums;
    ``mean_sums`` and ``n_varying`` (n_parcels,): the sums of the rows' means
    and the counts of the rows that are not constant. Only the parcels in
    ``row_labels`` are touched (two calls on disjoint parcels may run at once:
    the GIL is released). Each row of ``X`` must be contiguous. ``avx2``
    (None: where the CPU has it) chooses the code path; the bits are the same.
    Returns the sum of squares of the centred rows.
    """
    cdef intp_t n_rows = rows.shape[0]
    cdef intp_t n = X.shape[1]
    cdef intp_t i, r, p
    cdef double total = 0.0, mean = 0.0
    cdef int varying = 0
    cdef int path = _AVX2 if avx2 is None else (1 if avx2 and _AVX2 else 0)
    cdef double* scratch
    if row_labels.shape[0] != n_rows:
        raise ValueError("rows and row_labels differ in length")
    if n_rows == 0 or n == 0:
        return 0.0
    if n > 1 and X.strides[1] != sizeof(real):
        raise ValueError("each row of X must be contiguous")
    if sums.shape[0] != 2 or sums.shape[2] != n:
        raise ValueError(f"sums must be (2, n_parcels, {n})")
    if mean_sums.shape[0] != sums.shape[1] or n_varying.shape[0] != sums.shape[1]:
        raise ValueError(f"mean_sums and n_varying must have {sums.shape[1]} parcels")
    scratch = <double*>malloc(n * sizeof(double))
    if scratch == NULL:
        raise MemoryError()
    try:
        with nogil:
            for i in range(n_rows):
                r = rows[i]
                p = row_labels[i]
                if i + 1 < n_rows:  # the next row's first lines, while this one is summed
                    __builtin_prefetch(&X[rows[i + 1], 0], 0, 3)
                total += nw_row_moments(path, &X[r, 0], n, &sums[0, p, 0], &sums[1, p, 0],
                                        scratch, &mean, &varying)
                mean_sums[p] += mean
                n_varying[p] += varying
    finally:
        free(scratch)
    return total


def zscore_rows(const real[:, ::1] X, real[:, ::1] out, intp_t first, intp_t last):
    """``out[first:last]`` = the z-scores of ``X[first:last]``, each row over its columns.

    numpy's arithmetic on nilearn's (volumes, voxels) layout
    (:func:`nipype_ward.core.signals._zscore_sample`), bit for bit: the mean
    (a running sum from 0 in ``X``'s type, divided by the count), the
    sample standard deviation of the centred values (centred again by their
    own mean, as ``numpy.std`` does; below float64's epsilon, 1), then the
    centred values divided by it. ``out`` may be ``X`` (in place). The GIL
    is released: two calls on disjoint rows may run at once.
    """
    cdef intp_t n = X.shape[1]
    if out.shape[0] != X.shape[0] or out.shape[1] != n:
        raise ValueError("out must have the shape of X")
    if not 0 <= first <= last <= X.shape[0]:
        raise ValueError(f"rows {first} to {last} are not rows of X")
    if n < 2:
        raise ValueError("z-scores need at least 2 columns")
    if first == last:
        return
    with nogil:
        nw_zscore_rows(&X[0, 0], &out[0, 0], first, last, n)
