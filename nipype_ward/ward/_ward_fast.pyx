# distutils: language = c++
"""Compiled kernel of the connectivity-constrained Ward tree.

No validation here: :func:`nipype_ward.ward.ward_tree` checks and converts the
inputs, this module only runs the merge loop on preallocated arrays.

Exactness contract with scikit-learn's ``ward_tree``
----------------------------------------------------
* The inertia of a pair is computed with the very expression of
  ``sklearn.cluster._hierarchical_fast.compute_ward_dist`` (same operations, same
  summation order, float64), so every candidate gets the same bits.
* Candidates are ordered by ``(inertia, larger node id, smaller node id)``, the
  order of the tuples in scikit-learn's heap, so ties are broken identically.
* Moments are summed into the row of the merged node's first child instead of a
  new row: ``a + b == b + a`` in IEEE arithmetic, so the sums are the same bits
  while the working array stays (n_samples, n_features) instead of
  (2 n_samples - 1, n_features).
"""
from libcpp.vector cimport vector

import numpy as np

from numpy cimport float64_t, intp_t


cdef struct Candidate:
    float64_t inertia
    intp_t hi
    intp_t lo


cdef inline bint _before(const Candidate& a, const Candidate& b) noexcept nogil:
    if a.inertia != b.inertia:
        return a.inertia < b.inertia
    if a.hi != b.hi:
        return a.hi < b.hi
    return a.lo < b.lo


cdef inline void _heap_push(vector[Candidate]& heap, Candidate item) noexcept nogil:
    heap.push_back(item)
    cdef size_t pos = heap.size() - 1
    cdef size_t up
    while pos > 0:
        up = (pos - 1) >> 1
        if _before(item, heap[up]):
            heap[pos] = heap[up]
            pos = up
        else:
            break
    heap[pos] = item


cdef inline Candidate _heap_pop(vector[Candidate]& heap) noexcept nogil:
    cdef Candidate top = heap[0]
    cdef Candidate last = heap.back()
    heap.pop_back()
    cdef size_t size = heap.size()
    cdef size_t pos = 0
    cdef size_t child
    if size == 0:
        return top
    while True:
        child = 2 * pos + 1
        if child >= size:
            break
        if child + 1 < size and _before(heap[child + 1], heap[child]):
            child += 1
        if _before(heap[child], last):
            heap[pos] = heap[child]
            pos = child
        else:
            break
    heap[pos] = last
    return top


cdef inline float64_t _inertia(const float64_t* centroid_a, float64_t weight_a,
                               const float64_t* moments_b, float64_t weight_b,
                               intp_t n_features) noexcept nogil:
    """Ward inertia of merging a (given by its centroid) and b (by its sums)."""
    cdef float64_t total = 0.0
    cdef float64_t diff
    cdef intp_t t
    if weight_b == 1.0:
        # x / 1.0 == x exactly: skip the division for single voxels.
        for t in range(n_features):
            diff = centroid_a[t] - moments_b[t]
            total += diff * diff
    else:
        for t in range(n_features):
            diff = centroid_a[t] - moments_b[t] / weight_b
            total += diff * diff
    return total * ((weight_a * weight_b) / (weight_a + weight_b))


cdef inline intp_t _find_root(vector[intp_t]& parent, intp_t node) noexcept nogil:
    while parent[node] != node:
        parent[node] = parent[parent[node]]  # path halving
        node = parent[node]
    return node


