"""Issue 11, item 2: deployments are all or nothing. Each finding of the probe is replayed against the
services themselves (the CLI, the API and the jobs call the same ones), on SQLite and on the real
PostgreSQL: an alias move and its `model_deployments` row commit together or not at all, the reaper puts
back what a dead run moved and ends the MLflow run it left RUNNING, and the serving cache never disagrees
with the registry for longer than its bound. The same deaths by a real kill -9, at every phase of a
retrain, are in tests/pipeline/test_crash.py."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import event, func, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError

from mlops.db import create_db_engine, session_scope
from mlops.db.models import AgentLock, AuditLog, ModelDeployment, ModelRun
from mlops.errors import InvalidRequestError
from mlops.jobs.service import FOREIGN_GRACE_SECONDS, reap_dead_jobs
from mlops.pipeline import serving
from mlops.pipeline.deployments import (
    CHALLENGER,
    CHAMPION,
    MAX_ACTOR,
    MAX_REASON,
    deploy_validated,
    move_alias,
    previous_champion,
    promote,
    rollback,
)
from mlops.pipeline.locks import reap_dead_runs
from mlops.pipeline.retrain import retrain
from mlops.processes import HOSTNAME
from mlops.settings import Settings
from tests.conftest import fresh_postgres_url
from tests.factories import job, market_store, model_run
from tests.pipeline.test_deployments import aliases, champion_is, registry_aliases

pytestmark = pytest.mark.slow
AGENT = "market_insight"


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def settings(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, empty_mlflow_store: Path
) -> Iterator[Settings]:
    """v1 validated and deployed; v2 registered (the same recipe on the same bars: rejected)."""
    overrides: dict[str, object] = {"drift_null_draws": 0, "drift_null_prediction_draws": 0}
    if request.param == "postgres":
        overrides["database_url"] = fresh_postgres_url(request.getfixturevalue("postgres_server"))
    home = tmp_path_factory.mktemp(f"security-deployments-{request.param}")
    settings = market_store(home, mlflow_store=empty_mlflow_store, n_bars=900, **overrides)
    first = retrain(settings, agent=AGENT, actor="test")
    assert (first.model_version, first.deployment_status) == (1, "promoted"), first.reason
    second = retrain(settings, agent=AGENT, actor="test")
    assert second.model_version == 2, second.reason
    yield settings


def history_size(settings: Settings) -> int:
    with session_scope(settings.app_db_url) as session:
        return session.scalar(select(func.count()).select_from(ModelDeployment)) or 0


def dead_pid() -> int:
    """The pid of a process that has ended (as a worker killed with -9 leaves in its run row)."""
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def dead_run(settings: Settings, **overrides: object) -> int:
    """A `running` run of AGENT whose process has died, holding the agent's lock, that registered v2 —
    what a worker killed during its deployment phase leaves behind."""
    with session_scope(settings.app_db_url) as session:
        values: dict[str, object] = {
            "status": "running",
            "pid": dead_pid(),
            "hostname": HOSTNAME,
            "model_version": 2,
            "mlflow_run_id": None,
        }
        run = model_run(session, **(values | overrides))
        session.add(AgentLock(agent_type=AGENT, model_run_id=run.id, pid=run.pid, hostname=run.hostname))
        return run.id


def run_row(settings: Settings, run_id: int) -> ModelRun:
    with session_scope(settings.app_db_url) as session:
        row = session.get_one(ModelRun, run_id)
        session.expunge(row)
        return row


# --- promote / rollback with inputs the history cannot store -----------------------------------------

BAD_INPUTS = {
    "nul in reason": {"reason": "x\u0000"},
    "escape in reason": {"reason": "ok\u001b[2J"},
    "reason too long": {"reason": "r" * (MAX_REASON + 1)},
    "nul in actor": {"actor": "cli:a\u0000b"},
    "actor too long": {"actor": "cli:" + "a" * MAX_ACTOR},
}


@pytest.mark.parametrize("bad", BAD_INPUTS.values(), ids=BAD_INPUTS.keys())
def test_promote_with_input_the_history_cannot_store_moves_nothing(settings: Settings, bad: dict[str, str]) -> None:
    """Found on Postgres: `reason: "x\\u0000"` answered 500 after the alias had moved, with no row."""
    champion_is(settings, 1)
    assert serving.deployed_model(settings, AGENT).version == 1
    rows = history_size(settings)
    call = {"actor": "cli:dana", "reason": "desk call"} | bad
    with pytest.raises(InvalidRequestError, match=r"^(actor|reason): "):
        promote(settings, agent=AGENT, version=2, force=True, **call)
    assert aliases(settings) == {CHAMPION: 1, CHALLENGER: None} and history_size(settings) == rows
    assert serving.deployed_model(settings, AGENT).version == 1  # what every process serves agrees
    with session_scope(settings.app_db_url) as session:  # the refusal is audited, with its reason
        refused = session.scalars(select(AuditLog).order_by(AuditLog.id.desc()).limit(1)).one()
        assert (refused.action, refused.result["error_type"]) == ("promote", "InvalidRequestError")


@pytest.mark.parametrize("bad", BAD_INPUTS.values(), ids=BAD_INPUTS.keys())
def test_rollback_with_input_the_history_cannot_store_moves_nothing(settings: Settings, bad: dict[str, str]) -> None:
    champion_is(settings, 1)
    promote(settings, agent=AGENT, version=2, actor="test", reason="to roll back", force=True)
    assert serving.deployed_model(settings, AGENT).version == 2  # a move through the gate is served at once
    rows = history_size(settings)
    call = {"actor": "cli:dana", "reason": "bad day"} | bad
    with pytest.raises(InvalidRequestError, match=r"^(actor|reason): "):
        rollback(settings, agent=AGENT, **call)
    assert aliases(settings) == {CHAMPION: 2, CHALLENGER: None} and history_size(settings) == rows
    assert serving.deployed_model(settings, AGENT).version == 2


# --- a history row the database refuses after MLflow accepted the alias -------------------------------


@contextmanager
def foreign_keys_checked_at_commit(settings: Settings) -> Iterator[None]:
    """Make the app database check `model_deployments.model_run_id` only at COMMIT (SQLite: the
    defer_foreign_keys pragma in every transaction; PostgreSQL: the constraint made deferred), so that a
    row naming no run is refused after MLflow has accepted the alias — as a commit lost to a dropped
    connection or a failover would be."""
    engine = create_db_engine(settings.app_db_url)
    if make_url(settings.app_db_url).get_backend_name() == "sqlite":

        def defer(connection: object) -> None:
            connection.exec_driver_sql("PRAGMA defer_foreign_keys = ON")  # type: ignore[attr-defined]

        event.listen(engine, "begin", defer)
        try:
            yield
        finally:
            event.remove(engine, "begin", defer)
        return
    with engine.begin() as conn:
        name = conn.scalar(
            text(
                "SELECT conname FROM pg_constraint WHERE conrelid = 'model_deployments'::regclass "
                "AND contype = 'f' AND pg_get_constraintdef(oid) LIKE '%model_runs%'"
            )
        )
        conn.execute(text(f'ALTER TABLE model_deployments ALTER CONSTRAINT "{name}" DEFERRABLE INITIALLY DEFERRED'))
    try:
        yield
    finally:
        with engine.begin() as conn:
            conn.execute(text(f'ALTER TABLE model_deployments ALTER CONSTRAINT "{name}" NOT DEFERRABLE'))


def test_a_history_row_refused_at_commit_puts_the_alias_back(settings: Settings) -> None:
    champion_is(settings, 1)
    rows = history_size(settings)
    unknown_run = 999_999
    with foreign_keys_checked_at_commit(settings):
        for alias in (CHAMPION, CHALLENGER):  # put back onto v1; deleted again (there was no challenger)
            with pytest.raises(IntegrityError):
                move_alias(
                    settings,
                    agent=AGENT,
                    alias=alias,
                    version=2,
                    action="promote" if alias == CHAMPION else "challenger",
                    actor="test",
                    reason="refused at commit",
                    model_run_id=unknown_run,
                )
            assert aliases(settings) == {CHAMPION: 1, CHALLENGER: None}
    assert history_size(settings) == rows
    assert serving.deployed_model(settings, AGENT).version == 1


# --- the serving cache and the registry ---------------------------------------------------------------


def test_the_served_champion_follows_the_registry_within_the_cache_bound(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An alias moved outside the gate (the MLflow UI, or a process killed before its row committed)
    writes no row, so the watermark does not change: the cache's age bound is what catches it."""
    from tracking import registry

    champion_is(settings, 1)
    bounded = settings.model_copy(update={"serving_cache_seconds": 5.0})
    now = [1_000_000.0]
    monkeypatch.setattr(serving, "_clock", lambda: now[0])
    assert serving.deployed_model(bounded, AGENT).version == 1
    registry.set_alias(settings, AGENT, CHAMPION, 2)
    try:
        now[0] += 4.0
        assert serving.deployed_model(bounded, AGENT).version == 1  # within the bound: cached
        now[0] += 1.0
        assert serving.deployed_model(bounded, AGENT).version == 2  # at the bound: the registry's answer
    finally:
        registry.set_alias(settings, AGENT, CHAMPION, 1)
    now[0] += 5.0
    assert serving.deployed_model(bounded, AGENT).version == 1


