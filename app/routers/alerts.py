"""Alerts: list, read, acknowledge. Channel targets and errors in the answers are masked."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query

from app.deps import Operator, SettingsDep, Viewer, actor
from app.errors import documented
from app.schemas import MAX_ID, SINGLE_LINE, AgentType, Page, page
from mlops.alerts import AlertRecord, acknowledge_alert, get_alert, list_alerts
from mlops.alerts.records import Severity

router = APIRouter(prefix="/api/mlops", tags=["alerts"], responses=documented(401, 403, 422))


@router.get("/alerts", response_model=Page[AlertRecord], summary="Alerts, most recently seen first")
def alerts(
    settings: SettingsDep,
    _: Viewer,
    severity: Severity | None = None,
    agent_type: AgentType | None = None,
    kind: Annotated[str | None, Query(min_length=1, max_length=64), SINGLE_LINE] = None,
    acknowledged: Annotated[bool | None, Query(description="false: open alerts only; true: acknowledged only")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
) -> Page[AlertRecord]:
    rows = list_alerts(
        settings,
        severity=severity,
        agent=agent_type,
        kind=kind,
        acknowledged=acknowledged,
        limit=limit,
        offset=offset,
    )
    return page(rows, limit, offset)


@router.get("/alerts/{alert_id}", response_model=AlertRecord, responses=documented(404), summary="One alert")
def alert(settings: SettingsDep, _: Viewer, alert_id: Annotated[int, Path(ge=1, le=MAX_ID)]) -> AlertRecord:
    return get_alert(settings, alert_id)


@router.post(
    "/alerts/{alert_id}/ack",
    response_model=AlertRecord,
    responses=documented(404, 409),
    summary="Acknowledge an alert: its repeats raise a new alert from now on",
)
def acknowledge(settings: SettingsDep, who: Operator, alert_id: Annotated[int, Path(ge=1, le=MAX_ID)]) -> AlertRecord:
    return acknowledge_alert(settings, alert_id, actor=actor(who))
