"""Market data import and validation: real exports, row-naming errors, idempotent re-import."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mlops.data.store import bars_status, import_bars_file, load_bars, resolve_symbol, upsert_bars
from mlops.data.validation import normalise_bars
from mlops.errors import DataValidationError, NotFoundError
from tests.conftest import bars_frame, real_csv


def _csv(tmp_path: Path, text: str, name: str = "bars.csv") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


GOOD = """Date,Open,High,Low,Close,Adj Close,Volume
2024-01-02,10,11,9.5,10.5,10.4,1000
2024-01-03,10.5,11.2,10.1,11,10.9,1200
2024-01-04,11,11.5,10.8,11.1,11.0,900
"""


def test_import_real_daily_csv_with_unnamed_date_index_is_idempotent(db_url: str) -> None:
    first = import_bars_file(db_url, real_csv("GOOG.csv"), "GOOG")
    assert first.inserted == 2148 and first.updated == 0
    assert first.first_ts.year == 2004 and first.last_ts.year == 2013
    again = import_bars_file(db_url, real_csv("GOOG.csv"), "GOOG")
    assert (again.inserted, again.updated, again.unchanged) == (0, 0, 2148)
    bars = load_bars(db_url, "GOOG")
    assert len(bars) == 2148 and bars.index.is_monotonic_increasing and str(bars.index.tz) == "UTC"
    assert bars.iloc[0]["close"] == pytest.approx(100.34)
    assert [s.symbol for s in bars_status(db_url)] == ["GOOG"]


def test_import_hourly_parquet_with_datetime_index(db_url: str, tmp_path: Path) -> None:
    raw = pd.read_csv(real_csv("EURUSD.csv"), index_col=0, parse_dates=True)
    raw.index.name = "Datetime"
    path = tmp_path / "eurusd.parquet"
    raw.to_parquet(path)
    result = import_bars_file(db_url, path, "EURUSD")
    assert result.inserted == 5000
    assert load_bars(db_url, "EURUSD").index[1] - load_bars(db_url, "EURUSD").index[0] == pd.Timedelta(hours=1)


def test_changed_bars_are_updated_not_duplicated(db_url: str) -> None:
    bars = bars_frame(50)
    upsert_bars(db_url, "X", bars, "a")
    changed = bars.copy()
    changed.iloc[10, changed.columns.get_loc("close")] *= 1.01
    result = upsert_bars(db_url, "X", changed, "b")
    assert (result.inserted, result.updated, result.unchanged) == (0, 1, 49)
    assert len(load_bars(db_url, "X")) == 50


def test_common_export_shapes_are_accepted(tmp_path: Path) -> None:
    frame = normalise_bars(pd.read_csv(_csv(tmp_path, GOOD)), "x")
    assert list(frame.columns) == ["open", "high", "low", "close", "volume"]
    lower = pd.read_csv(_csv(tmp_path, GOOD.replace("Date", "timestamp").lower(), "l.csv"))
    assert len(normalise_bars(lower, "x")) == 3


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (GOOD.replace(",Volume", ",Vol"), "missing column(s): Volume"),
        (GOOD.replace("Date,", "Day,"), "no date column"),
        (GOOD.replace("2024-01-03,10.5", "2024-01-03,"), "line 3: Open is missing"),
        (GOOD.replace("11.2,10.1", "abc,10.1"), "line 3: High is non-numeric 'abc'"),
        (GOOD.replace("2024-01-04,11,11.5,10.8", "2024-01-04,11,10.5,10.8"), "line 4: High 10.5 is below Low 10.8"),
        (GOOD.replace("2024-01-04,11,", "2024-01-04,-11,"), "line 4: Open must be > 0"),
        (GOOD.replace("2024-01-04", "2024-01-03"), "duplicate timestamp 2024-01-03T00:00:00+00:00 at line 3, line 4"),
        (GOOD.replace("2024-01-04", "not-a-date"), "line 4: unparseable date 'not-a-date'"),
        (GOOD.replace(",900", ",-5"), "line 4: Volume must be >= 0"),
        ("Date,Open,High,Low,Close,Volume\n", "no rows"),
    ],
)
def test_malformed_files_are_rejected_naming_the_row(tmp_path: Path, db_url: str, text: str, message: str) -> None:
    with pytest.raises(DataValidationError) as info:
        import_bars_file(db_url, _csv(tmp_path, text), "BAD")
    assert message in str(info.value)
    assert bars_status(db_url) == []  # nothing half-imported


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    text = GOOD.replace("2024-01-03,10.5", "2024-01-03,").replace("2024-01-04,11,11.5,10.8", "2024-01-04,11,10.5,10.8")
    with pytest.raises(DataValidationError) as info:
        normalise_bars(pd.read_csv(_csv(tmp_path, text)), "x")
    assert len(info.value.problems) == 2


def test_missing_and_unsupported_files(tmp_path: Path, db_url: str) -> None:
    with pytest.raises(DataValidationError, match="file does not exist"):
        import_bars_file(db_url, tmp_path / "nope.csv", "X")
    with pytest.raises(DataValidationError, match=r"unsupported file type '.xlsx'"):
        import_bars_file(db_url, _csv(tmp_path, "x", "f.xlsx"), "X")
    garbage = tmp_path / "g.parquet"
    garbage.write_bytes(b"not parquet at all")
    with pytest.raises(DataValidationError, match="cannot be read as parquet"):
        import_bars_file(db_url, garbage, "X")


def test_loading_an_unknown_symbol_names_the_known_ones(db_url: str) -> None:
    upsert_bars(db_url, "AAA", bars_frame(5), "t")
    with pytest.raises(NotFoundError, match=r"no bars for symbol 'ZZZ' \(symbols with bars: AAA\)"):
        load_bars(db_url, "ZZZ")


def test_with_no_symbol_given_the_only_symbol_in_the_store_is_used(db_url: str) -> None:
    assert resolve_symbol(db_url, None, "SYNTH") == "SYNTH"  # empty store: the default, whose absence is reported
    upsert_bars(db_url, "SPX", bars_frame(5), "t")
    assert resolve_symbol(db_url, None, "SYNTH") == "SPX"  # a user who imported SPX alone means SPX
    assert resolve_symbol(db_url, "QQQ", "SYNTH") == "QQQ"  # asked for: always that one
    upsert_bars(db_url, "AAA", bars_frame(5), "t")
    assert resolve_symbol(db_url, None, "SYNTH") == "SYNTH"  # several: no guessing
    upsert_bars(db_url, "SYNTH", bars_frame(5), "t")
    assert resolve_symbol(db_url, None, "SYNTH") == "SYNTH"


def test_timezone_aware_dates_are_stored_in_utc(tmp_path: Path) -> None:
    text = "Datetime,Open,High,Low,Close,Volume\n2024-01-02 09:30:00-05:00,1,2,0.5,1.5,10\n"
    frame = normalise_bars(pd.read_csv(_csv(tmp_path, text)), "x")
    assert frame.index[0] == pd.Timestamp("2024-01-02 14:30", tz="UTC")
    assert np.isfinite(frame.to_numpy()).all()


def test_open_or_close_outside_the_bar_range_is_rejected(tmp_path: Path) -> None:
    text = GOOD.replace("2024-01-03,10.5,11.2,10.1,11,", "2024-01-03,10.5,11.2,10.1,12,")
    with pytest.raises(DataValidationError, match=r"line 3: Close 12.0 is outside Low 10.1 – High 11.2"):
        normalise_bars(pd.read_csv(_csv(tmp_path, text)), "x")


def test_synthetic_bars_are_never_appended_to_imported_data(db_url: str, tmp_path: Path) -> None:
    from mlops.data.generate import generate_market
    from mlops.errors import ConflictError
    from tests.conftest import make_settings

    settings = make_settings(tmp_path, database_url=db_url)
    import_bars_file(db_url, real_csv("GOOG.csv"), "GOOG")
    with pytest.raises(ConflictError, match="GOOG holds imported market data"):
        generate_market(settings, symbol="GOOG", n_bars=10, append=True)
    assert len(load_bars(db_url, "GOOG")) == 2148
