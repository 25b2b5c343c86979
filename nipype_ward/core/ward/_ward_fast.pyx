# distutils: language = c++
"""Compiled kernel of the connectivity-constrained Ward tree.

No validation here: :func:`nipype_ward.core.ward.ward_tree` checks and converts the
inputs, this module only runs the merge loop on preallocated arrays.

Exactness contract with scikit-learn's ``ward_tree``
----------------------------------------------------
* The inertia of a pair is computed with the very expression of
  ``sklearn.cluster._hierarchical_fast.compute_ward_dist``::

      sum_t (m2[a, t] / m1[a] - m2[b, t] / m1[b]) ** 2 * (m1[a] m1[b]) / (m1[a] + m1[b])

  with the same operations and the same summation order (t = 0, 1, ...) in
  float64, so every candidate gets the same bits. Eight pairs are summed at
  once, one SIMD lane per pair: each lane still adds its own terms in order,
  only the CPU overlaps the independent chains (see ``nw_centroid_lanes``).
  Nothing is reassociated, and the build has neither ``-ffast-math`` nor FMA
  contraction.
* ``m2[b] / m1[b]`` (a centroid) is computed once per cluster and cached: the
  quotient is deterministic, so the cached value has the bits of
  scikit-learn's per-evaluation quotient. For a sample ``x / 1.0 == x``, and
  float32 converts exactly to float64, so samples are read from ``X`` as
  given: no float64 copy of the data.
* Merged sums are ``m2[a] + m2[b]`` in float64 like scikit-learn's, kept only
  for the clusters alive at a given time, and for the small ones made again
  by the same additions when needed (``a + b == b + a`` in IEEE arithmetic,
  so it does not matter which child's row is reused, nor in which order a
  node's two children are added).
* The next merge is the minimum of ``(inertia, larger node id, smaller node
  id)`` over all pairs of touching clusters, the order of the tuples in
  scikit-learn's heap, so ties are broken identically.

Data structures
---------------
scikit-learn pushes every pair it evaluates on one heap and skips the stale
ones when they surface (95 % of the pops on a brain mask, out of a heap of
half a million entries). Here each live cluster keeps the list of its touching
clusters with the cached inertias and its best candidate, and a 4-ary heap
over the clusters is keyed by their best candidate: the same minimum, no stale
entries, at most ``n_samples`` entries. A merge rewrites, in each touching
cluster's list, the entries of the two children into one entry of the new
cluster; a cluster rescans its list (cached inertias, no arithmetic on the
data) only when its best candidate was with a child.

Lazy inertias
-------------
Most inertias of a new cluster k with its touching clusters r could never be
the minimum of anything: they only matter if they beat r's best candidate or
give k's. Before reading r's centroid, a lower bound comes for free from the
cached inertia of r with a child a, by the triangle inequality:
``|c_k - c_r| >= |c_a - c_r| - |c_k - c_a|`` with ``|c_k - c_a| = |c_a - c_b|
w_b / w_k`` (both known from cached inertias, that of the merge being exact).
Where the bound already loses against r's best candidate, the list stores it
(negated: an inertia is never negative) instead of the inertia. A cluster
whose best candidate is such a bound, k's included, has a heap key that is
only a lower bound of its true key; when it reaches the top, the inertia of
that pair is computed (the same expression, so the same bits) and the cluster
goes back in the heap. Every key is at most the true one, so the top is the
true minimum whenever it is an inertia: the merges are unchanged. The bounds
allow for the rounding of the cached inertias, of the centroids and of their
own arithmetic (relative margins of a few hundred ulps, an absolute one from
the largest sample norm); an overflow or underflow gives no bound, and the
inertia is then computed at once. On the 3 mm brain mask a merge computes 6.9
inertias instead of 15.9, plus 0.15 to resolve bounds. Bounds are only kept
when they save a batch of inertias (see the merge loop): with ~7 touching
clusters, as on a cortical mesh, all are computed, in one batch.

Memory
------
Only the merged clusters alive at a time have rows (about a fifth of the
samples on a brain mask), recycled from one pool: a centroid row each, and a
second row with the sums for the clusters of more than ``small_size``
samples (an argument; with 1, the default, every merged cluster keeps its
sums, in its one row after the centroid, read as one). A smaller cluster's
sums are made again when a merge needs them, by the same additions (its
children's sums, added, down the tree so far; or, for 2, 4 or 8 float32
samples, its centroid times its size, which is exact), so they have the
bits of the sums it would have kept; its samples' rows are prefetched as
the merge starts. On the 2 mm brain mask with 1,200 volumes, at the peak a
third of the live clusters are pairs and three quarters have at most 8
samples: with ``small_size=8`` the kernel's memory goes from 859 to 520
MiB, for 2.9 samples' rows read again per merge (the tree node 5 to 7 %
slower). There, a pair of float32 samples keeps no row at all: where its
centroid is needed, the inertia lanes read its two samples' rows and add
them (a pair lane, ``nw_at``: their sum times 0.5, the bits of the sum over
two), which costs no more than reading a float64 row; the full tree then
peaks at 448 instead of 522 MiB, and the tree node (the full tree beside
its halves) at 724-747 instead of 871-883 MiB, in the same time (4.79-5.06
against 4.61-5.29 s, three runs each, 2 cores, 2026-12-06). The lists and
the per-cluster fields are small. Big blocks are huge-page backed (the first
64 MB of fresh ones a tree: ``nw_set_huge_budget``), and up
to 64 MB of them are kept for the next call (released to the system under
memory pressure): fresh pages come zeroed by the system, at a cost of 5 to
10 % of a tree on a cortical mesh. A process's first tree has none kept: a
thread of its own faults in blocks of rows while the tree starts
(``NwStocker``), so that the zeroing runs on another core.

Speed
-----
The loop is bound by memory latency: a merge reads the lists of its children,
the clusters in them, then their centroids and lists, rounds of cache misses
anywhere in ~100 MB. Each round is prefetched as a whole as soon as its
addresses are known (see "Prefetching").
"""
from libc.stdint cimport int32_t, int64_t
from libc.math cimport fabs, sqrt
from libc.string cimport memcpy
from libcpp.vector cimport vector

import numpy as np

from numpy cimport float32_t, float64_t, intp_t


