"""Sending: the outbox `alert_deliveries`, drained with claims, retries and backoff.

One row per (alert, channel). A sender claims a due row with a conditional update (pending and due, or
`sending` with an expired lease → `sending` until `claimed_until`, attempts + 1): of several threads or
processes, exactly one wins, so a delivery is never sent twice at once. It then sends with the
channel's timeout and marks the row `sent`, or `pending` again after `alert_retry_base_seconds` ×
2^(attempt − 1), or `failed` after `alert_retry_attempts` attempts, with the error (secrets masked).
A process that dies mid-send leaves its lease to run out; the row is then taken again (or failed, when
that was its last attempt). A lease outliving a send that hangs past it is the one way a message can go
out twice — the price of never losing one.

Who sends: `raise_alert` starts a daemon thread per new delivery in the raising process (the raiser
returns at once; the thread retries while the process lives); `flush` lets a short-lived worker wait
for the attempts in flight before it exits; a `Courier` in each long-lived process (API server,
`skippy scheduler`) drains what is due every few seconds — retries whose process has gone included.
"""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from datetime import UTC, datetime, timedelta

from sqlalchemy import ColumnElement, and_, or_, select, update

from mlops.alerts.channels import Channel, DeliveryError, configured_channels, redactor
from mlops.alerts.records import AlertRecord
from mlops.alerts.secrets import Redactor
from mlops.db import session_scope
from mlops.db.models import Alert, AlertDelivery
from mlops.errors import brief
from mlops.logs import get_logger
from mlops.periodic import Periodic
from mlops.settings import Settings

log = get_logger(__name__)
MAX_ERROR = 1000  # characters of `last_error`
COURIER_POLL_SECONDS = 5.0


def lease_seconds(settings: Settings) -> float:
    """How long a claim holds: well past one attempt's timeout (httpx's applies per phase, apprise's to the
    whole call), so that a live sender is not overtaken."""
    return 3 * settings.alert_timeout_seconds + 30.0


def retry_delay(settings: Settings, attempts: int) -> float:
    return float(settings.alert_retry_base_seconds * 2 ** max(0, attempts - 1))


def _now() -> datetime:
    return datetime.now(UTC)


def _due(now: datetime, max_attempts: int) -> ColumnElement[bool]:
    """Pending and due, or held under a lease that ran out with attempts left."""
    return or_(
        and_(AlertDelivery.status == "pending", AlertDelivery.next_attempt_at <= now),
        and_(
            AlertDelivery.status == "sending",
            AlertDelivery.claimed_until < now,
            AlertDelivery.attempts < max_attempts,
        ),
    )


def claim(settings: Settings, delivery_id: int) -> int | None:
    """Take `delivery_id` for one attempt if it is due and no one holds it; returns the attempt's number."""
    now = _now()
    with session_scope(settings.app_db_url) as session:
        claimed = session.execute(
            update(AlertDelivery)
            .where(AlertDelivery.id == delivery_id, _due(now, settings.alert_retry_attempts))
            .values(
                status="sending",
                claimed_until=now + timedelta(seconds=lease_seconds(settings)),
                attempts=AlertDelivery.attempts + 1,
            )
        )
        if not claimed.rowcount:  # type: ignore[attr-defined]
            return None
        return session.scalar(select(AlertDelivery.attempts).where(AlertDelivery.id == delivery_id))


def alert_record(row: Alert) -> AlertRecord:
    return AlertRecord(
        id=row.id,
        severity=row.severity,
        kind=row.kind,
        agent_type=row.agent_type,
        message=row.message,
        details=dict(row.details or {}),
        dedup_key=row.dedup_key,
        first_seen=row.first_seen,
        last_seen=row.last_seen,
        count=row.count,
        acknowledged_by=row.acknowledged_by,
        acknowledged_at=row.acknowledged_at,
        insight=row.insight,
    )


def error_text(exc: BaseException, redact: Redactor) -> str:
    said = str(exc) if isinstance(exc, DeliveryError) else f"{type(exc).__name__}: {exc}"
    return brief(redact(said or type(exc).__name__), MAX_ERROR)


def attempt(settings: Settings, delivery_id: int, channels: dict[str, Channel], redact: Redactor) -> str | None:
    """One attempt at one delivery: claim, send, record. Returns the row's status after it (`sent`,
    `pending` for a retry, `failed`), or None when the row was not due or someone else holds it."""
    attempts = claim(settings, delivery_id)
    if attempts is None:
        return None
    with session_scope(settings.app_db_url) as session:
        row = session.get(AlertDelivery, delivery_id)
        assert row is not None  # just claimed; deliveries are never deleted
        name = row.channel
        alert_row = session.get(Alert, row.alert_id)
        assert alert_row is not None
        alert = alert_record(alert_row)
    channel = channels.get(name)
    try:
        if channel is None:
            raise DeliveryError(f"channel {name} is no longer configured")
        channel.send(alert)
    except Exception as exc:
        error = error_text(exc, redact)
        final = channel is None or attempts >= settings.alert_retry_attempts
        status = "failed" if final else "pending"
        values: dict[str, object] = {"status": status, "claimed_until": None, "last_error": error}
        if not final:
            values["next_attempt_at"] = _now() + timedelta(seconds=retry_delay(settings, attempts))
        _finish(settings, delivery_id, values)
        log.warning(
            "alert delivery failed",
            alert_id=alert.id,
            channel=name,
            attempt=attempts,
            will_retry=not final,
            error=error,
        )
        return status
    _finish(settings, delivery_id, {"status": "sent", "claimed_until": None, "last_error": None, "sent_at": _now()})
    log.info("alert delivered", alert_id=alert.id, channel=name, attempt=attempts)
    return "sent"


