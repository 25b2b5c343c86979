"""Quality of a parcellation as a compression of the data (arrays only)."""

from __future__ import annotations

import numpy as np

from nipype_ward.parcels import check_labels, expand_parcels, parcel_means, parcel_sizes


def reconstruction_r2(X, labels) -> float:
    """Share of the voxels' temporal variance kept by the parcel means.

    Each voxel's time series is centred first, so the score measures how well
    the parcel mean follows the voxel's fluctuations, not its baseline
    intensity: ``1 - ||Xc - P(Xc)||^2 / ||Xc||^2`` where ``Xc`` is the centred
    data and ``P`` replaces each voxel by its parcel's mean.

    Parameters
    ----------
    X : ndarray of shape (n_voxels, n_samples)
    labels : ndarray of shape (n_voxels,)

    Returns
    -------
    r2 : float in [0, 1]; 1.0 when every parcel is one voxel.
    """
    X = np.asarray(X, dtype=np.float64)
    centred = X - X.mean(axis=1, keepdims=True)
    total = float(np.sum(centred**2))
    if total == 0.0:
        raise ValueError("the data have no temporal variance: R2 is undefined")
    residual = centred - expand_parcels(parcel_means(centred, labels), labels)
    return 1.0 - float(np.sum(residual**2)) / total


def compression_summary(X, labels) -> dict:
    """Figures of a parcellation used as a compression of ``X``.

    Returns
    -------
    dict with ``n_voxels``, ``n_parcels``, ``compression_ratio``
    (voxels per parcel), ``r2`` (:func:`reconstruction_r2`) and
    ``parcel_size_min``/``parcel_size_median``/``parcel_size_max``.
    """
    labels, n_parcels = check_labels(labels, np.shape(X)[0])
    sizes = parcel_sizes(labels)
    return {
        "n_voxels": int(labels.shape[0]),
        "n_parcels": n_parcels,
        "compression_ratio": float(labels.shape[0] / n_parcels),
        "r2": reconstruction_r2(X, labels),
        "parcel_size_min": int(sizes.min()),
        "parcel_size_median": float(np.median(sizes)),
        "parcel_size_max": int(sizes.max()),
    }
