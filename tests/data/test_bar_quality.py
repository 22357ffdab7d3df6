"""Bar-level data quality: the series' own calendar (closures vs missing bars) on real and constructed
timestamps, and adjusted closes applied to prices and volume on import."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mlops.data.calendar import infer_calendar
from mlops.data.validation import normalise_bars
from mlops.errors import DataValidationError
from tests.conftest import real_csv


def _index(name: str) -> pd.DatetimeIndex:
    bars = pd.read_csv(real_csv(name), index_col=0, parse_dates=True)
    return pd.DatetimeIndex(bars.index).tz_localize("UTC")


def test_calendar_of_daily_equities_fx_hours_and_24_7() -> None:
    goog = infer_calendar(_index("GOOG.csv"))
    assert goog.step_seconds == 86400 and len(goog.session_slots) == 5  # weekdays
    assert goog.n_missing == 79  # holidays: weekdays without a bar, 3.5 % of them
    assert goog.spans_closure.sum() == 386  # Mondays after a full weekend
    fx = infer_calendar(_index("EURUSD.csv"))
    assert fx.step_seconds == 3600 and len(fx.session_slots) == 120  # Sunday evening to Friday evening
    assert fx.spans_closure.sum() >= 28 and fx.missing_share < 0.02
    hours = pd.date_range("2024-01-01", periods=24 * 60, freq="h", tz="UTC")
    always = infer_calendar(hours)
    assert (always.n_missing, always.spans_closure.sum()) == (0, 0)


def test_missing_bars_are_found_and_closures_are_not_missing() -> None:
    days = pd.bdate_range("2023-01-02", periods=300, tz="UTC")
    complete = infer_calendar(days)
    assert complete.n_missing == 0 and complete.spans_closure.sum() == 299 // 5
    holed = days.delete([10, 11, 12, 153])  # a Mon..Wed hole (with the weekend before it) and one Thursday
    calendar = infer_calendar(holed)
    assert calendar.n_missing == 4
    assert calendar.spans_missing.sum() == 2
    assert calendar.spans_closure.sum() == complete.spans_closure.sum() - 1  # the weekend inside the hole


def test_adjusted_close_ratio_adjusts_prices_and_volume(tmp_path: Path) -> None:
    text = """Date,Open,High,Low,Close,Adj Close,Volume
2024-01-02,200,210,190,200,100,1000
2024-01-03,101,106,99,104,104,2400
"""  # a 2:1 split between the two days: unadjusted, day 2 looks like a −48 % crash
    path = tmp_path / "split.csv"
    path.write_text(text)
    bars = normalise_bars(pd.read_csv(path), "split.csv")
    np.testing.assert_allclose(bars.iloc[0][["open", "high", "low", "close"]], [100, 105, 95, 100])
    assert bars.iloc[0]["volume"] == 2000
    assert np.log(bars["close"]).diff().iloc[1] == pytest.approx(np.log(1.04))
    for name in ("adj_close", "adjclose"):
        renamed = pd.read_csv(path).rename(columns={"Adj Close": name})
        assert normalise_bars(renamed, "x").iloc[0]["close"] == 100
    path.write_text(text.replace(",100,1000", ",abc,1000"))
    with pytest.raises(DataValidationError, match="line 2: Adj Close must be a number > 0, got 'abc'"):
        normalise_bars(pd.read_csv(path), "split.csv")
