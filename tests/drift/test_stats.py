"""Drift statistics against independent computations: scipy for Wasserstein and entropy, small
hand-computed cases for KL, PSI and Sharpe degradation, and the edge cases. KL and PSI are tested
through `kl_and_psi`, the function a check computes them with."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from scipy import stats

from drift.baseline import compute_baseline
from drift.bins import bin_shares, decile_edges, floored, kl_and_psi
from drift.sharpe import annualised_sharpe, probabilistic_sharpe_ratio, relative_degradation, sharpe_degradation
from drift.status import classify, worst
from drift.wasserstein import wasserstein_1


def kl(reference_shares: np.ndarray, edges: np.ndarray, current: np.ndarray) -> float:
    return kl_and_psi(reference_shares, edges, current)[0]


@pytest.mark.parametrize(("n", "m"), [(1, 1), (3, 7), (100, 37), (5000, 1234), (20000, 20000)])
def test_wasserstein_matches_scipy_for_unequal_sizes(n: int, m: int) -> None:
    rng = np.random.default_rng(n + m)
    u, v = rng.beta(2, 5, n), rng.beta(3, 3, m)
    assert wasserstein_1(np.sort(u), v) == pytest.approx(stats.wasserstein_distance(u, v), abs=1e-9)


def test_wasserstein_ignores_nan_and_is_zero_for_identical_samples() -> None:
    u = np.sort(np.random.default_rng(0).random(50))
    assert wasserstein_1(u, u.copy()) == 0.0
    assert wasserstein_1(u, np.concatenate([u, [np.nan]])) == pytest.approx(0.0)
    assert wasserstein_1(np.array([0.0]), np.array([0.25])) == pytest.approx(0.25)


def test_kl_on_reference_deciles_by_hand() -> None:
    edges = np.array([1.0, 2.0])  # 3 bins: (-inf, 1], (1, 2], (2, inf)
    reference = np.array([0.5, 0.25, 0.25])
    current = np.array([0.0, 0.5, 1.5, 1.5, 3.0, 3.0, 3.0, 3.0])  # shares 2/8, 2/8, 4/8
    q = np.array([0.25, 0.25, 0.5])
    value, psi = kl_and_psi(reference, edges, current)
    assert value == pytest.approx(float(np.sum(reference * np.log(reference / q))))
    assert value == pytest.approx(stats.entropy(reference, q))
    assert psi == pytest.approx(float(np.sum((q - reference) * np.log(q / reference))))


def test_empty_bins_are_floored_not_infinite() -> None:
    edges = np.array([1.0, 2.0])
    current = np.array([0.0, 0.5])  # everything in the first bin
    value = kl(np.array([0.2, 0.4, 0.4]), edges, current)
    q = floored(np.array([1.0, 0.0, 0.0]))
    assert math.isfinite(value) and value == pytest.approx(stats.entropy([0.2, 0.4, 0.4], q))
    assert q.sum() == pytest.approx(1.0) and q.min() > 0


def test_deciles_and_constant_or_nan_features() -> None:
    x = np.arange(1000.0)
    edges = decile_edges(x)
    assert len(edges) == 9 and np.allclose(bin_shares(x, edges), 0.1, atol=0.002)
    constant = np.full(500, 3.0)
    c_edges = decile_edges(constant)
    assert bin_shares(constant, c_edges)[0] == 1.0  # all in one bin, no division by zero
    assert kl(bin_shares(constant, c_edges), c_edges, constant) == pytest.approx(0.0, abs=1e-9)
    with_nan = np.concatenate([x, [np.nan, np.inf]])
    np.testing.assert_allclose(bin_shares(with_nan, edges), bin_shares(x, edges))
    with pytest.raises(ValueError, match="no finite values"):
        bin_shares(np.array([np.nan]), edges)


def test_no_drift_is_near_zero_and_a_shift_is_large() -> None:
    rng = np.random.default_rng(7)
    ref = rng.normal(size=100_000)
    edges = decile_edges(ref)
    shares = bin_shares(ref, edges)
    assert kl(shares, edges, rng.normal(size=100_000)) < 0.001
    assert kl(shares, edges, rng.normal(1.0, 2.0, size=100_000)) > 0.3


def test_sharpe_degradation_by_hand_and_edge_cases() -> None:
    assert relative_degradation(2.0, 1.9) == (pytest.approx(0.05), True)
    assert relative_degradation(-1.0, -2.0) == (pytest.approx(1.0), True)  # negative baseline: |baseline|
    assert relative_degradation(0.0, -0.3) == (pytest.approx(0.3), False)  # zero baseline: absolute
    assert relative_degradation(1.0, 1.5)[0] == pytest.approx(-0.5)  # improvement is negative degradation
    r = np.array([0.01, -0.02, 0.015, 0.003, -0.004])
    assert annualised_sharpe(r, 252) == pytest.approx(r.mean() / r.std(ddof=1) * math.sqrt(252))
    assert annualised_sharpe(np.zeros(10), 252) == 0.0


def test_probabilistic_sharpe_ratio_matches_the_formula_and_needs_length() -> None:
    rng = np.random.default_rng(3)
    r = rng.normal(0.001, 0.01, 500)
    sr = r.mean() / r.std(ddof=1)
    g3, g4 = stats.skew(r), stats.kurtosis(r, fisher=False)
    expected = stats.norm.cdf((sr - 0.0) * math.sqrt(499) / math.sqrt(1 - g3 * sr + (g4 - 1) / 4 * sr**2))
    assert probabilistic_sharpe_ratio(r, 0.0) == pytest.approx(expected)
    # The same 50% Sharpe drop is significant on 5,000 bars and not on 60.
    baseline = 2.0
    long = rng.normal(0.001 * 0.5, 0.01 * 1.0, 5000)
    short = long[:60]
    assert sharpe_degradation(long, baseline, 252).significant
    assert not sharpe_degradation(short, baseline, 252).significant


def test_classification_and_the_worst_status() -> None:
    assert [classify(v, 0.05, 0.1) for v in (0.01, 0.05, 0.07, 0.1, 0.2, None, float("nan"))] == [
        "ok",
        "ok",
        "warning",
        "warning",
        "critical",
        "insufficient",
        "insufficient",
    ]
    assert worst(["ok", "warning", "insufficient"]) == "warning" and worst([]) == "ok"
    assert worst(["insufficient", "ok"]) == "insufficient" and worst(["warning", "critical", "ok"]) == "critical"


def test_baseline_holds_what_a_check_needs() -> None:
    rng = np.random.default_rng(1)
    x = rng.normal(size=(3000, 2))
    b = compute_baseline(
        x, ["a", "b"], rng.random(3000), baseline_sharpe=1.2, periods_per_year=252, baseline_returns=x[:400, 0] / 100
    )
    assert len(b["features"]["a"]["edges"]) == 9 and sum(b["features"]["a"]["shares"]) == pytest.approx(1.0)
    assert b["predictions_sorted"] == sorted(b["predictions_sorted"]) and len(b["sample"]["a"]) == 1000
    assert b["baseline_returns"]["n"] == 400
    windows = b["null"]["windows"]
    assert sorted(windows, key=int) == ["60", "250", "500"]  # the default lengths a null is stored for
    assert windows["250"]["block_length"] >= 250  # blocks of at least the window's length
    assert set(windows["250"]["features"]) == {"a", "b"} and windows["250"]["features"]["a"]["draws"] == 10_000
    assert "prediction" in windows["250"]
    size = len(json.dumps(b["null"]))
    assert size < 40_000, size  # compact: percentiles + tail, not the draws
    with pytest.raises(ValueError, match="predictions for"):
        compute_baseline(x, ["a", "b"], rng.random(10), baseline_sharpe=1.0, periods_per_year=252)
