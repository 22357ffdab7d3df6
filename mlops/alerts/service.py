"""Raise, list, read and acknowledge alerts; test the channels.

`raise_alert` is called from the middle of jobs (a drift check, a retrain, the scheduler): it stores
the alert — or counts a repeat of an open one — queues one delivery per channel the severity reaches,
starts sending in the background and returns. It never raises: a job must not fail because its alert
could not be stored; the failure is logged instead.

Deduplication: an alert with the same key (default `kind:agent[:key]`) that nobody acknowledged and that
was last seen within `alert_dedup_seconds` is the same alert: `count` + 1, `last_seen` now, the latest
message and details kept, no new notification (unless the repeat is more severe: then the channels the
higher severity newly reaches are notified). Two processes raising the same alert at once are
serialised per key: PostgreSQL by a transaction-scoped advisory lock on the key, SQLite by taking the
database's write lock first thing in the transaction (its writers queue on `busy_timeout`); so the
second one always sees the first one's row.
"""

from __future__ import annotations

import hashlib
import logging
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from time import monotonic
from typing import Any

from sqlalchemy import select, text, update
from sqlalchemy.orm import Session

from mlops.alerts.channels import CHANNEL_SETTINGS, Channel, configured_channels, redactor
from mlops.alerts.delivery import alert_record, error_text, lease_seconds, send_in_background
from mlops.alerts.message import when
from mlops.alerts.records import (
    SEVERITIES,
    AlertRecord,
    AlertTestReport,
    ChannelInfo,
    ChannelResult,
    DeliveryRecord,
    rank,
)
from mlops.alerts.secrets import Redactor
from mlops.db import session_scope
from mlops.db.models import Alert, AlertDelivery
from mlops.errors import ConflictError, InvalidRequestError, NotFoundError, brief
from mlops.logs import get_logger
from mlops.processes import HOSTNAME
from mlops.settings import Settings, is_postgres

log = get_logger(__name__)
MAX_MESSAGE = 4000
MAX_KEY = 255


def dedup_key(kind: str, agent: str | None, key: str | None = None) -> str:
    """`kind:agent[:key]` (`-` for no agent); a key longer than the column keeps a digest of its tail."""
    full = f"{kind}:{agent or '-'}" + (f":{key}" if key else "")
    if len(full) <= MAX_KEY:
        return full
    return full[: MAX_KEY - 17] + "#" + hashlib.sha256(full.encode()).hexdigest()[:16]


def _serialise(session: Session, url: str, key: str) -> None:
    """Make concurrent raisers of `key` take turns for the rest of this transaction."""
    if is_postgres(url):
        digest = int.from_bytes(hashlib.sha256(f"skippy-alert:{key}".encode()).digest()[:8], "big", signed=True)
        session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": digest})
    else:
        # A write as the transaction's first statement takes SQLite's write lock now (waiting for it up to
        # busy_timeout), before the read below: a read first would pin a snapshot that a concurrent
        # writer's commit makes stale, and this transaction's write would then fail instead of waiting.
        session.execute(update(Alert).where(Alert.id < 0).values(count=Alert.count))


def _details(details: dict[str, Any] | None) -> dict[str, Any]:
    # The audit log's sanitiser: JSON-safe (NaN and datetimes as text, which PostgreSQL's JSON needs),
    # capped, and secrets out by name.
    from mlops.audit import redact

    value = redact(details or {})
    return value if isinstance(value, dict) else {"value": value}


def _store(
    settings: Settings,
    *,
    severity: str,
    kind: str,
    agent: str | None,
    message: str,
    details: dict[str, Any],
    key: str,
) -> tuple[AlertRecord, list[int], bool]:
    """The stored alert, the deliveries to start, and whether it repeated an open alert."""
    now = datetime.now(UTC)
    channels = [c for c in configured_channels(settings) if rank(severity) >= rank(c.min_severity)]
    with session_scope(settings.app_db_url) as session:
        _serialise(session, settings.app_db_url, key)
        row = None
        if settings.alert_dedup_seconds > 0:
            row = session.scalars(
                select(Alert)
                .where(
                    Alert.dedup_key == key,
                    Alert.acknowledged_at.is_(None),
                    Alert.last_seen >= now - timedelta(seconds=settings.alert_dedup_seconds),
                )
                .order_by(Alert.id.desc())
                .limit(1)
            ).first()
        repeated = row is not None
        if row is None:
            row = Alert(
                severity=severity,
                kind=kind,
                agent_type=agent,
                message=message,
                details=details,
                dedup_key=key,
                first_seen=now,
                last_seen=now,
                count=1,
            )
            session.add(row)
            session.flush()
            already: set[str] = set()
        else:
            row.count += 1
            row.last_seen, row.message, row.details = now, message, details
            if rank(severity) > rank(row.severity):
                row.severity = severity
            else:
                channels = []  # a repeat notifies no one, unless it is more severe (see the module docstring)
            already = set(session.scalars(select(AlertDelivery.channel).where(AlertDelivery.alert_id == row.id)))
        queued = [AlertDelivery(alert_id=row.id, channel=c.name, next_attempt_at=now) for c in channels]
        queued = [d for d in queued if d.channel not in already]
        session.add_all(queued)
        session.flush()
        return alert_record(row), [d.id for d in queued], repeated


