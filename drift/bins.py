"""Reference-decile binning, and KL divergence and PSI over those bins (what a check computes per feature)."""

from __future__ import annotations

import numpy as np

FLOOR = 1e-6


def decile_edges(reference: np.ndarray, bins: int = 10) -> np.ndarray:
    """Inner bin edges at the reference quantiles (bins − 1 edges; the outer bins are open-ended).
    Repeated edges (constant or discrete features) are kept: searchsorted puts tied values in one bin."""
    values = reference[np.isfinite(reference)]
    if values.size == 0:
        raise ValueError("reference has no finite values")
    return np.quantile(values, np.linspace(0, 1, bins + 1)[1:-1])


def bin_shares(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Share of the finite `values` in each of len(edges) + 1 bins (right-closed inner bins)."""
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        raise ValueError("no finite values to bin")
    counts = np.bincount(np.searchsorted(edges, finite, side="left"), minlength=edges.size + 1)
    return counts / finite.size


def floored(shares: np.ndarray, floor: float = FLOOR) -> np.ndarray:
    """Shares floored at `floor` then renormalised to sum to 1 (empty bins would make KL infinite)."""
    clipped = np.maximum(shares, floor)
    return clipped / clipped.sum()


def kl_and_psi(
    reference_shares: np.ndarray, edges: np.ndarray, current: np.ndarray, floor: float = FLOOR
) -> tuple[float, float]:
    """KL(reference ‖ current) = Σ p·ln(p/q), natural log, and PSI = Σ (q − p)·ln(q/p), from one binning of
    `current`: p = the floored reference bin shares, q = the floored shares of `current` in the same bins."""
    p = floored(np.asarray(reference_shares, dtype=float), floor)
    q = floored(bin_shares(np.asarray(current, dtype=float), np.asarray(edges, dtype=float)), floor)
    return float(np.sum(p * np.log(p / q))), float(np.sum((q - p) * np.log(q / p)))
