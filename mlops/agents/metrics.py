"""Classification and trading metrics. Pure numpy; no I/O."""

from __future__ import annotations

import numpy as np
import pandas as pd

from mlops.agents.network import log_loss

TRADING_DAYS = 252


def periods_per_year(index: pd.DatetimeIndex) -> float:
    """Bars per year inferred from the bar spacing: daily bars (weekends skipped) → 252, weekly → 52,
    intraday → 252 × bars per trading day as observed (so 24/7 markets come out right too)."""
    if len(index) < 3:
        return float(TRADING_DAYS)
    seconds = np.diff(index.asi8) / 1e9
    median = float(np.median(seconds))
    day = 86400.0
    if median >= day * 0.99:
        # Business-day bars have a median gap of 1 day; weekly bars 7 days.
        return TRADING_DAYS / max(round(median / day), 1) if median < 6 * day else 365.25 * day / median
    per_day = pd.Series(1, index=index).groupby(index.normalize()).count()
    return float(TRADING_DAYS * per_day.median())


def classification_metrics(y: np.ndarray, p: np.ndarray, threshold: float) -> dict[str, float]:
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


def trading_metrics(
    positions: np.ndarray, next_returns: np.ndarray, cost_bps: float, ppy: float, prefix: str = ""
) -> dict[str, float]:
    """Metrics of holding `positions[t]` over bar t → t+1, paying `cost_bps` per unit of turnover."""
    turnover = _turnover(positions)
    returns = net_returns(positions, next_returns, cost_bps)
    equity = np.cumprod(1 + returns)
    peak = np.maximum.accumulate(np.concatenate([[1.0], equity]))[1:]
    sd = float(np.std(returns, ddof=1)) if len(returns) > 1 else 0.0
    sharpe = float(np.mean(returns) / sd * np.sqrt(ppy)) if sd > 0 else 0.0
    return {
        f"{prefix}sharpe_ratio": sharpe,
        f"{prefix}max_drawdown": float(np.max(1 - equity / peak)) if len(equity) else 0.0,
        f"{prefix}total_return": float(equity[-1] - 1) if len(equity) else 0.0,
        f"{prefix}turnover": float(np.mean(turnover)) if len(turnover) else 0.0,
    }


def equity_curve(positions: np.ndarray, next_returns: np.ndarray, cost_bps: float) -> np.ndarray:
    return np.asarray(np.cumprod(1 + net_returns(positions, next_returns, cost_bps)))


def _turnover(positions: np.ndarray) -> np.ndarray:
    return np.abs(np.diff(np.concatenate([[0.0], positions])))


def net_returns(positions: np.ndarray, next_returns: np.ndarray, cost_bps: float) -> np.ndarray:
    """Per-bar return of holding `positions[t]` from t to t+1 (starting flat), net of `cost_bps` per
    unit of position change."""
    return np.asarray(positions * next_returns - _turnover(positions) * cost_bps / 1e4)
