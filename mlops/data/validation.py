"""Parse and validate OHLCV frames from CSV/Parquet exports. Every problem names its row."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from mlops.errors import DataValidationError

PRICE_COLUMNS = ("open", "high", "low", "close")
OHLCV = (*PRICE_COLUMNS, "volume")
DATE_NAMES = ("date", "datetime", "timestamp", "time", "ts")
ADJUSTED_CLOSE_NAMES = ("adj close", "adj_close", "adjclose", "adjusted close", "adjusted_close")


def read_bars_file(path: Path) -> pd.DataFrame:
    """Read a CSV or Parquet export into a raw frame (dates may still be a column or the index)."""
    if not path.exists():
        raise DataValidationError(str(path), ["file does not exist"])
    if path.is_dir():
        raise DataValidationError(str(path), ["is a folder, not a CSV or Parquet file"])
    suffix = path.suffix.lower()
    try:
        if suffix in (".parquet", ".pq"):
            return pd.read_parquet(path)
        if suffix in (".csv", ".txt", ".gz"):
            return pd.read_csv(path)
    except Exception as exc:  # the readers raise many types; the user needs the reason, not the type
        raise DataValidationError(str(path), [f"cannot be read as {suffix[1:]}: {exc}"]) from exc
    raise DataValidationError(str(path), [f"unsupported file type {suffix!r}: use .csv or .parquet"])


def _row_label(position: int | np.integer, csv_rows: bool) -> str:
    # CSV line numbers: header is line 1, first data row is line 2.
    return f"line {position + 2}" if csv_rows else f"row {position}"


def _adjust_for_splits_and_dividends(values: dict[str, np.ndarray], adjusted: pd.Series, csv_rows: bool) -> list[str]:
    """Scale OHLC by adjusted close / close and divide volume by the same factor, in place, so that a
    split or a dividend is not a crash in the returns (the traded quantity scales inversely); an empty,
    non-numeric or non-positive adjusted close is a problem naming its row."""
    problems: list[str] = []
    numeric = pd.to_numeric(adjusted, errors="coerce").to_numpy(dtype=float)
    for pos in np.flatnonzero(~np.isfinite(numeric) | (numeric <= 0)):
        problems.append(f"{_row_label(pos, csv_rows)}: Adj Close must be a number > 0, got {adjusted.iloc[pos]!r}")
    if problems:
        return problems
    with np.errstate(divide="ignore", invalid="ignore"):
        factor = numeric / values["close"]
    if not np.all(np.isfinite(factor) & (factor > 0)):
        return []  # the close itself is invalid: that problem is already reported
    for col in PRICE_COLUMNS:
        values[col] = values[col] * factor
    values["volume"] = values["volume"] / factor
    return []


def normalise_bars(raw: pd.DataFrame, source: str, csv_rows: bool = True) -> pd.DataFrame:
    """Return a clean frame indexed by UTC timestamp with float OHLCV columns, or raise with every
    problem found: missing columns, bad dates, non-numeric or non-positive prices, high < low,
    negative volume and duplicate timestamps. With an adjusted close column (`Adj Close`, `adj_close`,
    `adjclose`), OHLC are ratio-adjusted to it and volume divided by the same factor."""
    frame = raw.copy()
    frame.columns = [str(c).strip() for c in frame.columns]
    lower = {c.lower(): c for c in frame.columns}
    date_col = next((lower[n] for n in DATE_NAMES if n in lower), None)
    first = str(frame.columns[0]) if len(frame.columns) else ""
    if date_col is None and (first == "" or first.startswith("Unnamed") or first.lower() == "index"):
        date_col = first  # exports that wrote the date index without a header (pandas `to_csv`)
    if date_col is not None:
        dates_raw = frame[date_col]
    elif isinstance(frame.index, pd.DatetimeIndex) or str(frame.index.name or "").lower() in DATE_NAMES:
        dates_raw = pd.Series(frame.index, index=range(len(frame)))
    else:
        raise DataValidationError(
            source, [f"no date column: expected one of Date, Datetime, timestamp (found {list(raw.columns)})"]
        )
    missing = [c.capitalize() for c in OHLCV if c not in lower]
    if missing:
        raise DataValidationError(source, [f"missing column(s): {', '.join(missing)}"])
    if len(frame) == 0:
        raise DataValidationError(source, ["no rows"])

    problems: list[str] = []
    dates = pd.to_datetime(pd.Series(np.asarray(dates_raw)), errors="coerce", utc=True, format="mixed")
    for pos in np.flatnonzero(dates.isna().to_numpy()):
        problems.append(f"{_row_label(pos, csv_rows)}: unparseable date {np.asarray(dates_raw)[pos]!r}")

    values = {}
    for col in OHLCV:
        original = frame[lower[col]].reset_index(drop=True)
        numeric = pd.to_numeric(original, errors="coerce")
        for pos in np.flatnonzero(numeric.isna().to_numpy()):
            shown = original.iloc[pos]
            what = "missing" if pd.isna(shown) else f"non-numeric {shown!r}"
            problems.append(f"{_row_label(pos, csv_rows)}: {col.capitalize()} is {what}")
        arr = numeric.to_numpy(dtype=float)
        for pos in np.flatnonzero(np.isinf(arr)):
            problems.append(f"{_row_label(pos, csv_rows)}: {col.capitalize()} is infinite")
        values[col] = arr

    for col in PRICE_COLUMNS:
        for pos in np.flatnonzero(values[col] <= 0):
            problems.append(f"{_row_label(pos, csv_rows)}: {col.capitalize()} must be > 0, got {values[col][pos]}")
    for pos in np.flatnonzero(values["volume"] < 0):
        problems.append(f"{_row_label(pos, csv_rows)}: Volume must be >= 0, got {values['volume'][pos]}")
    for pos in np.flatnonzero(values["high"] < values["low"]):
        problems.append(f"{_row_label(pos, csv_rows)}: High {values['high'][pos]} is below Low {values['low'][pos]}")
    for col in ("open", "close"):
        outside = (values[col] > values["high"]) | (values[col] < values["low"])
        for pos in np.flatnonzero(outside & (values["high"] >= values["low"])):
            problems.append(
                f"{_row_label(pos, csv_rows)}: {col.capitalize()} {values[col][pos]} is outside "
                f"Low {values['low'][pos]} – High {values['high'][pos]}"
            )
    adjust_col = next((lower[n] for n in ADJUSTED_CLOSE_NAMES if n in lower), None)
    if adjust_col is not None:
        problems += _adjust_for_splits_and_dividends(values, frame[adjust_col].reset_index(drop=True), csv_rows)
    valid_dates = dates.dropna()
    duplicated = valid_dates[valid_dates.duplicated(keep=False)]
    for ts, group in duplicated.groupby(duplicated):
        rows = ", ".join(_row_label(p, csv_rows) for p in group.index)
        problems.append(f"duplicate timestamp {ts.isoformat()} at {rows}")
    if problems:
        raise DataValidationError(source, problems)

    clean = pd.DataFrame(values, index=pd.DatetimeIndex(dates, name="ts"))
    return clean.sort_index()
