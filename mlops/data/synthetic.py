"""A deterministic synthetic market: regime-switching returns with GJR-GARCH volatility clustering (a
down move raises the next bar's variance more than an up move: the leverage effect of equity markets)
and a weak predictable component (AR(1) in standardised shocks), so models have something real, but
small, to learn: market_insight the direction (the AR term), risk_assessor the tails that the 20-bar
volatility does not yet see (variance jumps after down moves). Same seed, same bars."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import numpy as np
import pandas as pd

from mlops.errors import InvalidRequestError


@dataclass(frozen=True)
class Regime:
    daily_vol: float
    drift: float


REGIMES: dict[str, Regime] = {
    "calm": Regime(daily_vol=0.006, drift=0.0005),
    "normal": Regime(daily_vol=0.011, drift=0.0003),
    "volatile": Regime(daily_vol=0.025, drift=-0.0003),
}
STAY_PROBABILITY = 0.985
AR_COEFFICIENT = 0.15
# h = ω + (α + γ·1[z < 0])·z² + β·h, with ω = 1 − α − γ/2 − β so that the unconditional variance is 1.
GARCH_ALPHA, GARCH_LEVERAGE, GARCH_BETA = 0.01, 0.18, 0.88


def _timestamps(start: pd.Timestamp, n: int, interval: str) -> pd.DatetimeIndex:
    if interval == "1d":
        return pd.bdate_range(start=start, periods=n, tz="UTC", name="ts")
    try:
        step = pd.Timedelta(interval)
    except ValueError as exc:
        raise InvalidRequestError(f"interval {interval!r} is not a duration like 1d, 1h or 15min") from exc
    if step <= pd.Timedelta(0):
        raise InvalidRequestError(f"interval must be positive, got {interval!r}")
    return pd.date_range(start=start, periods=n, freq=step, tz="UTC", name="ts")


def generate_bars(
    n_bars: int,
    *,
    seed: int = 42,
    start: datetime | str = "2005-01-03",
    start_price: float = 100.0,
    regime: str | None = None,
    interval: str = "1d",
) -> pd.DataFrame:
    """OHLCV bars indexed by UTC timestamp. `regime=None` switches between regimes (Markov chain);
    a named regime holds it for every bar (used to make drift happen on purpose)."""
    if n_bars < 1:
        raise InvalidRequestError(f"n_bars must be >= 1, got {n_bars}")
    if regime is not None and regime not in REGIMES:
        raise InvalidRequestError(f"unknown regime {regime!r}; known regimes: {', '.join(REGIMES)}")
    if start_price <= 0:
        raise InvalidRequestError(f"start_price must be > 0, got {start_price}")
    rng = np.random.default_rng(seed)
    ts = _timestamps(pd.Timestamp(start), n_bars, interval)
    # Scale daily parameters to the bar interval (sqrt-time for vol, linear for drift).
    bar_days = 1.0 if interval == "1d" else pd.Timedelta(interval) / pd.Timedelta(days=1)
    names = list(REGIMES)
    state = names.index(regime) if regime else names.index("normal")
    shocks = rng.standard_normal(n_bars)
    switch = rng.random(n_bars)
    jump_to = rng.integers(0, len(names), n_bars)
    returns = np.empty(n_bars)
    regimes = np.empty(n_bars, dtype=object)
    h, z_prev = 1.0, 0.0
    for i in range(n_bars):
        if regime is None and switch[i] > STAY_PROBABILITY:
            state = int(jump_to[i])
        params = REGIMES[names[state]]
        shock = GARCH_ALPHA + GARCH_LEVERAGE * (z_prev < 0)
        h = (1 - GARCH_ALPHA - GARCH_LEVERAGE / 2 - GARCH_BETA) + shock * z_prev**2 + GARCH_BETA * h
        sigma = params.daily_vol * np.sqrt(h * bar_days)
        z = AR_COEFFICIENT * z_prev + np.sqrt(1 - AR_COEFFICIENT**2) * shocks[i]
        returns[i] = params.drift * bar_days + sigma * z
        regimes[i] = names[state]
        z_prev = z
    close = start_price * np.exp(np.cumsum(returns))
    prev_close = np.concatenate([[start_price], close[:-1]])
    bar_vol = np.abs(returns) + 1e-4
    open_ = prev_close * np.exp(rng.normal(0.0, 0.15, n_bars) * bar_vol)
    high = np.maximum(open_, close) * np.exp(np.abs(rng.normal(0.0, 0.5, n_bars)) * bar_vol)
    low = np.minimum(open_, close) * np.exp(-np.abs(rng.normal(0.0, 0.5, n_bars)) * bar_vol)
    volume = np.round(1e6 * np.exp(0.3 * rng.standard_normal(n_bars) + 8.0 * np.abs(returns)))
    return pd.DataFrame(
        {"open": open_, "high": high, "low": low, "close": close, "volume": volume, "regime": regimes},
        index=ts,
    )


def next_start(last_ts: pd.Timestamp, interval: str) -> pd.Timestamp:
    """The first timestamp after `last_ts` on the generator's calendar."""
    if interval == "1d":
        return last_ts + pd.offsets.BDay(1)
    return last_ts + pd.Timedelta(interval)
