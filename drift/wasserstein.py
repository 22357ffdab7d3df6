"""Prediction drift: the Wasserstein-1 distance between two samples, exact for unequal sizes.

W1 = ∫ |F_u(x) − F_v(x)| dx, evaluated between consecutive points of the merged samples: the same
definition as scipy.stats.wasserstein_distance, from sorted arrays (the reference side is stored
sorted in the baseline, so a check only sorts the current side). Raw, not normalised: predicted
probabilities live in [0, 1]."""

from __future__ import annotations

import numpy as np


def wasserstein_1(reference_sorted: np.ndarray, current: np.ndarray) -> float:
    u = np.asarray(reference_sorted, dtype=float)
    u = u[np.isfinite(u)]
    v = np.sort(np.asarray(current, dtype=float)[np.isfinite(current)])
    if u.size == 0 or v.size == 0:
        raise ValueError("both samples need at least one finite value")
    merged = np.concatenate([u, v])
    merged.sort(kind="mergesort")
    deltas = np.diff(merged)
    u_cdf = np.searchsorted(u, merged[:-1], side="right") / u.size
    v_cdf = np.searchsorted(v, merged[:-1], side="right") / v.size
    return float(np.sum(np.abs(u_cdf - v_cdf) * deltas))
