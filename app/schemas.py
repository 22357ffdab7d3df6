"""Request bodies and the API's own response shapes. Records the services return (pydantic models built
from rows with `from_attributes`, or dataclasses) are used as response models directly: one definition,
documented in OpenAPI by FastAPI."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Generic, Literal, TypeVar

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

AgentType = Literal["market_insight", "risk_assessor"]
RunStatus = Literal["queued", "running", "succeeded", "rejected", "failed"]
JobStatus = Literal["queued", "running", "succeeded", "rejected", "failed", "cancelled"]
DriftStatus = Literal["ok", "warning", "critical", "insufficient"]
Role = Literal["viewer", "operator", "admin"]
Symbol = Field(default=None, min_length=1, max_length=32, pattern=r"^[A-Za-z0-9._\-=^/]+$")

T = TypeVar("T")
MAX_ID = 2**31 - 1  # ids and versions are 32-bit integers on PostgreSQL
Id = Annotated[int, Field(ge=1, le=MAX_ID)]


def _storable(value: datetime) -> datetime:
    if not 1900 <= value.year <= 2999:
        raise ValueError("must be between the years 1900 and 2999")
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


Timestamp = Annotated[datetime, AfterValidator(_storable)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ErrorBody(BaseModel):
    error: str = Field(description="Short machine-readable code, e.g. not_found, conflict, validation_error")
    message: str = Field(description="What was wrong, in words")
    details: list[dict[str, Any]] | None = None


class Page(BaseModel, Generic[T]):
    items: list[T]
    limit: int
    offset: int
    next_offset: int | None = Field(description="Offset of the next page, or null on the last page")


def page(items: list[T], limit: int, offset: int) -> Page[T]:
    return Page[T](items=items, limit=limit, offset=offset, next_offset=offset + limit if len(items) == limit else None)


class RetrainRequest(Strict):
    agent_type: AgentType
    symbol: str | None = Symbol
    hyperparameters: dict[str, float | int] | None = Field(
        default=None, description='Overrides of the agent\'s defaults, e.g. {"learning_rate": 0.005}'
    )


class JobAccepted(BaseModel):
    job_id: int
    status: JobStatus
    kind: str
    agent_type: str | None
    model_run_id: int | None = None
    sweep_id: int | None = None
    poll: str = Field(description="URL to poll for the job's state")


class SweepRequest(Strict):
    agent_type: AgentType
    parameter_grid: dict[str, list[Any]] | None = Field(
        default=None,
        description='Values per hyperparameter, e.g. {"learning_rate": [0.001, 0.01], "batch_size": [32, 64]}; '
        "omitted: the agent's default grid",
    )
    name: str | None = Field(default=None, min_length=1, max_length=128)
    symbol: str | None = Symbol
    objective: str = "sharpe_ratio"
    direction: Literal["maximize", "minimize"] | None = None
    workers: int | None = Field(default=None, ge=1, le=64)
    time_budget_seconds: float | None = Field(default=None, gt=0, le=7 * 24 * 3600)


class DriftRequest(Strict):
    agent_type: AgentType | None = Field(default=None, description="One agent, or null for every agent with a champion")
    window_bars: int | None = Field(default=None, ge=1, le=1_000_000)


class PromoteRequest(Strict):
    agent_type: AgentType
    version: Id
    reason: str = Field(default="manual promotion", max_length=1000)
    force: bool = Field(default=False, description="Deploy even a version the validation gate rejected")


class RollbackRequest(Strict):
    agent_type: AgentType
    to_version: Id | None = Field(default=None, description="Default: the previous champion")
    reason: str = Field(default="", max_length=1000)
    force: bool = Field(default=False, description="Roll back even to a version the validation gate rejected")


class FlagUpdate(Strict):
    enabled: bool


class KeyRequest(Strict):
    name: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._@:\-]+$")
    role: Role


class CreatedKeyResponse(BaseModel):
    key: str = Field(description="The API key: shown once, store it now")
    name: str
    role: str
    prefix: str
    created_at: datetime


class Bar(Strict):
    timestamp: Timestamp
    open: float
    high: float
    low: float
    close: float
    volume: float = Field(ge=0)


class BarsRequest(Strict):
    symbol: str = Field(min_length=1, max_length=32, pattern=r"^[A-Za-z0-9._\-=^/]+$")
    bars: list[Bar] = Field(min_length=1, max_length=100_000)


class PredictRequest(Strict):
    agent_type: AgentType
    alias: Literal["champion", "challenger"] = "champion"
    features: list[dict[str, float]] | None = Field(
        default=None, max_length=10_000, description="Rows of the 13 feature values (see GET /api/mlops/features)"
    )
    symbol: str | None = Field(
        default=None, min_length=1, max_length=32, description="Predict on the newest bars of this symbol instead"
    )
    n_bars: int = Field(default=1, ge=1, le=5000)


class HealthCheck(BaseModel):
    ok: bool
    latency_ms: float
    detail: str | None = None


class Health(BaseModel):
    status: Literal["ok", "degraded"]
    checks: dict[str, HealthCheck]
    version: str
