"""Drift verdicts as tests: the stored bootstrap nulls, Benjamini–Hochberg, the feature rule and its
summary, prediction drift's normalised W1, the two-sample Sharpe test, and baselines stored before
any of this."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from scipy.stats import norm
from statsmodels.stats.multitest import multipletests

from drift.baseline import compute_baseline
from drift.bins import bin_shares, decile_edges
from drift.feature_test import (
    UNTESTED_NOTE,
    FeatureVerdict,
    benjamini_hochberg,
    deciding_feature,
    feature_verdicts,
    summary_details,
)
from drift.null import Null, feature_nulls, nearest_window
from drift.prediction_test import prediction_verdict
from drift.registry import FEATURE_DRIFT, PREDICTION_DRIFT
from drift.sharpe import SharpeMoments, performance_status, sharpe_degradation, sharpe_difference_p_value
from drift.wasserstein import wasserstein_1
from mlops.data.features import FEATURE_NAMES, compute_features
from mlops.data.synthetic import generate_bars
from tests.conftest import make_settings

DEFAULTS = make_settings(Path("unused"))  # the configured thresholds; nothing here touches the home
FEATURE_RULE = FEATURE_DRIFT.rule(DEFAULTS)
PREDICTION_RULE = PREDICTION_DRIFT.rule(DEFAULTS)


def test_benjamini_hochberg_by_hand_and_against_statsmodels() -> None:
    # sorted 0.01, 0.03, 0.04, 0.2 → 0.01·4/1, min(0.03·4/2, 0.04·4/3), 0.04·4/3, 0.2·4/4
    assert benjamini_hochberg([0.01, 0.04, 0.03, 0.2]) == pytest.approx([0.04, 0.04 * 4 / 3, 0.04 * 4 / 3, 0.2])
    p = list(np.random.default_rng(0).random(13) ** 3)
    assert benjamini_hochberg(p) == pytest.approx(list(multipletests(p, method="fdr_bh")[1]))
    assert benjamini_hochberg([]) == []


def test_null_p_values_are_exact_in_the_tail_and_never_zero() -> None:
    null = Null.from_draws(250, np.arange(1000.0))  # draws 0..999
    assert null.p_value(999.5) == pytest.approx(1 / 1001)  # above every draw: the +1 correction
    assert null.p_value(990.0) == pytest.approx(11 / 1001)  # 990..999 are ≥ 990: exact in the tail
    assert null.p_value(500.0) == pytest.approx(501 / 1001, abs=2 / 1001)  # interpolated in the body
    assert null.percentile(-1.0) == 0.0 and null.percentile(2000.0) == 100.0
    stored = json.loads(json.dumps(null.to_payload()))
    assert Null.from_payload(250, stored).p_value(995.0) == null.p_value(995.0)
    assert len(stored["tail"]) == 100 and len(stored["percentiles"]) == 101
    with pytest.raises(ValueError, match="finite draws"):
        Null.from_draws(250, np.array([np.nan]))
    assert nearest_window([60, 250, 500], 300) == 250 and nearest_window([60, 250, 500], 400) == 500


def _ar1(rng: np.random.Generator, n: int, phi: float) -> np.ndarray:
    x = np.empty(n)
    x[0] = rng.normal()
    shocks = rng.normal(size=n) * math.sqrt(1 - phi**2)
    for t in range(1, n):
        x[t] = phi * x[t - 1] + shocks[t]
    return x


def test_the_null_p_value_is_roughly_uniform_with_no_change() -> None:
    """A persistent series (AR(1), φ = 0.9): the training window's null judges the next window of the
    same process. Without the block bootstrap (or with a reference taken as exact) small p-values come
    far too often; here their share is near nominal."""
    rng = np.random.default_rng(11)
    p_values = []
    for _ in range(120):
        series = _ar1(rng, 1100, 0.9)
        train, window = series[:1000, None], series[1000:]
        edges = [decile_edges(train[:, 0])]
        shares = [bin_shares(train[:, 0], edges[0])]
        null = feature_nulls(
            train, edges, shares, windows=[100], draws=400, block_share=1.0, seed=int(rng.integers(1e9))
        )
        kl = float(
            np.sum(
                np.maximum(shares[0], 1e-6)
                * np.log(np.maximum(shares[0], 1e-6) / np.maximum(bin_shares(window, edges[0]), 1e-6))
            )
        )
        p_values.append(null[100][1][0].p_value(kl))
    p = np.asarray(p_values)
    assert 0.02 <= np.mean(p < 0.2) <= 0.36  # nominal 0.2
    assert np.mean(p < 0.05) <= 0.12  # nominal 0.05
    assert 0.35 <= np.median(p) <= 0.65


@pytest.fixture(scope="module")
def calm() -> tuple[np.ndarray, dict]:
    features = compute_features(generate_bars(2060, seed=3, regime="normal")).to_numpy()
    predictions = 1 / (1 + np.exp(-(np.random.default_rng(0).normal(size=len(features)) - 2.2)))
    baseline = compute_baseline(
        features,
        list(FEATURE_NAMES),
        predictions,
        baseline_sharpe=1.0,
        periods_per_year=252,
        windows=(250,),
        draws=2000,
        prediction_draws=1000,
    )
    return features, baseline


def test_a_stormier_regime_is_critical_and_decided_by_a_volatility_feature(calm: tuple[np.ndarray, dict]) -> None:
    _, baseline = calm
    storm = compute_features(generate_bars(310, seed=9, regime="volatile"))
    verdicts = feature_verdicts(baseline, {n: storm[n].to_numpy() for n in FEATURE_NAMES}, FEATURE_RULE)
    by_name = {v.feature: v for v in verdicts}
    assert by_name["vol_5"].status == "critical" and by_name["vol_5"].adjusted_p < 0.005
    summary = summary_details(verdicts)
    assert summary["deciding_feature"] in {"vol_5", "vol_20", "vol_60", "hl_range"}
    top = by_name[summary["deciding_feature"]]
    assert summary["deciding_kl"] == top.kl and summary["deciding_adjusted_p"] == top.adjusted_p
    assert top.null_percentile == pytest.approx(100.0, abs=0.1) and not top.approximate
    # The next stretch of the same calm process is not critical.
    same = compute_features(generate_bars(2370, seed=3, regime="normal")).iloc[2000:2250]
    quiet = feature_verdicts(baseline, {n: same[n].to_numpy() for n in FEATURE_NAMES}, FEATURE_RULE)
    assert all(v.p_value is not None and v.adjusted_p is not None for v in quiet)
    assert [v.adjusted_p for v in quiet] == pytest.approx(benjamini_hochberg([v.p_value for v in quiet]))


def test_another_window_length_uses_the_nearest_null_and_says_approximate(calm: tuple[np.ndarray, dict]) -> None:
    features, baseline = calm
    window = {n: features[-300:, j] for j, n in enumerate(FEATURE_NAMES)}
    verdicts = feature_verdicts(baseline, window, FEATURE_RULE)
    assert all(v.null_window == 250 and v.approximate for v in verdicts)


def _verdict(name: str, kl: float, status: str, adjusted: float | None) -> FeatureVerdict:
    return FeatureVerdict(name, kl, 0.0, status, adjusted, adjusted, 50.0, 250, False, 0)


def test_the_summary_names_the_feature_that_decides_the_status() -> None:
    verdicts = [
        _verdict("vol_60", 3.0, "ok", 0.4),  # the largest KL, but ordinary for this feature
        _verdict("ret_1", 0.2, "critical", 0.003),
        _verdict("vol_5", 0.5, "critical", 0.001),
        _verdict("gap", 0.07, "warning", 0.0001),
    ]
    assert deciding_feature(verdicts).feature == "vol_5"  # worst status first, then most significant
    summary = summary_details(verdicts)
    assert summary["deciding_kl"] == 0.5 and summary["max_kl_feature"] == "vol_60"
    assert summary["critical"] == ["ret_1", "vol_5"] and "gap" in summary["drifted"]
    with pytest.raises(ValueError, match="no feature verdicts"):
        deciding_feature([])


def test_baselines_without_a_null_still_give_a_verdict_and_say_it_is_untested() -> None:
    rng = np.random.default_rng(4)
    x = rng.normal(size=(600, 2))
    old = compute_baseline(
        x, ["a", "b"], rng.random(600), baseline_sharpe=1.0, periods_per_year=252, draws=0, prediction_draws=0
    )
    assert "null" not in old and "baseline_returns" not in old
    verdicts = feature_verdicts(old, {"a": rng.normal(2.0, 1.0, 250), "b": rng.normal(size=250)}, FEATURE_RULE)
    assert verdicts[0].status == "critical" and verdicts[0].p_value is None
    assert verdicts[0].details()["note"] == UNTESTED_NOTE and verdicts[0].details()["tested"] is False
    assert summary_details(verdicts)["note"] == UNTESTED_NOTE
    pred = prediction_verdict(old, rng.random(250), PREDICTION_RULE)
    assert pred.p_value is None and "thresholds only" in pred.details()["note"]
    legacy = old | {"features": {k: v | {"kl_noise_floor": {"250": 0.1}} for k, v in old["features"].items()}}
    assert feature_verdicts(legacy, {"a": x[:250, 0], "b": x[:250, 1]}, FEATURE_RULE)[0].p_value is None


def test_prediction_drift_is_w1_over_the_reference_sd_with_a_p_value(calm: tuple[np.ndarray, dict]) -> None:
    _, baseline = calm
    reference = np.asarray(baseline["predictions_sorted"])
    rng = np.random.default_rng(5)
    same = 1 / (1 + np.exp(-(rng.normal(size=250) - 2.2)))
    higher = 1 / (1 + np.exp(-(rng.normal(size=250) - 1.8)))  # mean ≈ +35 %
    base = prediction_verdict(baseline, same, PREDICTION_RULE)
    risen = prediction_verdict(baseline, higher, PREDICTION_RULE)
    assert risen.raw_w1 == pytest.approx(wasserstein_1(reference, higher))
    assert risen.value == pytest.approx(risen.raw_w1 / np.std(reference))
    assert risen.raw_w1 < 0.1 < risen.value  # raw W1 would have missed it
    assert risen.status == "critical" and risen.p_value is not None and risen.p_value < 0.01
    assert base.status == "ok" and base.p_value is not None and base.p_value > 0.01


def test_two_sample_sharpe_test_counts_both_estimates() -> None:
    rng = np.random.default_rng(8)
    held_out = rng.normal(0.001, 0.01, 375)
    moments = SharpeMoments.of(held_out)
    sr = held_out.mean() / held_out.std(ddof=1)
    assert moments.sharpe == pytest.approx(sr) and moments.n == 375
    current = rng.normal(-0.001, 0.01, 250)  # clearly worse
    z, p = sharpe_difference_p_value(moments, SharpeMoments.of(current))
    assert p == pytest.approx(1 - norm.cdf(z))
    c = SharpeMoments.of(current)
    assert z == pytest.approx((moments.sharpe - c.sharpe) / math.sqrt(moments.variance() + c.variance()))
    one = sharpe_degradation(current, sr * math.sqrt(252), 252)
    two = sharpe_degradation(current, sr * math.sqrt(252), 252, baseline_moments=moments)
    assert two.two_sample and not one.two_sample and two.p_value > one.p_value  # the baseline is uncertain too
    assert performance_status(two, warning=0.02, critical=0.05, warning_p=0.2, critical_p=0.05) in ("ok", "warning")
    # With no change, the two-sample test's false alarms stay near its level.
    alarms = 0
    for _ in range(400):
        b = SharpeMoments.of(rng.normal(0.0006, 0.01, 375))
        alarms += sharpe_difference_p_value(b, SharpeMoments.of(rng.normal(0.0006, 0.01, 250)))[1] < 0.05
    assert alarms / 400 <= 0.09
