"""Reference-decile binning shared by KL divergence and PSI."""

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
