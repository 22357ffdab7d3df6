"""Performance drift: relative degradation of the annualised Sharpe ratio, and whether it means
anything on a window this short.

Significance is the probabilistic Sharpe ratio (Bailey & López de Prado, 2012): the probability that
the true per-period Sharpe of the current window exceeds the baseline's, given the window's length,
skewness and kurtosis. A degradation is called significant when that probability is below `alpha`
(default 0.05): on 60 daily bars even a large drop usually is not."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import stats

EPS = 1e-12


@dataclass(frozen=True)
class SharpeDegradation:
    baseline_sharpe: float
    current_sharpe: float
    degradation: float  # (baseline − current) / |baseline|; absolute difference when baseline is 0
    relative: bool
    probability_not_worse: float  # PSR: P(true current Sharpe ≥ baseline Sharpe)
    significant: bool
    n: int


def annualised_sharpe(returns: np.ndarray, periods_per_year: float) -> float:
    r = np.asarray(returns, dtype=float)
    r = r[np.isfinite(r)]
    if r.size < 2:
        return 0.0
    sd = float(np.std(r, ddof=1))
    return float(np.mean(r) / sd * math.sqrt(periods_per_year)) if sd > EPS else 0.0


def relative_degradation(baseline: float, current: float) -> tuple[float, bool]:
    if abs(baseline) < EPS:
        return baseline - current, False
    return (baseline - current) / abs(baseline), True


def probabilistic_sharpe_ratio(returns: np.ndarray, benchmark_per_period: float) -> float:
    """P(true per-period Sharpe > benchmark) from the sample's Sharpe, skew and kurtosis."""
    r = np.asarray(returns, dtype=float)
    r = r[np.isfinite(r)]
    n = r.size
    sd = float(np.std(r, ddof=1)) if n > 1 else 0.0
    if n < 3 or sd < EPS:
        return 0.5
    sr = float(np.mean(r)) / sd
    skew = float(stats.skew(r))
    kurt = float(stats.kurtosis(r, fisher=False))
    variance = max(1 - skew * sr + (kurt - 1) / 4 * sr**2, EPS)
    return float(stats.norm.cdf((sr - benchmark_per_period) * math.sqrt(n - 1) / math.sqrt(variance)))


def sharpe_degradation(
    current_returns: np.ndarray, baseline_sharpe: float, periods_per_year: float, alpha: float = 0.05
) -> SharpeDegradation:
    current = annualised_sharpe(current_returns, periods_per_year)
    degradation, relative = relative_degradation(baseline_sharpe, current)
    psr = probabilistic_sharpe_ratio(current_returns, baseline_sharpe / math.sqrt(periods_per_year))
    n = int(np.isfinite(np.asarray(current_returns, dtype=float)).sum())
    return SharpeDegradation(baseline_sharpe, current, degradation, relative, psr, psr < alpha, n)
