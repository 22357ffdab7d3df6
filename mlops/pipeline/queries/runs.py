"""Model runs (retrains) as the app DB mirrors them: the API's and the CLI's most read list."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, field_validator
from sqlalchemy import func, select

from mlops.db.models import ModelRun
from mlops.db.session import create_db_engine
from mlops.errors import NotFoundError
from mlops.insights.records import InsightRecord, insights_for
from mlops.pipeline.queries.agents import known_agent
from mlops.settings import Settings


class RunRecord(BaseModel):
    model_config = ConfigDict(from_attributes=True, frozen=True)

    id: int
    agent_type: str
    status: str
    trigger: str
    requested_by: str
    symbol: str | None
    model_version: int | None
    deployment_status: str | None
    mlflow_run_id: str | None
    metrics: dict[str, Any]
    hyperparameters: dict[str, Any]
    error: str | None
    created_at: datetime
    finished_at: datetime | None
    validation: dict[str, Any] | None = None  # the promotion gate's verdict (mlops/pipeline/validation.py)

    @field_validator("metrics", "hyperparameters", mode="before")
    @classmethod
    def _empty_when_null(cls, value: Any) -> Any:
        return {} if value is None else value


class RunDetail(RunRecord):
    """One run as its detail view shows it: the run and its plain-language explanation (mlops/insights)."""

    insight: InsightRecord | None = None


RUN_COLUMNS = tuple(getattr(ModelRun, name) for name in RunRecord.model_fields)


def list_runs(
    settings: Settings,
    *,
    agent: str | None = None,
    status: str | None = None,
    trigger: str | None = None,
    limit: int = 50,
    offset: int = 0,
) -> list[RunRecord]:
    """Runs newest first, read as plain rows (the API's hottest list: no ORM objects to build)."""
    query = select(*RUN_COLUMNS).order_by(ModelRun.id.desc()).limit(limit).offset(offset)
    if agent:
        known_agent(agent)
        query = query.where(ModelRun.agent_type == agent)
    if status:
        query = query.where(ModelRun.status == status)
    if trigger:
        query = query.where(ModelRun.trigger == trigger)
    with create_db_engine(settings.app_db_url).connect() as conn:
        return [RunRecord.model_validate(r) for r in conn.execute(query)]


def runs_watermark(settings: Settings) -> tuple[Any, ...]:
    """Changes whenever a model run is added or changes: the newest id and update time, and the number
    of runs still queued/running (so a run ending moves it even if hosts' clocks disagree)."""
    query = select(
        func.max(ModelRun.id),
        func.max(ModelRun.updated_at),
        select(func.count()).where(ModelRun.status.in_(("queued", "running"))).scalar_subquery(),
    )
    with create_db_engine(settings.app_db_url).connect() as conn:
        return tuple(conn.execute(query).one())


def get_run(settings: Settings, run_id: int) -> RunRecord:
    with create_db_engine(settings.app_db_url).connect() as conn:
        row = conn.execute(select(*RUN_COLUMNS).where(ModelRun.id == run_id)).first()
    if row is None:
        raise NotFoundError(f"no model run with id {run_id}")
    return RunRecord.model_validate(row)


def get_run_detail(settings: Settings, run_id: int) -> RunDetail:
    """One run with its insight (None while the run has not ended, or for runs older than insights)."""
    run = get_run(settings, run_id)
    insight = insights_for(settings, "retrain", [run_id]).get(str(run_id))
    return RunDetail.model_validate(run.model_dump() | {"insight": insight})
