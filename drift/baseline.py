"""What a drift check needs about a model's reference (training) window, computed once when the
model is trained: per-feature decile edges and bin shares, the sorted predicted probabilities, the
held-out Sharpe with the moments its two-sample test needs, the bootstrap null distributions of the
KL and normalised-W1 statistics (drift.null) at a few window lengths, and a small row sample for the
human-readable Evidently report.

Payload size: per window length and statistic, 101 percentiles + 100 tail draws at 5 significant
digits (≈ 2 kB); with 13 features, 3 lengths and the predictions ≈ 80 kB of JSON, plus the sorted
predictions and the 1,000-row sample, as before."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict
from typing import Any

import numpy as np

from drift.bins import FLOOR, bin_shares, decile_edges
from drift.null import feature_nulls, prediction_nulls
from drift.sharpe import SharpeMoments

SAMPLE_ROWS = 1000
NULL_WINDOWS = (60, 250, 500)  # window lengths a null is stored for (plus the configured window)
NULL_DRAWS = 10_000
PREDICTION_NULL_DRAWS = 2_000
BLOCK_SHARE = 1.0  # mean bootstrap block length, as a share of the check window
PAYLOAD_VERSION = 2


def null_windows(n_rows: int, windows: Sequence[int]) -> list[int]:
    """The requested lengths a training window of `n_rows` can support (at most half of it: a null of
    windows nearly as long as the reference says little); at least the shortest one requested."""
    usable = sorted({int(w) for w in windows if 2 <= int(w) <= n_rows // 2})
    if not usable and windows and n_rows >= 4:
        usable = [max(2, min(min(windows), n_rows // 2))]
    return usable


def compute_baseline(
    features: np.ndarray,
    names: list[str],
    predictions: np.ndarray,
    *,
    baseline_sharpe: float,
    periods_per_year: float,
    baseline_returns: np.ndarray | None = None,
    risk_free_rate: float = 0.0,
    bins: int = 10,
    seed: int = 0,
    floor: float = FLOOR,
    windows: Sequence[int] = NULL_WINDOWS,
    draws: int = NULL_DRAWS,
    prediction_draws: int = PREDICTION_NULL_DRAWS,
    block_share: float = BLOCK_SHARE,
) -> dict[str, Any]:
    """`features` (rows in time order × names) and `predictions` are the training window's; the
    `baseline_returns` are the held-out window's net per-bar returns (for the two-sample Sharpe test); the annual
    `risk_free_rate` is taken off per bar (geometrically), as in the project's Sharpe ratios. `draws` = 0
    (`prediction_draws` = 0) stores no feature (prediction) null: checks then judge that kind on its
    thresholds only. Raises ValueError on mismatched shapes or negative draws."""
    if features.ndim != 2 or features.shape[1] != len(names):
        raise ValueError(f"features must be rows × {len(names)} named columns, got shape {features.shape}")
    if len(predictions) != len(features):
        raise ValueError(f"{len(predictions)} predictions for {len(features)} feature rows")
    if draws < 0 or prediction_draws < 0 or block_share <= 0:
        raise ValueError("draws must be ≥ 0 and block_share > 0")
    edges = [decile_edges(features[:, j], bins) for j in range(len(names))]
    shares = [bin_shares(features[:, j], e) for j, e in enumerate(edges)]
    per_feature = {name: {"edges": edges[j].tolist(), "shares": shares[j].tolist()} for j, name in enumerate(names)}
    rng = np.random.default_rng(seed)
    take = np.sort(rng.choice(len(features), size=min(SAMPLE_ROWS, len(features)), replace=False))
    finite_predictions = predictions[np.isfinite(predictions)]
    payload: dict[str, Any] = {
        "version": PAYLOAD_VERSION,
        "bins": bins,
        "features": per_feature,
        "predictions_sorted": np.sort(finite_predictions).tolist(),
        "baseline_sharpe": baseline_sharpe,
        "periods_per_year": periods_per_year,
        "sample": {name: features[take, j].tolist() for j, name in enumerate(names)},
    }
    if baseline_returns is not None:
        per_bar = (1 + risk_free_rate) ** (1 / periods_per_year) - 1  # as mlops.agents.metrics.sharpe_ratio
        excess = np.asarray(baseline_returns, dtype=float) - per_bar
        payload["baseline_returns"] = asdict(SharpeMoments.of(excess))
    lengths = null_windows(len(features), windows)
    if (draws or prediction_draws) and lengths:
        payload["null"] = _nulls(
            features,
            names,
            edges,
            shares,
            finite_predictions,
            lengths,
            seed,
            floor,
            draws,
            prediction_draws,
            block_share,
        )
    return payload


def _nulls(
    features: np.ndarray,
    names: list[str],
    edges: list[np.ndarray],
    shares: list[np.ndarray],
    predictions: np.ndarray,
    lengths: list[int],
    seed: int,
    floor: float,
    draws: int,
    prediction_draws: int,
    block_share: float,
) -> dict[str, Any]:
    kl = (
        feature_nulls(
            features, edges, shares, windows=lengths, draws=draws, block_share=block_share, seed=seed, floor=floor
        )
        if draws
        else {}
    )
    w1 = (
        prediction_nulls(predictions, windows=lengths, draws=prediction_draws, block_share=block_share, seed=seed)
        if prediction_draws and predictions.size >= 4
        else {}
    )
    windows: dict[str, Any] = {}
    for length in sorted(set(kl) | set(w1)):
        entry: dict[str, Any] = {"features": {}}
        if length in kl:
            block, nulls = kl[length]
            entry["block_length"] = block
            entry["features"] = {name: null.to_payload() for name, null in zip(names, nulls, strict=True)}
        if length in w1:
            entry["prediction_block_length"] = w1[length][0]
            entry["prediction"] = w1[length][1].to_payload()
        windows[str(length)] = entry
    return {"method": "stationary block bootstrap", "block_share": block_share, "windows": windows}
