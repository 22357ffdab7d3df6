"""What a drift check needs about a model's reference (training) window, computed once when the
model is trained: per-feature decile edges and bin shares, the sorted predicted probabilities, the
held-out Sharpe, and a small row sample for the human-readable Evidently report."""

from __future__ import annotations

from typing import Any

import numpy as np

from drift.bins import FLOOR, bin_shares, decile_edges, floored

SAMPLE_ROWS = 1000
FLOOR_WINDOWS = (60, 125, 250, 500, 1000)  # window lengths the noise floor is measured for
FLOOR_STEP_SHARE = 0.1  # sliding windows advance by 10 % of their length ...
FLOOR_MAX_WINDOWS = 200  # ... but no more than this many windows per length (long histories)


def kl_noise_floor(
    values: np.ndarray, edges: np.ndarray, shares: np.ndarray, window: int, floor: float = FLOOR
) -> float | None:
    """The largest KL(reference ‖ window) over sliding windows of `window` bars *inside* the reference
    itself: how far a feature's KL goes with no drift at all, at that window length. Slow, autocorrelated
    features (a 60-bar volatility) reach KL values far above the default thresholds this way, because a
    short window holds few independent stretches of their lookback. None when the reference is shorter
    than two windows."""
    if len(values) < 2 * window:
        return None
    p = floored(shares, floor)
    step = max(1, int(window * FLOOR_STEP_SHARE))
    starts = np.arange(0, len(values) - window + 1, step)
    if len(starts) > FLOOR_MAX_WINDOWS:
        starts = np.linspace(0, len(values) - window, FLOOR_MAX_WINDOWS).astype(int)
    bins = np.searchsorted(edges, values, side="left")
    worst = 0.0
    for start in starts:
        counts = np.bincount(bins[start : start + window], minlength=len(shares))
        q = floored(counts / window, floor)
        worst = max(worst, float(np.sum(p * np.log(p / q))))
    return worst


def noise_floor_for(floors: dict[str, float], window: int) -> float:
    """The feature's KL noise floor at `window` bars, from the measured length nearest to it (in ratio),
    scaled by length (KL's sampling noise falls roughly as 1/length). 0 when nothing was measured."""
    if not floors:
        return 0.0
    nearest = min(floors, key=lambda w: abs(np.log(int(w) / window)))
    return float(floors[nearest]) * int(nearest) / window


def compute_baseline(
    features: np.ndarray,
    names: list[str],
    predictions: np.ndarray,
    *,
    baseline_sharpe: float,
    periods_per_year: float,
    bins: int = 10,
    seed: int = 0,
    floor: float = FLOOR,
) -> dict[str, Any]:
    per_feature = {}
    for j, name in enumerate(names):
        column = features[:, j]
        edges = decile_edges(column, bins)
        shares = bin_shares(column, edges)
        finite = column[np.isfinite(column)]
        floors = {str(w): kl_noise_floor(finite, edges, shares, w, floor) for w in FLOOR_WINDOWS}
        per_feature[name] = {
            "edges": edges.tolist(),
            "shares": shares.tolist(),
            "kl_noise_floor": {w: f for w, f in floors.items() if f is not None},
        }
    rng = np.random.default_rng(seed)
    take = np.sort(rng.choice(len(features), size=min(SAMPLE_ROWS, len(features)), replace=False))
    return {
        "bins": bins,
        "features": per_feature,
        "predictions_sorted": np.sort(predictions[np.isfinite(predictions)]).tolist(),
        "baseline_sharpe": baseline_sharpe,
        "periods_per_year": periods_per_year,
        "sample": {name: features[take, j].tolist() for j, name in enumerate(names)},
    }