cdef extern from * nogil:
    """
    #include <cstddef>
    #include <cstdint>
    #include <cstdlib>
    #include <cstring>
    #include <atomic>
    #include <mutex>
    #include <thread>
    #include <vector>
    #if defined(__linux__)
    #include <sys/mman.h>
    #endif
    #if defined(__SSE2__) && !defined(NW_SCALAR)
    #include <emmintrin.h>
    #define NW_SSE2 1
    #endif

    /* ---- Memory ----------------------------------------------------------
       Arrays of 2 MB or more are mapped directly, 2 MB aligned and, on Linux,
       asked to be backed by transparent huge pages: the random accesses of
       the merge loop then rarely miss the TLB (numpy does the same for its
       large arrays, hence for X). Mapping them directly also gives them back
       to the system when freed, instead of leaving them in malloc's heap.

       Except up to NW_CACHE_BYTES of them, kept for the next call (a tree per
       hemisphere, per half of a split, per subject): the system hands out
       fresh pages zeroed, which was 5 to 10 % of a tree on a cortical mesh.
       While cached they are madvise(MADV_FREE): the system may still take
       them back under memory pressure (they then come back zeroed, which is
       fine: nothing here reads memory it has not written). */
    static const size_t NW_HUGE = size_t(1) << 21;
    static const size_t NW_CACHE_BYTES = size_t(64) << 20;

    /* Bytes of fresh blocks that may still ask for huge pages, set before
       each tree (nw_set_huge_budget: _tree.HUGE_PAGE_BYTES, where why). */
    static size_t nw_huge_budget = SIZE_MAX;
    static std::mutex nw_huge_mutex;

    static inline size_t nw_set_huge_budget(size_t n_bytes) {
        std::lock_guard<std::mutex> lock(nw_huge_mutex);
        const size_t previous = nw_huge_budget;
        nw_huge_budget = n_bytes;
        return previous;
    }

    #if defined(__linux__)
    struct NwCachedBlock { void* p; size_t n_bytes; };
    static std::vector<NwCachedBlock> nw_cache;
    static size_t nw_cache_total = 0;
    static std::mutex nw_cache_mutex;
    #endif

    #if defined(__linux__)
    /* rounded (a multiple of 2 MB) fresh bytes from the system, 2 MB aligned,
       huge pages within the budget; nullptr when out of memory. */
    static void* nw_map_fresh(size_t rounded) {
        void* p = mmap(nullptr, rounded + NW_HUGE, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED) return nullptr;
        /* Keep the 2 MB aligned part, unmap the rest. */
        char* base = static_cast<char*>(p);
        char* aligned = reinterpret_cast<char*>(
            (reinterpret_cast<uintptr_t>(base) + NW_HUGE - 1) & ~(uintptr_t(NW_HUGE) - 1));
        if (aligned > base) munmap(base, aligned - base);
        munmap(aligned + rounded, (base + rounded + NW_HUGE) - (aligned + rounded));
    #if defined(MADV_HUGEPAGE)
        {
            std::lock_guard<std::mutex> lock(nw_huge_mutex);
            if (rounded <= nw_huge_budget) {
                nw_huge_budget -= rounded;
                madvise(aligned, rounded, MADV_HUGEPAGE);
            }
        }
    #endif
        return aligned;
    }
    #endif

    static inline void* nw_alloc(size_t n_bytes) {
    #if defined(__linux__)
        if (n_bytes >= NW_HUGE) {
            const size_t rounded = (n_bytes + NW_HUGE - 1) & ~(NW_HUGE - 1);
            {
                std::lock_guard<std::mutex> lock(nw_cache_mutex);
                for (size_t i = nw_cache.size(); i-- > 0;) {
                    if (nw_cache[i].n_bytes == rounded) {
                        void* cached = nw_cache[i].p;
                        nw_cache[i] = nw_cache.back();
                        nw_cache.pop_back();
                        nw_cache_total -= rounded;
                        return cached;
                    }
                }
            }
            return nw_map_fresh(rounded);
        }
    #endif
        return std::malloc(n_bytes > 0 ? n_bytes : 1);
    }

    static inline void nw_free(void* p, size_t n_bytes) {
        if (p == nullptr) return;
    #if defined(__linux__)
        if (n_bytes >= NW_HUGE) {
            const size_t rounded = (n_bytes + NW_HUGE - 1) & ~(NW_HUGE - 1);
            {
                std::lock_guard<std::mutex> lock(nw_cache_mutex);
                if (nw_cache_total + rounded <= NW_CACHE_BYTES) {
                    try {
                        nw_cache.push_back(NwCachedBlock{p, rounded});
                        nw_cache_total += rounded;
    #if defined(MADV_FREE)
                        madvise(p, rounded, MADV_FREE);
    #endif
                        return;
                    } catch (...) {}
                }
            }
            munmap(p, rounded);
            return;
        }
    #endif
        std::free(p);
    }

    /* ---- Fresh blocks, faulted in on another core --------------------------
       A process's first tree gets its blocks of rows fresh from the system,
       which zeroes each page at its first write, in the merge loop: on this
       2-core VM, the 48 MB of a cortical hemisphere made the first tree of a
       process 0.03 to 0.12 s longer than the next, in system time (the host
       too hands its pages over cold): up to as long as the merges. NwStocker maps such blocks and writes them once on
       a thread of its own, from the start of the tree, and leaves them in the
       cache above, where the pools' nw_alloc finds them. The same pages are
       zeroed either way, on an idle core when there is one; nothing waits
       for the thread but the tree's end, which stops it. */
    class NwStocker {
      public:
        NwStocker() {}
        ~NwStocker() { stop(); }
        NwStocker(const NwStocker&) = delete;
        NwStocker& operator=(const NwStocker&) = delete;
        /* Up to n_blocks blocks of block_bytes in the cache, counting those
           already there, within its NW_CACHE_BYTES. */
        void start(size_t block_bytes, size_t n_blocks) {
    #if defined(__linux__)
            if (block_bytes < NW_HUGE || n_blocks == 0 || thread_.joinable()) return;
            const size_t rounded = (block_bytes + NW_HUGE - 1) & ~(NW_HUGE - 1);
            stop_ = false;
            try {
                thread_ = std::thread(&NwStocker::run, this, rounded, n_blocks);
            } catch (...) {}  /* no thread: the blocks come fresh, as before */
    #else
            (void)block_bytes; (void)n_blocks;
    #endif
        }
        void stop() {
            stop_ = true;
            if (thread_.joinable()) thread_.join();
        }
      private:
    #if defined(__linux__)
        void run(size_t rounded, size_t n_blocks) {
            {
                std::lock_guard<std::mutex> lock(nw_cache_mutex);
                for (const NwCachedBlock& b : nw_cache)
                    if (b.n_bytes == rounded && n_blocks > 0) --n_blocks;
            }
            for (; n_blocks > 0 && !stop_; --n_blocks) {
                {
                    std::lock_guard<std::mutex> lock(nw_cache_mutex);
                    if (nw_cache_total + rounded > NW_CACHE_BYTES) return;
                }
                char* block = static_cast<char*>(nw_map_fresh(rounded));
                if (block == nullptr) return;
                /* One write per 4 kB page faults the whole block in (a huge
                   page at its first). */
                for (size_t i = 0; i < rounded; i += 4096)
                    reinterpret_cast<volatile char*>(block)[i] = 0;
                std::lock_guard<std::mutex> lock(nw_cache_mutex);
                bool kept = false;
                if (nw_cache_total + rounded <= NW_CACHE_BYTES) {
                    try {
                        nw_cache.push_back(NwCachedBlock{block, rounded});
                        nw_cache_total += rounded;
                        kept = true;
                    } catch (...) {}
                }
                if (!kept) { munmap(block, rounded); return; }
            }
        }
    #endif
        std::atomic<bool> stop_{false};
        std::thread thread_;
    };

    /* task(a) here and task(b) on a thread of its own, both done on return
       (task(b) here too if no thread can be made). */
    typedef void (*NwTask)(void*);
    static void nw_run_two(NwTask task, void* a, void* b) {
        std::thread other;
        try {
            other = std::thread(task, b);
        } catch (...) {
            task(a);
            task(b);
            return;
        }
        task(a);
        other.join();
    }

    /* A fixed-size array in nw_alloc memory, freed when it goes out of scope. */
    template <typename T>
    class NwArray {
      public:
        NwArray() {}
        ~NwArray() { nw_free(data_, bytes_); }
        NwArray(const NwArray&) = delete;
        NwArray& operator=(const NwArray&) = delete;
        bool allocate(size_t n) {
            nw_free(data_, bytes_);
            bytes_ = n * sizeof(T);
            data_ = static_cast<T*>(nw_alloc(bytes_));
            return data_ != nullptr;
        }
        T* data() const { return data_; }
      private:
        T* data_ = nullptr;
        size_t bytes_ = 0;
    };

    /* Equal-sized chunks handed out from blocks that never move, recycled
       most recently freed first (likely still in cache). */
    class NwChunkPool {
      public:
        NwChunkPool() {}
        ~NwChunkPool() { for (void* b : blocks_) nw_free(b, block_); }
        NwChunkPool(const NwChunkPool&) = delete;
        NwChunkPool& operator=(const NwChunkPool&) = delete;
        /* Blocks of block_bytes (nw_alloc: huge pages from 2 MB), or one
           chunk if larger. */
        void set_sizes(size_t chunk_bytes, size_t block_bytes) {
            chunk_ = (chunk_bytes + 63) & ~size_t(63);  /* whole cache lines */
            per_block_ = block_bytes / chunk_;
            if (per_block_ < 1) per_block_ = 1;
            block_ = per_block_ * chunk_ > block_bytes ? per_block_ * chunk_ : block_bytes;
        }
        void* take() {  /* nullptr when out of memory */
            if (free_.empty()) {
                char* block = static_cast<char*>(nw_alloc(block_));
                if (block == nullptr) return nullptr;
                try {
                    blocks_.push_back(block);
                    free_.reserve(free_.size() + per_block_);
                } catch (...) {
                    if (blocks_.empty() || blocks_.back() != block) nw_free(block, block_);
                    return nullptr;
                }
                for (size_t i = per_block_; i-- > 0;) free_.push_back(block + i * chunk_);
            }
            void* chunk = free_.back();
            free_.pop_back();
            return chunk;
        }
        /* No allocation: the free list had room for it when it was taken. */
        void give_back(void* chunk) { free_.push_back(chunk); }
        /* The chunk the next take() returns, if one is free, else nullptr. */
        void* next() const { return free_.empty() ? nullptr : free_.back(); }
        size_t chunk_bytes() const { return chunk_; }
        size_t block_bytes() const { return block_; }
      private:
        std::vector<void*> blocks_;
        std::vector<void*> free_;
        size_t chunk_ = 64, per_block_ = 1, block_ = 64;
    };

    /* Lists of fixed-size items, capacities 8, 16, 32, ... items, from
       blocks of 256 kB: a few size classes are in use at a time, and 2 MB
       blocks each would cost more memory than their lists. */
    class NwListPool {
      public:
        NwListPool() {}
        void set_item_bytes(size_t n_bytes) {
            for (int c = 0; c < 40; ++c)
                pools_[c].set_sizes((size_t(8) << c) * n_bytes, size_t(1) << 18);
        }
        void* take(size_t n_items, Py_ssize_t* capacity) {
            int c = 0;
            while ((size_t(8) << c) < n_items) ++c;
            *capacity = Py_ssize_t(8) << c;
            return pools_[c].take();
        }
        void give_back(void* list, Py_ssize_t capacity) {
            int c = 0;
            while ((Py_ssize_t(8) << c) < capacity) ++c;
            pools_[c].give_back(list);
        }
      private:
        NwChunkPool pools_[40];
    };

    /* Ask for the cache lines of [p, p + n_bytes) ahead of use: into L1 for
       what is needed next, into L2 only (far) for what is needed later in the
       merge, so that it does not evict the lines in use from L1. */
    static inline void nw_prefetch(const void* p, Py_ssize_t n_bytes, int far) {
    #if defined(__GNUC__) || defined(__clang__)
        const char* c = static_cast<const char*>(p);
        if (far) {
            for (Py_ssize_t i = 0; i < n_bytes; i += 64) __builtin_prefetch(c + i, 0, 1);
            __builtin_prefetch(c + n_bytes - 1, 0, 1);
        } else {
            for (Py_ssize_t i = 0; i < n_bytes; i += 64) __builtin_prefetch(c + i, 0, 3);
            __builtin_prefetch(c + n_bytes - 1, 0, 3);
        }
    #else
        (void)p; (void)n_bytes; (void)far;
    #endif
    }
    /* Into L1, for writing: lines about to be overwritten. */
    static inline void nw_prefetch_write(void* p, Py_ssize_t n_bytes) {
    #if defined(__GNUC__) || defined(__clang__)
        char* c = static_cast<char*>(p);
        for (Py_ssize_t i = 0; i < n_bytes; i += 64) __builtin_prefetch(c + i, 1, 3);
        __builtin_prefetch(c + n_bytes - 1, 1, 3);
    #else
        (void)p; (void)n_bytes;
    #endif
    }

    /* ---- Inertia sums, eight pairs at a time -----------------------------
       Lane j gets the sum over t = 0, 1, ..., n-1 of (a_j[t] - b_j[t]) ** 2,
       accumulated in that order from 0.0 in float64: scikit-learn's loop.
       The squared differences of several t are computed element-wise (IEEE
       operations give the same bits vectorised or not), then transposed so
       that a register holding several lanes receives the terms at t, then
       at t + 1, ...: each lane still adds its own terms in order, while the
       independent chains of the lanes overlap. Three code paths, chosen at
       run time (nw_simd_level): AVX2 (4 lanes per register), SSE2 (2), and
       plain scalar code. All give the same bits; the tests run each. */
    #define NW_LANES 8

    #if defined(NW_SSE2) && (defined(__GNUC__) || defined(__clang__)) \
        && (defined(__x86_64__) || defined(__i386__))
    #include <immintrin.h>
    #define NW_AVX2 1
    #define NW_AVX2_FN __attribute__((target("avx2")))
    #endif

    static int nw_best_simd_level() {
    #if defined(NW_AVX2)
        __builtin_cpu_init();
        if (__builtin_cpu_supports("avx2")) return 2;
    #endif
    #if defined(NW_SSE2)
        return 1;
    #else
        return 0;
    #endif
    }
    static int nw_simd_level = nw_best_simd_level();

    /* Set the code path (clipped to what the CPU has); return the previous. */
    static int nw_set_simd_level(int level) {
        const int previous = nw_simd_level;
        const int best = nw_best_simd_level();
        nw_simd_level = level < 0 ? best : (level < best ? level : best);
        return previous;
    }

    /* Element t of a lane's row: float32 for the first F lanes; for the
       next P, the centroid of a pair of float32 samples (rows[j] and
       rows[NW_LANES + j]), which keeps no row: their sum times 0.5, the
       bits of the sum over two (see "Memory"); float64 after. */
    static inline const float* nw_f(const void* const* rows, int j) {
        return static_cast<const float*>(rows[j]);
    }
    template <int F, int P>
    static inline double nw_at(const void* const* rows, int j, Py_ssize_t t) {
        return j < F ? double(nw_f(rows, j)[t])
             : j < F + P ? (double(nw_f(rows, j)[t]) + double(nw_f(rows, NW_LANES + j)[t])) * 0.5
             : static_cast<const double*>(rows[j])[t];
    }

    /* Scalar: the plain code path, and the last terms of the vector ones.
       Adds the terms t0 <= t < n of each lane to sums, in order. */
    template <int L, int F, int P>
    static inline void nw_tail_centroid(const double* c, const void* const* rows,
                                        Py_ssize_t t0, Py_ssize_t n, double* sums) {
        for (Py_ssize_t t = t0; t < n; ++t) {
            for (int j = 0; j < L; ++j) {
                const double d = c[t] - nw_at<F, P>(rows, j, t);
                sums[j] += d * d;
            }
        }
    }
    template <typename T>
    static inline void nw_tail_pairs(const T* const* a, const T* const* b,
                                     Py_ssize_t t0, Py_ssize_t n, double* sums) {
        for (Py_ssize_t t = t0; t < n; ++t) {
            for (int j = 0; j < NW_LANES; ++j) {
                const double d = double(a[j][t]) - double(b[j][t]);
                sums[j] += d * d;
            }
        }
    }

    #if defined(NW_SSE2)
    static inline __m128d nw_load2(const double* p) { return _mm_loadu_pd(p); }
    static inline __m128d nw_load2(const float* p) {  /* exact conversion */
        return _mm_cvtps_pd(_mm_castsi128_ps(
            _mm_loadl_epi64(reinterpret_cast<const __m128i*>(p))));
    }
    /* Lanes (j, j + 1) in one register: squared differences at t, t + 1 of
       each, then the register gets the terms at t, then those at t + 1. */
    static inline __m128d nw_add2x2(__m128d acc, __m128d d0, __m128d d1) {
        d0 = _mm_mul_pd(d0, d0);
        d1 = _mm_mul_pd(d1, d1);
        acc = _mm_add_pd(acc, _mm_unpacklo_pd(d0, d1));
        return _mm_add_pd(acc, _mm_unpackhi_pd(d0, d1));
    }
    template <int F, int P>
    static inline __m128d nw_lane2(const void* const* rows, int j, Py_ssize_t t) {
        return j < F ? nw_load2(nw_f(rows, j) + t)
             : j < F + P ? _mm_mul_pd(_mm_add_pd(nw_load2(nw_f(rows, j) + t),
                                                 nw_load2(nw_f(rows, NW_LANES + j) + t)),
                                      _mm_set1_pd(0.5))
             : nw_load2(static_cast<const double*>(rows[j]) + t);
    }
    template <int L, int F, int P>
    static void nw_centroid_sse2(const double* c, const void* const* rows,
                                 Py_ssize_t n, double* sums) {
        __m128d acc[L / 2];
        for (int p = 0; p < L / 2; ++p) acc[p] = _mm_setzero_pd();
        Py_ssize_t t = 0;
        for (; t + 2 <= n; t += 2) {
            const __m128d ct = _mm_loadu_pd(c + t);
            for (int p = 0; p < L / 2; ++p)  /* unrolled, lane types folded */
                acc[p] = nw_add2x2(acc[p], _mm_sub_pd(ct, nw_lane2<F, P>(rows, 2 * p, t)),
                                   _mm_sub_pd(ct, nw_lane2<F, P>(rows, 2 * p + 1, t)));
        }
        for (int p = 0; p < L / 2; ++p) _mm_storeu_pd(sums + 2 * p, acc[p]);
        nw_tail_centroid<L, F, P>(c, rows, t, n, sums);
    }
    template <typename T>
    static void nw_pairs_sse2(const T* const* a, const T* const* b, Py_ssize_t n,
                              double* sums) {
        __m128d acc[NW_LANES / 2];
        for (int p = 0; p < NW_LANES / 2; ++p) acc[p] = _mm_setzero_pd();
        Py_ssize_t t = 0;
        for (; t + 2 <= n; t += 2)
            for (int p = 0; p < NW_LANES / 2; ++p)
                acc[p] = nw_add2x2(acc[p],
                                   _mm_sub_pd(nw_load2(a[2 * p] + t), nw_load2(b[2 * p] + t)),
                                   _mm_sub_pd(nw_load2(a[2 * p + 1] + t), nw_load2(b[2 * p + 1] + t)));
        for (int p = 0; p < NW_LANES / 2; ++p) _mm_storeu_pd(sums + 2 * p, acc[p]);
        nw_tail_pairs(a, b, t, n, sums);
    }
    #endif

    #if defined(NW_AVX2)
    NW_AVX2_FN static inline __m256d nw_load4(const double* p) { return _mm256_loadu_pd(p); }
    NW_AVX2_FN static inline __m256d nw_load4(const float* p) {  /* exact */
        return _mm256_cvtps_pd(_mm_loadu_ps(p));
    }
    /* Lanes j..j+3 in one register, from their squared differences at
       t..t+3 (r0..r3, one per lane): a 4x4 transpose, then the register
       gets the terms at t, t + 1, t + 2, t + 3, in that order. */
    NW_AVX2_FN static inline __m256d nw_add4x4(__m256d acc, __m256d r0, __m256d r1,
                                               __m256d r2, __m256d r3) {
        const __m256d u0 = _mm256_unpacklo_pd(r0, r1);  /* r0[0] r1[0] r0[2] r1[2] */
        const __m256d u1 = _mm256_unpackhi_pd(r0, r1);  /* r0[1] r1[1] r0[3] r1[3] */
        const __m256d u2 = _mm256_unpacklo_pd(r2, r3);
        const __m256d u3 = _mm256_unpackhi_pd(r2, r3);
        acc = _mm256_add_pd(acc, _mm256_permute2f128_pd(u0, u2, 0x20));  /* t */
        acc = _mm256_add_pd(acc, _mm256_permute2f128_pd(u1, u3, 0x20));  /* t + 1 */
        acc = _mm256_add_pd(acc, _mm256_permute2f128_pd(u0, u2, 0x31));  /* t + 2 */
        return _mm256_add_pd(acc, _mm256_permute2f128_pd(u1, u3, 0x31)); /* t + 3 */
    }
    NW_AVX2_FN static inline __m256d nw_square(__m256d d) { return _mm256_mul_pd(d, d); }
    template <int F, int P>
    NW_AVX2_FN static inline __m256d nw_lane4(const void* const* rows, int j, Py_ssize_t t) {
        return j < F ? nw_load4(nw_f(rows, j) + t)
             : j < F + P ? _mm256_mul_pd(_mm256_add_pd(nw_load4(nw_f(rows, j) + t),
                                                       nw_load4(nw_f(rows, NW_LANES + j) + t)),
                                         _mm256_set1_pd(0.5))
             : nw_load4(static_cast<const double*>(rows[j]) + t);
    }
    template <int L, int F, int P>
    NW_AVX2_FN static void nw_centroid_avx2(const double* c, const void* const* rows,
                                            Py_ssize_t n, double* sums) {
        __m256d acc[L / 4];
        for (int g = 0; g < L / 4; ++g) acc[g] = _mm256_setzero_pd();
        Py_ssize_t t = 0;
        for (; t + 4 <= n; t += 4) {
            const __m256d ct = _mm256_loadu_pd(c + t);
            for (int g = 0; g < L / 4; ++g) {  /* unrolled, lane types folded */
                const int j = 4 * g;
                acc[g] = nw_add4x4(acc[g],
                                   nw_square(_mm256_sub_pd(ct, nw_lane4<F, P>(rows, j, t))),
                                   nw_square(_mm256_sub_pd(ct, nw_lane4<F, P>(rows, j + 1, t))),
                                   nw_square(_mm256_sub_pd(ct, nw_lane4<F, P>(rows, j + 2, t))),
                                   nw_square(_mm256_sub_pd(ct, nw_lane4<F, P>(rows, j + 3, t))));
            }
        }
        for (int g = 0; g < L / 4; ++g) _mm256_storeu_pd(sums + 4 * g, acc[g]);
        nw_tail_centroid<L, F, P>(c, rows, t, n, sums);
    }
    template <typename T>
    NW_AVX2_FN static void nw_pairs_avx2(const T* const* a, const T* const* b,
                                         Py_ssize_t n, double* sums) {
        __m256d acc[NW_LANES / 4];
        for (int g = 0; g < NW_LANES / 4; ++g) acc[g] = _mm256_setzero_pd();
        Py_ssize_t t = 0;
        for (; t + 4 <= n; t += 4) {
            for (int g = 0; g < NW_LANES / 4; ++g) {
                const int j = 4 * g;
                acc[g] = nw_add4x4(acc[g],
                                   nw_square(_mm256_sub_pd(nw_load4(a[j] + t), nw_load4(b[j] + t))),
                                   nw_square(_mm256_sub_pd(nw_load4(a[j + 1] + t), nw_load4(b[j + 1] + t))),
                                   nw_square(_mm256_sub_pd(nw_load4(a[j + 2] + t), nw_load4(b[j + 2] + t))),
                                   nw_square(_mm256_sub_pd(nw_load4(a[j + 3] + t), nw_load4(b[j + 3] + t))));
            }
        }
        for (int g = 0; g < NW_LANES / 4; ++g) _mm256_storeu_pd(sums + 4 * g, acc[g]);
        nw_tail_pairs(a, b, t, n, sums);
    }
    #endif

    template <int L, int F, int P>
    static void nw_centroid_any(const double* c, const void* const* rows,
                                Py_ssize_t n, double* sums) {
    #if defined(NW_AVX2)
        if (nw_simd_level >= 2) { nw_centroid_avx2<L, F, P>(c, rows, n, sums); return; }
    #endif
    #if defined(NW_SSE2)
        if (nw_simd_level >= 1) { nw_centroid_sse2<L, F, P>(c, rows, n, sums); return; }
    #endif
        for (int j = 0; j < L; ++j) sums[j] = 0.0;
        nw_tail_centroid<L, F, P>(c, rows, 0, n, sums);
    }

    /* One code path per count of float32 lanes F and of pair lanes P
       (F + P <= L): a table of them, so that the lane types fold. */
    typedef void (*NwLanesFn)(const double*, const void* const*, Py_ssize_t, double*);
    template <int L, int F, int P>
    static constexpr NwLanesFn nw_fn() {
        return &nw_centroid_any<L, (F < L ? F : L), (P < L - F ? P : (L > F ? L - F : 0))>;
    }
    #define NW_ROW(L, F) {nw_fn<L, F, 0>(), nw_fn<L, F, 1>(), nw_fn<L, F, 2>(), \
        nw_fn<L, F, 3>(), nw_fn<L, F, 4>(), nw_fn<L, F, 5>(), nw_fn<L, F, 6>(), \
        nw_fn<L, F, 7>(), nw_fn<L, F, 8>()}
    static const NwLanesFn nw_lanes4[5][9] = {
        NW_ROW(4, 0), NW_ROW(4, 1), NW_ROW(4, 2), NW_ROW(4, 3), NW_ROW(4, 4)};
    static const NwLanesFn nw_lanes8[9][9] = {
        NW_ROW(8, 0), NW_ROW(8, 1), NW_ROW(8, 2), NW_ROW(8, 3), NW_ROW(8, 4),
        NW_ROW(8, 5), NW_ROW(8, 6), NW_ROW(8, 7), NW_ROW(8, 8)};
    #undef NW_ROW

    /* n_lanes (1..8) rows against the centroid c: the first n_float of them
       float32 samples, the next n_pair pairs of float32 samples (the
       second sample of lane j in rows[NW_LANES + j]), the others float64
       centroids. Idle lanes compare c with itself; their sums are dropped. */
    static void nw_centroid_lanes(const double* c, const void* const* rows,
                                  int n_lanes, int n_float, int n_pair, Py_ssize_t n,
                                  double* out) {
        const void* lanes[2 * NW_LANES];
        double sums[NW_LANES];
        for (int j = 0; j < NW_LANES; ++j) {
            lanes[j] = j < n_lanes ? rows[j] : c;
            lanes[NW_LANES + j] = (j >= n_float && j < n_float + n_pair) ? rows[NW_LANES + j]
                                                                       : nullptr;
        }
        if (n_lanes <= 4) nw_lanes4[n_float][n_pair](c, lanes, n, sums);
        else nw_lanes8[n_float][n_pair](c, lanes, n, sums);
        for (int j = 0; j < n_lanes; ++j) out[j] = sums[j];
    }

    /* n_lanes (1..8) pairs of rows of X (the first pass: samples only). */
    template <typename T>
    static void nw_pair_lanes(const T* const* a, const T* const* b, int n_lanes,
                              Py_ssize_t n, double* out) {
        const T* la[NW_LANES];
        const T* lb[NW_LANES];
        double sums[NW_LANES];
        for (int j = 0; j < NW_LANES; ++j) {
            la[j] = j < n_lanes ? a[j] : a[0];
            lb[j] = j < n_lanes ? b[j] : a[0];
        }
    #if defined(NW_AVX2)
        if (nw_simd_level >= 2) nw_pairs_avx2(la, lb, n, sums); else
    #endif
    #if defined(NW_SSE2)
        if (nw_simd_level >= 1) nw_pairs_sse2(la, lb, n, sums); else
    #endif
        {
            for (int j = 0; j < NW_LANES; ++j) sums[j] = 0.0;
            nw_tail_pairs(la, lb, 0, n, sums);
        }
        for (int j = 0; j < n_lanes; ++j) out[j] = sums[j];
    }

    /* out[t] = sums[t] / w: a centroid (element-wise, so vectorised freely). */
    #if defined(NW_AVX2)
    NW_AVX2_FN static void nw_divide_avx2(const double* sums, double w, Py_ssize_t n,
                                          double* out) {
        const __m256d wv = _mm256_set1_pd(w);
        Py_ssize_t t = 0;
        for (; t + 4 <= n; t += 4)
            _mm256_storeu_pd(out + t, _mm256_div_pd(_mm256_loadu_pd(sums + t), wv));
        for (; t < n; ++t) out[t] = sums[t] / w;
    }
    #endif
    static void nw_divide(const double* sums, double w, Py_ssize_t n, double* out) {
    #if defined(NW_AVX2)
        if (nw_simd_level >= 2) { nw_divide_avx2(sums, w, n, out); return; }
    #endif
        for (Py_ssize_t t = 0; t < n; ++t) out[t] = sums[t] / w;
    }

    /* ---- Rows of sums, element-wise ---------------------------------------
       out = r, out += r (r float32 or float64, converted exactly), out = c w,
       out += c w: each element by its own one or two IEEE operations, so the
       same bits whatever the vector width (no fused multiply-add: see
       setup.py). Built twice: for AVX2, chosen at run time as the lanes are
       (nw_simd_level), and for the CPU the module targets. They are about
       a tenth of a tree on a cortical mesh (samples joining a cluster), and
       were 4 % slower in SSE2 alone. */
    enum NwRowOp { NW_SET = 0, NW_ADD = 1 };
    template <int Op, typename T>
    static inline void nw_row_plain(double* out, const T* r, Py_ssize_t n) {
        for (Py_ssize_t t = 0; t < n; ++t) out[t] = Op == NW_ADD ? out[t] + double(r[t]) : double(r[t]);
    }
    template <int Op>
    static inline void nw_scaled_plain(double* out, const double* c, double w, Py_ssize_t n) {
        for (Py_ssize_t t = 0; t < n; ++t) out[t] = Op == NW_ADD ? out[t] + c[t] * w : c[t] * w;
    }
    #if defined(NW_AVX2)
    template <int Op, typename T>
    NW_AVX2_FN static void nw_row_avx2(double* out, const T* r, Py_ssize_t n) {
        nw_row_plain<Op, T>(out, r, n);
    }
    template <int Op>
    NW_AVX2_FN static void nw_scaled_avx2(double* out, const double* c, double w, Py_ssize_t n) {
        nw_scaled_plain<Op>(out, c, w, n);
    }
    #endif
    template <int Op, typename T>
    static inline void nw_row(double* out, const T* r, Py_ssize_t n) {
    #if defined(NW_AVX2)
        if (nw_simd_level >= 2) { nw_row_avx2<Op, T>(out, r, n); return; }
    #endif
        nw_row_plain<Op, T>(out, r, n);
    }
    template <int Op>
    static inline void nw_scaled(double* out, const double* c, double w, Py_ssize_t n) {
    #if defined(NW_AVX2)
        if (nw_simd_level >= 2) { nw_scaled_avx2<Op>(out, c, w, n); return; }
    #endif
        nw_scaled_plain<Op>(out, c, w, n);
    }
    /* out += r, both sums rows: for the Cython code. */
    static void nw_add_rows(double* out, const double* r, Py_ssize_t n) {
        nw_row<NW_ADD, double>(out, r, n);
    }

    /* ---- Sums of a small cluster, again -----------------------------------
       Clusters of at most small_size samples keep only their centroid
       (see "Memory"): their sums are made again from their samples when a
       merge needs them, by the additions scikit-learn made, node by node of
       the tree so far (a node's sums are its children's, added; IEEE
       addition commutes, so the order of the two does not matter). ``out``
       gets the sums under ``node``; ``scratch`` holds one row per level of
       the second children (at most the samples under ``node``). */
    template <typename T>
    static void nw_subtree_sums(const char* x, Py_ssize_t stride, const Py_ssize_t* children,
                                Py_ssize_t n_samples, Py_ssize_t node, Py_ssize_t n,
                                double* out, double* scratch) {
        if (node < n_samples) {
            nw_row<NW_SET, T>(out, reinterpret_cast<const T*>(x + node * stride), n);
            return;
        }
        const Py_ssize_t* c = children + 2 * (node - n_samples);
        nw_subtree_sums<T>(x, stride, children, n_samples, c[0], n, out, scratch);
        if (c[1] < n_samples) {
            nw_row<NW_ADD, T>(out, reinterpret_cast<const T*>(x + c[1] * stride), n);
        } else {
            nw_subtree_sums<T>(x, stride, children, n_samples, c[1], n, scratch, scratch + n);
            nw_row<NW_ADD, double>(out, scratch, n);
        }
    }
    /* The sums of a merging child that is a sample or a small cluster, into
       ``out`` (add: added to it). From its ``centroid`` times its size ``w``
       where the caller gives it: exact when w is a power of two and the
       samples float32 (a sum of float32 values divided by 2, 4 or 8 is
       exact in float64, and so is its product by them). */
    template <typename T>
    static void nw_child_sums(const char* x, Py_ssize_t stride, const Py_ssize_t* children,
                              Py_ssize_t n_samples, Py_ssize_t node, const double* centroid,
                              double w, Py_ssize_t n, int add, double* out, double* scratch) {
        if (node < n_samples) {
            const T* r = reinterpret_cast<const T*>(x + node * stride);
            if (add) nw_row<NW_ADD, T>(out, r, n);
            else nw_row<NW_SET, T>(out, r, n);
        } else if (centroid != nullptr) {
            if (add) nw_scaled<NW_ADD>(out, centroid, w, n);
            else nw_scaled<NW_SET>(out, centroid, w, n);
        } else if (!add) {
            nw_subtree_sums<T>(x, stride, children, n_samples, node, n, out, scratch);
        } else {
            nw_subtree_sums<T>(x, stride, children, n_samples, node, n, scratch, scratch + n);
            nw_row<NW_ADD, double>(out, scratch, n);
        }
    }

    /* Squared norm of a sample, for the bounds only: in any order (four
       partial sums, which the compiler vectorises). */
    template <typename T>
    static double nw_norm2(const T* x, Py_ssize_t n) {
        double s[4] = {0.0, 0.0, 0.0, 0.0};
        Py_ssize_t t = 0;
        for (; t + 4 <= n; t += 4)
            for (int j = 0; j < 4; ++j) s[j] += double(x[t + j]) * double(x[t + j]);
        for (; t < n; ++t) s[0] += double(x[t]) * double(x[t]);
        return (s[0] + s[1]) + (s[2] + s[3]);
    }
    """
    const int LANES "NW_LANES"

    cdef cppclass NwArray[T]:
        bint allocate(size_t n)
        T* data()

    cdef cppclass NwChunkPool:
        void set_sizes(size_t chunk_bytes, size_t block_bytes)
        void* take()
        void* next()
        void give_back(void* chunk)
        size_t chunk_bytes()
        size_t block_bytes()

    ctypedef void (*NwTask)(void*) noexcept nogil
    void run_two "nw_run_two"(NwTask task, void* a, void* b)

    cdef cppclass NwStocker:
        void start(size_t block_bytes, size_t n_blocks)
        void stop()

    cdef cppclass NwListPool:
        void set_item_bytes(size_t n_bytes)
        void* take(size_t n_items, Py_ssize_t* capacity)
        void give_back(void* lst, Py_ssize_t capacity)

    void prefetch "nw_prefetch"(const void* p, Py_ssize_t n_bytes, int far)
    void prefetch_write "nw_prefetch_write"(void* p, Py_ssize_t n_bytes)
    void centroid_lanes "nw_centroid_lanes"(const double* c, const void** rows,
                                            int n_lanes, int n_float, int n_pair,
                                            Py_ssize_t n, double* out)
    void pair_lanes "nw_pair_lanes"(const float32_t** a, const float32_t** b, int n_lanes,
                                    Py_ssize_t n, double* out)
    void pair_lanes "nw_pair_lanes"(const float64_t** a, const float64_t** b, int n_lanes,
                                    Py_ssize_t n, double* out)
    void divide "nw_divide"(const double* sums, double w, Py_ssize_t n, double* out)
    void add_rows "nw_add_rows"(double* out, const double* r, Py_ssize_t n)
    double norm2 "nw_norm2"(const float32_t* x, Py_ssize_t n)
    double norm2 "nw_norm2"(const float64_t* x, Py_ssize_t n)
    void child_sums "nw_child_sums<float>"(const char* x, Py_ssize_t stride,
                                           const intp_t* children, Py_ssize_t n_samples,
                                           Py_ssize_t node, const double* centroid, double w,
                                           Py_ssize_t n, int add, double* out, double* scratch)
    void child_sums64 "nw_child_sums<double>"(const char* x, Py_ssize_t stride,
                                              const intp_t* children, Py_ssize_t n_samples,
                                              Py_ssize_t node, const double* centroid,
                                              double w, Py_ssize_t n, int add, double* out,
                                              double* scratch)
    int set_simd_level "nw_set_simd_level"(int level)
    int simd_level "nw_simd_level"
    size_t set_huge_budget "nw_set_huge_budget"(size_t n_bytes)


