"""The promotion gate: may this candidate be deployed? One written rule, out of sample, with tests.

The rule, in words (README "How a retrain decides"):

1. **An edge over doing nothing clever** (every candidate, the first one included). market_insight: its
   Sharpe on the held-out window is above always-long's, and its hit rate on the bars it trades is above
   the majority class's (the direction that was more frequent in training) on those same bars.
   risk_assessor: AUC above 0.5 and a positive Brier skill score against the training base rate. These are
   point comparisons — deliberately not tests, since most real models would fail a test against buy-and-hold
   on one window — but each one's p-value is recorded.
2. **Better than the champion, by a test** (when there is a champion). Both are scored out of sample on the
   candidate's held-out bars (the champion itself when those bars lie outside its training and validation
   windows on the same symbol; otherwise the champion's hyperparameters refitted on the candidate's training
   split). A paired stationary block bootstrap of the bars gives the difference, its CI and a one-sided
   p-value for H0 "the candidate is no better"; the candidate passes when p < `gate_alpha`.
   market_insight: annualised Sharpe of net returns. risk_assessor: mean per-bar Brier score (its job is a
   calibrated probability) and its exposure-scaled returns' Sharpe must not be significantly worse (the
   upper end of the CI of the Sharpe difference above 0); when the two define tails of different sizes their
   Brier scores are not comparable and the Sharpe test decides.

Error rates (bench/decisions.py, 750 daily bars): a candidate truly 0.5 Sharpe worse is promoted in ≤ 5 % of
trials and one truly 0.5 better in ≥ 50 % when candidate and champion returns correlate at 0.9.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
from scipy import stats

from mlops.agents.metrics import risk_free_per_bar
from mlops.settings import Settings
from mlops.stats import PairedTest, paired_mean_test, paired_sharpe_test

COMPARISONS = ("none", "champion_scored", "champion_refit", "paper_trading")


@dataclass(frozen=True)
class Scored:
    """One model's out-of-sample output on the comparison bars."""

    p: np.ndarray  # predicted probabilities
    positions: np.ndarray
    returns: np.ndarray  # net per-bar returns of the positions
    tail_share: float | None = None  # risk_assessor's τ: labels of different τ are different targets


@dataclass(frozen=True)
class GateInputs:
    agent: str
    y: np.ndarray  # the candidate's labels on the comparison bars
    next_returns: np.ndarray  # what holding the market earns per bar (gross)
    market: np.ndarray  # always-long net returns on the same bars
    periods_per_year: float
    train_positive_share: float  # share of positive labels in training: majority class / base rate
    candidate: Scored
    champion: Scored | None = None
    champion_version: int | None = None
    comparison: str = "none"  # one of COMPARISONS
    comparison_note: str = ""
    risk_free_rate: float = 0.0  # annual; Sharpe ratios are of returns in excess of it


@dataclass(frozen=True)
class ValidationDecision:
    passed: bool
    reason: str
    champion_version: int | None = None
    comparison: str = "none"
    metrics: dict[str, float] = field(default_factory=dict)  # gate_* metrics for MLflow and model_runs
    checks: dict[str, dict[str, Any]] = field(default_factory=dict)

    def record(self) -> dict[str, Any]:
        """What `model_runs.validation` stores and the API/CLI show."""
        return {
            "passed": self.passed,
            "verdict": self.reason,
            "comparison": self.comparison,
            "champion_version": self.champion_version,
            "metrics": self.metrics,
            "checks": self.checks,
        }


def _bootstrap(settings: Settings) -> dict[str, Any]:
    """The gate's bootstrap options, the same for every one of its tests."""
    return {
        "replications": settings.gate_bootstrap_replications,
        "confidence": settings.gate_confidence,
        "seed": settings.seed,
    }


def _p_fmt(p: float) -> str:
    return "< 0.001" if p < 0.001 else f"{p:.3f}"


def _hit_rates(inputs: GateInputs, settings: Settings) -> tuple[float, float, int, PairedTest | None]:
    """Hit rate of the candidate's traded bars and of the majority class on those bars."""
    traded = inputs.candidate.positions != 0
    n = int(traded.sum())
    if n == 0:
        return 0.0, 0.0, 0, None
    move = np.sign(inputs.next_returns[traded])
    mine = (np.sign(inputs.candidate.positions[traded]) == move).astype(float)
    majority = 1.0 if inputs.train_positive_share >= 0.5 else -1.0
    naive = (move == majority).astype(float)
    test = (
        paired_mean_test(
            mine,
            naive,
            name="hit_rate",
            **_bootstrap(settings),
        )
        if n >= 10
        else None
    )
    return float(mine.mean()), float(naive.mean()), n, test


