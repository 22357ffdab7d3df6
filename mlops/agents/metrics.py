"""Classification and trading metrics. Pure numpy/scipy; no I/O.

Every function returns a flat `dict[str, float]` because `score()` logs it to MLflow as it is.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from mlops.agents.network import log_loss

TRADING_DAYS = 252  # only for a series too short to measure its own calendar
YEAR_SECONDS = 365.25 * 86400
COST_SCENARIOS_BPS = (0.0, 5.0, 10.0)


def periods_per_year(index: pd.DatetimeIndex) -> float:
    """Bars per year measured on the series' own calendar: (bars − 1) / elapsed years between the first
    and the last bar. Closures and holidays are simply time without bars, so daily equities come out
    near 252, FX hours near 6,240 (24 × 5 × 52) and 24/7 hours at 8,766, with no table of markets."""
    if len(index) < 2:
        return float(TRADING_DAYS)
    elapsed = (index[-1] - index[0]).total_seconds() / YEAR_SECONDS
    return float((len(index) - 1) / elapsed) if elapsed > 0 else float(TRADING_DAYS)


def classification_metrics(y: np.ndarray, p: np.ndarray, threshold: float) -> dict[str, float]:
    """Binary metrics of `p > threshold` against `y`: for market_insight they judge the up/down call at
    0.5 regardless of the flat band (the traded call is judged by hit_rate and the confusion matrix),
    for risk_assessor the 'tail likelier than usual' call at the training tail rate."""
    predicted = p > threshold
    actual = y.astype(bool)
    tp = float(np.sum(predicted & actual))
    fp = float(np.sum(predicted & ~actual))
    fn = float(np.sum(~predicted & actual))
    tn = float(np.sum(~predicted & ~actual))
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {
        "accuracy": (tp + tn) / max(len(y), 1),
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "log_loss": log_loss(y, p),
        "positive_share": float(np.mean(actual)) if len(y) else 0.0,
        "tp": tp,
        "fp": fp,
        "fn": fn,
        "tn": tn,
    }


def direction_metrics(
    positions: np.ndarray, y: np.ndarray, next_returns: np.ndarray, majority_up: bool = True
) -> dict[str, float]:
    """market_insight's traded calls: the 3 × 2 confusion matrix of short/flat/long positions against
    the down/up outcome (`cm_<position>_<outcome>`, counts), `coverage` (share of bars with a position),
    `hit_rate` (share of traded bars whose position sign matches the sign of the return earned) and
    `majority_hit_rate`, the hit rate on the same bars of always calling the training majority class."""
    sign = np.sign(positions)
    up = y.astype(bool)
    matrix = {
        f"cm_{name}_{outcome}": float(np.sum((sign == s) & (up if outcome == "up" else ~up)))
        for name, s in (("short", -1.0), ("flat", 0.0), ("long", 1.0))
        for outcome in ("down", "up")
    }
    traded = sign != 0
    outcome = np.sign(next_returns[traded])
    return matrix | {
        "coverage": float(np.mean(traded)) if len(sign) else 0.0,
        "hit_rate": float(np.mean(outcome == sign[traded])) if traded.any() else 0.0,
        "majority_hit_rate": float(np.mean(outcome == (1.0 if majority_up else -1.0))) if traded.any() else 0.0,
        "n_traded": float(np.sum(traded)),
    }


def probability_metrics(y: np.ndarray, p: np.ndarray, base_rate: float) -> dict[str, float]:
    """risk_assessor's probabilities: `auc` (Mann–Whitney U / (n₁·n₀); 0.5, no ranking skill measurable,
    when a class is absent), `brier` (mean squared error of p), `brier_skill` (1 − brier / brier of
    always predicting the training `base_rate`; > 0 means better than the base rate)."""
    actual = y.astype(bool)
    positives, negatives = p[actual], p[~actual]
    if len(positives) and len(negatives):
        u = stats.mannwhitneyu(positives, negatives, alternative="two-sided").statistic
        auc = float(u / (len(positives) * len(negatives)))
    else:
        auc = 0.5
    brier = float(np.mean((p - y) ** 2)) if len(y) else 0.0
    reference = float(np.mean((base_rate - y) ** 2)) if len(y) else 0.0
    return {
        "auc": auc,
        "brier": brier,
        "brier_reference": reference,
        "brier_skill": 1.0 - brier / reference if reference > 0 else 0.0,
    }


def risk_free_per_bar(risk_free_rate: float, ppy: float) -> float:
    """The per-bar rate that compounds to the annual `risk_free_rate` over `ppy` bars."""
    return (1 + risk_free_rate) ** (1 / ppy) - 1 if ppy > 0 else 0.0


def sharpe_ratio(returns: np.ndarray, ppy: float, risk_free_rate: float = 0.0) -> float:
    """Annualised Sharpe ratio of per-bar returns in excess of the per-bar risk-free rate
    ((1 + annual)^(1/ppy) − 1); 0 when the returns do not vary."""
    if len(returns) < 2:
        return 0.0
    sd = float(np.std(returns, ddof=1))
    if sd <= 0:
        return 0.0
    return float((np.mean(returns) - risk_free_per_bar(risk_free_rate, ppy)) / sd * np.sqrt(ppy))


def return_moments(returns: np.ndarray) -> dict[str, float]:
    """Skewness and (non-excess) kurtosis of per-bar returns: with `n_samples`, what a Deflated or
    Probabilistic Sharpe Ratio needs. Returns that do not vary get the normal values 0 and 3."""
    varies = len(returns) > 2 and float(np.std(returns)) > 0
    return {
        "returns_skew": float(stats.skew(returns)) if varies else 0.0,
        "returns_kurtosis": float(stats.kurtosis(returns, fisher=False)) if varies else 3.0,
    }


def trading_metrics(
    positions: np.ndarray,
    next_returns: np.ndarray,
    cost_bps: float,
    ppy: float,
    prefix: str = "",
    *,
    risk_free_rate: float = 0.0,
) -> dict[str, float]:
    """Metrics of holding `positions[t]` over what a position decided at t earns (see
    `next_bar_returns`), paying `cost_bps` per unit of turnover; the Sharpe ratio is also given at
    0, 5 and 10 bp (`sharpe_ratio_5bps`...), so a reader sees how much of it the costs decide."""
    turnover = _turnover(positions)
    returns = net_returns(positions, next_returns, cost_bps)
    equity = np.cumprod(1 + returns)
    peak = np.maximum.accumulate(np.concatenate([[1.0], equity]))[1:]
    metrics = {
        f"{prefix}sharpe_ratio": sharpe_ratio(returns, ppy, risk_free_rate),
        f"{prefix}max_drawdown": float(np.max(1 - equity / peak)) if len(equity) else 0.0,
        f"{prefix}total_return": float(equity[-1] - 1) if len(equity) else 0.0,
        f"{prefix}turnover": float(np.mean(turnover)) if len(turnover) else 0.0,
    }
    for bps in COST_SCENARIOS_BPS:
        at = net_returns(positions, next_returns, bps)
        metrics[f"{prefix}sharpe_ratio_{bps:g}bps"] = sharpe_ratio(at, ppy, risk_free_rate)
    return metrics


def equity_curve(positions: np.ndarray, next_returns: np.ndarray, cost_bps: float) -> np.ndarray:
    return np.asarray(np.cumprod(1 + net_returns(positions, next_returns, cost_bps)))


def _turnover(positions: np.ndarray) -> np.ndarray:
    return np.abs(np.diff(np.concatenate([[0.0], positions])))


def net_returns(positions: np.ndarray, next_returns: np.ndarray, cost_bps: float) -> np.ndarray:
    """Per-bar return of holding `positions[t]` over what a position decided at t earns (starting
    flat), net of `cost_bps` per unit of position change."""
    return np.asarray(positions * next_returns - _turnover(positions) * cost_bps / 1e4)
