"""Deployed and recent model versions per agent, from the app DB alone (no MLflow import): the versions
and their verdicts from `model_runs` (the same retrain wrote the version and that row), where the aliases
point from the deployment history (`deployments.current_aliases`)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict
from sqlalchemy import select

from mlops.db import session_scope
from mlops.db.models import ModelRun
from mlops.pipeline.deployments import CHALLENGER, CHAMPION, current_aliases
from mlops.pipeline.queries.agents import known_agent
from mlops.settings import AGENTS, Settings


class ModelVersionSummary(BaseModel):
    model_config = ConfigDict(frozen=True)

    version: int
    aliases: list[str]
    validation: str  # passed | rejected | ? (no verdict recorded)
    created_at: datetime  # when its retrain finished (the version is registered just before)
    run_id: str | None  # the MLflow run
    symbol: str | None = None  # the bars it was trained on
    metrics: dict[str, Any] = {}  # held-out test metrics recorded at training
    model_run_id: int | None = None  # the app DB's model run
    verdict: str | None = None  # the validation gate's reason, in words


class AgentModels(BaseModel):
    model_config = ConfigDict(frozen=True)

    agent_type: str
    champion: int | None
    challenger: int | None
    model_uri: str | None
    versions: list[ModelVersionSummary]


VERSION_COLUMNS = (
    ModelRun.id,
    ModelRun.model_version,
    ModelRun.symbol,
    ModelRun.mlflow_run_id,
    ModelRun.metrics,
    ModelRun.validation,
    ModelRun.created_at,
    ModelRun.finished_at,
)


def list_models(settings: Settings, agent: str | None = None, limit: int = 5) -> list[AgentModels]:
    """The `limit` newest versions per agent, plus the champion's and the challenger's if older."""
    names = [known_agent(agent)] if agent else list(AGENTS)
    result = []
    with session_scope(settings.app_db_url) as session:
        for name in names:
            aliases = current_aliases(session, name)
            deployed = [v for v in aliases.values() if v is not None]
            runs = ModelRun.agent_type == name
            newest = session.execute(
                select(*VERSION_COLUMNS)
                .where(runs, ModelRun.model_version.is_not(None))
                .order_by(ModelRun.model_version.desc())
                .limit(limit)
            ).all()
            shown = {r.model_version for r in newest}
            older = [v for v in deployed if v not in shown]
            extra = (
                session.execute(select(*VERSION_COLUMNS).where(runs, ModelRun.model_version.in_(older))).all()
                if older
                else []
            )
            rows = sorted([*newest, *extra], key=lambda r: r.model_version, reverse=True)
            champion = aliases[CHAMPION]
            result.append(
                AgentModels(
                    agent_type=name,
                    champion=champion,
                    challenger=aliases[CHALLENGER],
                    model_uri=f"models:/{name}@champion" if champion is not None else None,
                    versions=[_summary(r, aliases) for r in rows],
                )
            )
    return result


def _summary(row: Any, aliases: dict[str, int | None]) -> ModelVersionSummary:
    validation: dict[str, Any] = row.validation or {}
    passed = validation.get("passed")
    return ModelVersionSummary(
        version=row.model_version,
        aliases=[alias for alias, version in aliases.items() if version == row.model_version],
        validation="?" if passed is None else ("passed" if passed else "rejected"),
        created_at=row.finished_at or row.created_at,
        run_id=row.mlflow_run_id,
        symbol=row.symbol,
        metrics=dict(row.metrics or {}),
        model_run_id=row.id,
        verdict=validation.get("verdict"),
    )
