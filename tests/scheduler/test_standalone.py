"""`skippy scheduler` alone, no API server: its dispatcher runs the work a scheduled job queued, in a
worker process, and its loop settles the execution from the job's outcome."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mlops.db import session_scope
from mlops.jobs import get_job
from mlops.scheduler import get_execution, trigger
from tests.factories import deployment, store

pytestmark = pytest.mark.slow


def test_skippy_scheduler_runs_queued_work_and_settles_the_execution(tmp_path: Path, empty_mlflow_store: Path) -> None:
    settings = store(tmp_path, mlflow_store=empty_mlflow_store)
    with session_scope(settings.app_db_url) as session:
        deployment(session, agent_type="market_insight", to_version=1)  # a champion in the history only
    execution = trigger(settings, "drift_check", actor="cli:alice")
    assert execution.status == "running" and len(execution.job_ids) == 1
    env = {k: v for k, v in os.environ.items() if k not in ("MLFLOW_TRACKING_URI", "DATABASE_URL", "SKIPPY_ENV")}
    env |= {"SKIPPY_HOME": str(tmp_path), "SKIPPY_SCHEDULER_POLL_SECONDS": "0.5", "SKIPPY_LOG_JSON": "true"}
    log = (tmp_path / "scheduler.err").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "mlops.cli", "scheduler"], env=env, stdout=subprocess.DEVNULL, stderr=log
    )
    try:
        deadline = time.monotonic() + 90
        while get_execution(settings, execution.id).status == "running" and time.monotonic() < deadline:
            assert process.poll() is None, (tmp_path / "scheduler.err").read_text()[-3000:]
            time.sleep(0.5)
    finally:
        process.send_signal(signal.SIGTERM)
        code = process.wait(timeout=60)
    assert code == 0
    settled = get_execution(settings, execution.id)
    job = get_job(settings, execution.job_ids[0])
    assert job.status == "succeeded" and job.pid is not None and job.pid != process.pid  # its own worker
    assert settled.status == "succeeded" and settled.finished_at is not None and settled.error is None
    assert settled.result["jobs"][0]["job_id"] == job.id and settled.result["summary"].startswith("drift")