def raise_alert(
    settings: Settings,
    *,
    severity: str,
    kind: str,
    agent: str | None,
    message: str,
    details: dict[str, Any] | None = None,
    key: str | None = None,
) -> AlertRecord | None:
    """Store (or deduplicate) an alert, queue its deliveries, start sending them in the background and
    return at once. Never raises: a failure is logged and returns None."""
    try:
        if severity not in SEVERITIES:
            raise InvalidRequestError(f"unknown severity {severity!r}; known: {', '.join(SEVERITIES)}")
        record, queued, repeated = _store(
            settings,
            severity=severity,
            kind=kind,
            agent=agent,
            message=brief(message, MAX_MESSAGE),
            details=_details(details),
            key=dedup_key(kind, agent, key),
        )
    except Exception:
        log.exception("alert could not be stored", severity=severity, kind=kind, agent_type=agent)
        return None
    log.log(
        logging.INFO if record.severity == "info" else logging.WARNING,
        "alert raised" if not repeated else "alert repeated",
        alert_id=record.id,
        severity=record.severity,
        kind=kind,
        agent_type=agent,
        count=record.count,
        deliveries=len(queued),
    )
    try:
        send_in_background(settings, queued)
    except Exception:  # the rows stay pending: a Courier sends them
        log.exception("alert deliveries could not be started", alert_id=record.id)
    return record


# --- reading and acknowledging ----------------------------------------------------------------------


def _with_deliveries(session: Session, rows: list[Alert], settings: Settings) -> list[AlertRecord]:
    if not rows:
        return []
    targets = {c.name: c.target for c in configured_channels(settings)}
    redact = redactor(settings)
    deliveries: dict[int, list[DeliveryRecord]] = {r.id: [] for r in rows}
    for d in session.scalars(
        select(AlertDelivery).where(AlertDelivery.alert_id.in_(list(deliveries))).order_by(AlertDelivery.id)
    ):
        deliveries[d.alert_id].append(_delivery(d, targets, redact))
    return [alert_record(r).model_copy(update={"deliveries": deliveries[r.id]}) for r in rows]


def _delivery(row: AlertDelivery, targets: dict[str, str], redact: Redactor) -> DeliveryRecord:
    return DeliveryRecord(
        channel=row.channel,
        target=targets.get(row.channel, "(no longer configured)"),
        status=row.status,
        attempts=row.attempts,
        next_attempt_at=row.next_attempt_at if row.status == "pending" else None,
        # Masked when written; masked again with today's secrets, in case one was configured since.
        last_error=redact(row.last_error) if row.last_error else None,
        sent_at=row.sent_at,
    )


def list_alerts(
    settings: Settings,
    *,
    severity: str | None = None,
    agent: str | None = None,
    kind: str | None = None,
    acknowledged: bool | None = None,
    limit: int = 50,
    offset: int = 0,
) -> list[AlertRecord]:
    """Alerts, most recently seen first, with their deliveries."""
    if severity is not None and severity not in SEVERITIES:
        raise InvalidRequestError(f"unknown severity {severity!r}; known: {', '.join(SEVERITIES)}")
    if not 1 <= limit <= 10_000 or offset < 0:
        raise InvalidRequestError("limit must be within 1..10000 and offset not negative")
    query = select(Alert).order_by(Alert.last_seen.desc(), Alert.id.desc()).limit(limit).offset(offset)
    if severity is not None:
        query = query.where(Alert.severity == severity)
    if agent is not None:
        query = query.where(Alert.agent_type == agent)
    if kind is not None:
        query = query.where(Alert.kind == kind)
    if acknowledged is not None:
        query = query.where(Alert.acknowledged_at.is_not(None) if acknowledged else Alert.acknowledged_at.is_(None))
    with session_scope(settings.app_db_url) as session:
        return _with_deliveries(session, list(session.scalars(query)), settings)


MAX_ID = 2**31 - 1  # ids are 32-bit integers on PostgreSQL: a larger one names no alert (and must not reach SQL)


def _known(alert_id: int) -> None:
    if not 1 <= alert_id <= MAX_ID:
        raise NotFoundError(f"no alert {alert_id}; `skippy alerts --all` lists them")


def get_alert(settings: Settings, alert_id: int) -> AlertRecord:
    _known(alert_id)
    with session_scope(settings.app_db_url) as session:
        row = session.get(Alert, alert_id)
        if row is None:
            raise NotFoundError(f"no alert {alert_id}; `skippy alerts --all` lists them")
        return _with_deliveries(session, [row], settings)[0]


