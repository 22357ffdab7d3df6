"""What a drift check records: one `drift_metrics` row per statistic (and per feature), and, when the
window was long enough to measure, the champion's live Sharpe in `model_performance_history`."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from mlops.db import session_scope
from mlops.db.models import DriftMetric, ModelPerformanceHistory
from mlops.pipeline.drift.window import StoredBaseline
from mlops.settings import Settings


@dataclass(frozen=True)
class DriftRow:
    drift_type: str
    statistic: str
    feature: str | None
    value: float | None
    warning: float
    critical: float
    status: str
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class DriftCheck:
    check_id: str
    agent_type: str
    model_version: int
    symbol: str
    status: str  # worst of the three kinds
    window_bars: int
    current_start: datetime | None
    current_end: datetime | None
    rows: list[DriftRow]
    report: dict[str, str] = field(default_factory=dict)

    def summary(self) -> list[DriftRow]:
        """One row per kind: the aggregate feature row, prediction and performance."""
        return [r for r in self.rows if r.feature is None]


def record_check(settings: Settings, check: DriftCheck, baseline: StoredBaseline) -> None:
    """Every row of `check` (the Evidently report's paths on its summary rows) and, when performance was
    measured, the live Sharpe it found — in one transaction."""
    with session_scope(settings.app_db_url) as session:
        for row in check.rows:
            session.add(
                DriftMetric(
                    check_id=check.check_id,
                    agent_type=check.agent_type,
                    model_version=check.model_version,
                    symbol=check.symbol,
                    drift_type=row.drift_type,
                    feature=row.feature,
                    statistic=row.statistic,
                    value=row.value,
                    warning_threshold=row.warning,
                    critical_threshold=row.critical,
                    status=row.status,
                    details=row.details | ({"report": check.report} if row.feature is None and check.report else {}),
                    reference_start=baseline.reference_start,
                    reference_end=baseline.reference_end,
                    current_start=check.current_start,
                    current_end=check.current_end,
                )
            )
        performance = next((r for r in check.summary() if r.drift_type == "performance"), None)
        if performance is not None and performance.status != "insufficient":
            session.add(_live_performance(check, performance))


def _live_performance(check: DriftCheck, row: DriftRow) -> ModelPerformanceHistory:
    sharpe = row.details["current_sharpe"]
    return ModelPerformanceHistory(
        agent_type=check.agent_type,
        model_version=check.model_version,
        window="live",
        window_start=check.current_start,
        window_end=check.current_end,
        n_samples=row.details["n"],
        sharpe_ratio=sharpe,  # no labels for the newest bars: Sharpe only
        metrics={
            "sharpe_ratio": sharpe,
            "sharpe_degradation": row.value,
            "probability_not_worse": row.details["probability_not_worse"],
            "p_value": row.details["p_value"],
            "check_id": check.check_id,
        },
    )
