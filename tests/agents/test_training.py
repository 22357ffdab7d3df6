"""The numpy agents: deterministic training, early stopping, divergence, metrics by hand."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mlops.agents.metrics import (
    classification_metrics,
    direction_metrics,
    periods_per_year,
    probability_metrics,
    return_moments,
    sharpe_ratio,
    trading_metrics,
)
from mlops.agents.network import forward, train_network
from mlops.agents.specs import SPECS, get_spec
from mlops.agents.training import build_dataset, train_agent
from mlops.errors import InvalidRequestError, TrainingDivergedError, UnknownAgentError
from tests.conftest import bars_frame, real_csv


def _separable(n: int = 600, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, 3))
    y = (x[:, 0] - 0.5 * x[:, 1] + 0.3 * rng.standard_normal(n) > 0).astype(float)
    return x, y


@pytest.mark.parametrize("hidden", [0, 8])
def test_network_learns_and_is_deterministic(hidden: int) -> None:
    x, y = _separable()
    kwargs = dict(learning_rate=0.05, batch_size=32, epochs=40, l2=0.0, hidden_units=hidden, seed=1, patience=5)
    a = train_network(x[:400], y[:400], x[400:], y[400:], **kwargs)  # type: ignore[arg-type]
    b = train_network(x[:400], y[:400], x[400:], y[400:], **kwargs)  # type: ignore[arg-type]
    for key in a.params:
        np.testing.assert_array_equal(a.params[key], b.params[key])
    accuracy = np.mean((forward(a.params, x[400:]) > 0.5) == y[400:])
    assert accuracy > 0.85
    assert a.val_loss[a.best_epoch - 1] == min(a.val_loss)


def test_early_stopping_keeps_the_best_epoch() -> None:
    x, y = _separable(300)
    rng = np.random.default_rng(5)
    noise_y = rng.integers(0, 2, 100).astype(float)  # validation labels unrelated to x: overfits fast
    r = train_network(
        x[:200],
        y[:200],
        x[200:],
        noise_y,
        learning_rate=0.05,
        batch_size=16,
        epochs=500,
        l2=0.0,
        hidden_units=16,
        seed=0,
        patience=5,
    )
    assert r.stopped_early and r.epochs_run < 500
    assert r.epochs_run - r.best_epoch == 5


def test_a_learning_rate_that_diverges_raises_a_clear_error() -> None:
    x, y = _separable()
    with pytest.raises(TrainingDivergedError, match=r"learning_rate=1000.0 is probably too high"):
        train_network(
            x, y, x, y, learning_rate=1000.0, batch_size=32, epochs=20, l2=0.0, hidden_units=8, seed=0, patience=5
        )


def test_classification_metrics_by_hand() -> None:
    y = np.array([1, 1, 0, 0, 1.0])
    p = np.array([0.9, 0.4, 0.6, 0.1, 0.8])
    m = classification_metrics(y, p, 0.5)
    assert (m["tp"], m["fp"], m["fn"], m["tn"]) == (2, 1, 1, 1)
    assert m["accuracy"] == pytest.approx(0.6)
    assert m["precision"] == pytest.approx(2 / 3) and m["recall"] == pytest.approx(2 / 3)
    expected_loss = -np.mean(np.log([0.9, 0.4, 0.4, 0.9, 0.8]))
    assert m["log_loss"] == pytest.approx(expected_loss)


def test_trading_metrics_by_hand() -> None:
    positions = np.array([1.0, 1.0, -1.0, 0.0])
    returns = np.array([0.01, -0.02, -0.01, 0.03])
    m = trading_metrics(positions, returns, cost_bps=10, ppy=252)
    net = np.array([0.01 - 0.001, -0.02, 0.01 - 0.002, 0.0 - 0.001])
    assert m["sharpe_ratio"] == pytest.approx(net.mean() / net.std(ddof=1) * np.sqrt(252))
    assert m["sharpe_ratio_10bps"] == pytest.approx(m["sharpe_ratio"])
    gross = positions * returns
    assert m["sharpe_ratio_0bps"] == pytest.approx(gross.mean() / gross.std(ddof=1) * np.sqrt(252))
    at5 = gross - np.array([1, 0, 2, 1]) * 5 / 1e4
    assert m["sharpe_ratio_5bps"] == pytest.approx(at5.mean() / at5.std(ddof=1) * np.sqrt(252))
    equity = np.cumprod(1 + net)
    # equity: 1.009, 0.98882, 0.99672, 0.99572 → deepest fall from the 1.009 peak is at 0.98882
    assert m["max_drawdown"] == pytest.approx(1 - equity[1] / equity[0])
    assert m["turnover"] == pytest.approx((1 + 0 + 2 + 1) / 4)


def test_the_risk_free_rate_is_subtracted_per_period() -> None:
    rng = np.random.default_rng(0)
    r = rng.normal(0.0005, 0.01, 500)
    per_bar = 1.04 ** (1 / 252) - 1
    expected = (r.mean() - per_bar) / r.std(ddof=1) * np.sqrt(252)
    assert sharpe_ratio(r, 252, risk_free_rate=0.04) == pytest.approx(expected)
    assert sharpe_ratio(r, 252, risk_free_rate=0.04) < sharpe_ratio(r, 252)


def test_three_class_confusion_matrix_coverage_and_hit_rate_by_hand() -> None:
    positions = np.array([1.0, 1.0, -1.0, 0.0, 0.0, -1.0, 1.0])
    returns = np.array([0.01, -0.02, -0.01, 0.03, -0.01, 0.02, 0.0])
    y = (returns > 0).astype(float)
    m = direction_metrics(positions, y, returns, majority_up=True)
    assert (m["cm_long_up"], m["cm_long_down"]) == (1, 2)  # the 0.0 return is not up
    assert (m["cm_short_up"], m["cm_short_down"]) == (1, 1)
    assert (m["cm_flat_up"], m["cm_flat_down"]) == (1, 1)
    assert m["coverage"] == pytest.approx(5 / 7)
    assert m["hit_rate"] == pytest.approx(2 / 5)  # long/+0.01 and short/−0.01
    assert m["majority_hit_rate"] == pytest.approx(2 / 5)  # always long on the 5 traded bars: +0.01, +0.02


def test_probability_metrics_match_their_definitions() -> None:
    rng = np.random.default_rng(3)
    y = (rng.random(400) < 0.1).astype(float)
    p = np.clip(0.1 + 0.1 * y + rng.normal(0, 0.05, 400), 0.01, 0.99)
    m = probability_metrics(y, p, base_rate=0.1)
    pos, neg = p[y == 1], p[y == 0]
    pairs = (pos[:, None] > neg[None, :]).mean() + 0.5 * (pos[:, None] == neg[None, :]).mean()
    assert m["auc"] == pytest.approx(pairs)
    assert m["brier"] == pytest.approx(np.mean((p - y) ** 2))
    assert m["brier_skill"] == pytest.approx(1 - np.mean((p - y) ** 2) / np.mean((0.1 - y) ** 2))
    assert m["auc"] > 0.8 and m["brier_skill"] > 0
    constant = probability_metrics(y, np.full(400, 0.1), base_rate=0.1)
    assert constant["auc"] == pytest.approx(0.5) and constant["brier_skill"] == pytest.approx(0.0)


def test_return_moments_are_scipy_skew_and_non_excess_kurtosis() -> None:
    from scipy import stats

    r = np.random.default_rng(1).standard_t(4, 2000) / 100
    m = return_moments(r)
    assert m["returns_skew"] == pytest.approx(stats.skew(r))
    assert m["returns_kurtosis"] == pytest.approx(stats.kurtosis(r) + 3)
    assert m["returns_kurtosis"] > 3.5  # t(4) is fat-tailed


def _hours(days: pd.DatetimeIndex, hours: range) -> pd.DatetimeIndex:
    return pd.DatetimeIndex([d + pd.Timedelta(hours=h) for d in days for h in hours])


def test_periods_per_year_is_bars_per_elapsed_year_on_every_calendar() -> None:
    business_days = pd.bdate_range("2020-01-01", "2024-12-31", tz="UTC")
    assert periods_per_year(business_days) == pytest.approx(365.25 * 5 / 7, rel=0.005)
    goog = pd.read_csv(real_csv("GOOG.csv"), index_col=0, parse_dates=True).index
    assert periods_per_year(pd.DatetimeIndex(goog)) == pytest.approx(252, abs=1.5)  # holidays included
    assert periods_per_year(pd.date_range("2024-01-01", periods=24 * 200, freq="h", tz="UTC")) == pytest.approx(8766)
    # FX: Sunday 22:00 to Friday 22:00 UTC, 120 hours a week
    fx = pd.date_range("2023-01-01 22:00", "2024-12-29", freq="h", tz="UTC")
    fx = fx[~((fx.dayofweek == 5) | ((fx.dayofweek == 4) & (fx.hour >= 22)) | ((fx.dayofweek == 6) & (fx.hour < 22)))]
    assert periods_per_year(fx) == pytest.approx(120 * 365.25 / 7, rel=0.01)
    eurusd = pd.read_csv(real_csv("EURUSD.csv"), index_col=0, parse_dates=True).index
    assert periods_per_year(pd.DatetimeIndex(eurusd)) == pytest.approx(120 * 365.25 / 7, rel=0.02)
    # equity hours: 7 hourly bars a business day
    equity_hours = _hours(pd.bdate_range("2023-01-02", "2024-12-31", tz="UTC"), range(14, 21))
    assert periods_per_year(equity_hours) == pytest.approx(7 * 365.25 * 5 / 7, rel=0.01)
    assert periods_per_year(pd.date_range("2020-01-05", periods=200, freq="W", tz="UTC")) == pytest.approx(365.25 / 7)


def test_both_agents_train_on_synthetic_bars_and_beat_chance_on_validation() -> None:
    bars = bars_frame(2500, seed=42)
    for spec in SPECS.values():
        data = build_dataset(bars, spec, spec.defaults)
        agent = train_agent(spec, spec.defaults, data, seed=7, patience=10, cost_bps=1.0)
        for split in (agent.validation, agent.test):
            assert {
                "accuracy",
                "precision",
                "recall",
                "f1",
                "log_loss",
                "sharpe_ratio",
                "max_drawdown",
                "turnover",
                "buy_hold_sharpe_ratio",
                "sharpe_ratio_0bps",
                "sharpe_ratio_5bps",
                "sharpe_ratio_10bps",
                "auc",
                "brier",
                "brier_skill",
                "returns_skew",
                "returns_kurtosis",
                "n_samples",
            } <= set(split)
            assert all(isinstance(v, float) for v in split.values())  # flat, for MLflow
            if spec.name == "market_insight":
                assert {"cm_long_up", "cm_flat_down", "cm_short_up", "coverage", "hit_rate"} <= set(split)
                cm = sum(v for k, v in split.items() if k.startswith("cm_"))
                assert cm == split["n_samples"]
        assert agent.validation["val_loss"] < np.log(2) if spec.name == "market_insight" else True
        assert [name for name, *_ in agent.importance][:1] != []
        assert len(agent.importance) == data.features.shape[1]
        p = agent.predict(data.features.to_numpy())
        assert ((p > 0) & (p < 1)).all()


def test_hyperparameters_are_validated_by_name() -> None:
    spec = get_spec("market_insight")
    with pytest.raises(InvalidRequestError, match="learning_rate: Input should be greater than 0"):
        spec.hyperparameters({"learning_rate": -1})
    with pytest.raises(InvalidRequestError, match="momentum: Extra inputs are not permitted"):
        spec.hyperparameters({"momentum": 0.9})
    with pytest.raises(UnknownAgentError, match="unknown agent 'alpha'; known agents: market_insight, risk_assessor"):
        get_spec("alpha")
