"""Read side of drift by check, for views that draw many checks at once (the dashboard's Drift page): the
newest checks of an agent with their per-kind summary rows, and the per-feature cells of several checks for
a feature × check heatmap. Each is one bounded query, never one query per check; like drift_history it
reads the app DB alone (no numpy, no MLflow)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select

from drift.status import SEVERITY  # plain Python: no numpy behind it
from mlops.db import session_scope
from mlops.db.models import DriftMetric
from mlops.errors import InvalidRequestError, UnknownAgentError
from mlops.pipeline.drift_history import DriftHistoryRow, drift_history
from mlops.settings import AGENTS, Settings

KINDS = ("feature", "prediction", "performance")
MAX_CHECKS = 200  # checks per request: a heatmap wider than this is unreadable, and the query stays bounded


@dataclass(frozen=True)
class DriftCheckSummary:
    """One check: when, which model version, its worst status, and the summary row of each kind it has."""

    check_id: str
    agent_type: str
    model_version: int | None
    computed_at: datetime
    status: str
    kinds: dict[str, DriftHistoryRow]


@dataclass(frozen=True)
class FeatureCell:
    """One feature's statistic in one check (a heatmap cell), with the test behind its status."""

    check_id: str
    feature: str
    statistic: str
    value: float | None
    warning: float
    critical: float
    status: str
    adjusted_p: float | None


def recent_checks(settings: Settings, *, agent: str, limit: int = 100) -> list[DriftCheckSummary]:
    """The newest `limit` checks of `agent`, newest first, from their summary rows (one per kind)."""
    if not 1 <= limit <= MAX_CHECKS:
        raise InvalidRequestError(f"limit must be between 1 and {MAX_CHECKS} checks, got {limit}")
    rows = drift_history(settings, agent=agent, limit=limit * len(KINDS))
    grouped: dict[str, list[DriftHistoryRow]] = {}
    for row in rows:  # newest first, and a check's rows are written together: dicts keep that order
        grouped.setdefault(row.check_id, []).append(row)
    return [_summary(check_rows) for check_rows in list(grouped.values())[:limit]]


def _summary(rows: list[DriftHistoryRow]) -> DriftCheckSummary:
    first = rows[0]
    return DriftCheckSummary(
        check_id=first.check_id,
        agent_type=first.agent_type,
        model_version=first.model_version,
        computed_at=max(r.computed_at for r in rows),
        status=max((r.status for r in rows), key=lambda s: SEVERITY.get(s, 0)),
        kinds={r.drift_type: r for r in rows},
    )


def feature_cells(settings: Settings, *, agent: str, check_ids: Sequence[str]) -> list[FeatureCell]:
    """The per-feature rows of `check_ids` (checks of `agent`), as heatmap cells."""
    if agent not in AGENTS:
        raise UnknownAgentError(agent, AGENTS)
    if len(check_ids) > MAX_CHECKS:
        raise InvalidRequestError(f"at most {MAX_CHECKS} checks at once, got {len(check_ids)}")
    if not check_ids:
        return []
    query = (
        select(
            DriftMetric.check_id,
            DriftMetric.feature,
            DriftMetric.statistic,
            DriftMetric.value,
            DriftMetric.warning_threshold,
            DriftMetric.critical_threshold,
            DriftMetric.status,
            DriftMetric.details,
        )
        .where(
            DriftMetric.agent_type == agent,
            DriftMetric.drift_type == "feature",
            DriftMetric.feature.is_not(None),
            DriftMetric.check_id.in_(list(check_ids)),
        )
        .order_by(DriftMetric.id)
    )
    with session_scope(settings.app_db_url) as session:
        return [
            FeatureCell(
                check_id=r.check_id,
                feature=r.feature,
                statistic=r.statistic,
                value=r.value,
                warning=r.warning_threshold,
                critical=r.critical_threshold,
                status=r.status,
                adjusted_p=(r.details or {}).get("adjusted_p"),
            )
            for r in session.execute(query)
        ]
