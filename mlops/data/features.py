"""Features, forward returns and chronological splits. One pipeline for both agents.

Every feature at bar t uses bars up to and including t only (tested: truncating the series after t
never changes row t). Labels look forward by the agent's horizon, so splits are separated by a purge
gap of that horizon: no training label overlaps a validation or test bar.

Execution (`fill`): a position decided on bar t's close is filled at the open of t+1 and held to the
open of t+2 (`open`, the default), or, optimistically, at the close the features read (`close`: t → t+1).
Labels measure the same return the position earns, so they start at the fill too.

Three data artefacts are handled here rather than left to the model:
- a bar that comes more than 1.5 typical steps after the previous one (a weekend in FX, a hole in the
  data) opens with a jump that happened while the market was closed: the volatility features use that
  bar's in-session return (close / open) so that one weekend jump does not inflate vol_5..vol_60 for
  60 bars; ret_1/ret_5/ret_20 keep the whole move (a held position bears it) and `gap` carries the jump;
- when the open equals the previous close on most bars so far (an artefact of some daily sources and of
  continuous FX feeds), `gap` carries no information and is set to 0 (the column stays: names are stable);
- zero-volume bars are left out of `volume_z`'s rolling mean and deviation and score 0, so one empty
  bar neither spikes the z-score nor distorts the next 20.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd

from mlops.data.calendar import spans_several_steps
from mlops.errors import DataValidationError, InvalidRequestError

Fill = Literal["open", "close"]
FILLS: tuple[Fill, ...] = ("open", "close")

FEATURE_NAMES: tuple[str, ...] = (
    "ret_1",
    "ret_5",
    "ret_20",
    "vol_5",
    "vol_20",
    "vol_60",
    "rsi_14",
    "macd_hist",
    "bb_pctb",
    "hl_range",
    "gap",
    "volume_z",
    "ma_dist_20",
)
WARMUP_BARS = 60  # the longest window above; earlier rows are incomplete and dropped
GAP_UNINFORMATIVE_SHARE = 0.5  # gap is zeroed while more than this share of opens equal the previous close


def _rsi(close: pd.Series, window: int = 14) -> pd.Series:
    delta = close.diff()
    gain = delta.clip(lower=0).ewm(alpha=1 / window, adjust=False).mean()
    loss = (-delta.clip(upper=0)).ewm(alpha=1 / window, adjust=False).mean()
    total = gain + loss
    return (100 * gain / total.where(total > 0)).fillna(50.0)


def open_is_previous_close(bars: pd.DataFrame) -> pd.Series:
    """Per bar, whether its open equals the previous bar's close (to 1e-9 relative)."""
    previous = bars["close"].shift(1)
    return pd.Series(np.isclose(bars["open"], previous, rtol=1e-9, atol=0.0), index=bars.index) & previous.notna()


def gap_is_uninformative(bars: pd.DataFrame) -> pd.Series:
    """Per bar, whether the open equalled the previous close on most bars up to this one (causal)."""
    equal = open_is_previous_close(bars).astype(float).iloc[1:]
    share = equal.expanding().mean().reindex(bars.index)
    return share > GAP_UNINFORMATIVE_SHARE


