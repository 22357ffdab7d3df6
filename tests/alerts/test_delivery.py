"""Storing, deduplicating, routing and sending alerts, on SQLite and on the real PostgreSQL where the
database decides (concurrent raisers, concurrent senders): retries with backoff, failure after the
attempts with the error masked, a raiser that never waits for a channel, leases, the Courier, `flush`."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, update

from mlops.alerts import Courier, acknowledge_alert, flush, raise_alert
from mlops.alerts.channels import configured_channels, redactor
from mlops.alerts.delivery import attempt, drain
from mlops.db import session_scope, upgrade_database
from mlops.db.models import Alert, AlertDelivery
from mlops.logs import configure_logging
from mlops.settings import Settings
from tests.alerts.loopback import (
    PD_KEY,
    SLACK_TOKEN,
    WEBHOOK_TOKEN,
    HttpRecorder,
    deliveries,
    free_port,
    http_recorder,
    settled,
    wait_until,
)
from tests.conftest import make_settings

FAST = {"alert_retry_base_seconds": 0.05, "alert_retry_attempts": 3, "alert_timeout_seconds": 2.0}


def settings_for(home: Path, hook: HttpRecorder | None = None, db_url: str | None = None, **overrides: Any) -> Settings:
    values: dict[str, Any] = dict(FAST)
    if hook is not None:
        values["alert_webhook_url"] = hook.url(f"/hooks/{WEBHOOK_TOKEN}")
    settings = make_settings(home, database_url=db_url, **(values | overrides))
    if db_url is None:
        upgrade_database(settings.app_db_url)
    return settings


def drift(settings: Settings, severity: str = "critical", **kwargs: Any) -> Any:
    values: dict[str, Any] = {
        "severity": severity,
        "kind": "drift_critical",
        "agent": "market_insight",
        "message": "feature drift is critical",
    } | kwargs
    return raise_alert(settings, **values)


def test_a_repeat_counts_without_notifying_until_acknowledged(tmp_path: Path) -> None:
    with http_recorder() as hook:
        settings = settings_for(tmp_path, hook)
        first = drift(settings, message="KL 0.2", details={"max_kl": 0.2})
        again = drift(settings, message="KL 0.3", details={"max_kl": 0.3})
        flush(settings, 10)
        assert first is not None and again is not None
        assert again.id == first.id and again.count == 2 and again.last_seen >= first.last_seen
        assert again.message == "KL 0.3" and again.details == {"max_kl": 0.3}  # the latest kept
        assert len(hook.wait_for(1)) == 1 and len(deliveries(settings, first.id)) == 1
        other = drift(settings, agent="risk_assessor")  # another agent: another alert
        keyed = drift(settings, key="volatility_20")  # another key: another alert
        assert other is not None and keyed is not None and len({first.id, other.id, keyed.id}) == 3
        acknowledge_alert(settings, first.id, actor="test")
        after = drift(settings)
        assert after is not None and after.id != first.id and after.count == 1
        flush(settings, 10)
        assert len(hook.wait_for(4)) == 4  # first, other, keyed, after: never the repeat


def test_the_window_ends_deduplication(tmp_path: Path) -> None:
    settings = settings_for(tmp_path, alert_dedup_seconds=60)
    first = drift(settings)
    assert first is not None
    with session_scope(settings.app_db_url) as session:  # last seen two minutes ago
        session.execute(
            update(Alert).where(Alert.id == first.id).values(last_seen=datetime.now(UTC) - timedelta(minutes=2))
        )
    later = drift(settings)
    assert later is not None and later.id != first.id
    none = settings_for(tmp_path / "none", alert_dedup_seconds=0)
    a, b = drift(none), drift(none)
    assert a is not None and b is not None and a.id != b.id


def test_severity_routes_to_the_channels_it_reaches(tmp_path: Path) -> None:
    with http_recorder() as hook, http_recorder() as slack, http_recorder() as pagerduty:
        settings = settings_for(
            tmp_path,
            hook,
            alert_webhook_min_severity="info",
            alert_slack_webhook_url=slack.url(f"/services/{SLACK_TOKEN}"),
            alert_slack_min_severity="warning",
            alert_pagerduty_routing_key=PD_KEY,
            alert_pagerduty_url=pagerduty.url("/v2/enqueue"),
            alert_pagerduty_min_severity="critical",
        )
        info = raise_alert(settings, severity="info", kind="retrain_rejected", agent="market_insight", message="m")
        warning = raise_alert(settings, severity="warning", kind="auto_retrain_skipped", agent=None, message="m")
        critical = raise_alert(settings, severity="critical", kind="auto_rollback", agent="risk_assessor", message="m")
        flush(settings, 10)
        assert info is not None and warning is not None and critical is not None
        assert set(deliveries(settings, info.id)) == {"webhook"}
        assert set(deliveries(settings, warning.id)) == {"webhook", "slack"}
        assert set(deliveries(settings, critical.id)) == {"webhook", "slack", "pagerduty"}
        assert len(hook.wait_for(3)) == 3 and len(slack.wait_for(2)) == 2 and len(pagerduty.wait_for(1)) == 1
        # A repeat that is more severe reaches the channels its new severity reaches, and only those.
        escalated = raise_alert(
            settings, severity="critical", kind="retrain_rejected", agent="market_insight", message="m"
        )
        flush(settings, 10)
        assert escalated is not None and escalated.id == info.id and escalated.severity == "critical"
        assert set(deliveries(settings, info.id)) == {"webhook", "slack", "pagerduty"}
        assert len(pagerduty.wait_for(2)) == 2 and len(hook.requests) == 3


def test_a_refused_attempt_is_retried_with_backoff(tmp_path: Path) -> None:
    with http_recorder(statuses=[500, 503]) as hook:
        settings = settings_for(tmp_path, hook)
        alert = drift(settings)
        assert alert is not None
        delivery = settled(settings, alert.id)["webhook"]
        requests = hook.wait_for(3)
    assert delivery.status == "sent" and delivery.attempts == 3 and delivery.last_error is None
    assert len(requests) == 3


def test_a_channel_that_stays_down_fails_after_the_attempts_with_the_error_masked(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    configure_logging("INFO", json=True)
    with http_recorder(statuses=[500, 500, 500, 500]) as hook:
        settings = settings_for(tmp_path, hook)
        alert = drift(settings)
        assert alert is not None
        delivery = settled(settings, alert.id)["webhook"]
    assert delivery.status == "failed" and delivery.attempts == 3 and len(hook.requests) == 3
    # The server echoed the path, token and all: the stored error keeps the status, not the token.
    assert delivery.last_error is not None and delivery.last_error.startswith("HTTP 500")
    assert WEBHOOK_TOKEN not in delivery.last_error and "refused /***" in delivery.last_error
    refused = settings_for(tmp_path / "down", alert_webhook_url=f"http://127.0.0.1:{free_port()}/h/{WEBHOOK_TOKEN}")
    down = drift(refused)
    assert down is not None
    gone = settled(refused, down.id)["webhook"]
    assert gone.status == "failed" and gone.attempts == 3 and "ConnectError" in (gone.last_error or "")
    assert WEBHOOK_TOKEN not in (gone.last_error or "")
    logged = capsys.readouterr()
    assert "alert delivery failed" in logged.err and WEBHOOK_TOKEN not in logged.out + logged.err


def test_raising_never_waits_for_a_channel(tmp_path: Path) -> None:
    """The channel's server holds the request until released: raise_alert has long returned, and the
    delivery is still being sent; released, it is sent."""
    gate = threading.Event()
    with http_recorder(gate=gate) as hook:
        settings = settings_for(tmp_path, hook)
        alert = drift(settings)
        assert alert is not None  # returned, while ...
        assert hook.entered.wait(10)  # ... the channel has the request and is not answering
        assert deliveries(settings, alert.id)["webhook"].status == "sending"
        assert hook.requests == []
        gate.set()
        flush(settings, 10)
        assert deliveries(settings, alert.id)["webhook"].status == "sent"  # flush waited for it


def test_flush_gives_up_at_its_timeout_and_a_courier_finishes(tmp_path: Path) -> None:
    gate = threading.Event()
    with http_recorder(gate=gate) as hook:
        settings = settings_for(tmp_path, hook)
        alert = drift(settings)
        assert alert is not None and hook.entered.wait(10)
        flush(settings, 0.1)  # returns although the send is still in flight
        assert deliveries(settings, alert.id)["webhook"].status == "sending"
        gate.set()
        assert settled(settings, alert.id)["webhook"].status == "sent"


def test_raise_alert_never_raises(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("INFO", json=True)
    settings = make_settings(tmp_path)  # never migrated: there is no alerts table
    assert drift(settings) is None
    assert "alert could not be stored" in capsys.readouterr().err
    migrated = settings_for(tmp_path / "ok")
    assert drift(migrated, severity="catastrophic") is None


def _queued(settings: Settings, **values: Any) -> int:
    """An alert with one webhook delivery in the outbox, as a process that died before sending leaves it."""
    with session_scope(settings.app_db_url) as session:
        alert = Alert(
            severity="critical",
            kind="drift_critical",
            agent_type="market_insight",
            message="m",
            details={},
            dedup_key="drift_critical:market_insight",
        )
        session.add(alert)
        session.flush()
        row = AlertDelivery(alert_id=alert.id, channel="webhook", **values)
        session.add(row)
        session.flush()
        return row.id


def test_two_senders_never_send_one_delivery_twice(db_url: str, tmp_path: Path) -> None:
    with http_recorder() as hook:
        settings = settings_for(tmp_path, hook, db_url)
        delivery_id = _queued(settings)
        channels = {c.name: c for c in configured_channels(settings)}
        start = threading.Barrier(4)
        outcomes: list[str | None] = []

        def send() -> None:
            start.wait()
            outcomes.append(attempt(settings, delivery_id, channels, redactor(settings)))

        threads = [threading.Thread(target=send) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert len(outcomes) == 4 and outcomes.count("sent") == 1 and outcomes.count(None) == 3
        assert len(hook.requests) == 1


def test_an_expired_lease_is_taken_again_and_a_last_one_fails(db_url: str, tmp_path: Path) -> None:
    with http_recorder() as hook:
        settings = settings_for(tmp_path, hook, db_url)
        past = datetime.now(UTC) - timedelta(seconds=1)
        future = datetime.now(UTC) + timedelta(minutes=5)
        stale = _queued(settings, status="sending", attempts=1, claimed_until=past)
        held = _queued(settings, status="sending", attempts=1, claimed_until=future)
        last = _queued(settings, status="sending", attempts=3, claimed_until=past)
        later = _queued(settings, status="pending", attempts=1, next_attempt_at=future)
        assert drain(settings) == 1
        with session_scope(settings.app_db_url) as session:
            rows = {r.id: r for r in session.scalars(select(AlertDelivery))}
        assert rows[stale].status == "sent" and rows[stale].attempts == 2
        assert rows[held].status == "sending" and rows[later].status == "pending"  # someone holds it; not due
        assert rows[last].status == "failed" and "claim ran out" in (rows[last].last_error or "")
        assert len(hook.requests) == 1


def test_concurrent_raisers_make_one_alert(db_url: str, tmp_path: Path) -> None:
    with http_recorder() as hook:
        settings = settings_for(tmp_path, hook, db_url)
        start = threading.Barrier(6)
        ids: list[int] = []

        def raise_one() -> None:
            start.wait()
            alert = drift(settings)
            assert alert is not None
            ids.append(alert.id)

        threads = [threading.Thread(target=raise_one) for _ in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        flush(settings, 10)
        with session_scope(settings.app_db_url) as session:
            counts = session.execute(select(Alert.id, Alert.count)).all()
        assert len(set(ids)) == 1 and [tuple(c) for c in counts] == [(ids[0], 6)]
        assert len(hook.wait_for(1)) == 1 and len(deliveries(settings, ids[0])) == 1


def test_a_courier_sends_what_is_due(tmp_path: Path) -> None:
    with http_recorder() as hook:
        settings = settings_for(tmp_path, hook)
        delivery_id = _queued(settings)
        courier = Courier(settings, poll_seconds=0.05)
        courier.start()
        try:
            assert wait_until(lambda: len(hook.requests) == 1)
        finally:
            courier.stop()
        with session_scope(settings.app_db_url) as session:
            assert session.get(AlertDelivery, delivery_id).status == "sent"  # type: ignore[union-attr]


FLUSHING_WORKER = """
import sys
from mlops.alerts import flush, raise_alert
from mlops.settings import Settings
settings = Settings(_env_file=None)
alert = raise_alert(settings, severity="critical", kind="retrain_failed", agent="risk_assessor", message="boom")
flush(settings, 10)
print(alert.id)
"""


def test_a_short_lived_process_flushes_its_sends_before_exiting(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    with http_recorder() as hook:
        settings = settings_for(tmp_path, hook)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("SKIPPY_", "DATABASE_URL"))} | {
            "SKIPPY_HOME": str(tmp_path),
            "SKIPPY_ALERT_WEBHOOK_URL": hook.url(f"/hooks/{WEBHOOK_TOKEN}"),
        }
        done = subprocess.run(
            [sys.executable, "-c", FLUSHING_WORKER], env=env, capture_output=True, text=True, timeout=60
        )
        assert done.returncode == 0, done.stderr
        alert_id = int(done.stdout.split()[-1])
        # The process has exited: what it sent, it sent before exiting.
        assert len(hook.requests) == 1 and hook.requests[0].json()["kind"] == "retrain_failed"
        assert deliveries(settings, alert_id)["webhook"].status == "sent"
