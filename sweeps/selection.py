"""Selection bias of a sweep's winner: the Deflated Sharpe Ratio (Bailey & López de Prado, 2014).

The best of N trials looks good partly because it is the best of N: even with no skill at all, the
largest of N noisy Sharpe estimates is well above zero. The DSR asks whether the winner's Sharpe beats
what the winner of N skill-less trials would show, E[max SR_n] under H0 (every true Sharpe 0), via
the probabilistic Sharpe ratio that accounts for the winner's sample length, skewness and kurtosis.

Everything here is per period (per bar) unless a name says annualised; pure numpy/scipy, no I/O.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import stats

from mlops.db.sweeps import SelectionReport  # the stored shape of what `assess_selection` finds

ALPHA = 0.05  # the winner is called significant when 1 − DSR < ALPHA
NORMAL_SKEW = 0.0
NORMAL_KURTOSIS = 3.0  # non-excess
_VARIANCE_FLOOR = 1e-12


def expected_max_sharpe(n_trials: int, sharpe_variance: float) -> float:
    """E[max of `n_trials` Sharpe estimates] when every true Sharpe is 0, with `sharpe_variance` the
    cross-trial variance of the estimates (the False Strategy Theorem's approximation, which is why it
    needs no distributional fit: √V · ((1 − γ)·Φ⁻¹(1 − 1/N) + γ·Φ⁻¹(1 − 1/(N·e))))."""
    if isinstance(n_trials, bool) or not isinstance(n_trials, int | np.integer) or n_trials < 2:
        raise ValueError(f"expected_max_sharpe needs at least 2 trials, got n_trials={n_trials!r}")
    if not math.isfinite(sharpe_variance) or sharpe_variance < 0:
        raise ValueError(f"sharpe_variance must be finite and >= 0, got {sharpe_variance!r}")
    gamma = float(np.euler_gamma)
    z = (1 - gamma) * stats.norm.ppf(1 - 1 / n_trials) + gamma * stats.norm.ppf(1 - 1 / (n_trials * math.e))
    return float(math.sqrt(sharpe_variance) * z)


def probabilistic_sharpe_ratio(
    sharpe: float,
    benchmark: float,
    n_samples: int,
    skew: float = NORMAL_SKEW,
    kurtosis: float = NORMAL_KURTOSIS,
) -> float:
    """P(true per-period Sharpe > `benchmark`) given an estimate `sharpe` from `n_samples` returns
    with this skewness and (non-excess) kurtosis: fat tails and negative skew widen the estimate's
    standard error, so the same Sharpe counts for less (Bailey & López de Prado, 2012)."""
    if n_samples < 2:
        raise ValueError(f"the PSR needs at least 2 returns, got n_samples={n_samples}")
    for name, value in (("sharpe", sharpe), ("benchmark", benchmark), ("skew", skew), ("kurtosis", kurtosis)):
        if not math.isfinite(value):
            raise ValueError(f"{name} must be finite, got {value!r}")
    variance = max(1 - skew * sharpe + (kurtosis - 1) / 4 * sharpe**2, _VARIANCE_FLOOR)
    return float(stats.norm.cdf((sharpe - benchmark) * math.sqrt(n_samples - 1) / math.sqrt(variance)))


@dataclass(frozen=True)
class DeflatedSharpe:
    """Per-period inputs and results of one DSR computation."""

    n_trials: int
    sharpe_variance: float
    expected_max_sharpe: float
    sharpe: float
    dsr: float  # PSR against expected_max_sharpe
    psr_vs_zero: float  # PSR against 0: the same test with no correction for selection


def deflated_sharpe_ratio(
    sharpe: float,
    trial_sharpes: Sequence[float] | np.ndarray,
    n_samples: int,
    skew: float = NORMAL_SKEW,
    kurtosis: float = NORMAL_KURTOSIS,
) -> DeflatedSharpe:
    """DSR of a selected trial's per-period `sharpe` given every trial's per-period Sharpe (the
    selected one included): PSR(SR*) with SR* = E[max] of len(trial_sharpes) skill-less trials."""
    values = np.asarray(trial_sharpes, dtype=float)
    if values.ndim != 1 or values.size < 2:
        raise ValueError(f"the DSR needs the Sharpe ratios of at least 2 trials, got {values.size}")
    if not np.all(np.isfinite(values)):
        raise ValueError("trial_sharpes contains NaN or infinite values")
    variance = float(np.var(values, ddof=1))
    benchmark = expected_max_sharpe(int(values.size), variance)
    return DeflatedSharpe(
        n_trials=int(values.size),
        sharpe_variance=variance,
        expected_max_sharpe=benchmark,
        sharpe=float(sharpe),
        dsr=probabilistic_sharpe_ratio(sharpe, benchmark, n_samples, skew, kurtosis),
        psr_vs_zero=probabilistic_sharpe_ratio(sharpe, 0.0, n_samples, skew, kurtosis),
    )


def _probability(p: float) -> str:
    return "< 0.001" if p < 0.001 else f"{p:.3f}"


def _finite(metrics: Mapping[str, Any], key: str) -> float | None:
    value = metrics.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return float(value)


def assess_selection(
    best: Mapping[str, Any],
    trials: Sequence[Mapping[str, Any]],
    *,
    objective: str,
    best_trial_number: int | None = None,
    alpha: float = ALPHA,
) -> SelectionReport:
    """Judge the winner of a sweep for selection bias from the trials' validation metrics (`best` is
    the winner's, `trials` every complete trial's, the winner's included). Each needs `sharpe_ratio`
    (annualised) and `periods_per_year`; the winner also `n_samples` and, when recorded,
    `returns_skew`/`returns_kurtosis` (else normal returns are assumed and the report says so).
    The test is about the winner's Sharpe whatever the objective that picked it."""
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")
    notes: list[str] = []
    if objective != "sharpe_ratio":
        notes.append(
            f"trials were ranked by {objective}; the test is about the selected trial's Sharpe, "
            f"deflated for the {len(trials)} trials it was chosen from"
        )

    def report(verdict: str, **measured: Any) -> SelectionReport:
        return SelectionReport(
            verdict=verdict,
            n_trials=len(trials),
            objective=objective,
            best_trial_number=best_trial_number,
            notes=notes,
            **measured,
        )

    if len(trials) < 2:
        return report(
            f"no DSR: {len(trials)} complete trial(s); selection bias needs at least 2 to estimate "
            "the spread of Sharpe ratios across trials"
        )
    per_period: list[float] = []
    for metrics in trials:
        sharpe, ppy = _finite(metrics, "sharpe_ratio"), _finite(metrics, "periods_per_year")
        if sharpe is None or ppy is None or ppy <= 0:
            return report(
                "no DSR: a complete trial lacks a finite sharpe_ratio or periods_per_year in its validation metrics"
            )
        per_period.append(sharpe / math.sqrt(ppy))  # an annualised Sharpe is the per-bar one × √(bars/year)
    best_sharpe, ppy, n = (_finite(best, k) for k in ("sharpe_ratio", "periods_per_year", "n_samples"))
    if best_sharpe is None or ppy is None or ppy <= 0 or n is None or n < 2:
        return report("no DSR: the selected trial lacks sharpe_ratio, periods_per_year or n_samples (>= 2)")
    skew, kurtosis = _finite(best, "returns_skew"), _finite(best, "returns_kurtosis")
    if skew is None or kurtosis is None:
        skew, kurtosis = NORMAL_SKEW, NORMAL_KURTOSIS
        moments = "assumed normal (skew 0, kurtosis 3): the trials do not record returns_skew/returns_kurtosis"
        notes.append(moments)
    else:
        moments = "measured"
    result = deflated_sharpe_ratio(best_sharpe / math.sqrt(ppy), per_period, int(n), skew, kurtosis)
    p_value = 1 - result.dsr
    significant = p_value < alpha
    expected = result.expected_max_sharpe * math.sqrt(ppy)
    chance = _probability(p_value)
    if significant:
        verdict = (
            f"the best trial's Sharpe {best_sharpe:.2f} beats {expected:.2f}, what the best of {result.n_trials} "
            f"trials of no skill reaches on average; no skill would reach it with probability {chance}: "
            f"significant after selection (DSR {result.dsr:.3f})"
        )
    else:
        verdict = (
            f"the best trial's Sharpe {best_sharpe:.2f} is what the best of {result.n_trials} trials of no skill "
            f"would reach with probability {chance} (expected maximum {expected:.2f}): not significant after "
            f"selection (DSR {result.dsr:.3f} < {1 - alpha:.2f})"
        )
    return report(
        verdict,
        best_sharpe=best_sharpe,
        sharpe_variance=result.sharpe_variance * ppy,
        expected_max_sharpe=expected,
        dsr=result.dsr,
        psr_vs_zero=result.psr_vs_zero,
        p_value=p_value,
        significant=significant,
        alpha=alpha,
        periods_per_year=ppy,
        n_samples=int(n),
        returns_skew=skew,
        returns_kurtosis=kurtosis,
        moments=moments,
    )