# See ``NwStocker``: one merged cluster alive per this many samples, at most.
cdef enum:
    STOCKED_ROWS = 3
    # The first pass runs on two threads from this many values of pairs.
    PAIRS_ON_TWO_THREADS = 1 << 20


ctypedef fused real:
    float32_t
    float64_t


# --------------------------------------------------------------------------
# Clusters, candidates and the heap of clusters


cdef struct Key:
    # A candidate merge, ordered as scikit-learn's heap tuples.
    float64_t inertia
    int32_t hi  # larger node id
    int32_t lo  # smaller node id


cdef struct Edge:
    # A touching cluster and the inertia of merging with it, or minus a lower
    # bound of it (see "Lazy inertias"). Its node id is kept here too (it fits
    # in the padding), for ties, so that rescanning a list does not visit the
    # touching clusters' slots.
    float64_t inertia
    int32_t slot
    int32_t node


cdef struct Slot:
    # A live cluster. Slot i starts as sample i; a merge's node takes the slot
    # of one child and the other child's slot dies. One struct of one cache
    # line per slot: visiting a touching cluster, including checking whether
    # its best candidate changes, costs one miss, not one per field or array.
    Key key             # its best candidate (its key in the heap)
    float64_t weight    # samples under it, float64 like scikit-learn's moments
    float64_t* row      # centroid of a merged cluster (see _sums_row); NULL for a
                        # sample, and for a pair when pairs keep no row ("Memory")
    Edge* edge          # its touching clusters, with the inertia of merging
    int32_t n_edges
    int32_t cap_edges
    int32_t node_id     # -1 once dead
    int32_t seen_at     # node id of the last merge that listed it (dedup)
    int32_t best        # slot of the other cluster of its best candidate
    int32_t lazy        # its key is only a lower bound (see "Lazy inertias")


