"""Numbers about a bar series that the data quality report shows: its calendar (closures, missing bars),
empty bars and an open that merely repeats the previous close. They flag, they do not fail: each has a
legitimate cause in real data (holidays, thin hours, continuous FX feeds), see `pipeline/quality.py`."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from mlops.data.calendar import infer_calendar
from mlops.data.features import GAP_UNINFORMATIVE_SHARE, gap_is_uninformative, open_is_previous_close


def bar_checks(bars: pd.DataFrame) -> dict[str, Any]:
    """JSON-ready checks of `bars` (sorted, UTC-indexed OHLCV)."""
    if len(bars) == 0:
        return {"bars": 0}
    index = pd.DatetimeIndex(bars.index)
    unique = index[~index.duplicated()]
    calendar = infer_calendar(unique)
    volume = bars["volume"].to_numpy(dtype=float)
    equal = open_is_previous_close(bars).to_numpy()[1:]
    zeroed = gap_is_uninformative(bars).to_numpy()
    return {
        "calendar": calendar.summary(),
        "zero_volume_bars": int(np.sum(volume == 0)),
        "zero_volume_share": float(np.mean(volume == 0)),
        "open_equals_previous_close_share": float(np.mean(equal)) if len(equal) else 0.0,
        "gap_uninformative_threshold": GAP_UNINFORMATIVE_SHARE,
        "gap_zeroed_bars": int(np.sum(zeroed)),
    }
