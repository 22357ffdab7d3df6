"""The issue's "Done when": two real `skippy scheduler` processes on one PostgreSQL database, with a
schedule every 2 seconds, run each slot exactly once over more than ten slots — both try every slot,
one claims it, the other does nothing — and a job whose flag is off is recorded `skipped` with the
reason. No dispatcher (`--no-jobs`): the first drift check queued stays queued, and the later slots
(still claimed once each) find it waiting and queue no other."""

from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
import sys
import time
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from mlops.db import session_scope, upgrade_database
from mlops.db.models import AuditLog, Job, ModelRun, ScheduledExecution
from mlops.flags import set_flag
from tests.conftest import fresh_postgres_url, make_settings
from tests.factories import deployment

pytestmark = [pytest.mark.postgres, pytest.mark.slow]
SLOTS = 10  # drift_check slots to see claimed while both processes run (two seconds apart)


def start_scheduler(env: dict[str, str], folder: Path, name: str) -> tuple[subprocess.Popen[bytes], Path, Path]:
    out, err = folder / f"{name}.out", folder / f"{name}.err"
    process = subprocess.Popen(
        [sys.executable, "-m", "mlops.cli", "scheduler", "--no-jobs"],
        env=env,
        stdout=out.open("wb"),
        stderr=err.open("wb"),
    )
    return process, out, err


def wait_until_running(out: Path, process: subprocess.Popen[bytes], err: Path, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if "scheduler running" in out.read_text():
            return
        assert process.poll() is None, f"scheduler exited with {process.returncode}: {err.read_text()[-2000:]}"
        time.sleep(0.1)
    raise AssertionError(f"scheduler not running after {timeout} s: {err.read_text()[-2000:]}")


def log_lines(err: Path) -> list[dict[str, Any]]:
    lines = []
    for line in err.read_text().splitlines():
        if line.startswith("{"):
            lines.append(json.loads(line))
    return lines


def test_two_scheduler_processes_run_each_slot_exactly_once(postgres_server: str, tmp_path: Path) -> None:
    url = fresh_postgres_url(postgres_server)
    upgrade_database(url)
    settings = make_settings(tmp_path / "home", database_url=url)
    with session_scope(url) as session:
        deployment(session, agent_type="market_insight", to_version=1)  # a champion to check for drift
    set_flag(settings, "mlops_auto_retrain", False, actor="test")  # the retrain's slots: skipped
    env = {k: v for k, v in os.environ.items() if k not in ("MLFLOW_TRACKING_URI", "SKIPPY_ENV")} | {
        "SKIPPY_HOME": str(tmp_path / "home"),
        "DATABASE_URL": url,
        "SKIPPY_SCHEDULE_DRIFT_CHECK": "*/2 * * * * *",  # six fields: even seconds
        "SKIPPY_SCHEDULE_RETRAIN_MARKET_INSIGHT": "1-59/2 * * * * *",  # odd seconds
        "SKIPPY_SCHEDULER_POLL_SECONDS": "1",
        "SKIPPY_LOG_JSON": "true",
        "SKIPPY_LOG_LEVEL": "INFO",
    }
    processes: list[tuple[subprocess.Popen[bytes], Path, Path]] = []
    try:
        for name in ("a", "b"):
            processes.append(start_scheduler(env, tmp_path, name))
        for process, out, err in processes:
            wait_until_running(out, process, err)
        both_running = datetime.now(UTC)
        deadline = time.monotonic() + 32
        while time.monotonic() < deadline:
            with session_scope(url) as session:
                seen = session.scalars(
                    select(ScheduledExecution.id).where(
                        ScheduledExecution.job_name == "drift_check", ScheduledExecution.scheduled_for > both_running
                    )
                ).all()
            if len(seen) >= SLOTS:
                break
            time.sleep(0.5)
        alive = [p.poll() is None for p, _, _ in processes]
    finally:
        for process, _, _ in processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        codes = [process.wait(timeout=30) for process, _, _ in processes]
    assert alive == [True, True], [err.read_text()[-2000:] for _, _, err in processes]
    assert codes == [0, 0]  # both stopped cleanly on SIGTERM

    with session_scope(url) as session:
        executions = list(session.scalars(select(ScheduledExecution).order_by(ScheduledExecution.scheduled_for)))
        jobs = list(session.scalars(select(Job).order_by(Job.id)))
        queued_audit = session.scalars(select(AuditLog.id).where(AuditLog.action == "drift queued")).all()
        runs = session.scalars(select(ModelRun.id)).all()
        session.expunge_all()
    drift = [e for e in executions if e.job_name == "drift_check"]
    retrain = [e for e in executions if e.job_name == "retrain_market_insight"]

    # Every slot between the first and the last has exactly one execution: no gap, no duplicate.
    slots = [e.scheduled_for for e in drift]
    assert len(slots) == len(set(slots)) and len([s for s in slots if s > both_running]) >= SLOTS
    assert all(later - earlier == timedelta(seconds=2) for earlier, later in itertools.pairwise(slots))
    assert all(s.second % 2 == 0 and s.microsecond == 0 for s in slots)
    assert {e.trigger for e in executions} == {"schedule"} and {e.requested_by for e in executions} == {"scheduler"}

    # The work was submitted once: the first slot queued one drift job; with no dispatcher to run it, every
    # later slot found it still queued and piled no other on top (skipped, naming it).
    first, *later = drift
    assert len(first.job_ids) == 1 and first.status == "running"  # its job waits for a dispatcher
    assert [j.id for j in jobs] == first.job_ids and len(queued_audit) == 1
    assert {(j.kind, j.status, j.requested_by) for j in jobs} == {("drift", "queued", "scheduler")}
    still = f"the previous drift job {first.job_ids[0]} is still queued"
    assert all(e.status == "skipped" and e.job_ids == [] and still in e.result["reason"] for e in later)

    # Both processes fired for the slots they were both up for: one claimed each slot (the row's pid), the
    # other found it taken and did nothing. (A process stalled past a whole slot may sit one out.)
    pids = {p.pid for p, _, _ in processes}
    tried: dict[str, dict[str, list[int]]] = defaultdict(lambda: defaultdict(list))
    for process, _, err in processes:
        for line in log_lines(err):
            if line.get("job_name") == "drift_check" and line.get("message", "").endswith("claimed"):
                tried[line["scheduled_for"]][line["message"]].append(process.pid)
    shared = [e for e in drift if e.scheduled_for > both_running]
    for execution in shared:
        attempts = tried[execution.scheduled_for.isoformat()]
        assert attempts["scheduled job claimed"] == [execution.pid], (execution.scheduled_for, attempts)
    both = [
        e for e in shared if set(tried[e.scheduled_for.isoformat()]["scheduled job already claimed"]) == pids - {e.pid}
    ]
    assert len(both) >= len(shared) - 1, {
        e.scheduled_for.isoformat(): tried[e.scheduled_for.isoformat()] for e in shared
    }

    # The retrain's flag is off: each of its slots is recorded skipped with the reason, and nothing trained.
    assert len(retrain) >= SLOTS - 1 and runs == []
    assert {e.status for e in retrain} == {"skipped"} and all(e.job_ids == [] for e in retrain)
    assert all("feature flag mlops_auto_retrain is off" in e.result["reason"] for e in retrain)