def volume_zscore(volume: pd.Series, window: int = 20) -> pd.Series:
    """z-score of log volume against the previous `window` non-empty bars; zero-volume bars score 0
    and are left out of the statistics (FX and thin markets report empty bars)."""
    log_vol = np.log1p(volume.where(volume > 0))
    mean = log_vol.rolling(window, min_periods=window // 2).mean()
    sd = log_vol.rolling(window, min_periods=window // 2).std()
    return ((log_vol - mean) / sd.where(sd > 0)).fillna(0.0)


def ohlcv_columns(bars: pd.DataFrame) -> pd.DataFrame:
    """`bars` with its OHLCV columns under the names the pipeline uses, whatever their case or padding
    (`Close`, ` close `: the spellings the importer accepts), or a DataValidationError naming what is
    missing and what is there."""
    wanted = ("open", "high", "low", "close", "volume")
    if all(c in bars.columns for c in wanted):
        return bars
    by_name = {str(c).strip().lower(): c for c in bars.columns}
    missing = [c for c in wanted if c not in by_name]
    if missing:
        found = ", ".join(map(str, bars.columns)) or "none"
        raise DataValidationError("bars", [f"missing column(s) {', '.join(missing)} (columns: {found})"])
    return bars.rename(columns={by_name[c]: c for c in wanted})


def compute_features(bars: pd.DataFrame) -> pd.DataFrame:
    """Feature frame aligned with `bars` (same index); the first WARMUP_BARS rows are dropped."""
    bars = ohlcv_columns(bars)
    close, high, low, open_ = bars["close"], bars["high"], bars["low"], bars["open"]
    log_close = np.log(close)
    ret = log_close.diff()
    wide = pd.Series(spans_several_steps(pd.DatetimeIndex(bars.index)), index=bars.index)
    session_ret = ret.where(~wide, np.log(close / open_))
    ma20 = close.rolling(20).mean()
    sd20 = close.rolling(20).std()
    macd = close.ewm(span=12, adjust=False).mean() - close.ewm(span=26, adjust=False).mean()
    band = 4 * sd20
    gap = pd.Series(np.log(open_ / close.shift(1)), index=bars.index).mask(gap_is_uninformative(bars), 0.0)
    features = pd.DataFrame(
        {
            "ret_1": ret,
            "ret_5": log_close.diff(5),
            "ret_20": log_close.diff(20),
            "vol_5": session_ret.rolling(5).std(),
            "vol_20": session_ret.rolling(20).std(),
            "vol_60": session_ret.rolling(60).std(),
            "rsi_14": _rsi(close),
            "macd_hist": (macd - macd.ewm(span=9, adjust=False).mean()) / close,
            "bb_pctb": ((close - (ma20 - 2 * sd20)) / band.where(band > 0)).fillna(0.5),
            "hl_range": np.log(high / low),
            "gap": gap,
            "volume_z": volume_zscore(bars["volume"]),
            "ma_dist_20": close / ma20 - 1,
        },
        index=bars.index,
    )
    return features.iloc[WARMUP_BARS:]


def check_fill(fill: str) -> Fill:
    if fill not in FILLS:
        raise InvalidRequestError(f"unknown execution fill {fill!r}; fills: {', '.join(FILLS)}")
    return fill


def entry_prices(bars: pd.DataFrame, fill: Fill) -> pd.Series:
    """The price at which a position decided on bar t's close is entered, indexed by t."""
    return bars["open"].shift(-1) if check_fill(fill) == "open" else bars["close"]


def label_purge(horizon: int, fill: Fill) -> int:
    """Rows between splits so that no label of one split reads a bar of the next: a label at t reads
    the bar t + horizon, or t + horizon + 1 when it starts at the next open."""
    return horizon + (1 if check_fill(fill) == "open" else 0)


def forward_returns(bars: pd.DataFrame, horizon: int, fill: Fill = "open") -> pd.Series:
    """Log return a position decided at t earns over `horizon` bars from its fill: open t+1 → open
    t+1+horizon (`open`) or close t → close t+horizon (`close`); NaN where the future is not there yet."""
    log_entry = np.log(entry_prices(bars, fill))
    return log_entry.shift(-horizon) - log_entry


def next_bar_returns(bars: pd.DataFrame, fill: Fill = "open") -> pd.Series:
    """Simple return earned by a position decided on bar t's close and held one bar: open t+1 → open
    t+2 (`open`) or close t → close t+1 (`close`). A bar across a closure keeps the whole move: a held
    position bears it."""
    entry = entry_prices(bars, fill)
    return entry.shift(-1) / entry - 1


@dataclass(frozen=True)
class Splits:
    train: np.ndarray
    validation: np.ndarray
    test: np.ndarray
    purge: int

    def sizes(self) -> dict[str, int]:
        return {"train": len(self.train), "validation": len(self.validation), "test": len(self.test)}


def chronological_splits(n_rows: int, purge: int, train_share: float = 0.70, validation_share: float = 0.15) -> Splits:
    """Positional indices for train / validation / test, in time order, `purge` rows dropped
    between consecutive splits so that labels of one split never see bars of the next."""
    usable = n_rows - 2 * purge
    n_train = int(usable * train_share)
    n_val = int(usable * validation_share)
    train = np.arange(0, max(n_train, 0))
    val_start = n_train + purge
    validation = np.arange(val_start, val_start + max(n_val, 0))
    test_start = val_start + n_val + purge
    test = np.arange(min(test_start, n_rows), n_rows)
    return Splits(train, validation, test, purge)
