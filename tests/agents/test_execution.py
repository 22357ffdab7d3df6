"""Execution: a position decided on bar t's close is filled at the next open by default; costs are per
instrument; the label measures the same return the position earns."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mlops.agents.specs import SPECS
from mlops.agents.training import build_dataset, training_options
from mlops.data.features import forward_returns, label_purge, next_bar_returns
from mlops.errors import InvalidRequestError
from tests.conftest import bars_frame, make_settings


def _bars() -> pd.DataFrame:
    index = pd.bdate_range("2024-01-01", periods=5, tz="UTC")
    return pd.DataFrame(
        {
            "open": [10.0, 11.0, 12.0, 13.5, 13.0],
            "high": [11.0, 12.5, 13.0, 14.0, 13.5],
            "low": [9.5, 10.5, 11.5, 12.0, 12.5],
            "close": [10.5, 12.0, 12.5, 13.0, 13.2],
            "volume": [1.0] * 5,
        },
        index=index,
    )


def test_next_bar_returns_by_hand_for_both_fills() -> None:
    bars = _bars()
    opened = next_bar_returns(bars).to_numpy()  # the default: open t+1 → open t+2
    np.testing.assert_allclose(opened[:3], [12 / 11 - 1, 13.5 / 12 - 1, 13 / 13.5 - 1])
    assert np.isnan(opened[3:]).all()
    closed = next_bar_returns(bars, fill="close").to_numpy()
    np.testing.assert_allclose(closed[:4], [12 / 10.5 - 1, 12.5 / 12 - 1, 13 / 12.5 - 1, 13.2 / 13 - 1])
    assert np.isnan(closed[4])


def test_forward_returns_start_at_the_fill() -> None:
    bars = _bars()
    np.testing.assert_allclose(forward_returns(bars, 2).to_numpy()[:2], np.log([13.5 / 11, 13 / 12]))
    np.testing.assert_allclose(
        forward_returns(bars, 2, "close").to_numpy()[:3], np.log([12.5 / 10.5, 13 / 12, 13.2 / 12.5])
    )
    assert label_purge(5, "open") == 6 and label_purge(5, "close") == 5
    with pytest.raises(InvalidRequestError, match="unknown execution fill 'vwap'; fills: open, close"):
        next_bar_returns(bars, fill="vwap")  # type: ignore[arg-type]


@pytest.mark.parametrize("fill", ["open", "close"])
def test_market_insight_labels_are_the_sign_of_what_the_position_earns(fill: str) -> None:
    bars = bars_frame(600)
    spec = SPECS["market_insight"]
    data = build_dataset(bars, spec, spec.defaults, fill=fill)  # type: ignore[arg-type]
    assert data.fill == fill
    np.testing.assert_array_equal(data.y, (data.next_returns > 0).astype(float))
    s = data.splits
    assert s.purge == spec.horizon + (1 if fill == "open" else 0)
    # the last training label reads a price no validation row's features have seen
    last_label_bar = bars.index.get_loc(data.features.index[s.train[-1]]) + s.purge
    assert bars.index[last_label_bar] < data.features.index[s.validation[0]]


def test_costs_per_instrument_from_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SKIPPY_TRANSACTION_COSTS_BPS", '{"EURUSD": 0.5}')
    settings = make_settings(tmp_path)
    assert settings.transaction_cost_bps == 2.0 and settings.execution_fill == "open"
    assert settings.cost_bps_for("EURUSD") == 0.5 and settings.cost_bps_for("GOOG") == 2.0
    assert training_options(settings, "EURUSD")["cost_bps"] == 0.5
    assert training_options(settings)["cost_bps"] == 2.0
    monkeypatch.setenv("SKIPPY_TRANSACTION_COSTS_BPS", '{"EURUSD": -1}')
    with pytest.raises(ValueError, match=r"transaction costs must be >= 0 bp, got \{'EURUSD': -1.0\}"):
        make_settings(tmp_path)
