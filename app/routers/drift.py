"""Drift: run a check (202, in a worker process), read stored metrics, fetch a check's report."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query, Request, status
from fastapi.responses import FileResponse

from app.deps import Operator, SettingsDep, Viewer, actor
from app.errors import documented
from app.routers.runs import accepted
from app.schemas import SINGLE_LINE, AgentType, DriftRequest, DriftStatus, JobAccepted, Page, Timestamp, page
from mlops.jobs import submit_drift
from mlops.pipeline.drift_history import DriftHistoryRow, drift_history, report_path

router = APIRouter(prefix="/api/mlops", tags=["drift"], responses=documented(401, 403, 422))


@router.post(
    "/drift/calculate",
    response_model=JobAccepted,
    status_code=status.HTTP_202_ACCEPTED,
    responses=documented(409),
    summary="Check feature (KL), prediction (W1/sd) and performance (Sharpe) drift, each a test, in a worker process",
)
def calculate(request: Request, settings: SettingsDep, who: Operator, body: DriftRequest) -> JobAccepted:
    job = submit_drift(settings, agent=body.agent_type, actor=actor(who), window_bars=body.window_bars)
    return accepted(request, job)


@router.get(
    "/drift-metrics",
    response_model=Page[DriftHistoryRow],
    summary="Stored drift rows, newest first, each with the test behind its status (p, BH-adjusted p, null "
    "percentile; a feature summary names its deciding feature); include_features for every feature",
)
def drift_metrics(
    settings: SettingsDep,
    _: Viewer,
    agent_type: AgentType | None = None,
    status: DriftStatus | None = None,
    drift_type: Literal["feature", "prediction", "performance"] | None = None,
    check_id: Annotated[str | None, Query(max_length=64), SINGLE_LINE] = None,
    since: Timestamp | None = None,
    until: Timestamp | None = None,
    include_features: bool = False,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
) -> Page[DriftHistoryRow]:
    rows = drift_history(
        settings,
        agent=agent_type,
        status=status,
        drift_type=drift_type,
        check_id=check_id,
        since=since,
        until=until,
        include_features=include_features,
        limit=limit,
        offset=offset,
    )
    return page(rows, limit, offset)


@router.get(
    "/drift/{check_id}/report",
    response_class=FileResponse,
    responses={**documented(404), 200: {"content": {"text/html": {}, "application/json": {}}}},
    summary="The Evidently report written with a drift check (html or json)",
)
def report(
    settings: SettingsDep,
    _: Viewer,
    check_id: Annotated[str, Path(), SINGLE_LINE],
    format: Literal["html", "json"] = "html",
) -> FileResponse:
    path = report_path(settings, check_id, format)
    return FileResponse(path, media_type="text/html" if format == "html" else "application/json")
