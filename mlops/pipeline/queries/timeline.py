"""The champion's moves over time — promotions, rollbacks and the champion watch's auto-rollbacks — for marking
them on a time axis next to the performance history. From the deployment history alone (no MLflow)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict
from sqlalchemy import select

from mlops.db import session_scope
from mlops.db.models import ModelDeployment
from mlops.pipeline.deployments import CHAMPION
from mlops.pipeline.queries.agents import known_agent
from mlops.settings import Settings

EventKind = Literal["promotion", "rollback", "auto-rollback"]
# The champion watch (mlops/pipeline/watch.py) rolls back with this reason prefix; a person's or the API's
# rollback carries whatever reason they gave.
AUTO_ROLLBACK_PREFIX = "auto-rollback:"


class ChampionEvent(BaseModel):
    model_config = ConfigDict(frozen=True)

    kind: EventKind
    at: datetime
    from_version: int | None
    to_version: int
    actor: str
    reason: str


def event_kind(action: str, reason: str) -> EventKind:
    if action == "promote":
        return "promotion"
    return "auto-rollback" if reason.startswith(AUTO_ROLLBACK_PREFIX) else "rollback"


def champion_events(
    settings: Settings, *, agent: str, since: datetime | None = None, limit: int = 200
) -> list[ChampionEvent]:
    """The `limit` newest promotions and rollbacks of `agent`'s champion, oldest first. With `since`: those
    from then on, and the newest one before it (the move that made the champion of that moment)."""
    known_agent(agent)
    query = (
        select(ModelDeployment)
        .where(
            ModelDeployment.agent_type == agent,
            ModelDeployment.alias == CHAMPION,
            ModelDeployment.action.in_(("promote", "rollback")),
        )
        .order_by(ModelDeployment.id.desc())
    )
    with session_scope(settings.app_db_url) as session:
        if since is None:
            rows = list(session.scalars(query.limit(limit)))
        else:
            rows = list(session.scalars(query.where(ModelDeployment.created_at >= since).limit(limit)))
            rows += list(session.scalars(query.where(ModelDeployment.created_at < since).limit(1)))
        events = [
            ChampionEvent(
                kind=event_kind(r.action, r.reason),
                at=r.created_at,
                from_version=r.from_version,
                to_version=r.to_version,
                actor=r.actor,
                reason=r.reason,
            )
            for r in rows
        ]
    return events[::-1]