def _finish(settings: Settings, delivery_id: int, values: dict[str, object]) -> None:
    with session_scope(settings.app_db_url) as session:
        session.execute(
            update(AlertDelivery)
            .where(AlertDelivery.id == delivery_id, AlertDelivery.status == "sending")
            .values(**values)
        )


def fail_abandoned(settings: Settings) -> int:
    """Fail the rows whose sender died during their last allowed attempt (lease run out)."""
    now = _now()
    with session_scope(settings.app_db_url) as session:
        done = session.execute(
            update(AlertDelivery)
            .where(
                AlertDelivery.status == "sending",
                AlertDelivery.claimed_until < now,
                AlertDelivery.attempts >= settings.alert_retry_attempts,
            )
            .values(
                status="failed",
                claimed_until=None,
                last_error="the process sending it stopped during its last attempt (its claim ran out)",
            )
        )
        return int(done.rowcount)  # type: ignore[attr-defined]


def drain(settings: Settings, limit: int = 100) -> int:
    """Attempt every delivery that is due (oldest first, at most `limit`); returns how many were sent."""
    fail_abandoned(settings)
    now = _now()
    with session_scope(settings.app_db_url) as session:
        due = session.scalars(
            select(AlertDelivery.id)
            .where(_due(now, settings.alert_retry_attempts))
            .order_by(AlertDelivery.next_attempt_at, AlertDelivery.id)
            .limit(limit)
        ).all()
    if not due:
        return 0
    channels = {c.name: c for c in configured_channels(settings)}
    redact = redactor(settings)
    sent = 0
    for delivery_id in due:
        with _IN_FLIGHT.holding(settings.app_db_url):
            sent += attempt(settings, delivery_id, channels, redact) == "sent"
    return sent


class _InFlight:
    """This process's attempts under way, per app DB: what `flush` waits for."""

    def __init__(self) -> None:
        self._count: defaultdict[str, int] = defaultdict(int)
        self._changed = threading.Condition()

    def add(self, url: str, n: int = 1) -> None:
        with self._changed:
            self._count[url] += n

    def done(self, url: str, n: int = 1) -> None:
        with self._changed:
            self._count[url] = max(0, self._count[url] - n)
            self._changed.notify_all()

    def holding(self, url: str) -> _Held:
        return _Held(self, url)

    def wait(self, url: str, timeout: float) -> bool:
        with self._changed:
            return self._changed.wait_for(lambda: self._count[url] == 0, timeout=max(0.0, timeout))


class _Held:
    def __init__(self, in_flight: _InFlight, url: str) -> None:
        self.in_flight, self.url = in_flight, url

    def __enter__(self) -> None:
        self.in_flight.add(self.url)

    def __exit__(self, *_: object) -> None:
        self.in_flight.done(self.url)


_IN_FLIGHT = _InFlight()


def send_in_background(settings: Settings, delivery_ids: list[int]) -> None:
    """Start one daemon thread per delivery; they are in flight (for `flush`) from now on."""
    if not delivery_ids:
        return
    channels = {c.name: c for c in configured_channels(settings)}
    redact = redactor(settings)
    _IN_FLIGHT.add(settings.app_db_url, len(delivery_ids))
    for n, delivery_id in enumerate(delivery_ids):
        try:
            threading.Thread(
                target=_keep_sending,
                args=(settings, delivery_id, channels, redact),
                name=f"skippy-alert-delivery-{delivery_id}",
                daemon=True,
            ).start()
        except Exception:
            _IN_FLIGHT.done(settings.app_db_url, len(delivery_ids) - n)
            raise


def _keep_sending(settings: Settings, delivery_id: int, channels: dict[str, Channel], redact: Redactor) -> None:
    """Attempt a delivery, and retry it after each backoff while this process lives. Only the attempts
    count as in flight: a worker's `flush` does not wait out a backoff (a Courier elsewhere retries)."""
    url = settings.app_db_url
    held = True
    try:
        while True:
            status = attempt(settings, delivery_id, channels, redact)
            _IN_FLIGHT.done(url)
            held = False
            if status != "pending":
                return
            with session_scope(url) as session:
                due = session.scalar(select(AlertDelivery.next_attempt_at).where(AlertDelivery.id == delivery_id))
            if due is not None:
                time.sleep(max(0.0, (due - _now()).total_seconds()))
            _IN_FLIGHT.add(url)
            held = True
    except Exception:
        log.exception("alert delivery thread failed", delivery_id=delivery_id)
    finally:
        if held:
            _IN_FLIGHT.done(url)


def flush(settings: Settings, timeout: float) -> None:
    """Wait up to `timeout` seconds for this process's attempts in flight (a short-lived worker calls
    this before it exits). Retries waiting for their backoff are left to a Courier."""
    if not _IN_FLIGHT.wait(settings.app_db_url, timeout):
        log.warning("alert deliveries still in flight at exit; a courier will retry them", timeout=timeout)


class Courier(Periodic):
    """A daemon thread that drains due deliveries every `poll_seconds`, in long-lived processes."""

    thread_name = "skippy-alert-courier"

    def __init__(self, settings: Settings, poll_seconds: float = COURIER_POLL_SECONDS) -> None:
        super().__init__(poll_seconds)
        self.settings = settings

    def round(self) -> None:
        drain(self.settings)
