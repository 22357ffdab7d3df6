"""Population stability index over the same reference-decile bins (reported beside KL)."""

from __future__ import annotations

import numpy as np

from drift.bins import FLOOR, bin_shares, floored


def kl_and_psi(
    reference_shares: np.ndarray, edges: np.ndarray, current: np.ndarray, floor: float = FLOOR
) -> tuple[float, float]:
    """KL(reference ‖ current) and PSI from one binning of `current` (what a check computes per feature)."""
    p = floored(np.asarray(reference_shares, dtype=float), floor)
    q = floored(bin_shares(np.asarray(current, dtype=float), np.asarray(edges, dtype=float)), floor)
    return float(np.sum(p * np.log(p / q))), float(np.sum((q - p) * np.log(q / p)))


def population_stability_index(
    reference_shares: np.ndarray, edges: np.ndarray, current: np.ndarray, floor: float = FLOOR
) -> float:
    """Σ (q − p)·ln(q/p) with floored, renormalised shares."""
    p = floored(np.asarray(reference_shares, dtype=float), floor)
    q = floored(bin_shares(np.asarray(current, dtype=float), np.asarray(edges, dtype=float)), floor)
    return float(np.sum((q - p) * np.log(q / p)))