# --- the reaper: a worker killed during its deployment phase ------------------------------------------


def test_a_run_killed_after_its_challenger_moved_is_reaped_with_the_alias_put_back(settings: Settings) -> None:
    """Found: `challenger` stayed on a failed run's version while the run said "no alias was moved"."""
    champion_is(settings, 1)
    run_id = dead_run(settings)
    staged = settings.model_copy(update={"promotion_mode": "staged"})
    deploy_validated(staged, agent=AGENT, version=2, actor="test", reason="passed", metrics={}, model_run_id=run_id)
    assert aliases(settings) == {CHAMPION: 1, CHALLENGER: 2}  # ... and then the worker was killed

    assert reap_dead_runs(settings) == [run_id]
    assert aliases(settings) == {CHAMPION: 1, CHALLENGER: None}
    row = run_row(settings, run_id)
    assert row.status == "failed" and "no alias was moved" not in (row.error or "")
    assert "aliases put back: challenger v2 → none" in (row.error or "")
    with session_scope(settings.app_db_url) as session:
        assert session.get(AgentLock, AGENT) is None
    assert reap_dead_runs(settings) == []  # once


def test_a_run_killed_after_its_promotion_is_reaped_with_both_aliases_put_back(settings: Settings) -> None:
    champion_is(settings, 1)
    before = previous_champion(settings, AGENT)
    run_id = dead_run(settings)
    deploy_validated(settings, agent=AGENT, version=2, actor="test", reason="passed", metrics={}, model_run_id=run_id)
    assert aliases(settings) == {CHAMPION: 2, CHALLENGER: None}

    assert reap_dead_runs(settings) == [run_id]
    assert aliases(settings) == {CHAMPION: 1, CHALLENGER: None}
    assert serving.deployed_model(settings, AGENT).version == 1
    assert previous_champion(settings, AGENT) == before  # a rollback lands where it would have before the run
    assert previous_champion(settings, AGENT, current=1) == before  # the same from a champion read in the app DB
    error = run_row(settings, run_id).error or ""
    assert error.endswith("; aliases put back: champion v2 → v1"), error  # the challenger was cleared already


