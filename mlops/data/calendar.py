"""A series' own trading calendar, inferred from its timestamps: the bar spacing, the weekly session
pattern, which bars span a market closure and which expected bars are missing.

Why infer it: an exchange calendar would have to be configured per instrument, while the bars already
show when the market trades (FX: Sunday 21:00 to Friday 21:00 UTC; equities: weekdays; crypto: always).
A gap between two bars is a *closure* when every slot it skips is outside that weekly pattern (the first
FX bar after a weekend spans 49 h but nothing is missing), and *missing bars* when it skips slots the
series normally has. Holidays are weekdays without a bar, so a daily equity series shows ~3.5 % missing
slots (GOOG 2004–2013: 79 of 2,227 weekdays): that is why missing bars warn above a share, not at one.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

WEEK_SECONDS = 7 * 86400
SESSION_SHARE = 0.5  # a weekly slot belongs to the session when at least this share of weeks has a bar in it
CLOSURE_FACTOR = 1.5  # a bar more than 1.5 steps after the previous one spans more than one bar of time


@dataclass(frozen=True)
class BarCalendar:
    """What the timestamps say about the series' calendar."""

    step_seconds: float  # the typical (median) spacing of consecutive bars
    session_slots: frozenset[int]  # seconds since Monday 00:00 UTC at which the series normally has a bar
    spans_closure: np.ndarray  # per bar: it follows a gap that skips only out-of-session slots
    spans_missing: np.ndarray  # per bar: it follows a gap that skips at least one in-session slot
    n_missing: int  # in-session slots with no bar, between the first and the last bar
    n_expected: int  # in-session slots between the first and the last bar

    @property
    def missing_share(self) -> float:
        return self.n_missing / self.n_expected if self.n_expected else 0.0

    def summary(self) -> dict[str, float | int]:
        """JSON-ready numbers for the data quality report."""
        return {
            "step_seconds": self.step_seconds,
            "session_slots_per_week": len(self.session_slots),
            "closure_bars": int(self.spans_closure.sum()),
            "missing_bars": self.n_missing,
            "missing_bar_share": self.missing_share,
            "bars_after_missing": int(self.spans_missing.sum()),
        }


def _week_phase(index: pd.DatetimeIndex) -> np.ndarray:
    """Seconds since the Monday 00:00 UTC of each timestamp's week."""
    ns = index.tz_convert("UTC").asi8 if index.tz is not None else index.asi8
    seconds = ns // 1_000_000_000
    # 1970-01-01 was a Thursday: shift by 3 days so that phase 0 is Monday 00:00.
    return np.asarray((seconds + 3 * 86400) % WEEK_SECONDS)


def infer_calendar(index: pd.DatetimeIndex) -> BarCalendar:
    """The calendar of a sorted, duplicate-free index. Needs 3 bars or more to say anything."""
    n = len(index)
    empty = np.zeros(n, dtype=bool)
    if n < 3:
        return BarCalendar(0.0, frozenset(), empty, empty.copy(), 0, 0)
    seconds = index.asi8 // 1_000_000_000
    gaps = np.diff(seconds)
    step = float(np.median(gaps))
    if step <= 0:
        return BarCalendar(step, frozenset(), empty, empty.copy(), 0, 0)
    wide = np.flatnonzero(gaps > CLOSURE_FACTOR * step)
    if step >= WEEK_SECONDS:
        # Weekly or monthly bars have no weekly session and months differ in length: a gap of about k
        # steps is k - 1 missing bars, and nothing is a closure.
        skipped = np.rint(gaps[wide] / step).astype(int) - 1
        after = empty.copy()
        after[wide + 1] = skipped > 0
        n_missing = int(skipped.clip(min=0).sum())
        return BarCalendar(step, frozenset(), empty, after, n_missing, n - 1 + n_missing)
    phase = _week_phase(index)
    n_weeks = max((seconds[-1] - seconds[0]) / WEEK_SECONDS, 1.0)
    slots, counts = np.unique(phase, return_counts=True)
    session = frozenset(int(s) for s, c in zip(slots, counts, strict=True) if c >= SESSION_SHARE * n_weeks)
    # Expected bars: every `step` from the first bar on, kept when its weekly phase is in the session.
    grid = np.arange(seconds[0], seconds[-1] + 1, int(step), dtype=np.int64)
    grid_phase = (grid + 3 * 86400) % WEEK_SECONDS
    expected = grid[np.isin(grid_phase, np.fromiter(session, dtype=np.int64))] if session else grid
    present = np.isin(expected, seconds)
    missing = expected[~present]
    # A gap spans missing bars when an expected slot lies strictly inside it.
    spans_missing = empty.copy()
    spans_closure = empty.copy()
    if len(wide):
        inside = np.searchsorted(missing, seconds[wide + 1]) - np.searchsorted(missing, seconds[wide], side="right")
        spans_missing[wide + 1] = inside > 0
        spans_closure[wide + 1] = inside == 0
    return BarCalendar(step, session, spans_closure, spans_missing, len(missing), len(expected))


def spans_several_steps(index: pd.DatetimeIndex) -> np.ndarray:
    """Per bar, whether it comes more than 1.5 typical steps after the previous bar (a closure or a
    hole in the data), judged with bars up to that one only (the typical step is the running median of
    the spacings so far), so that features built on it never look ahead."""
    if len(index) < 2:
        return np.zeros(len(index), dtype=bool)
    gaps = pd.Series(np.diff(index.asi8).astype(float))
    running_step = gaps.expanding().median().to_numpy()
    wide = gaps.to_numpy() > CLOSURE_FACTOR * running_step
    return np.concatenate([[False], wide])