def acknowledge_alert(settings: Settings, alert_id: int, *, actor: str) -> AlertRecord:
    """Mark an alert as seen by `actor` (audited "alert ack"): a later repeat raises a new alert.
    Unknown → NotFoundError; already acknowledged → ConflictError naming who and when."""
    from mlops.audit import audited

    with audited(settings, actor=actor, action="alert ack", parameters={"alert_id": alert_id}) as audit:
        _known(alert_id)
        with session_scope(settings.app_db_url) as session:
            moved = session.execute(
                update(Alert)
                .where(Alert.id == alert_id, Alert.acknowledged_at.is_(None))
                .values(acknowledged_by=actor, acknowledged_at=datetime.now(UTC))
            )
            if not moved.rowcount:  # type: ignore[attr-defined]
                row = session.get(Alert, alert_id)
                if row is None:
                    raise NotFoundError(f"no alert {alert_id}; `skippy alerts --all` lists them")
                at = when(row.acknowledged_at) if row.acknowledged_at else "an unknown time"
                raise ConflictError(f"alert {alert_id} was already acknowledged by {row.acknowledged_by} at {at}")
        record = get_alert(settings, alert_id)
        audit.update(kind=record.kind, agent_type=record.agent_type, severity=record.severity, count=record.count)
    return record


def list_channels(settings: Settings) -> list[ChannelInfo]:
    """The configured channels, masked, with their minimum severity and any configuration problem."""
    return [c.info() for c in configured_channels(settings)]


# --- the test message ------------------------------------------------------------------------------


def send_test_alert(settings: Settings, *, actor: str) -> AlertTestReport:
    """Send a test alert to every configured channel now, whatever its minimum severity, once each (no
    retry), and say how each went. Stored as an `info` alert of kind `test`, acknowledged by `actor` (it
    asks nothing of anyone) with its deliveries' outcomes; audited "alert test"."""
    from mlops.audit import audited

    channels = configured_channels(settings)
    if not channels:
        return AlertTestReport(
            alert_id=None, results=[], hint=f"no alert channel is configured: set {CHANNEL_SETTINGS}"
        )
    names = [c.name for c in channels]
    with audited(settings, actor=actor, action="alert test", parameters={"channels": names}) as audit:
        alert, delivery_ids = _store_test(settings, actor, channels)
        redact = redactor(settings)
        with ThreadPoolExecutor(max_workers=len(channels), thread_name_prefix="skippy-alert-test") as pool:
            results = list(pool.map(lambda c: _try(c, alert, redact), channels))
        with session_scope(settings.app_db_url) as session:
            for result, delivery_id in zip(results, delivery_ids, strict=True):
                session.execute(
                    update(AlertDelivery)
                    .where(AlertDelivery.id == delivery_id)
                    .values(
                        status="sent" if result.ok else "failed",
                        claimed_until=None,
                        last_error=result.error,
                        sent_at=datetime.now(UTC) if result.ok else None,
                    )
                )
        audit.update(alert_id=alert.id, failed=[r.channel for r in results if not r.ok])
    return AlertTestReport(alert_id=alert.id, results=results)


def _store_test(settings: Settings, actor: str, channels: list[Channel]) -> tuple[AlertRecord, list[int]]:
    now = datetime.now(UTC)
    with session_scope(settings.app_db_url) as session:
        row = Alert(
            severity="info",
            kind="test",
            agent_type=None,
            message=f"Test alert from Skippy, sent by {actor} on {HOSTNAME}: alerts reach you here.",
            details={"channels": [c.name for c in channels]},
            dedup_key=f"test:-:{uuid.uuid4().hex}",  # never a repeat: every test is sent
            first_seen=now,
            last_seen=now,
            count=1,
            acknowledged_by=actor,
            acknowledged_at=now,
        )
        session.add(row)
        session.flush()
        # Claimed by this call for its lifetime (attempt 1), so no Courier sends them meanwhile.
        rows = [
            AlertDelivery(
                alert_id=row.id,
                channel=c.name,
                status="sending",
                attempts=1,
                next_attempt_at=now,
                claimed_until=now + timedelta(seconds=lease_seconds(settings)),
            )
            for c in channels
        ]
        session.add_all(rows)
        session.flush()
        return alert_record(row), [d.id for d in rows]


def _try(channel: Channel, alert: AlertRecord, redact: Redactor) -> ChannelResult:
    started = monotonic()
    try:
        channel.send(alert)
    except Exception as exc:
        error: str | None = error_text(exc, redact)
    else:
        error = None
    return ChannelResult(
        channel=channel.name,
        target=channel.target,
        ok=error is None,
        error=error,
        seconds=round(monotonic() - started, 3),
    )
