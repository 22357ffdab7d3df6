"""The Deflated Sharpe Ratio of a sweep's winner: the published worked example, agreement with the
drift package's independent PSR, and its error rate under no skill measured by simulation."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from drift.sharpe import probabilistic_sharpe_ratio as psr_of_returns
from sweeps.selection import (
    SelectionReport,
    assess_selection,
    deflated_sharpe_ratio,
    expected_max_sharpe,
    probabilistic_sharpe_ratio,
)


def test_the_papers_worked_example() -> None:
    """Bailey & López de Prado (2014), §"A numerical example": annualised SR 2.5 on 1,250 daily
    returns, best of N = 100 trials whose annualised Sharpe variance is 1/2, skew −3, kurtosis 10:
    SR* = 0.1132 per day and DSR = 0.9004. By hand: z = (1−γ)·Φ⁻¹(0.99) + γ·Φ⁻¹(1 − 1/(100e))
    = 0.42278·2.32635 + 0.57722·2.68009 = 2.53053; SR* = √(0.5/250)·z = 0.11317."""
    per_day = 2.5 / math.sqrt(250)
    benchmark = expected_max_sharpe(100, 0.5 / 250)
    assert benchmark == pytest.approx(0.11317, abs=5e-5)
    assert probabilistic_sharpe_ratio(per_day, benchmark, 1250, skew=-3.0, kurtosis=10.0) == pytest.approx(
        0.9004, abs=5e-4
    )
    # Normal returns give the same Sharpe more credit than negatively skewed, fat-tailed ones.
    assert probabilistic_sharpe_ratio(per_day, benchmark, 1250) > 0.9004


def test_expected_maximum_matches_simulated_maxima_of_skill_less_trials() -> None:
    rng = np.random.default_rng(7)
    for n in (10, 100):
        simulated = rng.normal(0.0, 0.05, size=(20_000, n)).max(axis=1).mean()
        assert expected_max_sharpe(n, 0.05**2) == pytest.approx(simulated, rel=0.03)


def test_psr_agrees_with_the_drift_packages_psr_computed_from_returns() -> None:
    returns = stats.t.rvs(df=4, size=400, random_state=np.random.default_rng(3)) * 0.01 + 0.0008
    sharpe = float(np.mean(returns) / np.std(returns, ddof=1))
    skew, kurt = float(stats.skew(returns)), float(stats.kurtosis(returns, fisher=False))
    for benchmark in (0.0, 0.03, 0.1):
        assert probabilistic_sharpe_ratio(sharpe, benchmark, 400, skew, kurt) == pytest.approx(
            psr_of_returns(returns, benchmark), abs=1e-12
        )


def _simulated_sweeps(
    rng: np.random.Generator, sweeps: int, trials: int, bars: int, correlation: float, skill: float = 0.0
) -> tuple[float, float]:
    """Share of sweeps whose winner is called significant (1 − p < 0.05), by the DSR and by a PSR
    against zero that ignores the selection. Trials' returns are fat-tailed (Student t, 5 df) and
    correlated like neighbouring grid points; `skill` is every trial's true per-bar Sharpe."""
    deflated = naive = 0
    scale = math.sqrt(3 / 5)  # unit variance for t with 5 df
    for _ in range(sweeps):
        common = rng.standard_t(5, size=(bars, 1)) * scale
        own = rng.standard_t(5, size=(bars, trials)) * scale
        returns = math.sqrt(correlation) * common + math.sqrt(1 - correlation) * own
        returns += skill
        sharpes = returns.mean(axis=0) / returns.std(axis=0, ddof=1)
        best = int(np.argmax(sharpes))
        chosen = returns[:, best]
        result = deflated_sharpe_ratio(
            sharpes[best], sharpes, bars, float(stats.skew(chosen)), float(stats.kurtosis(chosen, fisher=False))
        )
        deflated += result.dsr > 0.95
        naive += result.psr_vs_zero > 0.95
    return deflated / sweeps, naive / sweeps


@pytest.mark.parametrize("correlation", [0.0, 0.9])
def test_under_no_skill_the_winner_is_rarely_called_significant(correlation: float) -> None:
    """H0 true for every trial: the DSR's false-significance rate stays at or below 5 % (plus
    simulation noise), while the PSR against zero, blind to the selection, is fooled far more often
    when the trials are independent (the bias the DSR exists to remove)."""
    rng = np.random.default_rng(2014 + int(correlation * 10))
    deflated, naive = _simulated_sweeps(rng, sweeps=600, trials=12, bars=250, correlation=correlation)
    assert deflated <= 0.05 + 2 * math.sqrt(0.05 * 0.95 / 600)
    if correlation == 0.0:
        assert naive > 0.25 and naive > 5 * max(deflated, 0.01)


