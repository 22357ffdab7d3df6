"""Permutation feature importance per model version (recorded at training, on the held-out split)."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict
from sqlalchemy import func, select

from mlops.db import session_scope
from mlops.db.models import FeatureImportance
from mlops.errors import NotFoundError
from mlops.pipeline.deployments import CHAMPION, current_aliases
from mlops.pipeline.queries.agents import known_agent
from mlops.settings import Settings


class ImportanceRecord(BaseModel):
    model_config = ConfigDict(from_attributes=True, frozen=True)

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
    known_agent(agent)
    query = select(FeatureImportance).where(FeatureImportance.agent_type == agent)
    with session_scope(settings.app_db_url) as session:
        if version is None and not all_versions:
            champion = current_aliases(session, agent)[CHAMPION]
            if champion is not None:
                query = query.where(FeatureImportance.model_version == champion)
            else:
                newest = select(func.max(FeatureImportance.model_version)).where(FeatureImportance.agent_type == agent)
                query = query.where(FeatureImportance.model_version == newest.scalar_subquery())
        elif version is not None:
            query = query.where(FeatureImportance.model_version == version)
        query = query.order_by(FeatureImportance.model_version.desc(), FeatureImportance.rank)
        rows = [ImportanceRecord.model_validate(r) for r in session.scalars(query)]
    if version is not None and not rows:
        raise NotFoundError(f"{agent} version {version} has no feature importance recorded")
    return rows
