"""The numpy agents: deterministic training, early stopping, divergence, metrics by hand."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mlops.agents.metrics import classification_metrics, periods_per_year, trading_metrics
from mlops.agents.network import forward, train_network
from mlops.agents.specs import SPECS, get_spec
from mlops.agents.training import build_dataset, train_agent
from mlops.errors import InvalidRequestError, TrainingDivergedError, UnknownAgentError
from tests.conftest import bars_frame


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
    equity = np.cumprod(1 + net)
    # equity: 1.009, 0.98882, 0.99672, 0.99572 → deepest fall from the 1.009 peak is at 0.98882
    assert m["max_drawdown"] == pytest.approx(1 - equity[1] / equity[0])
    assert m["turnover"] == pytest.approx((1 + 0 + 2 + 1) / 4)


def test_periods_per_year_from_bar_spacing() -> None:
    assert periods_per_year(pd.bdate_range("2024-01-01", periods=50, tz="UTC")) == 252
    assert periods_per_year(pd.date_range("2024-01-01", periods=50, freq="W", tz="UTC")) == pytest.approx(365.25 / 7)
    hourly_24_7 = pd.date_range("2024-01-01", periods=24 * 20, freq="h", tz="UTC")
    assert periods_per_year(hourly_24_7) == 252 * 24


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
            } <= set(split)
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
