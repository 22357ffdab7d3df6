"""Read side of drift: the stored drift rows and the Evidently reports of past checks, from the app DB
alone. Kept apart from the check itself (numpy, pandas, scipy, MLflow) so that the API starts and
`skippy ai drift-history` answers without loading those."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select

from mlops.db import session_scope
from mlops.db.models import DriftMetric
from mlops.errors import InvalidRequestError, NotFoundError, UnknownAgentError
from mlops.settings import AGENTS, Settings


@dataclass(frozen=True)
class DriftHistoryRow:
    check_id: str
    agent_type: str
    model_version: int | None
    drift_type: str
    feature: str | None
    statistic: str
    value: float | None
    warning: float
    critical: float
    status: str
    computed_at: datetime
    details: dict[str, Any]
    # Why the status is what it is (None when the row has no test: older baselines, insufficient data).
    # A feature summary row carries its deciding feature's numbers.
    deciding_feature: str | None = None
    p_value: float | None = None
    adjusted_p: float | None = None  # Benjamini–Hochberg across features (feature rows)
    null_percentile: float | None = None  # where the value falls in its bootstrap null, 0–100


def test_numbers(feature: str | None, drift_type: str, details: dict[str, Any]) -> dict[str, Any]:
    """The test's numbers of a stored row, from its details (the summary row's from its deciding feature)."""
    if drift_type == "feature" and feature is None:
        return {
            "deciding_feature": details.get("deciding_feature", details.get("worst_feature")),
            "p_value": details.get("deciding_p_value"),
            "adjusted_p": details.get("deciding_adjusted_p"),
            "null_percentile": details.get("deciding_null_percentile"),
        }
    return {
        "p_value": details.get("p_value"),
        "adjusted_p": details.get("adjusted_p"),
        "null_percentile": details.get("null_percentile"),
    }


def drift_history(
    settings: Settings,
    *,
    agent: str | None = None,
    status: str | None = None,
    drift_type: str | None = None,
    check_id: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    include_features: bool = False,
    limit: int = 100,
    offset: int = 0,
) -> list[DriftHistoryRow]:
    """Stored drift rows, newest first. Without `include_features` only the per-kind summary rows."""
    query = select(DriftMetric).order_by(DriftMetric.id.desc()).limit(limit).offset(offset)
    if agent:
        if agent not in AGENTS:  # not agents.specs.get_spec: that would load numpy for a read
            raise UnknownAgentError(agent, AGENTS)
        query = query.where(DriftMetric.agent_type == agent)
    if status:
        query = query.where(DriftMetric.status == status)
    if drift_type:
        query = query.where(DriftMetric.drift_type == drift_type)
    if check_id:
        query = query.where(DriftMetric.check_id == check_id)
    if since:
        query = query.where(DriftMetric.computed_at >= since)
    if until:
        query = query.where(DriftMetric.computed_at <= until)
    if not include_features:
        query = query.where(DriftMetric.feature.is_(None))
    with session_scope(settings.app_db_url) as session:
        return [_history_row(r) for r in session.scalars(query)]


def _history_row(r: DriftMetric) -> DriftHistoryRow:
    return DriftHistoryRow(
        check_id=r.check_id,
        agent_type=r.agent_type,
        model_version=r.model_version,
        drift_type=r.drift_type,
        feature=r.feature,
        statistic=r.statistic,
        value=r.value,
        warning=r.warning_threshold,
        critical=r.critical_threshold,
        status=r.status,
        computed_at=r.computed_at,
        details=dict(r.details),
        **test_numbers(r.feature, r.drift_type, dict(r.details)),
    )


def report_path(settings: Settings, check_id: str, fmt: str) -> Path:
    """The Evidently report (html or json) written with drift check `check_id`."""
    if fmt not in ("html", "json"):
        raise InvalidRequestError(f"report format must be html or json, got {fmt!r}")
    if not check_id.isalnum():
        raise NotFoundError(f"no drift check {check_id!r}")
    with session_scope(settings.app_db_url) as session:
        found = session.scalar(select(DriftMetric.id).where(DriftMetric.check_id == check_id).limit(1))
    if found is None:
        raise NotFoundError(f"no drift check {check_id!r}")
    path = settings.home / "reports" / "drift" / check_id / f"report.{fmt}"
    if not path.is_file():
        raise NotFoundError(
            f"drift check {check_id} has no {fmt} report (reports are off with SKIPPY_DRIFT_REPORT=false, "
            "or the report failed; see the check's details)"
        )
    return path
