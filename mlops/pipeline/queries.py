"""Read-side services: model runs from the app DB, deployed models from the registry."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import func, select

from mlops.agents.specs import get_spec
from mlops.db import session_scope
from mlops.db.models import FeatureImportance, ModelDeployment, ModelPerformanceHistory, ModelRun
from mlops.db.session import create_db_engine
from mlops.errors import NotFoundError
from mlops.settings import AGENTS, Settings


@dataclass(frozen=True)
class RunRecord:
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


RUN_COLUMNS = (
    ModelRun.id,
    ModelRun.agent_type,
    ModelRun.status,
    ModelRun.trigger,
    ModelRun.requested_by,
    ModelRun.symbol,
    ModelRun.model_version,
    ModelRun.deployment_status,
    ModelRun.mlflow_run_id,
    ModelRun.metrics,
    ModelRun.hyperparameters,
    ModelRun.error,
    ModelRun.created_at,
    ModelRun.finished_at,
    ModelRun.validation,
)


def _run(r: Any) -> RunRecord:
    return RunRecord(
        r.id,
        r.agent_type,
        r.status,
        r.trigger,
        r.requested_by,
        r.symbol,
        r.model_version,
        r.deployment_status,
        r.mlflow_run_id,
        dict(r.metrics or {}),
        dict(r.hyperparameters or {}),
        r.error,
        r.created_at,
        r.finished_at,
        dict(r.validation) if r.validation else None,
    )


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
        get_spec(agent)
        query = query.where(ModelRun.agent_type == agent)
    if status:
        query = query.where(ModelRun.status == status)
    if trigger:
        query = query.where(ModelRun.trigger == trigger)
    with create_db_engine(settings.app_db_url).connect() as conn:
        return [_run(r) for r in conn.execute(query)]


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
    return _run(row)


@dataclass(frozen=True)
class ModelVersionSummary:
    version: int
    aliases: tuple[str, ...]
    validation: str
    created_at: datetime
    run_id: str | None
    symbol: str | None = None  # the bars it was trained on
    metrics: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class AgentModels:
    agent_type: str
    champion: int | None
    challenger: int | None
    model_uri: str | None
    versions: list[ModelVersionSummary]


def list_models(settings: Settings, agent: str | None = None, limit: int = 5) -> list[AgentModels]:
    """Deployed and recent versions per agent, with the held-out metrics recorded at training."""
    from tracking import registry

    agents = [get_spec(agent).name] if agent else list(AGENTS)
    result = []
    for name in agents:
        versions = registry.list_versions(settings, name, limit=limit)
        champion = registry.alias_version(settings, name, registry.CHAMPION)
        challenger = registry.alias_version(settings, name, registry.CHALLENGER)
        known = {v.version for v in versions}
        for extra in (champion, challenger):
            if extra is not None and extra not in known and (info := registry.get_version(settings, name, extra)):
                versions.append(info)
        metrics = _metrics_by_version(settings, name)
        summaries = [
            # search_model_versions does not return aliases: take them from the alias lookups.
            ModelVersionSummary(
                v.version,
                tuple(a for a, at in (("champion", champion), ("challenger", challenger)) if at == v.version),
                v.tags.get("validation", "?"),
                v.created_at,
                v.run_id,
                metrics.get(v.version, (None, {}))[0],
                metrics.get(v.version, (None, {}))[1],
            )
            for v in sorted(versions, key=lambda v: v.version, reverse=True)
        ]
        uri = f"models:/{name}@champion" if champion is not None else None
        result.append(AgentModels(name, champion, challenger, uri, summaries))
    return result


def _metrics_by_version(settings: Settings, agent: str) -> dict[int, tuple[str | None, dict[str, float]]]:
    """Training symbol and recorded metrics of each version, from the app DB mirror."""
    with session_scope(settings.app_db_url) as session:
        rows = session.execute(
            select(ModelRun.model_version, ModelRun.symbol, ModelRun.metrics).where(
                ModelRun.agent_type == agent, ModelRun.model_version.is_not(None)
            )
        ).all()
    return {int(v): (symbol, dict(m or {})) for v, symbol, m in rows}


@dataclass(frozen=True)
class ImportanceRecord:
    agent_type: str
    model_version: int
    model_run_id: int | None
    feature: str
    importance: float
    importance_std: float
    rank: int
    created_at: datetime


def feature_importance(
    settings: Settings, *, agent: str, version: int | None = None, all_versions: bool = False
) -> list[ImportanceRecord]:
    """Permutation importance of `version` (default: the deployed champion's — what is trading — or,
    with no champion, the newest version that has some), ranked; with `all_versions`, every version's
    (importance over time). The champion is read from the deployment history: no MLflow call."""
    get_spec(agent)
    query = select(FeatureImportance).where(FeatureImportance.agent_type == agent)
    champion: int | None = None
    if version is None and not all_versions:
        with session_scope(settings.app_db_url) as session:
            latest = session.scalars(
                select(ModelDeployment)
                .where(ModelDeployment.agent_type == agent, ModelDeployment.alias == "champion")
                .order_by(ModelDeployment.id.desc())
                .limit(1)
            ).first()
            champion = latest.to_version if latest else None
        if champion is not None:
            query = query.where(FeatureImportance.model_version == champion)
    if version is not None:
        query = query.where(FeatureImportance.model_version == version)
    elif not all_versions and champion is None:
        newest = select(func.max(FeatureImportance.model_version)).where(FeatureImportance.agent_type == agent)
        query = query.where(FeatureImportance.model_version == newest.scalar_subquery())
    query = query.order_by(FeatureImportance.model_version.desc(), FeatureImportance.rank)
    with session_scope(settings.app_db_url) as session:
        rows = [
            ImportanceRecord(
                r.agent_type,
                r.model_version,
                r.model_run_id,
                r.feature,
                r.importance,
                r.importance_std,
                r.rank,
                r.created_at,
            )
            for r in session.scalars(query)
        ]
    if version is not None and not rows:
        raise NotFoundError(f"{agent} version {version} has no feature importance recorded")
    return rows


@dataclass(frozen=True)
class PerformanceRecord:
    agent_type: str
    model_version: int
    model_run_id: int | None
    window: str
    window_start: datetime | None
    window_end: datetime | None
    n_samples: int
    accuracy: float | None
    precision: float | None
    recall: float | None
    f1: float | None
    log_loss: float | None
    sharpe_ratio: float | None
    max_drawdown: float | None
    recorded_at: datetime


def performance_history(
    settings: Settings,
    *,
    agent: str | None = None,
    window: str | None = None,
    version: int | None = None,
    since: datetime | None = None,
    limit: int = 200,
    offset: int = 0,
) -> list[PerformanceRecord]:
    """Held-out (test/validation), live (drift check) and paper-trading scores, newest first."""
    query = select(ModelPerformanceHistory)
    if agent:
        get_spec(agent)
        query = query.where(ModelPerformanceHistory.agent_type == agent)
    if window:
        query = query.where(ModelPerformanceHistory.window == window)
    if version is not None:
        query = query.where(ModelPerformanceHistory.model_version == version)
    if since:
        query = query.where(ModelPerformanceHistory.recorded_at >= since)
    query = query.order_by(ModelPerformanceHistory.id.desc()).limit(limit).offset(offset)
    with session_scope(settings.app_db_url) as session:
        return [
            PerformanceRecord(
                r.agent_type,
                r.model_version,
                r.model_run_id,
                r.window,
                r.window_start,
                r.window_end,
                r.n_samples,
                r.accuracy,
                r.precision,
                r.recall,
                r.f1,
                r.log_loss,
                r.sharpe_ratio,
                r.max_drawdown,
                r.recorded_at,
            )
            for r in session.scalars(query)
        ]
