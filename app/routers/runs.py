"""Model runs (the app DB mirror of MLflow runs), retrain, and the deployed models."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request, status

from app.deps import Operator, SettingsDep, Viewer, actor
from app.errors import documented
from app.schemas import MAX_ID, AgentType, JobAccepted, Page, RetrainRequest, RunStatus, page
from mlops.jobs import JobRecord, submit_retrain
from mlops.pipeline.queries import AgentModels, RunRecord, get_run, list_runs
from mlops.pipeline.serving import cached_models

router = APIRouter(prefix="/api/mlops", tags=["runs"], responses=documented(401, 403, 422))


def accepted(request: Request, job: JobRecord) -> JobAccepted:
    request.app.state.dispatcher.wake()
    return JobAccepted(
        job_id=job.id,
        status=job.status,
        kind=job.kind,
        agent_type=job.agent_type,
        model_run_id=job.model_run_id,
        sweep_id=job.sweep_id,
        poll=f"/api/mlops/jobs/{job.id}",
    )


@router.get("/model-runs", response_model=Page[RunRecord], summary="Retrain runs, newest first")
def model_runs(
    settings: SettingsDep,
    _: Viewer,
    agent_type: AgentType | None = None,
    status: RunStatus | None = None,
    trigger: Annotated[str | None, Query(max_length=16)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
) -> Page[RunRecord]:
    runs = list_runs(settings, agent=agent_type, status=status, trigger=trigger, limit=limit, offset=offset)
    return page(runs, limit, offset)


@router.get("/model-runs/{run_id}", response_model=RunRecord, responses=documented(404), summary="One run")
def model_run(settings: SettingsDep, _: Viewer, run_id: Annotated[int, Path(ge=1, le=MAX_ID)]) -> RunRecord:
    return get_run(settings, run_id)


@router.post(
    "/retrain",
    response_model=JobAccepted,
    status_code=status.HTTP_202_ACCEPTED,
    responses=documented(404, 409),
    summary="Retrain an agent in a worker process; poll the job or the model run",
)
def retrain(request: Request, settings: SettingsDep, who: Operator, body: RetrainRequest) -> JobAccepted:
    job = submit_retrain(
        settings,
        agent=body.agent_type,
        requested_by=actor(who),
        symbol=body.symbol,
        hyperparameters=body.hyperparameters,
    )
    return accepted(request, job)


@router.get(
    "/models",
    response_model=list[AgentModels],
    summary="Champion, challenger and recent versions per agent (from the MLflow registry, cached)",
)
def models(settings: SettingsDep, _: Viewer, agent_type: AgentType | None = None) -> list[AgentModels]:
    result: list[AgentModels] = cached_models(settings, agent_type)
    return result
