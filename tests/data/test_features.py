"""Features use no future bars; splits are chronological with purge gaps; the synthetic market is
deterministic and its regimes are what they claim."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mlops.agents.specs import SPECS
from mlops.agents.training import build_dataset
from mlops.data.features import FEATURE_NAMES, WARMUP_BARS, chronological_splits, compute_features
from mlops.data.synthetic import generate_bars, next_start
from mlops.errors import DataValidationError, InvalidRequestError
from tests.conftest import bars_frame, real_csv


def test_features_at_t_do_not_change_when_the_future_is_removed() -> None:
    bars = bars_frame(400)
    full = compute_features(bars)
    for cut in (WARMUP_BARS + 5, 200, 399):
        truncated = compute_features(bars.iloc[: cut + 1])
        t = bars.index[cut]
        np.testing.assert_allclose(truncated.loc[t].to_numpy(), full.loc[t].to_numpy(), rtol=1e-10, atol=1e-12)


def test_features_have_stable_names_and_are_finite_after_warmup() -> None:
    features = compute_features(bars_frame(300))
    assert tuple(features.columns) == FEATURE_NAMES
    assert len(features) == 300 - WARMUP_BARS
    assert np.isfinite(features.to_numpy()).all()


@pytest.mark.parametrize("purge", [1, 5])
def test_splits_are_chronological_with_purge_gaps(purge: int) -> None:
    s = chronological_splits(1000, purge=purge)
    assert s.train[-1] + purge + 1 == s.validation[0]
    assert s.validation[-1] + purge + 1 == s.test[0]
    assert s.test[-1] == 999
    assert abs(len(s.train) / 1000 - 0.70) < 0.01 and abs(len(s.validation) / 1000 - 0.15) < 0.01


def test_training_labels_never_reach_into_the_validation_window() -> None:
    bars = bars_frame(800)
    spec = SPECS["risk_assessor"]
    data = build_dataset(bars, spec, spec.defaults)
    last_train_ts = data.features.index[data.splits.train[-1]]
    first_val_ts = data.features.index[data.splits.validation[0]]
    # The last training label looks `horizon` bars ahead: it must end before validation starts.
    horizon_end = bars.index[bars.index.get_loc(last_train_ts) + spec.horizon]
    assert horizon_end < first_val_ts


def test_risk_labels_are_losses_beyond_k_volatilities_known_at_t() -> None:
    spec = SPECS["risk_assessor"]
    bars = bars_frame(1500)
    data = build_dataset(bars, spec, spec.hyperparameters({"risk_threshold": 0.1}))
    assert data.label_cut == pytest.approx(1.2815515655446004)  # k = −Φ⁻¹(0.1)
    rows = data.features.index
    sigma = np.log(bars["close"]).diff().rolling(20).std().reindex(rows).to_numpy()
    entry = np.log(bars["open"].shift(-1))
    forward = (entry.shift(-5) - entry).reindex(rows).to_numpy()
    np.testing.assert_array_equal(data.y, (forward < -data.label_cut * sigma * np.sqrt(5)).astype(float))
    assert data.base_rate == pytest.approx(data.y[data.splits.train].mean())
    assert 0.05 < data.base_rate < 0.2


def test_features_at_t_do_not_change_when_the_future_is_removed_on_real_calendars() -> None:
    """The closure flag and the gap rule are judged from bars up to t only, on FX hours with weekends
    and on a daily series whose open repeats the previous close."""
    fx = pd.read_csv(real_csv("EURUSD.csv"), index_col=0, parse_dates=True).iloc[:700]
    fx.columns = [c.lower() for c in fx.columns]
    stale = bars_frame(400)
    stale["open"] = stale["close"].shift(1).fillna(stale["open"])
    stale["high"] = stale[["high", "open"]].max(axis=1)
    stale["low"] = stale[["low", "open"]].min(axis=1)
    for bars in (fx, stale):
        full = compute_features(bars)
        for cut in (WARMUP_BARS + 3, len(bars) // 2, len(bars) - 1):
            t = bars.index[cut]
            truncated = compute_features(bars.iloc[: cut + 1])
            np.testing.assert_allclose(truncated.loc[t].to_numpy(), full.loc[t].to_numpy(), rtol=1e-10, atol=1e-12)


def test_gap_is_zeroed_when_the_open_repeats_the_previous_close() -> None:
    bars = bars_frame(400)
    assert (compute_features(bars)["gap"] != 0).all()
    stale = bars.copy()
    stale["open"] = stale["close"].shift(1).fillna(stale["open"])
    stale.iloc[200, stale.columns.get_loc("open")] *= 1.01  # one real gap among repeated closes
    stale["high"] = stale[["high", "open"]].max(axis=1)
    stale["low"] = stale[["low", "open"]].min(axis=1)
    gap = compute_features(stale)["gap"]
    assert (gap == 0).all()  # the 1 % jump is no signal when opens are stale on every other bar


def test_a_zero_volume_bar_does_not_spike_volume_z() -> None:
    bars = bars_frame(300)
    empty = bars.copy()
    empty.iloc[150, empty.columns.get_loc("volume")] = 0.0
    before, after = compute_features(bars)["volume_z"], compute_features(empty)["volume_z"]
    t = bars.index[150]
    assert after.loc[t] == 0.0
    assert after.abs().max() < 5 and after.abs().max() <= before.abs().max() + 1.0
    # the next bars' statistics skip the empty bar instead of absorbing log(1) = 0
    nxt = bars.index[151:171]
    assert np.abs(after.loc[nxt] - before.loc[nxt]).max() < 0.5


def test_a_weekend_jump_does_not_inflate_volatility_features() -> None:
    """FX hours: the first bar after a weekend opens with a jump made while the market was closed. The
    volatility features use that bar's in-session move; ret_1 keeps the whole move and gap carries the jump."""
    hours = pd.date_range("2024-01-01", periods=24 * 5 * 6, freq="h", tz="UTC")
    bars = bars_frame(len(hours), interval="1h", start="2024-01-01")
    bars.index = hours + pd.to_timedelta(np.repeat(np.arange(6), 120) * 48, unit="h")  # 48 h closed weekly
    weekend = bars.index[120]
    assert bars.index[120] - bars.index[119] == pd.Timedelta(hours=49)
    jumped = bars.copy()
    jumped.loc[weekend:, ["open", "high", "low", "close"]] *= 1.05  # a 5 % weekend gap
    base, moved = compute_features(bars), compute_features(jumped)
    assert moved.loc[weekend, "ret_1"] == pytest.approx(base.loc[weekend, "ret_1"] + np.log(1.05))
    assert moved.loc[weekend, "gap"] == pytest.approx(base.loc[weekend, "gap"] + np.log(1.05))
    np.testing.assert_allclose(moved.loc[weekend:, "vol_20"], base.loc[weekend:, "vol_20"], rtol=1e-9)


