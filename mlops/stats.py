"""Statistics behind the platform's deploy decisions: a paired stationary block bootstrap of two
strategies' per-bar series on the same bars, and the number of bars a paired Sharpe test needs.

Pure numpy/scipy/arch, no I/O. The bootstrap resamples the bars *jointly* (both series with the same
indices), so the correlation between candidate and champion — usually high, since both trade the same
market with similar features — shrinks the standard error of their difference, as it should; blocks keep
volatility clustering and autocorrelation inside each resample (Politis & Romano's stationary bootstrap,
mean block length by Politis & White via `arch.bootstrap.optimal_block_length`).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np
from scipy import stats

EPS = 1e-12
MIN_BLOCK = 1.0


@dataclass(frozen=True)
class PairedTest:
    """Difference statistic(a) − statistic(b) on the same bars, with a bootstrap CI and one-sided p.

    `p_value` is for H0: the difference is ≤ 0 (a is no better than b), from the bootstrap distribution
    of the difference re-centred on zero: p = (1 + #{d*ᵦ − d̂ ≥ d̂}) / (B + 1)."""

    statistic: str
    a: float
    b: float
    difference: float
    ci_low: float
    ci_high: float
    p_value: float
    confidence: float
    block_length: float
    replications: int
    n: int
    correlation: float

    def as_dict(self) -> dict[str, float | int | str]:
        return asdict(self)


def annualised_sharpe(returns: np.ndarray, periods_per_year: float, axis: int = -1) -> np.ndarray:
    """mean / sd (ddof 1) × √periods, along `axis`; 0 where the sd is 0 (a flat strategy)."""
    r = np.asarray(returns, dtype=float)
    mean = r.mean(axis=axis)
    sd = r.std(axis=axis, ddof=1)
    return np.where(sd > EPS, mean / np.where(sd > EPS, sd, 1.0), 0.0) * math.sqrt(periods_per_year)


def block_length(*series: np.ndarray) -> float:
    """Mean block length for the stationary bootstrap: Politis–White's estimate on each series (and on
    their difference when there are two), the largest of them, at least 1."""
    from arch.bootstrap import optimal_block_length

    columns = [np.asarray(s, dtype=float) for s in series]
    if len(columns) == 2:
        columns.append(columns[0] - columns[1])
    estimates = [
        float(optimal_block_length(c)["stationary"].iloc[0]) for c in columns if np.std(c) > EPS and c.size >= 10
    ]
    finite = [e for e in estimates if math.isfinite(e)]
    return max([MIN_BLOCK, *finite])


def paired_bootstrap(
    a: np.ndarray,
    b: np.ndarray,
    statistic: Callable[[np.ndarray], np.ndarray],
    *,
    name: str,
    replications: int = 2000,
    confidence: float = 0.90,
    seed: int = 0,
) -> PairedTest:
    """Bootstrap the difference statistic(a) − statistic(b), resampling bars jointly.

    `statistic` maps an array of shape (..., n) to (...) along the last axis (e.g. an annualised Sharpe
    or a mean), so all replications are computed in one vectorised call. The CI is the percentile
    interval at `confidence` (two-sided); a 90 % interval's lower end is the one-sided 95 % bound."""
    from arch.bootstrap import StationaryBootstrap

    a = np.asarray(a, dtype=float)
    b = np.asarray(b, dtype=float)
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError(f"paired series must be 1-D and of equal length, got {a.shape} and {b.shape}")
    if a.size < 10:
        raise ValueError(f"a paired test needs at least 10 bars, got {a.size}")
    if not (np.isfinite(a).all() and np.isfinite(b).all()):
        raise ValueError("paired series contain NaN or inf")
    block = block_length(a, b)
    # arch types the block as int, but the stationary bootstrap's block is a mean length: a float is right.
    bootstrap = StationaryBootstrap(block, np.arange(a.size), seed=seed)  # type: ignore[arg-type]
    indices = np.empty((replications, a.size), dtype=np.int64)
    for k in range(replications):
        indices[k] = bootstrap.update_indices()
    draws = statistic(a[indices]) - statistic(b[indices])
    estimate_a, estimate_b = float(statistic(a)), float(statistic(b))
    difference = estimate_a - estimate_b
    exceed = int(np.sum(draws - difference >= difference))
    tail = (1 - confidence) / 2
    low, high = np.quantile(draws, [tail, 1 - tail])
    sa, sb = np.std(a), np.std(b)
    correlation = float(np.corrcoef(a, b)[0, 1]) if sa > EPS and sb > EPS else 0.0
    return PairedTest(
        statistic=name,
        a=estimate_a,
        b=estimate_b,
        difference=difference,
        ci_low=float(low),
        ci_high=float(high),
        p_value=(1 + exceed) / (replications + 1),
        confidence=confidence,
        block_length=block,
        replications=replications,
        n=int(a.size),
        correlation=correlation,
    )


def paired_sharpe_test(
    a: np.ndarray,
    b: np.ndarray,
    periods_per_year: float,
    *,
    replications: int = 2000,
    confidence: float = 0.90,
    seed: int = 0,
) -> PairedTest:
    """Annualised Sharpe of `a` minus that of `b` on the same bars; H0: a's Sharpe is no higher."""
    return paired_bootstrap(
        a,
        b,
        lambda x: annualised_sharpe(x, periods_per_year),
        name="sharpe_ratio",
        replications=replications,
        confidence=confidence,
        seed=seed,
    )


def paired_mean_test(
    a: np.ndarray, b: np.ndarray, *, name: str, replications: int = 2000, confidence: float = 0.90, seed: int = 0
) -> PairedTest:
    """Mean of `a` minus mean of `b` on the same bars (e.g. a Brier-score improvement); H0: ≤ 0."""
    return paired_bootstrap(
        a, b, lambda x: x.mean(axis=-1), name=name, replications=replications, confidence=confidence, seed=seed
    )


def bars_for_power(
    min_effect: float, periods_per_year: float, correlation: float, alpha: float, power: float = 0.5
) -> int:
    """Bars a one-sided paired Sharpe test at level `alpha` needs to detect an annualised Sharpe
    difference of `min_effect` with probability `power`.

    For two strategies with small per-bar Sharpe ratios whose returns correlate at ρ, the variance of
    the per-bar Sharpe difference is ≈ 2(1 − ρ)/n (Jobson–Korkie with Memmel's correction, leading
    term), so n = 2(1 − ρ)·periods·((z₁₋α + z_power)/effect)². At power 0.5, z_power = 0."""
    if min_effect <= 0:
        raise ValueError(f"min_effect must be > 0, got {min_effect}")
    rho = min(max(correlation, -0.99), 0.99)
    z = float(stats.norm.ppf(1 - alpha) + stats.norm.ppf(power))
    if not math.isfinite(z) or z <= 0:  # α ≥ 0.5 (or 1): any positive lead passes, no sample size to plan
        return 10
    return max(10, math.ceil(2 * (1 - rho) * periods_per_year * (z / min_effect) ** 2))