cdef inline bint _before(const Key& a, const Key& b) noexcept nogil:
    if a.inertia != b.inertia:
        return a.inertia < b.inertia
    if a.hi != b.hi:
        return a.hi < b.hi
    return a.lo < b.lo


cdef inline Key _best_edge(const Slot* slots, int32_t s, int32_t* best,
                           int32_t* lazy) noexcept nogil:
    """Smallest candidate among the touching clusters of slot ``s``, a lower
    bound standing for its inertia where there is only that (``lazy``)."""
    cdef const Slot* me = &slots[s]
    cdef const Edge* edge = me.edge
    cdef int32_t own = me.node_id
    cdef int32_t other
    cdef Key top, cand
    cdef intp_t p
    top.inertia = fabs(edge[0].inertia)
    other = edge[0].node
    top.hi = other if other > own else own
    top.lo = own if other > own else other
    best[0] = edge[0].slot
    lazy[0] = edge[0].inertia < 0
    for p in range(1, me.n_edges):
        cand.inertia = fabs(edge[p].inertia)
        if cand.inertia > top.inertia:
            continue
        other = edge[p].node
        cand.hi = other if other > own else own
        cand.lo = own if other > own else other
        if _before(cand, top):
            top = cand
            best[0] = edge[p].slot
            lazy[0] = edge[p].inertia < 0
    return top


