"""The scheduled jobs: their status, a manual trigger, the history of executions. Included before the
jobs router: `/jobs/status` and `/jobs/history` are not `/jobs/{job_id}`."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query, Request

from app.deps import Operator, SettingsDep, Viewer, actor
from app.errors import documented
from app.schemas import SINGLE_LINE, Page, page
from mlops.scheduler import (
    JOB_NAMES,
    ExecutionRecord,
    SchedulerStatus,
    execution_history,
    scheduler_status,
    trigger,
)

router = APIRouter(prefix="/api/mlops", tags=["scheduler"], responses=documented(401, 403, 422))
ExecutionStatus = Literal["running", "succeeded", "rejected", "failed", "skipped"]
JobName = Annotated[str, Path(min_length=1, max_length=64), SINGLE_LINE]


@router.get(
    "/jobs/status",
    response_model=SchedulerStatus,
    summary="The scheduler: on or off (and how to turn it on), each job's schedule, flag, next and last run",
)
def status(request: Request, settings: SettingsDep, _: Viewer) -> SchedulerStatus:
    scheduler = getattr(request.app.state, "scheduler", None)
    return scheduler_status(settings, running_here=scheduler is not None and scheduler.running)


@router.post(
    "/jobs/trigger/{job_type}",
    status_code=202,
    response_model=ExecutionRecord,
    responses=documented(404, 409),
    summary="Run a scheduled job now (its queued work: poll GET /api/mlops/jobs/{id} for each of job_ids). "
    "A job with nothing to do answers 202 with status `skipped` and the reason",
)
def trigger_job(settings: SettingsDep, who: Operator, job_type: JobName) -> ExecutionRecord:
    return trigger(settings, job_type, actor=actor(who))


@router.get("/jobs/history", response_model=Page[ExecutionRecord], summary="Executions of scheduled jobs, newest first")
def history(
    settings: SettingsDep,
    _: Viewer,
    job_name: Annotated[str | None, Query(pattern=f"^({'|'.join(JOB_NAMES)})$")] = None,
    status: ExecutionStatus | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
) -> Page[ExecutionRecord]:
    rows = execution_history(settings, job_name=job_name, status=status, limit=limit, offset=offset)
    return page(rows, limit, offset)
