"""The queue is a thin layer over the services: one lock per agent whoever asked, the same prepare
whether a retrain runs inline or as a job, typed outcomes, and the same audit row from the CLI, the
API and a job's worker."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from app import create_app
from mlops.auth import create_key
from mlops.db import session_scope
from mlops.db.models import AgentLock, AuditLog, ModelRun
from mlops.errors import ConflictError, NotFoundError
from mlops.jobs import cancel_job, get_job, submit_retrain
from mlops.jobs.worker import run_job
from mlops.pipeline.market import generate_bars
from mlops.pipeline.retrain import prepare_retrain, retrain
from mlops.settings import Settings
from mlops.stores import init_stores
from tests.cli.test_cli import skippy
from tests.conftest import make_settings

SMALL = {"hidden_units": 0, "epochs": 20}


def _store(home: Path, **overrides: object) -> Settings:
    settings = make_settings(home, **overrides)
    init_stores(settings)
    generate_bars(settings, actor="test", symbol="SYNTH", n_bars=700)
    return settings


def _rows(settings: Settings, action: str) -> list[AuditLog]:
    with session_scope(settings.app_db_url) as session:
        rows = session.scalars(select(AuditLog).where(AuditLog.action == action).order_by(AuditLog.id)).all()
        session.expunge_all()
        return list(rows)


def _shape(row: AuditLog) -> tuple[str, set[str], set[str]]:
    return row.action, set(row.parameters), set(row.result)


def test_one_lock_per_agent_whoever_asks(tmp_path: Path) -> None:
    settings = _store(tmp_path)
    queued = submit_retrain(settings, agent="market_insight", actor="api:ops")
    with session_scope(settings.app_db_url) as session:
        lock = session.get(AgentLock, "market_insight")
        assert lock is not None and lock.model_run_id == queued.model_run_id and lock.pid is None
    with pytest.raises(ConflictError, match=f"run {queued.model_run_id} \\(queued as job {queued.id}\\)"):
        retrain(settings, actor="cli:alice", agent="market_insight")  # the CLI meets the job's lock
    with pytest.raises(ConflictError, match="already queued or running"):
        submit_retrain(settings, agent="market_insight", actor="api:other")
    refused = _rows(settings, "retrain")[-1]  # the refused inline retrain is audited with its reason
    assert refused.actor == "cli:alice" and refused.result["error_type"] == "ConflictError"

    cancel_job(settings, queued.id, actor="api:ops")
    with session_scope(settings.app_db_url) as session:
        assert session.get(AgentLock, "market_insight") is None
        run = session.get_one(ModelRun, queued.model_run_id)
        assert run.status == "failed" and "cancelled by api:ops" in (run.error or "")
    prepared = prepare_retrain(settings, actor="cli:alice", agent="market_insight")  # free again
    with pytest.raises(ConflictError, match=f"run {prepared.model_run_id} \\(pid "):
        submit_retrain(settings, agent="market_insight", actor="api:ops")  # the job meets the CLI's lock


def test_bad_requests_are_refused_before_anything_is_written(tmp_path: Path) -> None:
    settings = _store(tmp_path)
    with pytest.raises(NotFoundError, match=r"no market bars|symbols"):
        submit_retrain(settings, agent="market_insight", actor="api:ops", symbol="NOPE")
    with pytest.raises(NotFoundError, match="unknown agent"):
        submit_retrain(settings, agent="alpha", actor="api:ops")
    with session_scope(settings.app_db_url) as session:
        assert session.scalars(select(ModelRun)).all() == []
        assert session.scalars(select(AgentLock)).all() == []


def test_a_retrain_writes_the_same_audit_row_from_the_cli_the_api_and_a_job(tmp_path: Path) -> None:
    home = tmp_path / "home"
    settings = _store(home)
    params = [f"--param={k}={v}" for k, v in SMALL.items()]
    cli = skippy(home, "ai", "retrain", "--agent", "market_insight", "--rejection-ok", *params)
    assert cli.returncode == 0, cli.stdout + cli.stderr

    key = create_key(settings, name="ops", role="operator", actor="test").key
    with TestClient(create_app(settings, dispatch=False)) as client:
        response = client.post(
            "/api/mlops/retrain",
            headers={"Authorization": f"Bearer {key}"},
            json={"agent_type": "market_insight", "hyperparameters": SMALL},
        )
    assert response.status_code == 202, response.text
    job_id = response.json()["job_id"]
    assert run_job(settings, job_id) == 0  # what the dispatcher's worker process runs
    job = get_job(settings, job_id)
    assert job.status in ("succeeded", "rejected") and job.result["model_run_id"] == job.model_run_id

    inline, queued = _rows(settings, "retrain")
    assert inline.actor.startswith("cli:") and queued.actor == "api:ops"
    assert _shape(inline) == _shape(queued)
    for row in (inline, queued):
        assert row.parameters["agent"] == "market_insight" and row.parameters["hyperparameters"] == SMALL
        assert row.result["status"] in ("succeeded", "rejected") and row.result["model_run_id"]
    (submitted,) = _rows(settings, "retrain queued")
    assert submitted.actor == "api:ops" and submitted.result["job_id"] == job_id
    assert submitted.client == "testclient"
    with session_scope(settings.app_db_url) as session:  # the request reached a service: no second row for it
        assert session.scalars(select(AuditLog).where(AuditLog.action.like("POST %"))).all() == []


def test_an_interrupted_job_ends_with_its_typed_status_and_frees_the_agent(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import mlops.pipeline.retrain as service
    from mlops.errors import Interrupted

    settings = _store(tmp_path)
    job = submit_retrain(settings, agent="risk_assessor", actor="api:ops")

    def cancelled_while_training(*args: object, **kwargs: object) -> None:
        raise Interrupted("cancelled", "cancelled on request")  # what the worker's SIGTERM handler raises

    monkeypatch.setattr(service, "train_agent", cancelled_while_training)
    assert run_job(settings, job.id) == 1
    ended = get_job(settings, job.id)
    assert (ended.status, ended.error) == ("cancelled", "cancelled on request")  # from the exception's type
    with session_scope(settings.app_db_url) as session:
        run = session.get_one(ModelRun, job.model_run_id)
        assert (run.status, run.error) == ("failed", "cancelled on request")
        assert session.get(AgentLock, "risk_assessor") is None
    (row,) = _rows(settings, "retrain")
    assert row.result["error_type"] == "Interrupted" and row.result["error"] == "cancelled on request"


def test_a_sweep_writes_the_same_audit_row_from_the_cli_and_from_an_api_job(tmp_path: Path) -> None:
    home = tmp_path / "home"
    settings = _store(home)
    grid = {"hidden_units": [0, 2]}
    config = tmp_path / "grid.json"
    config.write_text(json.dumps(grid))
    cli = skippy(home, "ai", "sweep", "--agent", "market_insight", "--config", str(config), "--workers", "1")
    assert cli.returncode == 0, cli.stdout + cli.stderr

    key = create_key(settings, name="ops", role="operator", actor="test").key
    with TestClient(create_app(settings, dispatch=False)) as client:
        response = client.post(
            "/api/mlops/sweep",
            headers={"Authorization": f"Bearer {key}"},
            json={"agent_type": "market_insight", "parameter_grid": grid, "workers": 1},
        )
    assert response.status_code == 202, response.text
    job_id = response.json()["job_id"]
    assert run_job(settings, job_id) == 0
    assert get_job(settings, job_id).status == "succeeded"

    inline, queued = _rows(settings, "sweep")
    assert inline.actor.startswith("cli:") and queued.actor == "api:ops"
    assert _shape(inline) == _shape(queued)
    for row in (inline, queued):
        assert row.parameters["grid"] == grid and row.parameters["workers"] == 1
        assert row.result["status"] == "completed" and row.result["n_trials"] == 2
    (submitted,) = _rows(settings, "sweep queued")
    assert submitted.result["sweep_id"] == queued.parameters["sweep_id"] != inline.parameters["sweep_id"]