def _edge_market_insight(
    inputs: GateInputs, settings: Settings, sharpe: PairedTest
) -> tuple[dict[str, dict[str, Any]], dict[str, float]]:
    hit, naive_hit, n_traded, hit_test = _hit_rates(inputs, settings)
    checks: dict[str, dict[str, Any]] = {
        "edge_sharpe_vs_always_long": {
            "passed": sharpe.difference > 0,
            "value": sharpe.a,
            "baseline": sharpe.b,
            "p_value": sharpe.p_value,
            "rule": "Sharpe above always-long's on the held-out bars (point estimate)",
        },
        "edge_hit_rate_vs_majority": {
            "passed": n_traded > 0 and hit > naive_hit,
            "value": hit,
            "baseline": naive_hit,
            "n_traded": n_traded,
            "p_value": hit_test.p_value if hit_test else None,
            "rule": "hit rate on traded bars above the majority class's on those bars (point estimate)",
        },
    }
    metrics = {
        "gate_hit_rate": hit,
        "gate_naive_hit_rate": naive_hit,
        "gate_coverage": n_traded / max(len(inputs.candidate.positions), 1),
    }
    if hit_test:
        metrics["gate_naive_hit_rate_p_value"] = hit_test.p_value
    return checks, metrics


def _auc(y: np.ndarray, p: np.ndarray) -> tuple[float, float]:
    """AUC = P(score of a positive > score of a negative), and its one-sided Mann–Whitney p-value."""
    positives, negatives = p[y == 1], p[y == 0]
    if len(positives) == 0 or len(negatives) == 0:
        return 0.5, 1.0
    result = stats.mannwhitneyu(positives, negatives, alternative="greater")
    return float(result.statistic / (len(positives) * len(negatives))), float(result.pvalue)


def _edge_risk_assessor(
    inputs: GateInputs, settings: Settings, sharpe: PairedTest
) -> tuple[dict[str, dict[str, Any]], dict[str, float]]:
    """AUC and Brier skill; `sharpe` (exposure vs always-long) is recorded by the caller, not a check."""
    y, p = inputs.y, inputs.candidate.p
    auc, auc_p = _auc(y, p)
    base = float(inputs.train_positive_share)
    brier = (p - y) ** 2
    climatology = (base - y) ** 2
    skill = paired_mean_test(
        climatology,
        brier,
        name="brier_improvement",
        **_bootstrap(settings),
    )
    bss = 1 - float(brier.mean()) / float(climatology.mean()) if climatology.mean() > 0 else 0.0
    checks = {
        "edge_auc": {
            "passed": auc > 0.5,
            "value": auc,
            "baseline": 0.5,
            "p_value": auc_p,
            "rule": "AUC above 0.5 (point estimate)",
        },
        "edge_brier_skill": {
            "passed": bss > 0,
            "value": bss,
            "baseline": 0.0,
            "p_value": skill.p_value,
            "rule": f"Brier skill score against the training base rate {base:.3f} above 0 (point estimate)",
        },
    }
    metrics = {
        "gate_auc": auc,
        "gate_auc_p_value": auc_p,
        "gate_brier_skill": bss,
        "gate_brier_skill_p_value": skill.p_value,
    }
    return checks, metrics


def _paired_check(test: PairedTest, passed: bool, rule: str) -> dict[str, Any]:
    return {
        "passed": passed,
        "value": test.difference,
        "ci": [test.ci_low, test.ci_high],
        "p_value": test.p_value,
        "rule": rule,
    }


def champion_sharpe_test(
    candidate: np.ndarray, champion: np.ndarray, periods_per_year: float, settings: Settings
) -> PairedTest:
    """The gate's paired Sharpe test of a candidate against the champion on the same bars; the candidate
    wins when its p-value is below `settings.gate_alpha` (bench/decisions.py measures this very call)."""
    return paired_sharpe_test(
        candidate,
        champion,
        periods_per_year,
        **_bootstrap(settings),
    )


def _against_champion(inputs: GateInputs, settings: Settings) -> tuple[dict[str, dict[str, Any]], dict[str, float]]:
    assert inputs.champion is not None
    alpha = settings.gate_alpha
    sharpe = champion_sharpe_test(inputs.candidate.returns, inputs.champion.returns, inputs.periods_per_year, settings)
    metrics = {
        "gate_sharpe_diff": sharpe.difference,
        "gate_sharpe_diff_ci_low": sharpe.ci_low,
        "gate_sharpe_diff_ci_high": sharpe.ci_high,
        "gate_sharpe_p_value": sharpe.p_value,
        "gate_champion_sharpe": sharpe.b,
        "gate_candidate_sharpe": sharpe.a,
        "gate_return_correlation": sharpe.correlation,
        "gate_block_length": sharpe.block_length,
        "gate_n_bars": float(sharpe.n),
    }
    checks: dict[str, dict[str, Any]] = {}
    comparable = inputs.agent == "market_insight" or inputs.candidate.tail_share == inputs.champion.tail_share
    if inputs.agent == "risk_assessor" and comparable:
        y = inputs.y
        brier = paired_mean_test(
            (inputs.champion.p - y) ** 2,
            (inputs.candidate.p - y) ** 2,
            name="brier",
            **_bootstrap(settings),
        )
        metrics |= {
            "gate_brier_diff": brier.difference,  # champion's Brier − candidate's: > 0 is better
            "gate_brier_diff_ci_low": brier.ci_low,
            "gate_brier_diff_ci_high": brier.ci_high,
            "gate_brier_p_value": brier.p_value,
            "gate_p_value": brier.p_value,
        }
        checks["beats_champion_brier"] = _paired_check(
            brier, brier.p_value < alpha, f"mean Brier lower than the champion's, paired block bootstrap p < {alpha}"
        )
        checks["not_worse_sharpe"] = _paired_check(
            sharpe, sharpe.ci_high > 0, "exposure Sharpe not significantly below the champion's (CI upper end above 0)"
        )
    else:
        metrics["gate_p_value"] = sharpe.p_value
        checks["beats_champion_sharpe"] = _paired_check(
            sharpe, sharpe.p_value < alpha, f"Sharpe above the champion's, paired block bootstrap p < {alpha}"
        )
        if not comparable:
            checks["beats_champion_sharpe"]["note"] = "tails of different size: Brier scores not comparable"
    return checks, metrics