def test_a_real_edge_shared_by_the_grid_is_found_significant_most_of_the_time() -> None:
    """The same simulation where every grid point has a true annualised Sharpe of ≈ 3.2 (0.2 per bar),
    the trials correlated at 0.9: the spread across trials stays small, so little is deflated."""
    rng = np.random.default_rng(11)
    deflated, _ = _simulated_sweeps(rng, sweeps=300, trials=12, bars=250, correlation=0.9, skill=0.2)
    assert deflated > 0.8


def _trial(sharpe: float, **extra: float) -> dict[str, float]:
    return {"sharpe_ratio": sharpe, "periods_per_year": 252.0, "n_samples": 300.0, **extra}


def test_assess_selection_deannualises_and_reports_in_annual_units() -> None:
    trials = [_trial(1.8, returns_skew=-0.5, returns_kurtosis=6.0), _trial(0.4), _trial(-0.2), _trial(0.9)]
    report = assess_selection(trials[0], trials, objective="sharpe_ratio", best_trial_number=3)
    per_bar = [t["sharpe_ratio"] / math.sqrt(252) for t in trials]
    direct = deflated_sharpe_ratio(per_bar[0], per_bar, 300, -0.5, 6.0)
    assert report.dsr == pytest.approx(direct.dsr) and report.psr_vs_zero == pytest.approx(direct.psr_vs_zero)
    assert report.sharpe_variance == pytest.approx(np.var([1.8, 0.4, -0.2, 0.9], ddof=1))
    assert report.expected_max_sharpe == pytest.approx(direct.expected_max_sharpe * math.sqrt(252))
    assert report.best_sharpe == 1.8 and report.n_trials == 4 and report.best_trial_number == 3
    assert report.moments == "measured" and report.notes == []
    assert report.p_value == pytest.approx(1 - direct.dsr)
    assert report.significant is (report.p_value < 0.05)
    assert "best of 4 trials" in report.verdict and "1.80" in report.verdict


def test_assess_selection_without_moments_assumes_normal_returns_and_says_so() -> None:
    trials = [_trial(2.5), _trial(0.1), _trial(0.3)]
    report = assess_selection(trials[0], trials, objective="val_loss")
    assert (report.returns_skew, report.returns_kurtosis) == (0.0, 3.0)
    assert report.moments is not None and report.moments.startswith("assumed normal")
    assert any("ranked by val_loss" in note for note in report.notes)
    assert any("assumed normal" in note for note in report.notes)


def test_assess_selection_refuses_politely_when_it_cannot_judge() -> None:
    one = assess_selection(_trial(1.0), [_trial(1.0)], objective="sharpe_ratio")
    assert one.dsr is None and one.verdict.startswith("no DSR: 1 complete trial")
    missing = assess_selection(_trial(1.0), [_trial(1.0), {"sharpe_ratio": 0.5}], objective="sharpe_ratio")
    assert missing.dsr is None and "periods_per_year" in missing.verdict
    no_n = {"sharpe_ratio": 1.0, "periods_per_year": 252.0}
    assert "n_samples" in assess_selection(no_n, [no_n, _trial(0.2)], objective="sharpe_ratio").verdict


def test_bad_inputs_are_named() -> None:
    with pytest.raises(ValueError, match="at least 2 trials"):
        expected_max_sharpe(1, 0.1)
    with pytest.raises(ValueError, match="sharpe_variance"):
        expected_max_sharpe(5, -0.1)
    with pytest.raises(ValueError, match="n_samples=1"):
        probabilistic_sharpe_ratio(0.1, 0.0, 1)
    with pytest.raises(ValueError, match="kurtosis must be finite"):
        probabilistic_sharpe_ratio(0.1, 0.0, 100, kurtosis=math.nan)
    with pytest.raises(ValueError, match="NaN or infinite"):
        deflated_sharpe_ratio(0.1, [0.1, math.inf], 100)
    with pytest.raises(ValueError, match="alpha"):
        assess_selection(_trial(1.0), [_trial(1.0)], objective="sharpe_ratio", alpha=1.5)


def test_a_stored_report_round_trips_and_tolerates_other_versions_keys() -> None:
    trials = [_trial(1.2), _trial(0.3)]
    report = assess_selection(trials[0], trials, objective="sharpe_ratio")
    assert SelectionReport.from_json(report.to_json() | {"written_by_a_newer_version": 1}) == report
