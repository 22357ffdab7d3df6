"""Features, forward returns and chronological splits. One pipeline for both agents.

Every feature at bar t uses bars up to and including t only (tested: truncating the series after t
never changes row t). Labels look forward by the agent's horizon, so splits are separated by a purge
gap of that horizon: no training label overlaps a validation or test bar.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

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


def _rsi(close: pd.Series, window: int = 14) -> pd.Series:
    delta = close.diff()
    gain = delta.clip(lower=0).ewm(alpha=1 / window, adjust=False).mean()
    loss = (-delta.clip(upper=0)).ewm(alpha=1 / window, adjust=False).mean()
    total = gain + loss
    return (100 * gain / total.where(total > 0)).fillna(50.0)


def compute_features(bars: pd.DataFrame) -> pd.DataFrame:
    """Feature frame aligned with `bars` (same index); the first WARMUP_BARS rows are dropped."""
    close, high, low, open_ = bars["close"], bars["high"], bars["low"], bars["open"]
    log_close = np.log(close)
    ret = log_close.diff()
    ma20 = close.rolling(20).mean()
    sd20 = close.rolling(20).std()
    macd = close.ewm(span=12, adjust=False).mean() - close.ewm(span=26, adjust=False).mean()
    log_vol = np.log1p(bars["volume"])
    vol_sd = log_vol.rolling(20).std()
    band = 4 * sd20
    features = pd.DataFrame(
        {
            "ret_1": ret,
            "ret_5": log_close.diff(5),
            "ret_20": log_close.diff(20),
            "vol_5": ret.rolling(5).std(),
            "vol_20": ret.rolling(20).std(),
            "vol_60": ret.rolling(60).std(),
            "rsi_14": _rsi(close),
            "macd_hist": (macd - macd.ewm(span=9, adjust=False).mean()) / close,
            "bb_pctb": ((close - (ma20 - 2 * sd20)) / band.where(band > 0)).fillna(0.5),
            "hl_range": np.log(high / low),
            "gap": np.log(open_ / close.shift(1)),
            "volume_z": ((log_vol - log_vol.rolling(20).mean()) / vol_sd.where(vol_sd > 0)).fillna(0.0),
            "ma_dist_20": close / ma20 - 1,
        },
        index=bars.index,
    )
    return features.iloc[WARMUP_BARS:]


def forward_returns(bars: pd.DataFrame, horizon: int) -> pd.Series:
    """Log return from close t to close t+horizon (NaN for the last `horizon` bars)."""
    log_close = np.log(bars["close"])
    return log_close.shift(-horizon) - log_close


def next_bar_returns(bars: pd.DataFrame) -> pd.Series:
    """Simple return earned by holding from close t to close t+1: what a position taken at t earns."""
    return bars["close"].shift(-1) / bars["close"] - 1


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