def test_a_challenger_replaced_by_a_dead_run_gets_its_alias_back(settings: Settings) -> None:
    """Staged rollout: v1 waits as challenger; a run that died after making v2 challenger hands it back."""
    champion_is(settings, 1)
    staged = settings.model_copy(update={"promotion_mode": "staged"})
    with session_scope(settings.app_db_url) as session:
        first_run = session.scalars(select(ModelRun.id).where(ModelRun.model_version == 1)).one()
    deploy_validated(staged, agent=AGENT, version=1, actor="test", reason="waits", metrics={}, model_run_id=first_run)
    run_id = dead_run(settings)
    deploy_validated(staged, agent=AGENT, version=2, actor="test", reason="passed", metrics={}, model_run_id=run_id)
    assert aliases(settings) == {CHAMPION: 1, CHALLENGER: 2}

    assert reap_dead_runs(settings) == [run_id]
    assert aliases(settings) == {CHAMPION: 1, CHALLENGER: 1}
    assert "aliases put back: challenger v2 → v1" in (run_row(settings, run_id).error or "")
    with session_scope(settings.app_db_url) as session:
        undo = session.scalars(select(ModelDeployment).order_by(ModelDeployment.id.desc()).limit(1)).one()
        assert (undo.action, undo.actor, undo.model_run_id) == ("undo", "reaper", run_id)


