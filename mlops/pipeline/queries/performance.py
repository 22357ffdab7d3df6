"""Scores per model version and window: held-out at training, live (drift checks), paper trading."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict
from sqlalchemy import select

from mlops.db import session_scope
from mlops.db.models import ModelPerformanceHistory
from mlops.pipeline.queries.agents import known_agent
from mlops.settings import Settings


class PerformanceRecord(BaseModel):
    model_config = ConfigDict(from_attributes=True, frozen=True)

    agent_type: str
    model_version: int
    model_run_id: int | None
    window: str  # validation | test | live | paper
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
        known_agent(agent)
        query = query.where(ModelPerformanceHistory.agent_type == agent)
    if window:
        query = query.where(ModelPerformanceHistory.window == window)
    if version is not None:
        query = query.where(ModelPerformanceHistory.model_version == version)
    if since:
        query = query.where(ModelPerformanceHistory.recorded_at >= since)
    query = query.order_by(ModelPerformanceHistory.id.desc()).limit(limit).offset(offset)
    with session_scope(settings.app_db_url) as session:
        return [PerformanceRecord.model_validate(r) for r in session.scalars(query)]
