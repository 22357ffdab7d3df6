"""The audit trail: one `audit_log` row per action, written by the service that acts.

Every use case that changes something (retrain, sweep, drift check, promote, rollback, flags, keys,
bars import) runs inside `audited(...)`: the row says who (the actor: `cli:<user>`, `api:<key name>`,
`scheduler`, ...), what (the action and its parameters) and how it ended (the result, or the error).
The row is the same whichever caller ran the service — the CLI, an API request, a job worker, the
scheduler, the dashboard. The API's request middleware writes a row only for a request that never
reached a service (refused by authentication, validation, size limits): `request_scope` tells it.
`record` sanitises every row it writes (`redact`: secrets out by name and by shape, capped, never
recursive), and `list_audit` reads defensively, so no stored row can break the listing.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections import deque
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import datetime
from functools import cache
from typing import Any

from pydantic import BaseModel, ConfigDict
from sqlalchemy import Text, cast, select

from mlops.db import session_scope
from mlops.db.models import AuditLog
from mlops.logs import get_logger
from mlops.settings import Settings

log = get_logger(__name__)
_REQUEST: ContextVar[dict[str, Any] | None] = ContextVar("skippy_audit_request", default=None)

# What `redact` keeps of a value. Far below every limit on the way (pydantic serialises ~250 levels,
# Python's json ~1000, SQLite's JSON functions 1000, PostgreSQL's json parser its stack depth), so a
# stored row can always be written, read back and served; and small, so a row stays a few tens of KB.
MAX_DEPTH = 16
MAX_ITEMS = 100  # per list or mapping
MAX_STRING = 2_000  # characters of one string
MAX_CHARS = 32_768  # characters of all strings of one value together
REDACTED = "<redacted>"
# A name that says secret, wherever it appears in the name and in any case: apiKey, access_token,
# Authorization, client_secret, db_password, X-API-Key...
SECRET_NAME = re.compile(r"key|token|secret|password|authorization", re.IGNORECASE)


@cache
def _key_shape() -> re.Pattern[str]:
    """A skippy API key anywhere in a text: the prefix and 20+ URL-safe characters (a key has 43; the
    10-character prefix shown in key lists stays readable). Not inside a longer word (`risk_...`)."""
    from mlops.auth import KEY_PREFIX  # mlops.auth imports this module

    return re.compile(rf"(?<![A-Za-z0-9_-]){re.escape(KEY_PREFIX)}[A-Za-z0-9_-]{{20,}}")


def is_secret_name(name: str) -> bool:
    return SECRET_NAME.search(name) is not None


def redact_text(text: str, limit: int = MAX_STRING) -> str:
    """One string as the audit log keeps it: keys out, NUL visible (PostgreSQL text refuses it), cut."""
    length = len(text)
    text = text[: limit + 64]  # the key search need not see what is cut anyway (64: a key across the cut)
    text = _key_shape().sub(REDACTED, text).replace("\x00", "\\x00")
    if length <= limit and len(text) <= limit:
        return text
    return f"{text[:limit]}...<{max(length, len(text)) - limit} more characters>"


class _Caps:
    """The caps of one `redact` call, and the characters it has left."""

    def __init__(self, scale: int) -> None:
        self.depth, self.items, self.string = MAX_DEPTH * scale, MAX_ITEMS * scale, MAX_STRING * scale
        self.chars = MAX_CHARS * scale

    def text(self, value: str) -> str:
        if self.chars <= 0:
            return "<truncated>"
        kept = redact_text(value, min(self.string, self.chars))
        self.chars -= len(kept)
        return kept


def redact(value: Any, *, scale: int = 1) -> Any:
    """A JSON-safe copy of `value` for the audit log: secrets out (by name and by shape), NaN/inf and
    datetimes as text, and capped (depth, items, characters; `scale` multiplies the caps: a row read
    back uses 2, so that what was written within them reads back unchanged). Iterative, never recursive:
    no body, however deep, can make it raise instead of writing the row."""
    caps = _Caps(scale)
    root: list[Any] = [None]
    pending: deque[tuple[Any, Any, Any, int]] = deque([(value, root, 0, 0)])
    while pending:  # breadth first: when the characters run out, it is the deepest parts that are cut
        item, parent, slot, depth = pending.popleft()
        parent[slot] = _copy(item, depth, caps, pending)
    return root[0]


def _copy(value: Any, depth: int, caps: _Caps, pending: deque[tuple[Any, Any, Any, int]]) -> Any:
    if value is None or isinstance(value, bool | int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, str):
        return caps.text(value)
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Mapping | list | tuple | set | frozenset) and depth >= caps.depth:
        return f"<nested deeper than {caps.depth} levels>"
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for n, (k, v) in enumerate(value.items()):
            if n == caps.items:
                out["<truncated>"] = f"{len(value) - caps.items} more entries"
                break
            name = caps.text(str(k))
            if is_secret_name(name):
                out[name] = REDACTED
            else:
                out[name] = None  # filled when its turn comes
                pending.append((v, out, name, depth + 1))
        return out
    if isinstance(value, list | tuple | set | frozenset):
        items = value[: caps.items] if isinstance(value, list) else list(value)[: caps.items]
        copied: list[Any] = [None] * len(items)
        for n, v in enumerate(items):
            pending.append((v, copied, n, depth + 1))
        if len(value) > caps.items:
            copied.append(f"<{len(value) - caps.items} more items>")
        return copied
    return caps.text(str(value))


def body_digest(body: bytes) -> dict[str, Any]:
    """What the log keeps of a body it does not store: its size and SHA-256."""
    return {"bytes": len(body), "sha256": hashlib.sha256(body).hexdigest()}


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
        parameters=parameters,
        status_code=None,
        result=result,
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
    """Write one audit row, sanitised here (`redact`) whoever calls: whatever a caller hands in, the row
    can be written and read back. A failure to write is logged loudly but never turns a done action into
    an error."""
    try:
        with session_scope(settings.app_db_url) as session:
            session.add(
                AuditLog(
                    actor=redact_text(actor)[:128],
                    action=redact_text(action)[:128],
                    parameters=_mapping(redact(parameters)),
                    status_code=status_code,
                    result=_mapping(redact(result)),
                    client=redact_text(client)[:64] if client is not None else None,
                )
            )
    except Exception:
        log.exception("audit write failed", action=redact_text(action)[:128], actor=redact_text(actor)[:128])


def _mapping(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {"value": value}


def list_audit(
    settings: Settings,
    *,
    actor: str | None = None,
    action: str | None = None,
    since: datetime | None = None,
    limit: int = 100,
    offset: int = 0,
) -> list[AuditRecord]:
    """Newest first. Never fails on a stored row: the JSON columns are read as text and decoded here,
    and a row written before the caps (or by hand) is capped on the way out, or shown as unreadable."""
    columns = [c for c in AuditLog.__table__.c if c.name not in ("parameters", "result")]
    query = (
        select(*columns, cast(AuditLog.parameters, Text), cast(AuditLog.result, Text))
        .order_by(AuditLog.id.desc())
        .limit(limit)
        .offset(offset)
    )
    if actor:
        query = query.where(AuditLog.actor == actor)
    if action:
        query = query.where(AuditLog.action.contains(action))
    if since:
        query = query.where(AuditLog.created_at >= since)
    with session_scope(settings.app_db_url) as session:
        rows = session.execute(query).all()
    return [
        AuditRecord(
            **{c.name: value for c, value in zip(columns, row[:-2], strict=True)},
            parameters=_stored(row[-2]),
            result=_stored(row[-1]),
        )
        for row in rows
    ]


def _stored(text: str | None) -> dict[str, Any]:
    if text is None:
        return {}
    try:
        value = json.loads(text)
    except (ValueError, RecursionError):
        return {"unreadable": body_digest(text.encode("utf-8", "replace"))}
    return _mapping(redact(value, scale=2))
