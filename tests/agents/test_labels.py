"""risk_assessor's tail label is relative to the volatility known at t, so its rate stays near the
target share τ across regimes, where an absolute quantile of the training window's returns does not."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mlops.agents.labels import realised_volatility, tail_labels, tail_multiplier
from mlops.agents.specs import SPECS
from mlops.data.features import forward_returns
from mlops.data.synthetic import generate_bars, next_start
from mlops.errors import InvalidRequestError

TAU = 0.1


def _calm_then_volatile(seed: int, n: int = 2000) -> pd.DataFrame:
    calm = generate_bars(n, seed=seed, regime="calm")
    volatile = generate_bars(
        n,
        seed=seed + 100,
        regime="volatile",
        start=next_start(calm.index[-1], "1d"),
        start_price=float(calm["close"].iloc[-1]),
    )
    return pd.concat([calm, volatile])


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_tail_rate_is_stable_from_a_calm_to_a_volatile_regime(seed: int) -> None:
    bars = _calm_then_volatile(seed)
    n = len(bars) // 2
    forward = forward_returns(bars, 5, "open").to_numpy()
    known = np.isfinite(forward)
    calm, volatile = np.arange(100, n - 10), np.arange(n + 100, len(bars))
    volatile = volatile[known[volatile]]

    y, k = tail_labels(forward, realised_volatility(bars["close"]).to_numpy(), 5, TAU)
    new_calm, new_volatile = y[calm].mean(), y[volatile].mean()
    # The old label: the worst τ of the (calm) training window's forward returns, applied everywhere.
    cut = np.quantile(forward[calm], TAU)
    old_calm, old_volatile = np.mean(forward[calm] <= cut), np.mean(forward[volatile] <= cut)

    assert k == pytest.approx(1.2816, abs=1e-4)
    # measured (seeds 1, 2, 3): calm 0.117, 0.125, 0.110; volatile 0.169, 0.158, 0.134 (old: 0.42, 0.40, 0.34);
    # the volatile regime's excess is the generator's leverage effect (variance jumps after down moves
    # that a 20-bar volatility has not seen yet) — what risk_assessor is there to predict.
    assert abs(new_calm - TAU) < 0.03 and abs(new_volatile - TAU) < 0.08
    assert abs(new_volatile - new_calm) < 0.06
    assert old_volatile - old_calm > 0.2  # a calm training window makes a third of a crisis a "tail"


def test_tail_rate_per_regime_of_the_switching_market() -> None:
    bars = generate_bars(6000, seed=42)
    forward = forward_returns(bars, 5, "open").to_numpy()
    y, _ = tail_labels(forward, realised_volatility(bars["close"]).to_numpy(), 5, TAU)
    known = np.isfinite(forward)
    rates = {r: y[(bars["regime"] == r).to_numpy() & known].mean() for r in ("calm", "normal", "volatile")}
    assert max(rates.values()) - min(rates.values()) < 0.04, rates
    assert all(abs(rate - TAU) < 0.05 for rate in rates.values()), rates


def test_exposure_uses_the_training_tail_rate() -> None:
    spec = SPECS["risk_assessor"]
    hp = spec.defaults  # τ = 0.1
    p = np.array([0.05, 0.15, 0.225, 0.3, 0.45])
    np.testing.assert_allclose(spec.positions(p, hp, base_rate=0.15), [1.0, 1.0, 0.5, 0.0, 0.0])
    np.testing.assert_allclose(spec.positions(p, hp), [1.0, 0.5, 0.0, 0.0, 0.0])  # τ without a base rate
    assert spec.decision_threshold(hp, 0.15) == 0.15
    assert spec.base_rate_from_params({"base_rate": "0.147", "l2": "0.001"}) == pytest.approx(0.147)
    assert spec.base_rate_from_params({"l2": "0.001"}) is None


def test_a_tail_share_outside_0_to_half_is_refused() -> None:
    with pytest.raises(InvalidRequestError, match=r"risk_threshold .* must be in \(0, 0.5\), got 0.7"):
        tail_multiplier(0.7)