# A 4-ary min-heap of slots keyed by their best candidate, with the position
# of each slot so that its key can change in place. 4-ary: half the depth of
# a binary heap, and the four children of a node are adjacent. The positions
# are a compact array of their own rather than a field of Slot: a sift moves
# several entries, and each move updates a position.
cdef struct SlotHeap:
    Key* key          # key[i]: key at heap position i
    int32_t* slot     # slot[i]: slot at heap position i
    int32_t* pos      # pos[s]: heap position of slot s, -1 if absent
    intp_t size


cdef inline void _sift_up(SlotHeap* h, intp_t i, Key key, int32_t s) noexcept nogil:
    cdef intp_t up
    while i > 0:
        up = (i - 1) >> 2
        if not _before(key, h.key[up]):
            break
        h.key[i] = h.key[up]
        h.slot[i] = h.slot[up]
        h.pos[h.slot[i]] = <int32_t>i
        i = up
    h.key[i] = key
    h.slot[i] = s
    h.pos[s] = <int32_t>i


cdef inline void _sift_down(SlotHeap* h, intp_t i, Key key, int32_t s) noexcept nogil:
    cdef intp_t first, last, c, best
    while True:
        first = 4 * i + 1
        if first >= h.size:
            break
        last = first + 4 if first + 4 <= h.size else h.size
        best = first
        for c in range(first + 1, last):
            if _before(h.key[c], h.key[best]):
                best = c
        if not _before(h.key[best], key):
            break
        h.key[i] = h.key[best]
        h.slot[i] = h.slot[best]
        h.pos[h.slot[i]] = <int32_t>i
        i = best
    h.key[i] = key
    h.slot[i] = s
    h.pos[s] = <int32_t>i


cdef inline void _heap_set(SlotHeap* h, int32_t s, Key key) noexcept nogil:
    """Insert slot ``s`` or change its key."""
    cdef intp_t i = h.pos[s]
    if i < 0:
        h.size += 1
        _sift_up(h, h.size - 1, key, s)
    elif _before(key, h.key[i]):
        _sift_up(h, i, key, s)
    else:
        _sift_down(h, i, key, s)


cdef inline void _heap_remove(SlotHeap* h, int32_t s) noexcept nogil:
    cdef intp_t i = h.pos[s]
    cdef Key key
    cdef int32_t moved
    if i < 0:
        return
    h.pos[s] = -1
    h.size -= 1
    if i == h.size:
        return
    key = h.key[h.size]
    moved = h.slot[h.size]
    if _before(key, h.key[i]):
        _sift_up(h, i, key, moved)
    else:
        _sift_down(h, i, key, moved)


cdef inline void _rescan(SlotHeap* h, Slot* slots, int32_t s) noexcept nogil:
    """Recompute the best candidate of slot ``s`` and its place in the heap."""
    slots[s].key = _best_edge(slots, s, &slots[s].best, &slots[s].lazy)
    _heap_set(h, s, slots[s].key)


cdef inline void _release_list(Slot* sl, NwListPool* pool, const Edge* first_begin,
                               const Edge* first_end) noexcept nogil:
    """Give a slot's list back to the pool (the samples' lists stay put)."""
    if sl.edge != NULL and not (first_begin <= sl.edge < first_end):
        pool.give_back(sl.edge, sl.cap_edges)
    sl.edge = NULL
    sl.n_edges = 0
    sl.cap_edges = 0


# --------------------------------------------------------------------------
# Prefetching


# The loop is bound by memory latency: a merge reads the slots and lists of
# its children, the slots of the clusters in those lists, then their
# centroids and lists, anywhere in the data. Each round is requested as soon
# as its addresses are known, all at once, so that the misses overlap.
# (Starting the next merge's rounds during the current one, which is
# predictable, was tried and measured: no gain, the memory is busy enough.)
cdef struct Prefetcher:
    const Slot* slots
    const char* x_data      # X, for the rows of samples
    intp_t x_stride         # bytes from a row of X to the next
    intp_t x_row_bytes      # bytes of a row's values
    intp_t n_features
    bint x_float32          # samples are read as float32 lanes
    bint joined             # every merged cluster keeps its sums, after its centroid
    const intp_t* kids      # the merges so far (children), for the samples of a pair
    intp_t n_samples


cdef inline float64_t** _sums_row(float64_t* row, intp_t n_features) noexcept nogil:
    """Where a merged cluster's centroid row keeps the address of its sums
    row: in the word after the centroid (NULL for a small cluster, whose sums
    are made again from its samples: see "Memory")."""
    return <float64_t**>(row + n_features)


cdef inline const intp_t* _pair_samples(const Prefetcher* pf, const Slot* sl) noexcept nogil:
    """The two samples of a pair, which keeps no row (see "Memory")."""
    return pf.kids + 2 * (sl.node_id - pf.n_samples)


cdef inline void _prefetch_child(const Prefetcher* pf, int32_t s, bint whole) noexcept nogil:
    """Into L1: the list of a cluster about to merge, its sample's row (a
    pair's two) or the line with the address of its sums, and its whole
    centroid row (``whole``) if that row will hold the new cluster's centroid
    (the lines are about to be rewritten)."""
    cdef const Slot* sl = &pf.slots[s]
    if sl.row != NULL:
        if whole:
            prefetch_write(sl.row, (2 * pf.n_features + 1 if pf.joined else pf.n_features + 1)
                           * sizeof(float64_t))
        elif pf.joined:  # its sums, after the address
            prefetch(sl.row + pf.n_features, (pf.n_features + 1) * sizeof(float64_t), 0)
        else:
            prefetch(sl.row + pf.n_features, sizeof(float64_t), 0)
    else:
        _prefetch_samples(pf, sl.node_id, 0)
    if sl.n_edges > 0:
        prefetch(sl.edge, sl.n_edges * sizeof(Edge), 0)


cdef inline const float64_t* _centroid(const Prefetcher* pf, int32_t s,
                                       float64_t* buf) noexcept nogil:
    """The centroid of a merged cluster: its row, or for a pair of float32
    samples, which keeps none, made in ``buf`` as the merge made it (its
    sums, over two)."""
    cdef const Slot* sl = &pf.slots[s]
    if sl.row != NULL:
        return sl.row
    _child_sums(pf, NULL, 2.0, sl.node_id, False, buf, buf)  # two samples: no scratch
    divide(buf, 2.0, pf.n_features, buf)
    return buf


cdef inline int _lane(const Prefetcher* pf, int32_t r, const void** lane_row,
                      intp_t q) noexcept nogil:
    """Lane ``q`` of a batch of inertias for cluster ``r`` (see
    ``nw_centroid_lanes``): 0 a float32 sample, 1 a pair of them without a
    row (its second sample in ``lane_row[LANES + q]``), 2 a float64 row."""
    cdef const Slot* sr = &pf.slots[r]
    cdef const intp_t* two
    if sr.row != NULL:
        lane_row[q] = sr.row
        return 2
    if sr.weight == 1.0:
        lane_row[q] = pf.x_data + r * pf.x_stride
        return 0 if pf.x_float32 else 2
    two = _pair_samples(pf, sr)
    lane_row[q] = pf.x_data + two[0] * pf.x_stride
    lane_row[LANES + q] = pf.x_data + two[1] * pf.x_stride
    return 1


cdef inline void _prefetch_centroid(const Prefetcher* pf, int32_t s, int far) noexcept nogil:
    """The centroid of a cluster (a pair's two samples), into L1 or (far) L2."""
    cdef const Slot* sl = &pf.slots[s]
    if sl.row != NULL:
        prefetch(sl.row, pf.n_features * sizeof(float64_t), far)
    else:
        _prefetch_samples(pf, sl.node_id, far)


cdef inline bint _from_centroid(const Prefetcher* pf, float64_t w) noexcept nogil:
    """Whether a small cluster's sums are its centroid times its size, exactly
    (see ``nw_child_sums``)."""
    cdef intp_t n = <intp_t>w
    return pf.x_float32 and (n & (n - 1)) == 0


cdef inline void _child_sums(const Prefetcher* pf, const float64_t* centroid, float64_t w,
                             intp_t node, bint add, float64_t* out,
                             float64_t* scratch) noexcept nogil:
    """The sums of a merging sample or small cluster, into (``add``: added to)
    ``out``: from its centroid where that is exact, else from its samples."""
    if centroid != NULL and not _from_centroid(pf, w):
        centroid = NULL
    if pf.x_float32:
        child_sums(pf.x_data, pf.x_stride, pf.kids, pf.n_samples, node, centroid, w,
                   pf.n_features, add, out, scratch)
    else:
        child_sums64(pf.x_data, pf.x_stride, pf.kids, pf.n_samples, node, centroid, w,
                     pf.n_features, add, out, scratch)


cdef void _prefetch_samples(const Prefetcher* pf, intp_t node, int far) noexcept nogil:
    """The rows of the samples under a node, into L1 or (far) L2."""
    while node >= pf.n_samples:
        _prefetch_samples(pf, pf.kids[2 * (node - pf.n_samples) + 1], far)
        node = pf.kids[2 * (node - pf.n_samples)]
    prefetch(pf.x_data + node * pf.x_stride, pf.x_row_bytes, far)


# --------------------------------------------------------------------------
# Inertias with a new cluster