def _in_excess(inputs: GateInputs) -> GateInputs:
    """The same inputs with every return series in excess of the per-bar risk-free rate."""
    rf = risk_free_per_bar(inputs.risk_free_rate, inputs.periods_per_year)
    if rf == 0:
        return inputs
    champion = inputs.champion and replace(inputs.champion, returns=inputs.champion.returns - rf)
    return replace(
        inputs,
        market=inputs.market - rf,
        candidate=replace(inputs.candidate, returns=inputs.candidate.returns - rf),
        champion=champion,
    )


def decide(inputs: GateInputs, settings: Settings, *, edge: bool = True) -> ValidationDecision:
    """Apply the rule of this module's docstring; every number it used is in the decision. `edge=False`
    leaves out the naive-baseline checks (recorded still), for staged rollout's paired test alone."""
    if inputs.comparison not in COMPARISONS:
        raise ValueError(f"unknown comparison {inputs.comparison!r}; one of {', '.join(COMPARISONS)}")
    inputs = _in_excess(inputs)
    naive = paired_sharpe_test(
        inputs.candidate.returns,
        inputs.market,
        inputs.periods_per_year,
        **_bootstrap(settings),
    )
    edge_checks = _edge_market_insight if inputs.agent == "market_insight" else _edge_risk_assessor
    checks, metrics = edge_checks(inputs, settings, naive)
    metrics |= {
        "gate_naive_sharpe_diff": naive.difference,
        "gate_naive_sharpe_p_value": naive.p_value,
        "gate_always_long_sharpe": naive.b,
        "gate_candidate_sharpe": naive.a,
    }
    if inputs.champion is None:
        # No champion: the comparator of the gate_sharpe_* metrics is always-long (recorded, not a test).
        metrics |= {
            "gate_sharpe_diff": naive.difference,
            "gate_sharpe_diff_ci_low": naive.ci_low,
            "gate_sharpe_diff_ci_high": naive.ci_high,
            "gate_p_value": naive.p_value,
            "gate_return_correlation": naive.correlation,
            "gate_block_length": naive.block_length,
            "gate_n_bars": float(naive.n),
        }
    else:
        more_checks, more_metrics = _against_champion(inputs, settings)
        checks |= more_checks
        metrics |= more_metrics
    waived = "" if edge else "not part of paper trading's test"
    if not settings.gate_require_edge:
        waived = "not required: SKIPPY_GATE_REQUIRE_EDGE=false"
    if waived:
        for name, c in checks.items():
            if name.startswith("edge_") and not c["passed"]:
                c["passed"], c["note"] = True, waived
    failed = [name for name, c in checks.items() if not c["passed"]]
    against = (
        f"champion v{inputs.champion_version} ({inputs.comparison.replace('_', ' ')}{inputs.comparison_note})"
        if inputs.champion is not None
        else "naive baselines (no champion yet)"
    )
    parts = []
    for name, c in checks.items():
        ci = f" [{c['ci'][0]:+.3f}, {c['ci'][1]:+.3f}]" if "ci" in c else ""
        base = f" vs {c['baseline']:.4f}" if "baseline" in c else ""
        p = f", p {_p_fmt(c['p_value'])}" if c.get("p_value") is not None else ""
        note = f" ({c['note']})" if "note" in c else ""
        parts.append(f"{name} {'ok' if c['passed'] else 'FAILED'}: {c['value']:+.4f}{base}{ci}{p}{note}")
    verdict = "passed" if not failed else "rejected"
    reason = f"{verdict} against {against}: " + "; ".join(parts)
    metrics["gate_passed"] = float(not failed)
    return ValidationDecision(
        passed=not failed,
        reason=reason,
        champion_version=inputs.champion_version,
        comparison=inputs.comparison,
        metrics={k: float(v) for k, v in metrics.items()},
        checks=checks,
    )