def test_a_run_killed_between_mlflow_and_its_history_row_is_reaped_with_the_alias_put_back(
    settings: Settings,
) -> None:
    """MLflow accepted the alias, the process died before the row committed: no row names the run, the
    registry has an alias on its version that the history does not record."""
    from tracking import registry

    champion_is(settings, 1)
    run_id = dead_run(settings)
    registry.set_alias(settings, AGENT, CHALLENGER, 2)
    assert registry_aliases(settings) == {CHAMPION: 1, CHALLENGER: 2}

    assert reap_dead_runs(settings) == [run_id]
    assert aliases(settings) == {CHAMPION: 1, CHALLENGER: None}
    assert "aliases put back: challenger v2 → none" in (run_row(settings, run_id).error or "")


def test_a_move_overtaken_since_the_run_died_is_left_alone(settings: Settings) -> None:
    champion_is(settings, 1)
    run_id = dead_run(settings)
    deploy_validated(settings, agent=AGENT, version=2, actor="test", reason="passed", metrics={}, model_run_id=run_id)
    rollback(settings, agent=AGENT, actor="cli:dana", reason="a person rolled back first")
    assert aliases(settings) == {CHAMPION: 1, CHALLENGER: None}
    rows = history_size(settings)

    assert reap_dead_runs(settings) == [run_id]
    assert aliases(settings) == {CHAMPION: 1, CHALLENGER: None} and history_size(settings) == rows
    assert "no alias was moved" in (run_row(settings, run_id).error or "")


def test_a_run_killed_before_it_recorded_its_mlflow_run_leaves_no_run_running(settings: Settings) -> None:
    """Found: a worker killed after its MLflow run was created, before the app DB recorded the id, left
    that run RUNNING forever. The experiment is recorded first and the run carries the model run's id."""
    from tracking.client import ensure_experiment, get_client
    from tracking.runs import start_run

    champion_is(settings, 1)
    experiment_id = ensure_experiment(settings, AGENT)
    run_id = dead_run(settings, model_version=None, mlflow_experiment_id=experiment_id)
    orphan = start_run(settings, experiment_id, "orphan", {"skippy.agent": AGENT, "skippy.model_run_id": str(run_id)})
    other = start_run(settings, experiment_id, "someone else's", {"skippy.model_run_id": str(run_id + 1000)})

    assert reap_dead_runs(settings) == [run_id]
    client = get_client(settings)
    assert client.get_run(orphan).info.status == "FAILED"
    assert client.get_run(other).info.status == "RUNNING"  # only the dead run's own
    client.set_terminated(other, "FINISHED")
    assert "no alias was moved" in (run_row(settings, run_id).error or "")


def test_the_jobs_reaper_puts_back_the_aliases_of_a_run_on_a_host_that_is_gone(settings: Settings) -> None:
    """A job's worker on another machine is known dead only by its age; its run is reaped the same way."""
    champion_is(settings, 1)
    long_ago = datetime.now(UTC) - timedelta(seconds=FOREIGN_GRACE_SECONDS + 120)
    run_id = dead_run(settings, hostname="gone-host", pid=4242, started_at=long_ago)
    with session_scope(settings.app_db_url) as session:
        job_id = job(
            session,
            kind="retrain",
            agent_type=AGENT,
            status="running",
            model_run_id=run_id,
            hostname="gone-host",
            pid=4242,
            started_at=long_ago,
            timeout_seconds=60.0,
        ).id
    deploy_validated(settings, agent=AGENT, version=2, actor="test", reason="passed", metrics={}, model_run_id=run_id)

    assert job_id in reap_dead_jobs(settings)
    assert aliases(settings) == {CHAMPION: 1, CHALLENGER: None}
    row = run_row(settings, run_id)
    assert row.status == "failed" and "its job's worker 4242 on gone-host died" in (row.error or "")
    assert "champion v2 → v1" in (row.error or "")
