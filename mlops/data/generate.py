"""Store synthetic bars: a fresh market, or bars appended after the last one in a chosen regime."""

from __future__ import annotations

import pandas as pd

from mlops.data.store import ImportResult, bars_status, count_bars, delete_symbol, last_bar_time, upsert_bars
from mlops.data.synthetic import generate_bars, next_start
from mlops.data.validation import OHLCV
from mlops.errors import ConflictError
from mlops.settings import Settings


def generate_market(
    settings: Settings,
    *,
    symbol: str,
    n_bars: int = 5000,
    seed: int = 42,
    regime: str | None = None,
    append: bool = False,
    replace: bool = False,
    interval: str = "1d",
    start: str = "2005-01-03",
) -> ImportResult:
    """Generate `n_bars` synthetic bars for `symbol`. With `append`, they continue from the last
    stored bar (its time and close); the seed is mixed with the bar count so appends differ."""
    db = settings.app_db_url
    last = last_bar_time(db, symbol)
    if last is not None and not (append or replace):
        raise ConflictError(
            f"{symbol} already has {count_bars(db, symbol)} bars: pass --append to add bars "
            "after them or --replace to start over"
        )
    if last is not None and append:
        sources = next((s.sources for s in bars_status(db) if s.symbol == symbol), "")
        if any(not src.startswith("synthetic:") for src in sources.split(",") if src):
            raise ConflictError(
                f"{symbol} holds imported market data ({sources}): synthetic bars are only "
                "appended to synthetic symbols; generate into another symbol"
            )
    if replace:
        delete_symbol(db, symbol)
        last = None
    if last is not None:
        seed = seed + count_bars(db, symbol)
        bars = generate_bars(
            n_bars,
            seed=seed,
            start=next_start(pd.Timestamp(last[0]), interval),
            start_price=last[1],
            regime=regime,
            interval=interval,
        )
    else:
        bars = generate_bars(n_bars, seed=seed, start=start, regime=regime, interval=interval)
    label = f"synthetic:{regime or 'switching'}"
    return upsert_bars(db, symbol, bars[list(OHLCV)], source=label)
