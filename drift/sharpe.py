"""Performance drift: relative degradation of the annualised Sharpe ratio, and whether it means
anything on a window this short.

The test is two-sample: the baseline Sharpe (the held-out window's) is an estimate too, so both
estimators' variances count. Each per-period Sharpe ŜR has the asymptotic variance of Mertens (2002) /
Opdyke (2007) under non-normal returns, (1 − γ₃·SR + (γ₄ − 1)/4·SR²) / (n − 1) (γ₃ skewness, γ₄
kurtosis); the two windows do not overlap, so z = (ŜR_baseline − ŜR_current) / √(V_b + V_c) and the
one-sided p-value is P(Z ≥ z) under H0: no degradation. Baselines stored before the held-out window's
moments were kept fall back to the one-sample probabilistic Sharpe ratio (Bailey & López de Prado,
2012), which treats the baseline as known (and says so)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import stats

EPS = 1e-12


@dataclass(frozen=True)
class SharpeDegradation:
    baseline_sharpe: float
    current_sharpe: float
    degradation: float  # (baseline − current) / |baseline|; absolute difference when baseline is 0
    relative: bool
    probability_not_worse: float  # PSR: P(true current Sharpe ≥ baseline Sharpe), baseline taken as known
    significant: bool  # p_value < alpha
    n: int
    p_value: float = 1.0  # one-sided, H0: no degradation (two-sample when the baseline's moments are known)
    z: float = 0.0
    two_sample: bool = False
    baseline_n: int | None = None

    def details(self) -> dict[str, Any]:
        return {
            "baseline_sharpe": self.baseline_sharpe,
            "current_sharpe": self.current_sharpe,
            "relative": self.relative,
            "p_value": self.p_value,
            "z": self.z,
            "test": "two-sample Sharpe z-test (Mertens/Opdyke variances)"
            if self.two_sample
            else "one-sample PSR, baseline taken as known (baseline predates the two-sample test)",
            "baseline_n": self.baseline_n,
            "probability_not_worse": self.probability_not_worse,
            "significant": self.significant,
            "n": self.n,
            "note": "degradation significant at this window length"
            if self.significant
            else "not statistically significant at this window length",
        }


@dataclass(frozen=True)
class SharpeMoments:
    """What the two-sample test needs about a window of per-bar returns (stored in the baseline)."""

    n: int
    sharpe: float  # per period
    skew: float
    kurtosis: float  # non-excess (3 for a normal)

    @classmethod
    def of(cls, returns: np.ndarray) -> SharpeMoments:
        r = np.asarray(returns, dtype=float)
        r = r[np.isfinite(r)]
        sd = float(np.std(r, ddof=1)) if r.size > 1 else 0.0
        if r.size < 3 or sd < EPS:
            return cls(int(r.size), 0.0, 0.0, 3.0)
        return cls(
            int(r.size),
            float(np.mean(r)) / sd,
            float(stats.skew(r)),
            float(stats.kurtosis(r, fisher=False)),
        )

    def variance(self) -> float:
        """Asymptotic variance of the per-period Sharpe estimator (Mertens / Opdyke); inf below 3 bars."""
        if self.n < 3:
            return math.inf
        return max(1 - self.skew * self.sharpe + (self.kurtosis - 1) / 4 * self.sharpe**2, EPS) / (self.n - 1)


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


def sharpe_difference_p_value(baseline: SharpeMoments, current: SharpeMoments) -> tuple[float, float]:
    """(z, one-sided p) of H0: the current per-period Sharpe is not below the baseline's."""
    variance = baseline.variance() + current.variance()
    if not math.isfinite(variance):
        return 0.0, 1.0
    z = (baseline.sharpe - current.sharpe) / math.sqrt(variance)
    return z, float(stats.norm.sf(z))


def sharpe_degradation(
    current_returns: np.ndarray,
    baseline_sharpe: float,
    periods_per_year: float,
    alpha: float = 0.05,
    baseline_moments: SharpeMoments | None = None,
) -> SharpeDegradation:
    """Relative degradation of the annualised Sharpe and its one-sided p-value: the two-sample test when
    `baseline_moments` (the held-out window's) are given, else the PSR with the baseline taken as known."""
    current = annualised_sharpe(current_returns, periods_per_year)
    degradation, relative = relative_degradation(baseline_sharpe, current)
    psr = probabilistic_sharpe_ratio(current_returns, baseline_sharpe / math.sqrt(periods_per_year))
    n = int(np.isfinite(np.asarray(current_returns, dtype=float)).sum())
    if baseline_moments is None:
        p, z = psr, 0.0
    else:
        z, p = sharpe_difference_p_value(baseline_moments, SharpeMoments.of(current_returns))
    return SharpeDegradation(
        baseline_sharpe,
        current,
        degradation,
        relative,
        psr,
        p < alpha,
        n,
        p,
        z,
        baseline_moments is not None,
        baseline_moments.n if baseline_moments else None,
    )


def performance_status(
    result: SharpeDegradation, *, warning: float, critical: float, warning_p: float, critical_p: float
) -> str:
    """`critical` when the one-sided p < critical_p and the degradation > critical (the effect-size floor);
    `warning` when p < warning_p and degradation > warning; else `ok`."""
    if result.p_value < critical_p and result.degradation > critical:
        return "critical"
    if result.p_value < warning_p and result.degradation > warning:
        return "warning"
    return "ok"
