"""The app database on SQLite and on the real PostgreSQL: migrations, locks and the reaper."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import inspect

from mlops.db import create_db_engine, session_scope, upgrade_database
from mlops.db.models import AgentLock, ModelRun
from mlops.errors import ConflictError
from mlops.pipeline.locks import reap_dead_runs, start_locked_run
from tests.conftest import make_settings

HEAD = "0009"
TABLES = {
    "feature_flags",
    "model_runs",
    "hyperparameter_sweeps",
    "sweep_results",
    "drift_metrics",
    "model_deployments",
    "feature_importance",
    "model_performance_history",
    "training_data_quality",
    "market_bars",
    "agent_locks",
    "drift_baselines",
    "api_keys",
    "audit_log",
    "jobs",
    "prediction_log",
    "alembic_version",
}


def test_migrations_create_every_table_and_are_idempotent(db_url: str) -> None:
    assert set(inspect(create_db_engine(db_url)).get_table_names()) >= TABLES
    assert upgrade_database(db_url) == HEAD  # second upgrade is a no-op


def test_migrations_downgrade_to_empty_and_back(db_url: str) -> None:
    from alembic import command

    from mlops.db.session import alembic_config

    engine = create_db_engine(db_url)
    with engine.begin() as conn:
        config = alembic_config(db_url)
        config.attributes["connection"] = conn
        command.downgrade(config, "base")
    assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
    assert upgrade_database(db_url) == HEAD


def test_second_retrain_of_an_agent_is_refused_while_the_first_holds_the_lock(db_url: str, tmp_path: Path) -> None:
    settings = make_settings(tmp_path, database_url=db_url)
    first = start_locked_run(settings, ModelRun(agent_type="market_insight"))
    with pytest.raises(ConflictError, match=f"already queued or running: run {first} "):
        start_locked_run(settings, ModelRun(agent_type="market_insight"))
    # Another agent is independent.
    start_locked_run(settings, ModelRun(agent_type="risk_assessor"))
    with session_scope(db_url) as session:
        assert session.query(ModelRun).count() == 2  # the refused run left no row behind


def test_reaper_fails_runs_whose_process_died_and_frees_the_lock(db_url: str, tmp_path: Path) -> None:
    settings = make_settings(tmp_path, database_url=db_url)
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead_pid = int(dead.stdout)
    run_id = start_locked_run(settings, ModelRun(agent_type="market_insight"))
    with session_scope(db_url) as session:
        session.get_one(ModelRun, run_id).pid = dead_pid
        session.get_one(AgentLock, "market_insight").pid = dead_pid
    # A live run (this process) is left alone.
    live_id = start_locked_run(settings, ModelRun(agent_type="risk_assessor"))
    assert reap_dead_runs(settings) == [run_id]
    with session_scope(db_url) as session:
        run = session.get_one(ModelRun, run_id)
        assert run.status == "failed" and "died" in (run.error or "")
        assert session.get(AgentLock, "market_insight") is None
        assert session.get_one(ModelRun, live_id).status == "running"
        assert session.get(AgentLock, "risk_assessor") is not None
    assert os.getpid() != dead_pid