def test_synthetic_market_is_deterministic_and_valid() -> None:
    a, b = generate_bars(300, seed=9), generate_bars(300, seed=9)
    pd.testing.assert_frame_equal(a, b)
    assert not generate_bars(300, seed=10)["close"].equals(a["close"])
    assert (a["high"] >= a[["open", "close"]].max(axis=1)).all()
    assert (a["low"] <= a[["open", "close"]].min(axis=1)).all()
    assert (a["low"] > 0).all() and (a["volume"] > 0).all()


def test_regimes_differ_in_volatility() -> None:
    calm = np.log(generate_bars(1000, seed=1, regime="calm")["close"]).diff().std()
    volatile = np.log(generate_bars(1000, seed=1, regime="volatile")["close"]).diff().std()
    assert volatile > 3 * calm


def test_intervals_and_bad_generator_input() -> None:
    hourly = generate_bars(10, interval="1h", start="2024-01-01")
    assert hourly.index[1] - hourly.index[0] == pd.Timedelta(hours=1)
    assert next_start(pd.Timestamp("2024-01-05", tz="UTC"), "1d") == pd.Timestamp("2024-01-08", tz="UTC")
    with pytest.raises(InvalidRequestError, match="unknown regime 'wild'; known regimes: calm, normal, volatile"):
        generate_bars(10, regime="wild")
    with pytest.raises(InvalidRequestError, match="not a duration"):
        generate_bars(10, interval="fortnightly")


def test_features_accept_the_column_spellings_of_common_exports() -> None:
    bars = bars_frame(300)
    exported = bars.rename(columns={c: f" {c.capitalize()} " for c in bars.columns})  # " Close " etc.
    pd.testing.assert_frame_equal(compute_features(exported), compute_features(bars))
    with pytest.raises(DataValidationError, match=r"missing column\(s\) volume \(columns: open, high, low, close\)"):
        compute_features(bars.drop(columns="volume"))
