"""The audit trail: one `audit_log` row per action, written by the service that acts.

Every use case that changes something (retrain, sweep, drift check, promote, rollback, flags, keys,
bars import) runs inside `audited(...)`: the row says who (the actor: `cli:<user>`, `api:<key name>`,
`scheduler`, ...), what (the action and its parameters) and how it ended (the result, or the error).
The row is the same whichever caller ran the service — the CLI, an API request, a job worker, the
scheduler, the dashboard. The API's request middleware writes a row only for a request that never
reached a service (refused by authentication, validation, size limits): `request_scope` tells it.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict
from sqlalchemy import select

from mlops.db import session_scope
from mlops.db.models import AuditLog
from mlops.logs import get_logger
from mlops.settings import Settings

log = get_logger(__name__)
SECRET_FIELDS = frozenset({"key", "api_key", "password", "token", "secret"})
_REQUEST: ContextVar[dict[str, Any] | None] = ContextVar("skippy_audit_request", default=None)


def redact(value: Any) -> Any:
    """Secrets out; NaN/inf as text (JSON columns on PostgreSQL refuse them, and the row would be lost)."""
    if isinstance(value, dict):
        return {k: ("<redacted>" if k in SECRET_FIELDS else redact(v)) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redact(v) for v in value[:100]]
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat()
    return value


@contextmanager
def request_scope(client: str | None) -> Iterator[dict[str, Any]]:
    """Around one API request: the services it calls record the client's address, and mark the
    request audited so the middleware does not write a second row. (The mutable holder is shared with
    the worker thread a sync endpoint runs in: contextvars are copied, the dict is not.)"""
    holder: dict[str, Any] = {"client": client, "audited": False}
    token = _REQUEST.set(holder)
    try:
        yield holder
    finally:
        _REQUEST.reset(token)


@contextmanager
def audited(settings: Settings, *, actor: str, action: str, parameters: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """The audit row of one action: fill the yielded dict with the result. An error (or an
    interruption) is recorded with its type and message, then re-raised."""
    from mlops.errors import brief

    result: dict[str, Any] = {}
    try:
        yield result
    except BaseException as exc:
        error = {"error": brief(str(exc) or type(exc).__name__, 500), "error_type": type(exc).__name__}
        _record_action(settings, actor, action, parameters, result | error)
        raise
    _record_action(settings, actor, action, parameters, result)


def _record_action(
    settings: Settings, actor: str, action: str, parameters: dict[str, Any], result: dict[str, Any]
) -> None:
    request = _REQUEST.get()
    if request is not None:
        request["audited"] = True
    record(
        settings,
        actor=actor,
        action=action,
        parameters=redact(parameters),
        status_code=None,
        result=redact(result),
        client=request["client"] if request else None,
    )


class AuditRecord(BaseModel):
    model_config = ConfigDict(from_attributes=True, frozen=True)

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
        return [AuditRecord.model_validate(r) for r in session.scalars(query)]
