"""Options checked once: integers, positive numbers, numbers of parcels.

Every function, interface and command line of the package checks its
numeric options here, so that one rule gives one message: a bool is no
integer (``True`` parcels or volumes is always a bug, though Python counts
``bool`` as ``int``), NaN and infinity are no positive number. The errors are
:class:`InvalidOptionError`, both a ``ValueError`` and a ``TypeError`` as
scikit-learn's ``InvalidParameterError`` is, so callers catch either.
Bounds that depend on data (K no larger than the mask) are checked where
the data are known, naming the file (:func:`nipype_ward.steps.check_n_clusters_in_mask`).

This module imports nothing of the package.
"""

from __future__ import annotations

import math
import numbers

import numpy as np

__all__ = ["InvalidOptionError", "check_int", "check_n_clusters", "check_real"]


class InvalidOptionError(ValueError, TypeError):
    """An option of the wrong type or out of its range."""


def _integers(low: int, high: int | None) -> str:
    if high is not None:
        return f"an integer from {low} to {high}"
    return {1: "a positive integer", 0: "a non-negative integer"}.get(low, f"an integer >= {low}")


def check_int(value, name: str, *, low: int = 1, high: int | None = None) -> int:
    """``value`` as an int, if it is an integer (not a bool) from ``low`` to ``high``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < low \
            or (high is not None and value > high):
        raise InvalidOptionError(f"{name} must be {_integers(low, high)}, got {value!r}")
    return int(value)


def check_real(value, name: str, *, what: str = "number") -> float:
    """``value`` as a float, if it is a finite real number above 0 (``what`` names its unit)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) \
            or not math.isfinite(value) or not value > 0:
        raise InvalidOptionError(f"{name} must be a positive {what}, got {value!r}")
    return float(value)


def check_n_clusters(n_clusters) -> list[int]:
    """Numbers of parcels as a list of distinct positive ints.

    Accepts one integer or a sequence of them. The upper bound (the number of
    points) depends on the data and is checked where the data are known.
    """
    values = [n_clusters] if np.isscalar(n_clusters) else list(n_clusters)
    if not values:
        raise InvalidOptionError("n_clusters is empty: ask for at least one number of parcels")
    values = [check_int(k, "n_clusters") for k in values]
    if len(set(values)) != len(values):
        raise InvalidOptionError(f"n_clusters has repeated values: {values}")
    return values


def count_nonfinite_rows(X) -> int:
    """Rows of a 2D array holding a NaN or an infinite value.

    Scanned a block of rows (about 1 MB) at a time: no temporary the size
    of ``X``, which may be a memory map.
    """
    step = max(1, (1 << 20) // max(1, X.shape[1] * X.itemsize))
    return sum(int((~np.isfinite(X[start:start + step]).all(axis=1)).sum())
               for start in range(0, X.shape[0], step))
