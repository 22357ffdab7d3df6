"""Running the registered drift statistics (drift.registry) on a window, with the thresholds configured
in Settings, and classifying the check: its status is the worst of the statistics' summary rows."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from drift.registry import STATISTICS, Measurement, Statistic, Window
from drift.status import Rule, worst
from mlops.pipeline.drift.records import DriftRow
from mlops.settings import Settings


def _row(statistic: Statistic[Any], rule: Rule, measurement: Measurement) -> DriftRow:
    return DriftRow(
        drift_type=statistic.drift_type,
        statistic=statistic.name,
        feature=measurement.feature,
        value=measurement.value,
        warning=rule.warning,
        critical=rule.critical,
        status=measurement.status,
        details=dict(measurement.details),
    )


def measure(settings: Settings, baseline: Mapping[str, Any], window: Window) -> list[DriftRow]:
    """Each registered statistic's rows, in the registry's order (per-feature rows before their summary)."""
    rows: list[DriftRow] = []
    for statistic in STATISTICS.values():
        rule = statistic.rule(settings)
        rows += [_row(statistic, rule, m) for m in statistic.measure(baseline, window, rule)]
    return rows


def insufficient(settings: Settings, window_bars: int) -> list[DriftRow]:
    """A window too short to judge: one `insufficient` summary row per statistic, saying why."""
    why = Measurement(
        None,
        None,
        "insufficient",
        {"reason": f"{window_bars} bars in the window; at least {settings.drift_min_window_bars} needed"},
    )
    return [_row(statistic, statistic.rule(settings), why) for statistic in STATISTICS.values()]


def check_status(rows: list[DriftRow]) -> str:
    """The check's status: the worst of its summary rows (a feature's status already counts in its summary)."""
    return worst([r.status for r in rows if r.feature is None])
