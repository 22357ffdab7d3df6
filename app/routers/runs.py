"""Model runs (the app DB mirror of MLflow runs), retrain, and the deployed models (read from the app DB)."""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request, Response, status
from pydantic import TypeAdapter

from app.deps import Operator, SettingsDep, Viewer, actor
from app.errors import documented
from app.schemas import MAX_ID, SINGLE_LINE, AgentType, JobAccepted, Page, RetrainRequest, RunStatus, page
from mlops.jobs import JobRecord, submit_retrain
from mlops.pipeline.queries.models import AgentModels, list_models
from mlops.pipeline.queries.runs import RunDetail, RunRecord, get_run_detail, list_runs, runs_watermark

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


class PageCache:
    """Serialized pages of runs, reused until the runs' watermark moves (any run added or changed, in
    this process or another replica): the list the platform polls most costs one indexed query. Pages
    also expire after `max_age` seconds: `updated_at` is stamped when a write runs, not when it commits,
    so a write committing late with an older stamp would otherwise hide behind an unchanged watermark."""

    def __init__(self, size: int = 256, max_age: float = 2.0) -> None:
        self.size = size
        self.max_age = max_age
        self.pages: OrderedDict[tuple[Any, ...], tuple[tuple[Any, ...], float, bytes]] = OrderedDict()
        self.lock = threading.Lock()

    def get(self, key: tuple[Any, ...], mark: tuple[Any, ...]) -> bytes | None:
        with self.lock:
            hit = self.pages.get(key)
        if hit is None or hit[0] != mark or time.monotonic() - hit[1] > self.max_age:
            return None
        return hit[2]

    def put(self, key: tuple[Any, ...], mark: tuple[Any, ...], body: bytes) -> None:
        with self.lock:
            self.pages[key] = (mark, time.monotonic(), body)
            self.pages.move_to_end(key)
            while len(self.pages) > self.size:
                self.pages.popitem(last=False)


RUNS_PAGE = TypeAdapter(Page[RunRecord])


@router.get("/model-runs", response_model=Page[RunRecord], summary="Retrain runs, newest first")
def model_runs(
    request: Request,
    settings: SettingsDep,
    _: Viewer,
    agent_type: AgentType | None = None,
    status: RunStatus | None = None,
    trigger: Annotated[str | None, Query(max_length=16), SINGLE_LINE] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
) -> Response:
    cache: PageCache = request.app.state.runs_pages
    key = (agent_type, status, trigger, limit, offset)
    mark = runs_watermark(settings)
    body = cache.get(key, mark)
    if body is None:
        runs = list_runs(settings, agent=agent_type, status=status, trigger=trigger, limit=limit, offset=offset)
        body = RUNS_PAGE.dump_json(page(runs, limit, offset))
        cache.put(key, mark, body)
    return Response(body, media_type="application/json")


@router.get(
    "/model-runs/{run_id}",
    response_model=RunDetail,
    responses=documented(404),
    summary="One run, with its plain-language explanation (insight)",
)
def model_run(settings: SettingsDep, _: Viewer, run_id: Annotated[int, Path(ge=1, le=MAX_ID)]) -> RunDetail:
    return get_run_detail(settings, run_id)


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
        actor=actor(who),
        symbol=body.symbol,
        hyperparameters=body.hyperparameters,
    )
    return accepted(request, job)


@router.get(
    "/models",
    response_model=list[AgentModels],
    summary="Champion, challenger and recent versions per agent, with held-out metrics and validation verdicts",
)
def models(settings: SettingsDep, _: Viewer, agent_type: AgentType | None = None) -> list[AgentModels]:
    return list_models(settings, agent_type)