def ward_merge(float64_t[:, ::1] moments,
               const intp_t[::1] indptr,
               const intp_t[::1] indices,
               intp_t[:, ::1] children,
               float64_t[::1] inertia,
               intp_t[::1] sizes):
    """Run the constrained Ward merges until no two touching clusters remain.

    Parameters
    ----------
    moments : ndarray of shape (n_samples, n_features), float64, C order
        The samples; overwritten with cluster sums.
    indptr, indices : ndarray of intp
        CSR structure of a symmetric adjacency without diagonal.
    children : ndarray of shape (n_samples - 1, 2), intp
        Filled with the merges, ``(smaller id, larger id)`` per row.
    inertia : ndarray of shape (n_samples - 1,), float64
        Filled with the Ward inertia of each merge.
    sizes : ndarray of shape (n_samples - 1,), intp
        Filled with the number of samples under each new node.

    Returns
    -------
    n_merges : int
        Merges done; ``n_samples - n_components`` of the graph.
    roots : ndarray of intp
        Node ids of the remaining clusters (one per connected component).
    root_rows : ndarray of intp
        Row of ``moments`` holding each root's sums.
    root_sizes : ndarray of intp
        Samples under each root.
    """
    cdef intp_t n_samples = moments.shape[0]
    cdef intp_t n_features = moments.shape[1]
    cdef intp_t n_nodes = 2 * n_samples - 1 if n_samples > 0 else 0
    cdef vector[intp_t] parent = vector[intp_t](n_nodes)
    cdef vector[intp_t] row_of = vector[intp_t](n_nodes)
    cdef vector[intp_t] seen_by = vector[intp_t](n_nodes, -1)
    cdef vector[float64_t] weight = vector[float64_t](n_nodes, 0.0)
    cdef vector[char] alive = vector[char](n_nodes, 0)
    cdef vector[vector[intp_t]] adjacent = vector[vector[intp_t]](n_nodes)
    cdef vector[float64_t] centroid = vector[float64_t](n_features)
    cdef vector[intp_t] around
    cdef vector[Candidate] heap
    cdef Candidate best, cand
    cdef intp_t i, j, p, t, node, k, hi, lo, row_hi, row_lo, side, root
    cdef intp_t n_merges = 0
    cdef float64_t weight_k

    with nogil:
        for i in range(n_samples):
            parent[i] = i
            row_of[i] = i
            weight[i] = 1.0
            alive[i] = 1
            for p in range(indptr[i], indptr[i + 1]):
                j = indices[p]
                if j == i:
                    continue
                adjacent[i].push_back(j)
                if j < i:
                    cand.inertia = _inertia(&moments[i, 0], 1.0, &moments[j, 0],
                                            1.0, n_features)
                    cand.hi = i
                    cand.lo = j
                    _heap_push(heap, cand)
        for i in range(n_samples, n_nodes):
            parent[i] = i

        k = n_samples
        while heap.size() > 0:
            best = _heap_pop(heap)
            hi = best.hi
            lo = best.lo
            if not (alive[hi] and alive[lo]):
                continue  # stale: one side was merged since it was queued
            row_hi = row_of[hi]
            row_lo = row_of[lo]
            for t in range(n_features):
                moments[row_hi, t] += moments[row_lo, t]
            weight_k = weight[hi] + weight[lo]
            weight[k] = weight_k
            row_of[k] = row_hi
            alive[hi] = 0
            alive[lo] = 0
            alive[k] = 1
            parent[hi] = k
            parent[lo] = k
            children[n_merges, 0] = lo
            children[n_merges, 1] = hi
            inertia[n_merges] = best.inertia
            sizes[n_merges] = <intp_t>weight_k
            n_merges += 1

            for t in range(n_features):
                centroid[t] = moments[row_hi, t] / weight_k

            # The new cluster touches the current roots of both children's
            # neighbours, each listed once.
            around.clear()
            for side in range(2):
                node = hi if side == 0 else lo
                for p in range(<intp_t>adjacent[node].size()):
                    root = _find_root(parent, adjacent[node][p])
                    if root != k and seen_by[root] != k:
                        seen_by[root] = k
                        around.push_back(root)
                vector[intp_t]().swap(adjacent[node])  # free the dead lists
            for p in range(<intp_t>around.size()):
                root = around[p]
                adjacent[root].push_back(k)
                cand.inertia = _inertia(&centroid[0], weight_k,
                                        &moments[row_of[root], 0], weight[root],
                                        n_features)
                cand.hi = k
                cand.lo = root
                _heap_push(heap, cand)
            adjacent[k] = around
            k += 1

    roots = np.array([node for node in range(n_samples + n_merges) if alive[node]],
                     dtype=np.intp)
    root_rows = np.array([row_of[node] for node in roots], dtype=np.intp)
    root_sizes = np.array([<intp_t>weight[node] for node in roots], dtype=np.intp)
    return n_merges, roots, root_rows, root_sizes


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
