"""Market bars in the app database: idempotent upserts, loading, status."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, func, insert, select
from sqlalchemy.exc import IntegrityError

from mlops.db import session_scope
from mlops.db.models import MarketBar
from mlops.errors import ConflictError, InvalidRequestError, NotFoundError

if TYPE_CHECKING:  # numpy/pandas load on first use: the API starts without them
    import pandas as pd


@dataclass(frozen=True)
class ImportResult:
    symbol: str
    inserted: int
    updated: int
    unchanged: int
    first_ts: datetime
    last_ts: datetime


@dataclass(frozen=True)
class SymbolStatus:
    symbol: str
    bars: int
    first_ts: datetime
    last_ts: datetime
    sources: str


def as_utc(ts: datetime) -> datetime:
    """SQLite hands back naive datetimes; every timestamp stored here is UTC."""
    return ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts.astimezone(UTC)


def _check_symbol(symbol: str) -> str:
    symbol = symbol.strip()
    if not symbol or len(symbol) > 32:
        raise InvalidRequestError(f"symbol must be 1 to 32 characters, got {symbol!r}")
    return symbol


def upsert_bars(db_url: str, symbol: str, bars: pd.DataFrame, source: str) -> ImportResult:
    """Insert new bars, update changed ones, leave identical ones alone (re-import is idempotent).
    `bars` is a validated frame indexed by UTC timestamp (see `normalise_bars`)."""
    import numpy as np
    import pandas as pd

    from mlops.data.validation import OHLCV

    symbol = _check_symbol(symbol)
    if bars.empty:
        raise InvalidRequestError("no bars to store")
    index = pd.DatetimeIndex(bars.index)
    wanted = {as_utc(ts.to_pydatetime()): row for ts, row in zip(index, bars[list(OHLCV)].to_numpy(), strict=True)}
    inserted = updated = unchanged = 0
    with session_scope(db_url) as session:
        existing = {
            as_utc(bar.ts): bar
            for bar in session.scalars(
                select(MarketBar).where(
                    MarketBar.symbol == symbol, MarketBar.ts >= index.min(), MarketBar.ts <= index.max()
                )
            )
        }
        new_rows = []
        for ts, row in wanted.items():
            bar = existing.get(ts)
            if bar is None:
                new_rows.append(
                    dict(zip(OHLCV, map(float, row), strict=True)) | {"symbol": symbol, "ts": ts, "source": source}
                )
            elif np.allclose([bar.open, bar.high, bar.low, bar.close, bar.volume], row, rtol=1e-12, atol=0):
                unchanged += 1
            else:
                bar.open, bar.high, bar.low, bar.close, bar.volume = map(float, row)
                bar.source = source
                updated += 1
        if new_rows:
            try:
                session.execute(insert(MarketBar), new_rows)
            except IntegrityError:
                raise ConflictError(
                    f"bars of {symbol} in {min(wanted)} .. {max(wanted)} were being written by another request at "
                    "the same time; nothing of this one was stored: send it again (re-sending is idempotent)"
                ) from None
            inserted = len(new_rows)
    return ImportResult(symbol, inserted, updated, unchanged, min(wanted), max(wanted))


def import_bars_rows(db_url: str, symbol: str, rows: list[dict[str, Any]], source: str) -> ImportResult:
    """Validate bars given as records (timestamp, open, high, low, close, volume) and store them."""
    import pandas as pd

    from mlops.data.validation import normalise_bars

    bars = normalise_bars(pd.DataFrame(rows), f"bars of {symbol}", csv_rows=False)
    return upsert_bars(db_url, symbol, bars, source=source)


def import_bars_file(db_url: str, path: Path, symbol: str) -> ImportResult:
    """Validate a CSV/Parquet export and store its bars under `symbol`."""
    from mlops.data.validation import normalise_bars, read_bars_file

    raw = read_bars_file(path)
    bars = normalise_bars(raw, str(path), csv_rows=path.suffix.lower() != ".parquet")
    return upsert_bars(db_url, symbol, bars, source=f"file:{path.name}")


def load_bars(db_url: str, symbol: str) -> pd.DataFrame:
    """All bars of `symbol` in time order, indexed by UTC timestamp."""
    import pandas as pd

    from mlops.data.validation import OHLCV

    with session_scope(db_url) as session:
        rows = session.execute(
            select(MarketBar.ts, *(getattr(MarketBar, c) for c in OHLCV))
            .where(MarketBar.symbol == symbol)
            .order_by(MarketBar.ts)
        ).all()
    if not rows:
        known = ", ".join(s.symbol for s in bars_status(db_url)) or "none"
        raise NotFoundError(f"no bars for symbol {symbol!r} (symbols with bars: {known})")
    frame = pd.DataFrame(rows, columns=["ts", *OHLCV])
    frame["ts"] = pd.to_datetime(frame["ts"], utc=True)
    return frame.set_index("ts")


def resolve_symbol(db_url: str, symbol: str | None, configured: str) -> str:
    """The symbol to work on: the one asked for; else the configured default (SKIPPY_SYMBOL) when it has
    bars; else the only symbol in the store, if there is exactly one (a user who imported SPX alone means
    SPX). Otherwise the configured one, whose absence `load_bars` reports with the symbols there are."""
    if symbol:
        return symbol
    if count_bars(db_url, configured) > 0:
        return configured
    symbols = [s.symbol for s in bars_status(db_url)]
    return symbols[0] if len(symbols) == 1 else configured


def bars_status(db_url: str) -> list[SymbolStatus]:
    with session_scope(db_url) as session:
        rows = session.execute(
            select(MarketBar.symbol, func.count(), func.min(MarketBar.ts), func.max(MarketBar.ts))
            .group_by(MarketBar.symbol)
            .order_by(MarketBar.symbol)
        ).all()
        sources: dict[str, set[str]] = {}
        for sym, src in session.execute(select(MarketBar.symbol, MarketBar.source).distinct()):
            sources.setdefault(sym, set()).add(src)
    return [SymbolStatus(s, n, as_utc(a), as_utc(b), ",".join(sorted(sources.get(s, ())))) for s, n, a, b in rows]


def delete_symbol(db_url: str, symbol: str) -> int:
    with session_scope(db_url) as session:
        result = session.execute(delete(MarketBar).where(MarketBar.symbol == symbol))
        return int(result.rowcount or 0)  # type: ignore[attr-defined]


def last_bar_time(db_url: str, symbol: str) -> tuple[datetime, float] | None:
    """Timestamp and close of the newest bar of `symbol`, or None."""
    with session_scope(db_url) as session:
        row = session.execute(
            select(MarketBar.ts, MarketBar.close)
            .where(MarketBar.symbol == symbol)
            .order_by(MarketBar.ts.desc())
            .limit(1)
        ).first()
    return (as_utc(row[0]), float(row[1])) if row else None


def count_bars(db_url: str, symbol: str) -> int:
    with session_scope(db_url) as session:
        return int(session.scalar(select(func.count()).where(MarketBar.symbol == symbol)) or 0)
