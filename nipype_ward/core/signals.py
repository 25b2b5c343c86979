"""Signal preparation before clustering (arrays only).

One function, :func:`prepare_signals`, used by every place that prepares
voxel signals (the Ward tree and the compression), built on
:func:`nilearn.signal.clean`: detrending, Butterworth filtering, confound
regression and standardization are nilearn's, not re-implemented here.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np

from nipype_ward.core._moments import zscore_rows
from nipype_ward.core.validation import check_real

#: Accepted values of ``standardize`` (nilearn's meanings): no scaling, each
#: voxel z-scored in time (sample standard deviation), or percent signal change.
STANDARDIZE = (False, "zscore_sample", "psc")

#: nilearn's preset denoising strategies for fMRIPrep outputs
#: (:func:`nilearn.interfaces.fmriprep.load_confounds_strategy`) that we offer.
CONFOUND_STRATEGIES = ("simple", "scrubbing", "compcor")


def check_sample_mask(sample_mask, n_volumes: int):
    """Kept volumes as sorted unique indices, or None for all; at least 2 kept."""
    if sample_mask is None:
        return None
    kept = np.asarray(sample_mask)
    if kept.dtype == bool:
        if kept.shape != (n_volumes,):
            raise ValueError(f"a boolean sample_mask needs {n_volumes} values, got {kept.shape}")
        kept = np.flatnonzero(kept)
    if kept.ndim != 1 or not np.issubdtype(kept.dtype, np.integer):
        raise ValueError("sample_mask must be the indices (or a boolean mask) of kept volumes")
    kept = np.unique(kept)
    if kept.size and (kept[0] < 0 or kept[-1] >= n_volumes):
        raise ValueError(f"sample_mask indices must be between 0 and {n_volumes - 1}")
    if kept.size < 2:
        raise ValueError(f"only {kept.size} of {n_volumes} volumes are kept: nothing to cluster")
    return kept.astype(np.intp)


def _check_frequency(value, name):
    return None if value is None else check_real(value, name, what="frequency in Hz")


def check_preparation(
    *, standardize=False, detrend=False, high_pass=None, low_pass=None, t_r=None
) -> dict:
    """Validate preparation options; return them normalised.

    Raises ``ValueError`` for an unknown ``standardize``, a non-positive
    frequency, ``high_pass >= low_pass``, or a cutoff at or above Nyquist.
    Filtering without ``t_r`` is reported by the caller, which knows the file.
    """
    if standardize is not False and standardize not in STANDARDIZE[1:]:
        raise ValueError(f"standardize must be one of {STANDARDIZE}, got {standardize!r}")
    high_pass = _check_frequency(high_pass, "high_pass")
    low_pass = _check_frequency(low_pass, "low_pass")
    if high_pass is not None and low_pass is not None and high_pass >= low_pass:
        raise ValueError(f"high_pass ({high_pass} Hz) must be below low_pass ({low_pass} Hz)")
    if t_r is not None:
        t_r = check_real(t_r, "t_r", what="number of seconds")
        nyquist = 0.5 / t_r
        for name, cutoff in (("high_pass", high_pass), ("low_pass", low_pass)):
            if cutoff is not None and cutoff >= nyquist:
                raise ValueError(
                    f"{name} ({cutoff} Hz) must be below the Nyquist frequency "
                    f"({nyquist:g} Hz for a TR of {t_r:g} s)"
                )
    return {
        "standardize": standardize,
        "detrend": bool(detrend),
        "high_pass": high_pass,
        "low_pass": low_pass,
        "t_r": t_r,
    }


def filters_requested(*, high_pass=None, low_pass=None) -> bool:
    return high_pass is not None or low_pass is not None


def prepare_signals(
    X,
    *,
    standardize=False,
    detrend: bool = False,
    high_pass: float | None = None,
    low_pass: float | None = None,
    t_r: float | None = None,
    confounds=None,
    sample_mask=None,
    copy: bool = True,
    threads: int = 1,
) -> np.ndarray:
    """Clean voxel signals before clustering or compression.

    Parameters
    ----------
    X : ndarray of shape (n_voxels, n_volumes)
        Voxel time series (time along the second axis).
    standardize : {False, 'zscore_sample', 'psc'}, default=False
        Scaling of each voxel's series, as in :func:`nilearn.signal.clean`.
    detrend : bool, default=False
        Remove each voxel's linear trend.
    high_pass, low_pass : float or None, default=None
        Butterworth cutoffs in Hz; need ``t_r``.
    t_r : float or None, default=None
        Repetition time in seconds.
    confounds : ndarray of shape (n_volumes, n_confounds) or None
        Regressed out of every voxel (after being standardized, nilearn's
        default).
    sample_mask : ndarray of int or bool, or None
        Volumes kept (scrubbing): the others are censored, as
        :func:`nilearn.signal.clean` does (interpolated for filtering, then
        removed); None keeps all.
    copy : bool, default=True
        False lets a z-scoring alone (``standardize='zscore_sample'`` and
        nothing else) overwrite ``X`` (C-contiguous floats) a block of voxels
        at a time, instead of returning a new array: a long run is then not
        held twice. Other preparations go through nilearn, which copies.
    threads : int, default=1
        CPUs a z-scoring alone may use (the voxels split between them; the
        same numbers for any ``threads``).

    Returns
    -------
    prepared : ndarray of shape (n_voxels, n_kept_volumes)
        ``X`` itself when nothing is asked (the seed example's behaviour,
        which keeps the identity with scikit-learn), otherwise the output of
        ``nilearn.signal.clean(X.T, ...)`` transposed, C-contiguous.

    Notes
    -----
    nilearn's order applies: detrend, filter, remove confounds, standardize.
    """
    X = np.asarray(X)
    if X.ndim != 2:
        raise ValueError(f"X must be 2D (n_voxels, n_volumes), got shape {X.shape}")
    options = check_preparation(
        standardize=standardize, detrend=detrend, high_pass=high_pass, low_pass=low_pass, t_r=t_r
    )
    filtering = filters_requested(high_pass=high_pass, low_pass=low_pass)
    if filtering and options["t_r"] is None:
        raise ValueError("high_pass/low_pass filtering needs the repetition time t_r")
    if confounds is not None:
        confounds = np.asarray(confounds, dtype=np.float64)
        if confounds.ndim == 1:
            confounds = confounds[:, None]
        if confounds.ndim != 2 or confounds.shape[0] != X.shape[1]:
            raise ValueError(
                f"confounds must have one row per volume ({X.shape[1]}), got shape "
                f"{confounds.shape}"
            )
        if not np.isfinite(confounds).all():
            raise ValueError("confounds have NaN or infinite values")
    sample_mask = check_sample_mask(sample_mask, X.shape[1])
    if sample_mask is not None and sample_mask.size == X.shape[1]:
        sample_mask = None  # nothing censored
    if not (options["standardize"] or options["detrend"] or filtering or confounds is not None
            or sample_mask is not None):
        return X
    if options["standardize"] == "zscore_sample" and not (
            options["detrend"] or filtering or confounds is not None or sample_mask is not None):
        in_place = not copy and X.dtype.kind == "f"  # integers become floats: a new array
        return _zscore_sample(X, out=X if in_place else None, threads=threads)
    # Imported here: nilearn.signal takes about 2 s to import, paid only
    # when signals are prepared (not by the seed default, nor by --help).
    from nilearn import signal as nsignal

    cleaned = nsignal.clean(
        X.T,
        detrend=options["detrend"],
        # nilearn >= 0.14 spells "no scaling" None (False is deprecated).
        standardize=options["standardize"] or None,
        confounds=confounds,
        standardize_confounds=True,
        filter="butterworth" if filtering else False,
        high_pass=options["high_pass"],
        low_pass=options["low_pass"],
        t_r=options["t_r"],
        sample_mask=sample_mask,
        ensure_finite=False,
    )
    return np.ascontiguousarray(cleaned.T)


#: Values z-scored at once (8 MB of float32) by :func:`_zscore_sample`.
ZSCORE_BLOCK_VALUES = 1 << 21


def _zscore_sample(X: np.ndarray, *, out: np.ndarray | None = None, threads: int = 1
                   ) -> np.ndarray:
    """What ``nilearn.signal.clean(X.T, standardize="zscore_sample")`` returns, transposed.

    With nothing else asked, nilearn's clean only z-scores, by the lines of
    ``nilearn.signal.standardize_signal``, here with the same numbers
    without importing ``nilearn.signal`` (about 2 s, the first node of a run
    on denoised data such as XCP-D's waits for it). A series of one volume
    is returned as it is, as nilearn does (with its warning). The result
    goes to ``out`` (``X`` itself for an in-place z-scoring), else to a new
    array.

    C-contiguous float series go through the compiled
    :func:`~nipype_ward.core._moments.zscore_rows`,
    the voxels split between ``threads`` threads: numpy's arithmetic on
    nilearn's (volumes, voxels) layout, in one pass over each row while it
    is in the caches (a 2 mm run of 1,200 volumes, 1.1 GB, in place: 0.44 s
    on one thread against numpy's 1.3-2.0 s; 2-core VM, 2026-12-07). Others
    are z-scored by numpy a block of voxels at a time, each block
    copied to that layout: numpy reduces its first axis one volume after
    the other for each voxel alike, whatever the number of voxels beside
    it, so every voxel gets the bits of the whole-array computation. A block
    has at least 2 voxels (with one, numpy would sum it pairwise instead).
    """
    dtype = X.dtype
    if dtype.kind != "f":  # nilearn's _ensure_float
        dtype = np.dtype(np.float64 if dtype.itemsize == 8 else np.float32)
    if X.shape[1] == 1:
        import warnings

        warnings.warn("Standardization of 3D signal has been requested but would lead to zero "
                      "values. Skipping.", stacklevel=3)
        return np.array(X, dtype=dtype) if out is None else out
    if out is None:
        out = np.empty(X.shape, dtype=dtype)
    n_voxels = X.shape[0]
    if (X.dtype == dtype == out.dtype and dtype in (np.float32, np.float64)
            and X.flags.c_contiguous and out.flags.c_contiguous and out.flags.writeable):
        cuts = np.linspace(0, n_voxels, max(1, min(threads, n_voxels)) + 1).astype(int)
        spans = list(zip(cuts[:-1].tolist(), cuts[1:].tolist()))
        if len(spans) == 1:
            zscore_rows(X, out, 0, n_voxels)
        else:
            with ThreadPoolExecutor(max_workers=len(spans)) as pool:
                list(pool.map(lambda span: zscore_rows(X, out, *span), spans))
        return out
    step = max(2, ZSCORE_BLOCK_VALUES // X.shape[1])
    starts = list(range(0, n_voxels, step))
    if len(starts) > 1 and n_voxels - starts[-1] < 2:
        starts.pop()  # a last block of one voxel joins the one before
    for start, stop in zip(starts, starts[1:] + [n_voxels]):
        # (volumes, voxels) in C order, as nilearn copies it.
        signals = np.array(X[start:stop].T, dtype=dtype, order="C")
        signals = signals - signals.mean(axis=0)
        std = signals.std(axis=0, ddof=1)
        std[std < np.finfo(np.float64).eps] = 1.0
        signals /= std
        out[start:stop] = signals.T
    return out
