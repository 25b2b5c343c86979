"""The sums behind a parcellation's means and quality, from one pass over the series.

:func:`parcel_moments` reads a series (a memory map included) once, in the
order of the voxels' parcels, and returns the per-parcel sums from which
:mod:`nipype_ward.core.metrics` computes the parcel means, R2 and
homogeneity, and the compression step writes its outputs.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import NamedTuple

import numpy as np

from nipype_ward.core._moments import add_moments

__all__ = ["ParcelMoments", "parcel_moments"]


class ParcelMoments(NamedTuple):
    """Per-parcel sums of a series, from one pass over its voxels (:func:`parcel_moments`).

    Attributes
    ----------
    sizes : ndarray of shape (n_parcels,), intp
    sums : ndarray of shape (n_parcels, n_samples)
        Sum of the voxels' signals: ``sums / sizes[:, None]`` are the parcel means.
    centred_sums : ndarray of shape (n_parcels, n_samples)
        Sum of the voxels' signals, each centred in time.
    unit_sums : ndarray of shape (n_parcels, n_samples)
        Sum of the centred signals scaled to unit norm (0 for constant voxels).
    n_varying : ndarray of shape (n_parcels,)
        Voxels of each parcel that are not constant in time.
    total_variance : float
        Sum of squares of all the centred signals.
    """

    sizes: np.ndarray
    sums: np.ndarray
    centred_sums: np.ndarray
    unit_sums: np.ndarray
    n_varying: np.ndarray
    total_variance: float


def parcel_moments(X, labels, n_parcels: int, *, threads: int = 1) -> ParcelMoments:
    """The sums behind parcel means, R2 and homogeneity, one voxel at a time.

    ``X`` (float32 or float64 with contiguous rows, a memory map included)
    is read once, in the order of the voxels' parcels, by the compiled
    :func:`nipype_ward.core._moments.add_moments`: each row is read into
    the caches once, then its sum, centred values and unit-norm values are
    added to its parcel's sums there, so the memory used does not grow with
    the number of voxels beyond the (n_parcels, n_samples) sums. Inputs are
    assumed checked (finite ``X``, ``labels`` 0 .. n_parcels - 1). The
    plain sums are the centred ones plus each parcel's sum of voxel means.
    On a 2 mm run of 1,200 volumes, K = 1,000 (2 cores, 2026-12-06): 0.20-0.32 s,
    where numpy's nine passes over blocks of rows took 0.67-0.94 s, and a
    sparse product over every parcel for each block 1.2-2.0 s before that.

    The parcels are taken in two halves (split where a parcel ends, so that
    each parcel's rows are in one), on two threads with ``threads`` of 2 or
    more (the kernel releases the GIL): the sums do not depend on ``threads``.
    """
    X = np.asarray(X)
    if X.dtype not in (np.float32, np.float64) or (X.shape[1] > 1 and X.strides[1] != X.itemsize):
        X = np.ascontiguousarray(X, dtype=np.float64)
    n_voxels, n_samples = X.shape
    order = np.argsort(labels, kind="stable")
    sorted_labels = np.asarray(labels, dtype=np.intp)[order]
    sums = np.zeros((2, n_parcels, n_samples))  # centred, then unit-norm sums
    # The first row of a parcel nearest the middle (0: one part only).
    middle = int(np.searchsorted(sorted_labels, sorted_labels[n_voxels // 2])) \
        if n_voxels else 0
    parts = [(order[:middle], sorted_labels[:middle]), (order[middle:], sorted_labels[middle:])]
    parts = [part for part in parts if part[0].size]

    def run(part):
        mean_sums, n_varying = np.zeros(n_parcels), np.zeros(n_parcels)
        total = add_moments(X, part[0], part[1], sums, mean_sums, n_varying)
        return total, mean_sums, n_varying

    if threads > 1 and len(parts) > 1:
        with ThreadPoolExecutor(max_workers=2) as pool:
            done = list(pool.map(run, parts))
    else:
        done = [run(part) for part in parts]
    total = sum(part[0] for part in done)
    mean_sums = sum((part[1] for part in done), np.zeros(n_parcels))
    n_varying = sum((part[2] for part in done), np.zeros(n_parcels))
    sizes = np.bincount(labels, minlength=n_parcels)
    centred_sums, unit_sums = sums
    return ParcelMoments(sizes, centred_sums + mean_sums[:, None], centred_sums, unit_sums,
                         n_varying, total)
