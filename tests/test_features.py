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
from mlops.errors import InvalidRequestError
from tests.conftest import bars_frame


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


def test_risk_labels_mark_the_training_window_tail() -> None:
    spec = SPECS["risk_assessor"]
    data = build_dataset(bars_frame(1500), spec, spec.hyperparameters({"risk_threshold": 0.1}))
    assert data.y[data.splits.train].mean() == pytest.approx(0.1, abs=0.01)
    assert data.label_cut < 0


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
