"""Hyperparameter sweeps: start one (202, runs in a worker process), list them, read their trials."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, status
from pydantic import BaseModel

from app.deps import Operator, SettingsDep, Viewer, actor
from app.errors import documented
from app.routers.runs import accepted
from app.schemas import MAX_ID, AgentType, JobAccepted, SweepRequest
from mlops.jobs import submit_sweep
from mlops.pipeline.sweeps import SweepRecord, TrialRecord, get_sweep, list_sweeps, ranked_trials

router = APIRouter(prefix="/api/mlops", tags=["sweeps"], responses=documented(401, 403, 422))


class SweepResults(BaseModel):
    sweep: SweepRecord
    trials: list[TrialRecord]


@router.post(
    "/sweep",
    response_model=JobAccepted,
    status_code=status.HTTP_202_ACCEPTED,
    responses=documented(404, 409),
    summary="Start a grid sweep (Optuna study + nested MLflow runs) in a worker process",
)
def start_sweep(request: Request, settings: SettingsDep, who: Operator, body: SweepRequest) -> JobAccepted:
    job = submit_sweep(
        settings,
        agent=body.agent_type,
        grid=body.parameter_grid,
        name=body.name,
        actor=actor(who),
        symbol=body.symbol,
        objective=body.objective,
        direction=body.direction,
        workers=body.workers,
        time_budget_seconds=body.time_budget_seconds,
    )
    return accepted(request, job)


@router.get("/sweeps", response_model=list[SweepRecord], summary="Sweeps, newest first")
def sweeps(
    settings: SettingsDep,
    _: Viewer,
    agent_type: AgentType | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> list[SweepRecord]:
    return list_sweeps(settings, agent_type, limit)


@router.get(
    "/sweep-results",
    response_model=list[SweepResults],
    responses=documented(404),
    summary="Trials ranked by the objective: one sweep (sweep_id) or the newest sweeps",
    description="Each sweep carries `selection`: its winner's validation Sharpe deflated for the number of "
    "trials it was picked from (Deflated Sharpe Ratio, with its inputs and a verdict in words).",
)
def sweep_results(
    settings: SettingsDep,
    _: Viewer,
    sweep_id: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
    agent_type: AgentType | None = None,
    limit: Annotated[int, Query(ge=1, le=50)] = 5,
) -> list[SweepResults]:
    chosen = [get_sweep(settings, sweep_id)] if sweep_id is not None else list_sweeps(settings, agent_type, limit)
    return [SweepResults(sweep=s, trials=ranked_trials(settings, s)) for s in chosen]
