"""The signal model the volume and surface simulations share.

The amplitudes of the fluctuations, the slow band and its noise, and the
checks of the arguments every simulation (and the cache) takes.
"""

from __future__ import annotations

import numpy as np

# Amplitudes of the temporal fluctuations, in percent of the voxel baseline.
# Chosen so that the total brain fluctuation is ~2 % (BOLD-like), and the
# correlation of two voxels of one region is ~0.3-0.5 while two voxels of
# different regions correlate only through the global signal (~0.1), which is
# the order of magnitude seen in real preprocessed rest data.
REGION_PCT = 1.2  # the region's own slow fluctuation (times the loading)
GLOBAL_PCT = 0.6  # shared by every brain voxel (global signal)
SMOOTH_PCT = 0.8  # spatially smooth noise (physiological, motion residue)
WHITE_PCT = 0.5  # voxel-specific white physiological noise

# Band of the slow fluctuations (Hz): the classic resting-state band.
_BAND_LOW_HZ = 0.01
_BAND_HIGH_HZ = 0.1


def band_limited_noise(rng, n_series: int, n_volumes: int, t_r: float) -> np.ndarray:
    """Unit-variance slow fluctuations, shape ``(n_series, n_volumes)``.

    White noise filtered in the Fourier domain by 4th-order Butterworth-like
    high-pass (0.01 Hz, removes drifts) and low-pass (0.1 Hz) gains: most of
    the power lies in the resting-state band whatever the TR (above 0.1 Hz the
    gain falls as f^-4). Circular filtering is fine: the series is synthetic.
    """
    white = rng.standard_normal((n_series, n_volumes))
    freqs = np.fft.rfftfreq(n_volumes, d=t_r)
    ratio_low = freqs / _BAND_LOW_HZ
    gain = 1.0 / np.sqrt(1.0 + (freqs / _BAND_HIGH_HZ) ** 8)
    gain *= ratio_low**4 / np.sqrt(1.0 + ratio_low**8)
    signals = np.fft.irfft(np.fft.rfft(white, axis=1) * gain, n=n_volumes, axis=1)
    signals -= signals.mean(axis=1, keepdims=True)
    std = signals.std(axis=1, keepdims=True)
    # A 1-volume series has no fluctuation at all: leave it at zero.
    np.divide(signals, std, out=signals, where=std > 0)
    return signals
