"""Feature drift: KL(reference ‖ current) over reference-decile bins, natural log."""

from __future__ import annotations

import numpy as np

from drift.bins import FLOOR, bin_shares, floored


def kl_divergence(reference_shares: np.ndarray, edges: np.ndarray, current: np.ndarray, floor: float = FLOOR) -> float:
    """Σ p·ln(p/q), p = floored reference bin shares, q = floored shares of `current` in the same bins."""
    p = floored(np.asarray(reference_shares, dtype=float), floor)
    q = floored(bin_shares(np.asarray(current, dtype=float), np.asarray(edges, dtype=float)), floor)
    return float(np.sum(p * np.log(p / q)))
