"""Background jobs: list, read (poll), cancel."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query

from app.deps import Operator, SettingsDep, Viewer, actor
from app.errors import documented
from app.schemas import MAX_ID, AgentType, JobStatus, Page, page
from mlops.jobs import JobRecord, cancel_job, get_job, list_jobs

router = APIRouter(prefix="/api/mlops", tags=["jobs"], responses=documented(401, 403, 422))


@router.get("/jobs", response_model=Page[JobRecord], summary="Jobs, newest first")
def jobs(
    settings: SettingsDep,
    _: Viewer,
    kind: Annotated[str | None, Query(pattern="^(retrain|sweep|drift|validation|watch)$")] = None,
    status: JobStatus | None = None,
    agent_type: AgentType | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
) -> Page[JobRecord]:
    rows = list_jobs(settings, kind=kind, status=status, agent=agent_type, limit=limit, offset=offset)
    return page(rows, limit, offset)


@router.get("/jobs/{job_id}", response_model=JobRecord, responses=documented(404), summary="One job (poll this)")
def job(settings: SettingsDep, _: Viewer, job_id: Annotated[int, Path(ge=1, le=MAX_ID)]) -> JobRecord:
    return get_job(settings, job_id)


@router.post(
    "/jobs/{job_id}/cancel",
    response_model=JobRecord,
    responses=documented(404, 409),
    summary="Cancel a queued job, or stop a running one (its work ends cleanly: run failed, sweep stopped)",
)
def cancel(settings: SettingsDep, who: Operator, job_id: Annotated[int, Path(ge=1, le=MAX_ID)]) -> JobRecord:
    return cancel_job(settings, job_id, actor=actor(who))
