"""Job records without worker processes: the reaper's rules and the queued-cancel race."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from mlops.data.generate import generate_market
from mlops.db import session_scope
from mlops.db.models import AgentLock, Job, ModelRun
from mlops.jobs import cancel_job, get_job, reap_dead_jobs, submit_retrain
from mlops.jobs.service import finish_job
from mlops.stores import init_stores
from tests.conftest import make_settings


def test_a_job_of_a_vanished_host_is_failed_after_its_timeout_and_frees_its_agent(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, job_timeout_seconds=60)
    init_stores(settings)
    generate_market(settings, symbol="SYNTH", n_bars=300)
    job = submit_retrain(settings, agent="market_insight", actor="t")
    with session_scope(settings.app_db_url) as session:
        row = session.get(Job, job.id)
        assert row is not None
        row.status, row.hostname, row.pid = "running", "replaced-container", 4242
        row.started_at = datetime.now(UTC) - timedelta(seconds=30)
        run = session.get(ModelRun, job.model_run_id)
        assert run is not None
        run.status, run.hostname, run.pid = "running", "replaced-container", 4242  # it had started its retrain
        lock = session.get(AgentLock, "market_insight")  # taken at submission, for the queued run
        assert lock is not None and lock.model_run_id == run.id and lock.pid is None
        lock.pid, lock.hostname = 4242, "replaced-container"  # the worker took it over
    assert reap_dead_jobs(settings) == []  # within its timeout: another host's worker may still run
    with session_scope(settings.app_db_url) as session:
        row = session.get(Job, job.id)
        assert row is not None
        row.started_at = datetime.now(UTC) - timedelta(seconds=60 + 301)
    assert reap_dead_jobs(settings) == [job.id]
    reaped = get_job(settings, job.id)
    assert reaped.status == "failed" and "replaced-container" in (reaped.error or "")
    with session_scope(settings.app_db_url) as session:
        run = session.get(ModelRun, job.model_run_id)
        assert run is not None and run.status == "failed"
        assert session.get(AgentLock, "market_insight") is None
    assert submit_retrain(settings, agent="market_insight", actor="t").status == "queued"  # 409 key freed


def test_cancelling_a_job_the_dispatcher_just_claimed_does_not_fake_a_start(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    init_stores(settings)
    generate_market(settings, symbol="SYNTH", n_bars=300)
    job = submit_retrain(settings, agent="risk_assessor", actor="t")
    with session_scope(settings.app_db_url) as session:
        row = session.get(Job, job.id)
        assert row is not None
        row.status = "running"  # claimed between the caller's read and its write
    assert not finish_job(settings, job.id, "cancelled", error="x", only_from=("queued",))
    cancelled = cancel_job(settings, job.id, actor="t")
    assert cancelled.status == "running" and cancelled.cancel_requested  # the worker is asked to stop instead