cdef void _inertias(const Prefetcher* pf, Edge* around, const intp_t* todo,
                    intp_t n_todo, const float64_t* centroid_k,
                    float64_t w_k) noexcept nogil:
    """The inertias of the new cluster with ``around[todo[0..n_todo-1]]``,
    stored in place, LANES at a time. ``todo`` is in the order of ``around``:
    samples, then pairs without a row, then the others, the order of the
    lane types in ``nw_centroid_lanes``."""
    cdef const void* lane_row[2 * LANES]
    cdef float64_t lane_sum[LANES]
    cdef float64_t w
    cdef intp_t p = 0, q, n_lanes, n_float, n_pair
    cdef int kind
    for q in range(n_todo if n_todo < LANES else LANES):
        _prefetch_centroid(pf, around[todo[q]].slot, 0)
    while p < n_todo:
        n_lanes = n_todo - p if n_todo - p < LANES else LANES
        # Into L1, the next batch while this one is summed (eight rows read
        # side by side are more streams than the hardware prefetcher follows).
        for q in range(p + n_lanes, p + 2 * LANES if p + 2 * LANES < n_todo else n_todo):
            _prefetch_centroid(pf, around[todo[q]].slot, 0)
        n_float = 0
        n_pair = 0
        for q in range(n_lanes):
            kind = _lane(pf, around[todo[p + q]].slot, lane_row, q)
            n_float += kind == 0
            n_pair += kind == 1
        centroid_lanes(centroid_k, lane_row, <int>n_lanes, <int>n_float, <int>n_pair,
                       pf.n_features, lane_sum)
        for q in range(n_lanes):
            r = around[todo[p + q]].slot
            w = pf.slots[r].weight
            around[todo[p + q]].inertia = lane_sum[q] * ((w_k * w) / (w_k + w))
        p += n_lanes


# --------------------------------------------------------------------------
# The merge loop


