"""The statistics behind deploy decisions (`mlops.stats`): the paired block bootstrap and the sample size
of a paired Sharpe test, on seeded series whose right answer is known."""

from __future__ import annotations

import numpy as np
import pytest

from mlops.agents.metrics import net_returns
from mlops.stats import bars_for_power, paired_mean_test, paired_sharpe_test
from tests.factories import GATE_BARS, foresight, market_moves


def test_paired_sharpe_test_sees_a_real_difference_and_not_an_absent_one() -> None:
    moves = market_moves(1)
    good = net_returns(foresight(moves, 0.2, 2), moves, 1.0)
    same = paired_sharpe_test(good, good.copy(), 252, replications=500)
    assert same.difference == 0 and same.p_value > 0.5
    better = paired_sharpe_test(good, moves, 252, replications=500)
    assert better.difference > 1 and better.p_value < 0.01 and better.ci_low > 0
    worse = paired_sharpe_test(moves, good, 252, replications=500)
    assert worse.p_value > 0.95 and worse.ci_high < 0


def test_paired_test_is_deterministic_and_refuses_bad_input() -> None:
    a, b = market_moves(3), market_moves(4)
    assert paired_mean_test(a, b, name="m", seed=5) == paired_mean_test(a, b, name="m", seed=5)
    with pytest.raises(ValueError, match="equal length"):
        paired_mean_test(a, b[:-1], name="m")
    with pytest.raises(ValueError, match="NaN or inf"):
        paired_mean_test(np.where(np.arange(GATE_BARS) == 3, np.nan, a), b, name="m")
    with pytest.raises(ValueError, match="at least 10 bars"):
        paired_mean_test(a[:5], b[:5], name="m")


def test_the_paired_bootstrap_controls_its_false_positive_rate() -> None:
    """Equal true Sharpe (two independent noisy strategies): p < 0.05 in about 5 % of 200 trials."""
    rng = np.random.default_rng(11)
    hits = 0
    for k in range(200):
        a, b = rng.normal(0.0005, 0.01, (2, 300))
        hits += paired_sharpe_test(a, b, 252, replications=300, seed=k).p_value < 0.05
    assert hits / 200 < 0.11  # binomial(200, 0.05): P(> 0.11) < 1e-4


def test_paper_bars_needed_for_power_one_half() -> None:
    # 2(1 − ρ)·252·(z₀.₉₅ / effect)²: the issue's ≈85/330 are the same formula at α ≈ 0.1.
    assert bars_for_power(1.0, 252, 0.9, 0.05) == 137
    assert bars_for_power(0.5, 252, 0.9, 0.05) == 546
    assert bars_for_power(1.0, 252, 0.9, 0.10) == 83
    assert bars_for_power(1.0, 252, 0.0, 0.05) > bars_for_power(1.0, 252, 0.8, 0.05)
    assert bars_for_power(1.0, 252, 0.9, 0.5) == 10  # α ≥ 0.5: any lead passes, the minimum sample
    with pytest.raises(ValueError, match="min_effect"):
        bars_for_power(0.0, 252, 0.9, 0.05)
