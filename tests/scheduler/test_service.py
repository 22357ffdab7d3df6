"""One execution of a scheduled job, on SQLite and on the real PostgreSQL: the claim (once per slot, also
under concurrent claimers), the coalescing catch-up after downtime on an injected clock, every reason
to skip, a failure of the scheduler's own step (failed + alert), and settling executions from their
queue jobs' outcomes."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from mlops.db import session_scope
from mlops.db.models import Alert, AuditLog, Job
from mlops.flags import set_flag
from mlops.jobs.service import finish_job
from mlops.scheduler import catch_up, list_executions, run_scheduled, settle, trigger, triggers
from mlops.scheduler.executions import claim, get_execution, record_jobs
from mlops.settings import Settings
from tests.factories import deployment, job

T0 = datetime(2026, 11, 2, 6, 0, tzinfo=UTC)  # a Monday, on a drift_check slot (every 6 h)


def champion(settings: Settings, agent: str = "market_insight", version: int = 1, previous: int | None = None) -> None:
    with session_scope(settings.app_db_url) as session:
        deployment(session, agent_type=agent, to_version=version, from_version=previous)


def queued_jobs(settings: Settings, kind: str) -> list[Job]:
    with session_scope(settings.app_db_url) as session:
        rows = list(session.scalars(select(Job).where(Job.kind == kind).order_by(Job.id)))
        session.expunge_all()
    return rows


# --- exactly once --------------------------------------------------------------------------------------


def test_a_slot_is_claimed_once_and_the_loser_does_nothing(settings: Settings) -> None:
    champion(settings)
    trig = triggers(settings)["drift_check"]
    first = run_scheduled(settings, "drift_check", trig, now=T0 + timedelta(seconds=0.3))
    second = run_scheduled(settings, "drift_check", trig, now=T0 + timedelta(seconds=2))  # same slot, later
    assert first is not None and second is None
    assert first.scheduled_for == T0 and first.trigger == "schedule" and first.requested_by == "scheduler"
    assert first.status == "running" and len(first.job_ids) == 1
    (queued,) = queued_jobs(settings, "drift")
    assert queued.id == first.job_ids[0] and queued.requested_by == "scheduler" and queued.status == "queued"
    assert first.hostname and first.pid == os.getpid()


def test_concurrent_claimers_of_one_slot_run_it_once(settings: Settings) -> None:
    """Eight threads fire for the same slot at once (as replicas do): one execution, one queued job."""
    champion(settings)
    trig = triggers(settings)["drift_check"]
    barrier = threading.Barrier(8)
    results: list[object] = []

    def fire() -> None:
        barrier.wait()
        results.append(run_scheduled(settings, "drift_check", trig, now=T0 + timedelta(milliseconds=5)))

    threads = [threading.Thread(target=fire) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 8 and sum(r is not None for r in results) == 1
    assert len(list_executions(settings, job_name="drift_check")) == 1
    assert len(queued_jobs(settings, "drift")) == 1


# --- coalescing after downtime -------------------------------------------------------------------------


def test_missed_runs_coalesce_into_one_for_the_newest_slot(settings: Settings) -> None:
    champion(settings)
    compiled = triggers(settings)
    # A job the schedule never ran is not run at start: a new installation waits for the next fire time.
    assert catch_up(settings, compiled, now=T0 + timedelta(hours=1)) == []
    ran = run_scheduled(settings, "drift_check", compiled["drift_check"], now=T0 + timedelta(seconds=1))
    assert ran is not None and ran.scheduled_for == T0
    finish_job(settings, ran.job_ids[0], "succeeded", result={})  # its job ran (else the next would wait for it)
    # Down from 06:00 on Monday until 14:27 on Wednesday: nine drift_check slots missed.
    restart = datetime(2026, 11, 4, 14, 27, 13, tzinfo=UTC)
    (caught,) = catch_up(settings, compiled, now=restart)
    assert caught.job_name == "drift_check" and caught.scheduled_for == datetime(2026, 11, 4, 12, 0, tzinfo=UTC)
    assert caught.trigger == "schedule" and caught.started_at == restart
    # A second replica starting moments later finds the slot taken; so does the next start.
    assert catch_up(settings, compiled, now=restart + timedelta(minutes=3)) == []
    assert [e.scheduled_for for e in list_executions(settings, job_name="drift_check")] == [
        datetime(2026, 11, 4, 12, 0, tzinfo=UTC),
        T0,
    ]
    assert [j.status for j in queued_jobs(settings, "drift")] == ["succeeded", "queued"]  # one for nine slots
    # The other jobs never ran on their schedule, so nothing of theirs was caught up.
    assert {e.job_name for e in list_executions(settings)} == {"drift_check"}


def test_a_manual_run_does_not_count_as_the_schedule_having_run(settings: Settings) -> None:
    champion(settings)
    trigger(settings, "drift_check", actor="cli:alice", now=T0)
    assert catch_up(settings, triggers(settings), now=T0 + timedelta(days=3)) == []


def test_a_late_call_runs_the_newest_slot_due(settings: Settings) -> None:
    """A busy or suspended process that fires 7 h late runs once, for the slot due then (12:00), not 06:00."""
    champion(settings)
    trig = triggers(settings)["drift_check"]
    late = run_scheduled(settings, "drift_check", trig, now=T0 + timedelta(hours=7))
    assert late is not None and late.scheduled_for == T0 + timedelta(hours=6)


# --- skipped, with the reason --------------------------------------------------------------------------


def test_a_job_whose_flag_is_off_is_skipped_with_the_flag_named(settings: Settings) -> None:
    champion(settings)
    set_flag(settings, "mlops_drift_detection", False, actor="test")
    set_flag(settings, "mlops_auto_retrain", False, actor="test")
    for name in ("drift_check", "retrain_market_insight", "retrain_risk_assessor"):
        execution = trigger(settings, name, actor="cli:alice")
        assert execution.status == "skipped" and execution.job_ids == [] and execution.finished_at is not None
        flag = "mlops_drift_detection" if name == "drift_check" else "mlops_auto_retrain"
        assert f"feature flag {flag} is off" in execution.result["reason"]
        assert f"skippy flags set {flag} on" in execution.result["summary"]
    assert queued_jobs(settings, "drift") == [] and queued_jobs(settings, "retrain") == []


def test_checks_with_no_champion_are_skipped(settings: Settings) -> None:
    for name, reason in (
        ("drift_check", "no agent has a champion to check for drift"),
        ("weekly_validation", "no agent has a champion to validate"),
        ("champion_watch", "no agent has a champion to watch"),
    ):
        execution = trigger(settings, name, actor="cli:alice")
        assert (execution.status, execution.result["reason"]) == ("skipped", reason)


def test_the_watch_runs_only_while_a_champion_is_on_probation(settings: Settings) -> None:
    champion(settings, version=1)  # a first champion replaced nothing: there is nothing to roll back to
    skipped = trigger(settings, "champion_watch", actor="scheduler")
    assert skipped.status == "skipped" and "no champion is on probation" in skipped.result["reason"]
    champion(settings, version=2, previous=1)  # v2 replaced v1: on probation
    watched = trigger(settings, "champion_watch", actor="scheduler")
    assert watched.status == "running" and watched.result["agents"] == ["market_insight"]
    (queued,) = queued_jobs(settings, "watch")
    assert watched.job_ids == [queued.id] and queued.agent_type is None


def test_weekly_validation_queues_one_job_for_every_champion(settings: Settings) -> None:
    champion(settings, "market_insight")
    champion(settings, "risk_assessor")
    execution = trigger(settings, "weekly_validation", actor="scheduler")
    assert execution.status == "running" and execution.result["agents"] == ["market_insight", "risk_assessor"]
    (queued,) = queued_jobs(settings, "validation")
    assert execution.job_ids == [queued.id]


def test_a_failing_step_fails_the_execution_and_raises_an_alert(settings: Settings) -> None:
    """No bars at all: the retrain service refuses; the execution is failed with its words, and a warning
    `scheduled_job_failed` alert names the job."""
    execution = run_scheduled(
        settings, "retrain_market_insight", triggers(settings)["retrain_market_insight"], now=T0 - timedelta(hours=3)
    )
    assert execution is not None and execution.status == "failed"
    assert execution.scheduled_for == datetime(2026, 11, 2, 2, 0, tzinfo=UTC)
    assert execution.error and "NotFoundError" in execution.error and "bars" in execution.error
    with session_scope(settings.app_db_url) as session:
        (alert,) = session.scalars(select(Alert)).all()
        assert (alert.kind, alert.severity, alert.agent_type) == ("scheduled_job_failed", "warning", "market_insight")
        assert "retrain_market_insight" in alert.message and alert.details["execution_id"] == execution.id


def test_a_manual_trigger_is_audited_with_its_execution(settings: Settings) -> None:
    champion(settings)
    execution = trigger(settings, "drift_check", actor="api:ops")
    assert (execution.trigger, execution.requested_by) == ("manual", "api:ops")
    with session_scope(settings.app_db_url) as session:
        rows = {r.action: r for r in session.scalars(select(AuditLog).where(AuditLog.actor == "api:ops"))}
    assert rows["scheduled job trigger"].result["execution_id"] == execution.id
    assert rows["scheduled job trigger"].result["job_ids"] == execution.job_ids
    assert rows["drift queued"].result["job_id"] == execution.job_ids[0]  # the queue's own audit row


def test_an_unknown_job_is_refused_with_the_list_of_jobs(settings: Settings) -> None:
    from mlops.errors import NotFoundError

    with pytest.raises(NotFoundError, match=r"unknown scheduled job 'nightly'.*drift_check.*champion_watch"):
        trigger(settings, "nightly", actor="cli:alice")


# --- settling ------------------------------------------------------------------------------------------


def _execution_with_jobs(settings: Settings, name: str, slot: datetime, **jobs: dict[str, object]) -> int:
    execution = claim(settings, name, slot, trigger="schedule", requested_by="scheduler", now=slot)
    assert execution is not None
    with session_scope(settings.app_db_url) as session:
        ids = [job(session, **values).id for values in jobs.values()]
    record_jobs(settings, execution.id, ids, {"summary": "queued"})
    return execution.id


def test_settle_aggregates_the_jobs_outcomes(settings: Settings) -> None:
    retrain_ok = {
        "kind": "retrain",
        "agent_type": "market_insight",
        "status": "succeeded",
        "result": {
            "agent_type": "market_insight",
            "model_version": 7,
            "deployment_status": "promoted",
            "reason": "passed",
        },
    }
    retrain_rejected = retrain_ok | {
        "status": "rejected",
        "result": {
            "agent_type": "market_insight",
            "model_version": 8,
            "deployment_status": "rejected",
            "reason": "worse",
        },
        "error": "worse than the champion",
    }
    drift = {
        "kind": "drift",
        "status": "succeeded",
        "result": {
            "checks": [
                {"agent_type": "market_insight", "status": "critical"},
                {"agent_type": "risk_assessor", "status": "ok"},
            ]
        },
    }
    watch = {
        "kind": "watch",
        "status": "succeeded",
        "result": {"verdicts": [{"agent_type": "risk_assessor", "decision": "keep"}]},
    }
    failed = {"kind": "watch", "status": "failed", "error": "worker process exited with code -9"}
    cancelled = {"kind": "validation", "status": "cancelled", "error": "cancelled by api:ops before it started"}
    empty = drift | {"result": {"checks": [], "reactions": []}}
    succeeded = _execution_with_jobs(settings, "retrain_market_insight", T0, a=retrain_ok)
    rejected = _execution_with_jobs(settings, "retrain_market_insight", T0 + timedelta(days=1), a=retrain_rejected)
    checked = _execution_with_jobs(settings, "drift_check", T0, a=drift)
    broken = _execution_with_jobs(settings, "champion_watch", T0, a=watch, b=failed)
    stopped = _execution_with_jobs(settings, "weekly_validation", T0, a=cancelled)
    nothing = _execution_with_jobs(settings, "drift_check", T0 + timedelta(hours=12), a=empty)
    waiting = _execution_with_jobs(settings, "drift_check", T0 + timedelta(hours=6), a=drift, b={"status": "running"})

    finished = {e.id for e in settle(settings)}
    assert finished == {succeeded, rejected, checked, broken, stopped, nothing}
    ok = get_execution(settings, succeeded)
    assert ok.status == "succeeded" and ok.error is None and ok.finished_at is not None
    assert ok.result["summary"] == "market_insight v7 promoted: passed"
    assert ok.result["jobs"][0]["model_version"] == 7
    no = get_execution(settings, rejected)
    assert no.status == "rejected" and "worse than the champion" in (no.error or "")
    assert get_execution(settings, checked).result["summary"] == "drift: market_insight critical, risk_assessor ok"
    failing = get_execution(settings, broken)
    assert failing.status == "failed" and "exited with code -9" in (failing.error or "")
    assert failing.result["summary"].startswith("watch: risk_assessor keep; watch job ")
    assert get_execution(settings, stopped).status == "failed"  # a cancelled job did not do the work
    assert "cancelled by api:ops" in (get_execution(settings, stopped).error or "")
    assert get_execution(settings, nothing).result["summary"] == (
        "drift succeeded: no agent had a champion to check when it ran"
    )
    assert get_execution(settings, waiting).status == "running"
    assert settle(settings) == []  # settled once


def test_an_execution_whose_scheduler_died_before_queueing_is_failed(settings: Settings) -> None:
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    execution = claim(settings, "drift_check", T0, trigger="schedule", requested_by="scheduler", now=T0)
    assert execution is not None
    with session_scope(settings.app_db_url) as session:
        from mlops.db.models import ScheduledExecution

        row = session.get(ScheduledExecution, execution.id)
        assert row is not None
        row.pid = dead.pid
    (orphan,) = settle(settings, now=T0 + timedelta(seconds=5))
    assert orphan.status == "failed" and f"process {dead.pid}" in (orphan.error or "")
    # One of another host is given ten minutes.
    other = claim(settings, "drift_check", T0 + timedelta(hours=6), trigger="schedule", requested_by="s", now=T0)
    assert other is not None
    with session_scope(settings.app_db_url) as session:
        from mlops.db.models import ScheduledExecution

        row = session.get(ScheduledExecution, other.id)
        assert row is not None
        row.hostname = "elsewhere"
    assert settle(settings, now=T0 + timedelta(minutes=5)) == []
    assert [e.id for e in settle(settings, now=T0 + timedelta(minutes=11))] == [other.id]
