"""The audit trail: one `audit_log` row per mutating call, from the API or the CLI."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select

from mlops.db import session_scope
from mlops.db.models import AuditLog
from mlops.logs import get_logger
from mlops.settings import Settings

log = get_logger(__name__)


@dataclass(frozen=True)
class AuditRecord:
    id: int
    actor: str
    action: str
    parameters: dict[str, Any]
    status_code: int | None
    result: dict[str, Any]
    client: str | None
    created_at: datetime


def record(
    settings: Settings,
    *,
    actor: str,
    action: str,
    parameters: dict[str, Any],
    status_code: int | None,
    result: dict[str, Any],
    client: str | None = None,
) -> None:
    """Write one audit row. A failure to write is logged loudly but never turns a done action into an error."""
    try:
        with session_scope(settings.app_db_url) as session:
            session.add(
                AuditLog(
                    actor=actor[:128],
                    action=action[:128],
                    parameters=parameters,
                    status_code=status_code,
                    result=result,
                    client=client,
                )
            )
    except Exception:
        log.exception("audit write failed", action=action, actor=actor)


def list_audit(
    settings: Settings,
    *,
    actor: str | None = None,
    action: str | None = None,
    since: datetime | None = None,
    limit: int = 100,
    offset: int = 0,
) -> list[AuditRecord]:
    query = select(AuditLog).order_by(AuditLog.id.desc()).limit(limit).offset(offset)
    if actor:
        query = query.where(AuditLog.actor == actor)
    if action:
        query = query.where(AuditLog.action.contains(action))
    if since:
        query = query.where(AuditLog.created_at >= since)
    with session_scope(settings.app_db_url) as session:
        return [
            AuditRecord(
                r.id, r.actor, r.action, dict(r.parameters), r.status_code, dict(r.result), r.client, r.created_at
            )
            for r in session.scalars(query)
        ]
