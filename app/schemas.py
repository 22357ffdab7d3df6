"""Request bodies and the API's own response shapes. Records the services return (pydantic models built
from rows with `from_attributes`, or dataclasses) are used as response models directly: one definition,
documented in OpenAPI by FastAPI."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any, Generic, Literal, TypeVar

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, GetCoreSchemaHandler, GetJsonSchemaHandler
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import PydanticCustomError, core_schema

from mlops.text import FREE_TEXT_PATTERN, SINGLE_LINE_PATTERN, control_character

AgentType = Literal["market_insight", "risk_assessor"]
RunStatus = Literal["queued", "running", "succeeded", "rejected", "failed"]
JobStatus = Literal["queued", "running", "succeeded", "rejected", "failed", "cancelled"]
DriftStatus = Literal["ok", "warning", "critical", "insufficient"]
Role = Literal["viewer", "operator", "admin"]


@dataclass(frozen=True)
class NoControlCharacters:
    """Refuses control characters (and lone surrogates) in a string with a 422 naming the field; the
    OpenAPI schema says so with a `pattern`. `multiline` lets tabs and line breaks through (free text)."""

    multiline: bool = False

    def check(self, value: Any) -> Any:
        if not isinstance(value, str):  # None in `str | None`
            return value
        problem = control_character(value, multiline=self.multiline)
        if problem is not None:
            allowed = " (tabs and line breaks are)" if self.multiline else ""
            raise PydanticCustomError(
                "control_character",
                "control characters are not accepted{allowed}; found {problem}",
                {"allowed": allowed, "problem": problem},
            )
        return value

    def __get_pydantic_core_schema__(self, source: Any, handler: GetCoreSchemaHandler) -> core_schema.CoreSchema:
        return core_schema.no_info_after_validator_function(self.check, handler(source))

    def __get_pydantic_json_schema__(
        self, schema: core_schema.CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        json_schema = handler(schema)
        json_schema.setdefault("pattern", FREE_TEXT_PATTERN if self.multiline else SINGLE_LINE_PATTERN)
        return json_schema


# After the type (and its Field/Query constraints, so their own messages stay): `Annotated[str | None,
# Query(max_length=64), SINGLE_LINE]`. SINGLE_LINE for identifiers, filters, symbols; FREE_TEXT for reasons.
SINGLE_LINE = NoControlCharacters()
FREE_TEXT = NoControlCharacters(multiline=True)
# Keys of a JSON object: the check without the schema pattern, which would turn `additionalProperties`
# (the documented value type) into `patternProperties`.
Key = Annotated[str, AfterValidator(SINGLE_LINE.check)]


def _no_control_characters_inside(value: Any) -> Any:
    """Strings anywhere in a JSON value (keys included), e.g. the values of a sweep grid."""
    if isinstance(value, str):
        return SINGLE_LINE.check(value)
    if isinstance(value, dict):
        for key, item in value.items():
            _no_control_characters_inside(key)
            _no_control_characters_inside(item)
    elif isinstance(value, list):
        for item in value:
            _no_control_characters_inside(item)
    return value


JsonValue = Annotated[Any, AfterValidator(_no_control_characters_inside)]
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
    symbol: str | None = Symbol  # the pattern refuses control characters
    hyperparameters: dict[Key, float | int] | None = Field(
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
    parameter_grid: dict[Key, list[JsonValue]] | None = Field(
        default=None,
        description='Values per hyperparameter, e.g. {"learning_rate": [0.001, 0.01], "batch_size": [32, 64]}; '
        "omitted: the agent's default grid",
    )
    name: Annotated[str | None, SINGLE_LINE] = Field(default=None, min_length=1, max_length=128)
    symbol: str | None = Symbol
    objective: Annotated[str, SINGLE_LINE] = "sharpe_ratio"
    direction: Literal["maximize", "minimize"] | None = None
    workers: int | None = Field(default=None, ge=1, le=64)
    time_budget_seconds: float | None = Field(default=None, gt=0, le=7 * 24 * 3600)


class DriftRequest(Strict):
    agent_type: AgentType | None = Field(default=None, description="One agent, or null for every agent with a champion")
    window_bars: int | None = Field(default=None, ge=1, le=1_000_000)


class PromoteRequest(Strict):
    agent_type: AgentType
    version: Id
    reason: Annotated[str, FREE_TEXT] = Field(default="manual promotion", max_length=1000)
    force: bool = Field(default=False, description="Deploy even a version the validation gate rejected")


class RollbackRequest(Strict):
    agent_type: AgentType
    to_version: Id | None = Field(default=None, description="Default: the previous champion")
    reason: Annotated[str, FREE_TEXT] = Field(default="", max_length=1000)
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
    features: list[dict[Key, float]] | None = Field(
        default=None, max_length=10_000, description="Rows of the 13 feature values (see GET /api/mlops/features)"
    )
    symbol: Annotated[str | None, SINGLE_LINE] = Field(
        default=None, min_length=1, max_length=32, description="Predict on the newest bars of this symbol instead"
    )
    n_bars: int = Field(default=1, ge=1, le=5000)


class HealthCheck(BaseModel):
    ok: bool
    latency_ms: float
    detail: str | None = None


class Health(BaseModel):
    status: Literal["ok", "degraded"]
    down: list[str] = Field(default_factory=list, description="The stores that cannot be reached now")
    checks: dict[str, HealthCheck]
    version: str