def ward_merge(const real[:, :] X,
               const intp_t[::1] indptr,
               const intp_t[::1] indices,
               intp_t[:, ::1] children,
               float64_t[::1] inertia,
               intp_t[::1] sizes,
               bint check_finite=True,
               intp_t small_size=1,
               int threads=1):
    """Run the constrained Ward merges until no two touching clusters remain.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features), float32 or float64
        The samples; read only. ``n_samples < 2**30``. Each row contiguous;
        rows any (positive) number of bytes apart, so that a slice of the
        columns of a C-ordered array (the volumes of a split half) is used
        as it is, without a copy.
    indptr, indices : ndarray of intp
        CSR structure of a symmetric adjacency without diagonal nor
        duplicate entries.
    children : ndarray of shape (n_samples - 1, 2), intp
        Filled with the merges, ``(smaller id, larger id)`` per row.
    inertia : ndarray of shape (n_samples - 1,), float64
        Filled with the Ward inertia of each merge.
    sizes : ndarray of shape (n_samples - 1,), intp
        Filled with the number of samples under each new node.
    check_finite : bool
        Return None, without merging, if the squared norm of a sample is not
        finite: a NaN or an infinity in it (or, for float64 samples only,
        finite values whose squares overflow: the caller tells them apart and
        then calls again with False). The first pass reads every sample
        anyway, so this spares the caller a pass over X.
    small_size : int
        Merged clusters of at most this many samples keep only their
        centroid, not their sums (see "Memory"); 1: all keep both. The tree
        does not depend on it.
    threads : int
        With 2 or more, the first pass (the inertias of all touching sample
        pairs) runs on two threads when large enough; the merges are
        sequential. The tree does not depend on it.

    Returns
    -------
    n_merges : int
        Merges done; ``n_samples - n_components`` of the graph.
    roots : ndarray of intp
        Node ids of the remaining clusters (one per connected component), in
        increasing order.
    root_sums : ndarray of shape (len(roots), n_features), float64
        Sums of the samples under each root.
    root_sizes : ndarray of intp
        Samples under each root.
    """
    cdef intp_t n_samples = X.shape[0]
    cdef intp_t n_features = X.shape[1]
    cdef intp_t n_pairs = indptr[n_samples] // 2  # each edge is listed twice
    if n_samples >= 2**30 or n_samples < 1 or n_features < 1:
        raise ValueError(f"unsupported data shape {X.shape[0], X.shape[1]}")
    if (n_features > 1 and X.strides[1] != sizeof(real)) or X.strides[0] <= 0:
        raise ValueError("each row of X must be contiguous, rows in increasing order "
                         f"(strides {X.strides[0], X.strides[1]})")
    cdef intp_t row_bytes = n_features * sizeof(real)

    cdef NwArray[Slot] slot_store
    cdef NwArray[Key] heap_key
    cdef NwArray[int32_t] heap_slot
    cdef NwArray[int32_t] heap_pos
    # The samples' lists, in one block (CSR layout); the lists of the merged
    # clusters come from a pool and go back to it when their cluster dies.
    cdef NwArray[Edge] first_lists
    # The first pass, in two halves.
    cdef PairsPart parts[2]
    cdef NwListPool list_pool
    # Rows [sums (T) | centroid (T)] of the merged clusters alive at a time;
    # a sample has no row: its sums and centroid are its row of X.
    cdef NwChunkPool row_pool
    # Faults in blocks for row_pool on another thread, from the first pass on.
    cdef NwStocker stocker
    cdef Slot* slots
    cdef Edge* first_begin
    cdef Edge* first_end
    cdef SlotHeap heap
    cdef Prefetcher pf

    # Touching clusters of the new one: samples, merged clusters; those whose
    # inertia with it is computed now (positions in around).
    cdef vector[Edge] around
    cdef vector[Edge] around_pairs
    cdef vector[Edge] around_merged
    cdef vector[Edge]* group
    cdef vector[intp_t] todo
    # Lanes of a batch of inertias (one when resolving a bound).
    cdef const void* lane_row[2 * LANES]
    cdef float64_t lane_sum[LANES]

    cdef intp_t i, j, p, q, t, pa, pb, n_around
    cdef int32_t a, b, r, s, k_id
    cdef intp_t n_merges = 0
    cdef Key key, cand
    cdef Edge edge
    cdef Slot* sa
    cdef Slot* sb
    cdef Slot* sr
    cdef Edge* lst
    cdef float64_t w_a, w_b, w_k, w_child, v, bound
    # The bounds (see "Lazy inertias"): relative margin, absolute margin on
    # distances, and upper bounds of |c_k - c_a| and |c_k - c_b|.
    cdef float64_t rel, slack, shift, shift_a, shift_b, norm_max
    cdef float64_t* row_k
    cdef const float64_t* centroid_k
    cdef const float64_t* other
    cdef Py_ssize_t capacity
    cdef intp_t small = small_size if small_size > 1 else 1
    cdef bint joined, have_row
    cdef vector[float64_t] scratch
    # The centroid of a pair (which keeps no row: see "Memory") where one is
    # needed as such: the new cluster's, that of a bound's pair.
    cdef vector[float64_t] pair_row
    cdef float64_t* pairs_own
    cdef int32_t c_slot
    cdef int kind
    cdef bint rowless_pairs
    cdef float64_t* sums_k
    cdef float64_t* sums_a
    cdef float64_t* sums_b
    cdef int32_t node_a, node_b
    cdef const intp_t* kids = &children[0, 0] if children.shape[0] > 0 else NULL
    cdef bint out_of_memory = False
    cdef bint not_finite = False

    if not (slot_store.allocate(n_samples) and heap_key.allocate(n_samples)
            and heap_slot.allocate(n_samples) and heap_pos.allocate(n_samples)
            and first_lists.allocate(2 * n_pairs + 1)):
        raise MemoryError()
    slots = slot_store.data()
    first_begin = first_lists.data()
    first_end = first_begin + 2 * n_pairs + 1
    list_pool.set_item_bytes(sizeof(Edge))
    # Rows of a centroid and the address of the sums, or of sums; or, when every
    # merged cluster keeps its sums, of both: the sums after the address (see
    # "Memory"), read with the centroid's row as one.
    joined = small == 1
    row_pool.set_sizes(((2 if joined else 1) * n_features + 1) * sizeof(float64_t), 1 << 21)
    # Blocks for a merged cluster per STOCKED_ROWS samples: about the most alive
    # at a time (a cortical hemisphere, a 3 mm brain), within the cache.
    stocker.start(row_pool.block_bytes(),
                  (n_samples // STOCKED_ROWS * row_pool.chunk_bytes()) // row_pool.block_bytes())
    scratch.resize((2 * small + 1) * n_features)
    # Pairs of float32 samples keep no row when small clusters keep no sums.
    rowless_pairs = not joined and real is float32_t
    pair_row.resize(n_features)
    pairs_own = pair_row.data()
    heap.key = heap_key.data()
    heap.slot = heap_slot.data()
    heap.pos = heap_pos.data()
    heap.size = 0
    around.reserve(64)
    around_pairs.reserve(64)
    around_merged.reserve(64)
    todo.reserve(64)
    pf.slots = slots
    pf.x_data = <const char*>&X[0, 0]
    pf.x_stride = X.strides[0]
    pf.x_row_bytes = row_bytes
    pf.n_features = n_features
    pf.x_float32 = real is float32_t
    pf.joined = joined
    pf.kids = kids
    pf.n_samples = n_samples
    # A computed inertia is within (n_features + 5) units of rounding (2**-53)
    # of the exact value for the stored centroids: a sum of non-negative
    # terms, each within 3 units, times a weight within 3. Four times that,
    # at each step of a bound.
    rel = 4.0 * (n_features + 16) * 1.1102230246251565e-16

    with nogil:
        # ---- First pass: the inertia of every pair of touching samples ----
        for i in range(n_samples):
            sa = &slots[i]
            sa.weight = 1.0
            sa.row = NULL
            sa.edge = first_begin + indptr[i]
            sa.n_edges = 0
            sa.cap_edges = <int32_t>(indptr[i + 1] - indptr[i])
            sa.node_id = <int32_t>i
            sa.seen_at = -1
            sa.best = -1
            sa.lazy = 0
            heap.pos[i] = -1
        # The pairs' inertias on two threads (if allowed), each over the rows
        # of half the pairs, when there are enough values to read (a cortical
        # hemisphere's pass took 9 ms of its 90), each left at its CSR
        # position in the samples' lists; then stored in both lists in the
        # order of the rows. Row i's list is written from its start, over
        # positions of row i already read, and row j's (j < i) over row j's.
        for q in range(2):
            parts[q].x_data = pf.x_data
            parts[q].x_stride = pf.x_stride
            parts[q].n_features = n_features
            parts[q].x_float32 = real is float32_t
            parts[q].indptr = &indptr[0]
            parts[q].indices = &indices[0] if n_pairs > 0 else NULL
            parts[q].check_finite = check_finite
            parts[q].lists = first_begin
        # The rows of half the listed edges, then the others (none on one thread).
        i = 0
        if threads >= 2 and n_pairs * n_features >= PAIRS_ON_TWO_THREADS:
            while i < n_samples and indptr[i] < n_pairs:
                i += 1
        else:
            i = n_samples
        parts[0].first, parts[0].last = 0, i
        parts[1].first, parts[1].last = i, n_samples
        if i < n_samples:
            run_two(_pairs_part, &parts[0], &parts[1])
        else:
            _pairs_part(&parts[0])
            _pairs_part(&parts[1])  # no rows: no norm, nothing not finite
        not_finite = parts[0].not_finite or parts[1].not_finite
        norm_max = parts[0].norm_max if parts[0].norm_max > parts[1].norm_max else parts[1].norm_max
        for i in range(0 if not_finite else n_samples):
            for p in range(indptr[i], indptr[i + 1]):
                j = indices[p]
                if j < i:
                    v = first_begin[p].inertia
                    _add_pair(&slots[i], <int32_t>j, v)
                    _add_pair(&slots[j], <int32_t>i, v)
        # |c_k - c_a| is |c_a - c_b| w_b / w_k only up to the rounding of the
        # stored sums and centroids: 3 units of rounding of the largest
        # centroid norm, at most the largest sample norm (a mean is a convex
        # combination; the rounding of the sums adds less than 1e-6 of it).
        # More than twice that, plus 1e-150 for underflows, in distance units.
        slack = 8.0 * 1.1102230246251565e-16 * sqrt(norm_max) * (1.0 + rel) * (1.0 + 1e-6) + 1e-150

        for i in range(0 if not_finite else n_samples):  # no merge then
            if slots[i].n_edges > 0:
                slots[i].key = _best_edge(slots, <int32_t>i, &slots[i].best, &slots[i].lazy)
                heap.key[heap.size] = slots[i].key
                heap.slot[heap.size] = <int32_t>i
                heap.pos[i] = <int32_t>heap.size
                heap.size += 1
        # Floyd's heapify: O(n), instead of n pushes.
        if heap.size > 1:
            for p in range((heap.size - 2) // 4, -1, -1):
                _sift_down(&heap, p, heap.key[p], heap.slot[p])

        # ---- Merges -------------------------------------------------------
        while heap.size > 0:
            a = heap.slot[0]
            sa = &slots[a]
            b = sa.best
            sb = &slots[b]
            if sa.lazy:
                # The best candidate of the top cluster is a bound: compute
                # its inertia, in both lists, and look again. One of the two
                # is a merged cluster (bounds are only made for new ones).
                c_slot, r = (a, b) if sa.weight > 1.0 else (b, a)
                centroid_k = _centroid(&pf, c_slot, pairs_own)
                kind = _lane(&pf, r, lane_row, 0)
                centroid_lanes(centroid_k, lane_row, 1, kind == 0, kind == 1, n_features,
                               lane_sum)
                v = lane_sum[0] * ((sa.weight * sb.weight) / (sa.weight + sb.weight))
                for q in range(sa.n_edges):
                    if sa.edge[q].slot == b:
                        sa.edge[q].inertia = v
                for q in range(sb.n_edges):
                    if sb.edge[q].slot == a:
                        sb.edge[q].inertia = v
                _rescan(&heap, slots, a)
                if sb.best == a:
                    _rescan(&heap, slots, b)
                continue
            key = heap.key[0]
            # The new cluster's centroid goes to a's row if it has one, else to
            # b's, else to a recycled row (see below).
            _prefetch_child(&pf, a, True)
            _prefetch_child(&pf, b, sa.row == NULL)
            # Into L2, the samples whose rows make the sums of a small child
            # again (below), all at once.
            if sa.row != NULL and sa.weight <= small and not _from_centroid(&pf, sa.weight):
                _prefetch_samples(&pf, sa.node_id, 1)
            if sb.row != NULL and sb.weight <= small and not _from_centroid(&pf, sb.weight):
                _prefetch_samples(&pf, sb.node_id, 1)
            if (sa.row == NULL and sb.row == NULL and row_pool.next() != NULL
                    and not (rowless_pairs and sa.weight + sb.weight == 2.0)):
                prefetch_write(row_pool.next(), ((2 if joined else 1) * n_features + 1)
                               * sizeof(float64_t))
            for p in range(sa.n_edges):
                prefetch(&slots[sa.edge[p].slot], sizeof(Slot), 0)
            for p in range(sb.n_edges):
                prefetch(&slots[sb.edge[p].slot], sizeof(Slot), 0)

            k_id = <int32_t>(n_samples + n_merges)
            w_a = sa.weight
            w_b = sb.weight
            w_k = w_a + w_b
            children[n_merges, 0] = key.lo
            children[n_merges, 1] = key.hi
            inertia[n_merges] = key.inertia
            sizes[n_merges] = <intp_t>w_k
            n_merges += 1


            node_a = sa.node_id
            node_b = sb.node_id
            # Sums of the new cluster, then its centroid (see "Memory"). The
            # centroid goes to the row of a merged child when there is one.
            sums_a = _sums_row(sa.row, n_features)[0] if sa.row != NULL else NULL
            sums_b = _sums_row(sb.row, n_features)[0] if sb.row != NULL else NULL
            have_row = False
            if w_k <= small:
                # A small cluster: its sums made again, and only its centroid kept.
                sums_k = scratch.data()
                _child_sums(&pf, sa.row, w_a, node_a, False, sums_k,
                            sums_k + n_features)
                _child_sums(&pf, sb.row, w_b, node_b, True, sums_k,
                            sums_k + n_features)
            elif sums_a != NULL or sums_b != NULL:
                # A child's sums row takes the other child's sums.
                if sums_a == NULL:
                    sums_k = sums_b
                    sums_b = NULL
                    _child_sums(&pf, sa.row, w_a, node_a, True, sums_k,
                                scratch.data())
                elif sums_b != NULL:
                    sums_k = sums_a
                    add_rows(sums_k, sums_b, n_features)
                    if not joined:  # else given back with b's row, below
                        row_pool.give_back(sums_b)
                else:
                    sums_k = sums_a
                    _child_sums(&pf, sb.row, w_b, node_b, True, sums_k,
                                scratch.data())
            else:
                # Two small children (or samples): a sums row of its own (in
                # the new row, after the centroid, when joined: two samples).
                if joined:
                    row_k = <float64_t*>row_pool.take()
                    sums_k = row_k + n_features + 1 if row_k != NULL else NULL
                    have_row = True
                else:
                    sums_k = <float64_t*>row_pool.take()
                if sums_k == NULL:
                    out_of_memory = True
                    break
                _child_sums(&pf, sa.row, w_a, node_a, False, sums_k,
                            scratch.data())
                _child_sums(&pf, sb.row, w_b, node_b, True, sums_k,
                            scratch.data())
            if have_row:
                pass
            elif w_k == 2.0 and rowless_pairs:
                row_k = NULL  # a pair: its centroid is made again where needed
            elif sa.row != NULL:
                row_k = sa.row
                if sb.row != NULL:
                    row_pool.give_back(sb.row)
            elif sb.row != NULL:
                row_k = sb.row
            else:
                row_k = <float64_t*>row_pool.take()
                if row_k == NULL:
                    if w_k > small:
                        row_pool.give_back(sums_k)
                    out_of_memory = True
                    break
            sb.row = NULL
            if row_k == NULL:
                divide(sums_k, w_k, n_features, pairs_own)
                centroid_k = pairs_own
            else:
                divide(sums_k, w_k, n_features, row_k)
                _sums_row(row_k, n_features)[0] = sums_k if w_k > small else NULL
                centroid_k = row_k
            sa.row = row_k

            # Slot a now holds the new cluster; b dies.
            sa.node_id = k_id
            sa.weight = w_k
            sb.node_id = -1
            _heap_remove(&heap, b)

            # Touching clusters of the new one: those of either child, once;
            # samples, then pairs without a row, then the others: the order of
            # the lane types in the batches (see ``nw_centroid_lanes``).
            # Each with minus a lower bound of its inertia with the new one,
            # the larger if both children list it (see "Lazy inertias"); its
            # centroid is prefetched if the bound does not settle it. (Lists
            # into L1 at once, rather than into L2 then a few clusters ahead
            # into L1: measured 5 to 8 % faster on the brain masks.)
            sa.seen_at = k_id
            sb.seen_at = k_id
            around.clear()
            around_pairs.clear()
            around_merged.clear()
            v = sqrt(key.inertia * ((w_a + w_b) / (w_a * w_b))) * (1.0 + rel)  # >= |c_a - c_b|
            shift_a = v * (w_b / w_k) * (1.0 + rel) + slack
            shift_b = v * (w_a / w_k) * (1.0 + rel) + slack
            for s in range(2):
                lst = sa.edge if s == 0 else sb.edge
                w_child = w_a if s == 0 else w_b
                shift = shift_a if s == 0 else shift_b
                for p in range(sa.n_edges if s == 0 else sb.n_edges):
                    r = lst[p].slot
                    if r == a or r == b:
                        continue
                    sr = &slots[r]
                    bound = (sqrt(fabs(lst[p].inertia) * ((w_child + sr.weight) / (w_child * sr.weight)))
                             * (1.0 - rel) - shift)
                    bound = (bound * bound * ((w_k * sr.weight) / (w_k + sr.weight)) * (1.0 - rel)
                             if bound > 1e-140 else 0.0)
                    if not (bound < 1e300):  # overflow
                        bound = 0.0
                    group = (&around if sr.weight == 1.0
                             else &around_pairs if sr.row == NULL else &around_merged)
                    if sr.seen_at != k_id:
                        sr.seen_at = k_id
                        edge.slot = r
                        edge.node = sr.node_id
                        edge.inertia = -bound
                        group.push_back(edge)
                        if sr.n_edges > 0:  # into L1: rewritten in this merge
                            prefetch(sr.edge, sr.n_edges * sizeof(Edge), 0)
                        # (The first LANES always: all are computed when
                        # they fit in one batch, see below.)
                        if (around.size() + around_pairs.size() + around_merged.size() <= LANES
                                or sr.best == a or sr.best == b or not (bound > sr.key.inertia)):
                            _prefetch_centroid(&pf, r, 1)
                    else:
                        for q in range(<intp_t>group.size()):
                            if group[0][q].slot == r and -group[0][q].inertia < bound:
                                group[0][q].inertia = -bound
            for p in range(<intp_t>around_pairs.size()):
                around.push_back(around_pairs[p])
            for p in range(<intp_t>around_merged.size()):
                around.push_back(around_merged[p])
            n_around = <intp_t>around.size()

            # Their inertias with the new cluster where the bound does not
            # settle it: where it may beat their best candidate (always when
            # that was with a child). The new cluster's own key may then be a
            # bound; computing the pairs that could beat its smallest inertia
            # as well, in a second batch, was measured 3 to 12 % slower than
            # leaving them to the top of the heap. A bound of 0 is never kept:
            # every kept one is negative.
            todo.clear()
            for p in range(n_around):
                sr = &slots[around[p].slot]
                if sr.best == a or sr.best == b or not (-around[p].inertia > sr.key.inertia):
                    todo.push_back(p)
            # All of them when that takes no more batches, or when they fit
            # in one (LANES pairs cost about as much as one: each lane's sum
            # is a chain of dependent additions, and the lanes run side by
            # side): no bound is then left to resolve at the top of the heap,
            # each a miss on two rows and a batch of one. Computing an inertia
            # where a bound would do is always allowed. On a cortical mesh
            # (~7 touching clusters) 1 to 3 % faster; on a brain mask (~16)
            # it rarely applies.
            if n_around <= LANES or (
                    (n_around + LANES - 1) // LANES <= (<intp_t>todo.size() + LANES - 1) // LANES):
                todo.clear()
                for p in range(n_around):
                    todo.push_back(p)
            _inertias(&pf, around.data(), todo.data(), <intp_t>todo.size(), centroid_k, w_k)

            # Each touching cluster r: its edges to a and b become one edge
            # to the new cluster (in slot a), and its best candidate is
            # updated; a full rescan only if that best was with a child.
            for p in range(n_around):
                r = around[p].slot
                v = around[p].inertia
                sr = &slots[r]
                lst = sr.edge
                pa = -1
                pb = -1
                for q in range(sr.n_edges):
                    s = lst[q].slot
                    if s == a:
                        pa = q
                    elif s == b:
                        pb = q
                if pa < 0:
                    pa = pb
                    pb = -1
                    lst[pa].slot = a
                lst[pa].inertia = v
                lst[pa].node = k_id
                if pb >= 0:
                    sr.n_edges -= 1
                    lst[pb] = lst[sr.n_edges]

                if sr.best == a or sr.best == b:
                    _rescan(&heap, slots, r)
                elif v >= 0:  # a bound does not beat the best candidate
                    cand.inertia = v
                    cand.hi = k_id
                    cand.lo = sr.node_id
                    if _before(cand, sr.key):
                        sr.key = cand
                        sr.best = a
                        sr.lazy = 0
                        _heap_set(&heap, r, cand)

            # The new cluster's list, in a child's buffer when one is large
            # enough; the other buffer goes back to the pool.
            if sa.cap_edges < n_around:
                if sb.cap_edges >= n_around:
                    lst = sa.edge
                    sa.edge = sb.edge
                    sb.edge = lst
                    q = sa.cap_edges
                    sa.cap_edges = sb.cap_edges
                    sb.cap_edges = <int32_t>q
                else:
                    _release_list(sa, &list_pool, first_begin, first_end)
                    sa.edge = <Edge*>list_pool.take(n_around, &capacity)
                    sa.cap_edges = <int32_t>capacity
                    if sa.edge == NULL:
                        out_of_memory = True
                        break
            _release_list(sb, &list_pool, first_begin, first_end)
            if n_around > 0:
                memcpy(sa.edge, around.data(), n_around * sizeof(Edge))
            sa.n_edges = <int32_t>n_around
            if n_around > 0:
                _rescan(&heap, slots, a)
            else:
                _heap_remove(&heap, a)  # its connected piece is done
        stocker.stop()

    if out_of_memory:
        raise MemoryError("out of memory in the Ward merge loop")
    if not_finite:
        return None
    roots_list = []
    for i in range(n_samples):
        if slots[i].node_id >= 0:
            roots_list.append((slots[i].node_id, i))
    roots_list.sort()
    n_roots = len(roots_list)
    roots = np.empty(n_roots, dtype=np.intp)
    root_sums = np.empty((n_roots, n_features), dtype=np.float64)
    root_sizes = np.empty(n_roots, dtype=np.intp)
    for p, (node, s) in enumerate(roots_list):
        roots[p] = node
        root_sizes[p] = <intp_t>slots[s].weight
        if slots[s].weight == 1.0:
            root_sums[p] = np.asarray(X[s], dtype=np.float64)
        else:
            sums_k = (_sums_row(slots[s].row, n_features)[0] if slots[s].row != NULL
                      else NULL)  # a pair keeps no row
            if sums_k == NULL:
                sums_k = scratch.data()
                _child_sums(&pf, slots[s].row, slots[s].weight, node, False,
                            sums_k, sums_k + n_features)
            for t in range(n_features):
                root_sums[p, t] = sums_k[t]
    return n_merges, roots, root_sums, root_sizes


cdef inline void _add_pair(Slot* s, int32_t other, float64_t v) noexcept nogil:
    """A pair of samples' inertia in the first one's list."""
    s.edge[s.n_edges].inertia = v
    s.edge[s.n_edges].slot = other
    s.edge[s.n_edges].node = other
    s.n_edges += 1


cdef struct PairsPart:
    # The first pass over rows [first, last): what it reads, what it finds.
    const char* x_data
    intp_t x_stride
    intp_t n_features
    bint x_float32
    const intp_t* indptr
    const intp_t* indices
    intp_t first
    intp_t last
    bint check_finite
    Edge* lists              # out: the inertia of (i, j), j < i, at its CSR position
    float64_t norm_max       # out: the largest squared norm of its rows
    bint not_finite          # out: a row's squared norm is not finite


cdef void _pairs_of_rows(const real* x, PairsPart* part) noexcept nogil:
    """The inertias of the pairs of touching samples ``(i, j)``, ``j < i``,
    for ``i`` in the part's rows, LANES at a time; the largest squared norm."""
    cdef const real* lane_a[LANES]
    cdef const real* lane_b[LANES]
    cdef intp_t where[LANES]
    cdef float64_t lane_sum[LANES]
    cdef intp_t i, j, p, q = 0, r
    cdef intp_t n_features = part.n_features
    cdef intp_t row_bytes = n_features * sizeof(real)
    cdef const char* base = part.x_data
    cdef float64_t v
    part.norm_max = 0.0
    part.not_finite = False
    for i in range(part.first, part.last):
        # X is read in order here, a row then its pairs with earlier rows,
        # but in short bursts the hardware prefetcher does not run ahead
        # of (nor across 4 kB pages): eight rows ahead, into L1. It was
        # 6 % of a tree on a cortical mesh (300 volumes, 1.2 kB rows).
        if i + 8 < part.last:
            prefetch(base + (i + 8) * part.x_stride, row_bytes, 0)
        v = norm2(<const real*>(base + i * part.x_stride), n_features)
        if part.check_finite and not (v <= 1.7976931348623157e308):  # NaN or inf
            part.not_finite = True
            return
        if v > part.norm_max:
            part.norm_max = v
        for p in range(part.indptr[i], part.indptr[i + 1]):
            j = part.indices[p]
            if j < i:  # each pair once, from its larger sample
                lane_a[q] = <const real*>(base + i * part.x_stride)
                lane_b[q] = <const real*>(base + j * part.x_stride)
                where[q] = p
                q += 1
                if q == LANES:
                    pair_lanes(lane_a, lane_b, <int>q, n_features, lane_sum)
                    for r in range(q):
                        part.lists[where[r]].inertia = lane_sum[r] * 0.5  # (1 * 1) / (1 + 1)
                    q = 0
    if q > 0:
        pair_lanes(lane_a, lane_b, <int>q, n_features, lane_sum)
        for r in range(q):
            part.lists[where[r]].inertia = lane_sum[r] * 0.5


cdef void _pairs_part(void* arg) noexcept nogil:
    """``_pairs_of_rows`` on a ``PairsPart`` (a task of ``nw_run_two``)."""
    cdef PairsPart* part = <PairsPart*>arg
    if part.x_float32:
        _pairs_of_rows(<const float32_t*>part.x_data, part)
    else:
        _pairs_of_rows(<const float64_t*>part.x_data, part)


cdef extern from *:
    """
    #ifndef NW_PROFILE_GUIDED
    #define NW_PROFILE_GUIDED 0
    #endif
    """
    int NW_PROFILE_GUIDED

#: Whether this build was optimised with a profile of ``_profile_workload``
#: (``setup.py``): faster, the same results.
PROFILE_GUIDED = bool(NW_PROFILE_GUIDED)


def _simd_level(level=None):
    """The code path of the inertia sums: 2 AVX2, 1 SSE2, 0 plain C++.

    With ``level``, switch to it (clipped to what the CPU supports; -1: the
    best) and return the previous one. All paths give the same bits; this is
    here so that the tests can check each of them.
    """
    if level is None:
        return simd_level
    return set_simd_level(int(level))


def _huge_page_budget(n_bytes):
    """Let the next fresh blocks ask for huge pages up to ``n_bytes`` in all (None: no limit).

    Returns the budget that was left. :func:`nipype_ward.core.ward._tree.build_ward_tree`
    sets it to ``HUGE_PAGE_BYTES`` before each tree.
    """
    cdef size_t budget = <size_t>-1 if n_bytes is None else <size_t>max(0, int(n_bytes))
    cdef size_t previous = set_huge_budget(budget)
    return None if previous == <size_t>-1 else int(previous)


ctypedef fused csr_index:
    int32_t
    int64_t


def symmetric_offdiagonal(const csr_index[::1] indptr, const csr_index[::1] indices):
    """The off-diagonal part of a CSR structure in canonical format (each row
    sorted, without duplicates) as intp ``(indptr, indices)``, or None if it
    is not symmetric; two compiled passes.

    The symmetry check visits the rows in increasing order; ``unmatched[j]``
    is the first entry of row ``j`` not yet matched with its reverse. Row
    ``i`` matches each of its entries ``j > i`` with the first unmatched
    entry of row ``j``, which must be ``i`` (the entries of row ``j`` below
    ``j`` are met in increasing order, as the rows that list them are
    visited). When row ``i`` is reached, all its entries below ``i`` must have
    been matched, so its first unmatched entry, if any, must exceed ``i``.
    Hence a pass without failure means that every entry has its reverse.
    """
    cdef intp_t n = indptr.shape[0] - 1
    cdef intp_t i, j, p, q, end
    cdef bint ok = True
    if n < 0 or indptr[0] != 0:
        return None
    out_indptr = np.empty(n + 1, dtype=np.intp)
    out_indices = np.empty(indptr[n], dtype=np.intp)
    cdef intp_t[::1] optr = out_indptr
    cdef intp_t[::1] oind = out_indices
    cdef vector[intp_t] unmatched
    unmatched.resize(n)
    with nogil:
        q = 0
        optr[0] = 0
        for i in range(n):
            for p in range(indptr[i], indptr[i + 1]):
                j = indices[p]
                if j < 0 or j >= n:
                    ok = False
                    break
                if j != i:
                    oind[q] = j
                    q += 1
            if not ok:
                break
            optr[i + 1] = q
        if ok:
            for i in range(n):
                unmatched[i] = optr[i]
            for i in range(n):
                end = optr[i + 1]
                p = unmatched[i]
                if p < end and oind[p] < i:
                    ok = False
                    break
                for p in range(p, end):
                    j = oind[p]
                    if unmatched[j] >= optr[j + 1] or oind[unmatched[j]] != i:
                        ok = False
                        break
                    unmatched[j] += 1
                if not ok:
                    break
    if not ok:
        return None
    return out_indptr, out_indices[:q]


def cut_labels(const intp_t[:, ::1] children, intp_t n_leaves, intp_t n_clusters):
    """Labels of the leaves when the last ``n_clusters - 1`` merges are undone.

    Labels are 0..n_clusters-1, numbered in order of first appearance over the
    leaves, so the same tree always gives the same numbering.
    """
    cdef intp_t n_kept = n_leaves - n_clusters
    cdef intp_t n_nodes = n_leaves + n_kept
    cdef intp_t q, node, next_label = 0
    cdef intp_t[::1] parent = np.full(n_nodes, -1, dtype=np.intp)
    cdef intp_t[::1] cluster = np.empty(n_nodes, dtype=np.intp)
    cdef intp_t[::1] relabel = np.full(n_nodes, -1, dtype=np.intp)
    labels = np.empty(n_leaves, dtype=np.intp)
    cdef intp_t[::1] out = labels
    with nogil:
        for q in range(n_kept):
            parent[children[q, 0]] = n_leaves + q
            parent[children[q, 1]] = n_leaves + q
        # Parents have larger ids than their children: one pass from the top.
        for node in range(n_nodes - 1, -1, -1):
            if parent[node] == -1:
                cluster[node] = node
            else:
                cluster[node] = cluster[parent[node]]
        for node in range(n_leaves):
            if relabel[cluster[node]] == -1:
                relabel[cluster[node]] = next_label
                next_label += 1
            out[node] = relabel[cluster[node]]
    return labels
