"""What a drift check needs about a model's reference (training) window, computed once when the
model is trained: per-feature decile edges and bin shares, the sorted predicted probabilities, the
held-out Sharpe, and a small row sample for the human-readable Evidently report."""

from __future__ import annotations

from typing import Any

import numpy as np

from drift.bins import bin_shares, decile_edges

SAMPLE_ROWS = 1000


def compute_baseline(
    features: np.ndarray,
    names: list[str],
    predictions: np.ndarray,
    *,
    baseline_sharpe: float,
    periods_per_year: float,
    bins: int = 10,
    seed: int = 0,
) -> dict[str, Any]:
    per_feature = {}
    for j, name in enumerate(names):
        edges = decile_edges(features[:, j], bins)
        per_feature[name] = {"edges": edges.tolist(), "shares": bin_shares(features[:, j], edges).tolist()}
    rng = np.random.default_rng(seed)
    take = np.sort(rng.choice(len(features), size=min(SAMPLE_ROWS, len(features)), replace=False))
    return {
        "bins": bins,
        "features": per_feature,
        "predictions_sorted": np.sort(predictions).tolist(),
        "baseline_sharpe": baseline_sharpe,
        "periods_per_year": periods_per_year,
        "sample": {name: features[take, j].tolist() for j, name in enumerate(names)},
    }
