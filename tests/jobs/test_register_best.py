"""Registering a sweep's best configuration as a job (what the dashboard's Sweeps page calls): the same
retrain, trigger "sweep", through the same gate as any candidate; refused, naming why, while the sweep runs
or when no trial completed — before anything is queued."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from mlops.audit import list_audit
from mlops.data.generate import generate_market
from mlops.db import session_scope
from mlops.db.models import AgentLock, Job, ModelRun
from mlops.db.sweeps import SweepRecord, create_sweep_row
from mlops.errors import ConflictError, NotFoundError
from mlops.jobs import get_job, submit_register_best
from mlops.jobs.worker import run_job
from mlops.pipeline.queries import get_run
from mlops.pipeline.sweeps import register_best
from mlops.settings import Settings
from tests.factories import store as new_store

ACTOR = "dashboard:ops"
BEST = {"learning_rate": 0.01, "hidden_units": 0, "epochs": 20}


def _store(home: Path, mlflow_store: Path, db_url: str | None = None) -> Settings:
    settings = new_store(
        home,
        mlflow_store=mlflow_store,
        database_url=db_url,
        mlflow_tracking_uri=f"sqlite:///{home / 'mlflow.db'}",  # MLflow on SQLite either way: not under test
    )
    generate_market(settings, symbol="SYNTH", n_bars=700)
    return settings


def _sweep(settings: Settings, status: str, best: dict[str, Any] | None = None, **values: Any) -> SweepRecord:
    """A sweep's app-DB row as the sweep service leaves it (`finalize` writes the best of a closed one)."""
    return create_sweep_row(
        settings,
        name=f"{status} sweep",
        agent_type="market_insight",
        symbol="SYNTH",
        parameter_grid={"learning_rate": [0.003, 0.01], "hidden_units": [0], "epochs": [20]},
        status=status,
        n_trials=2,
        best_trial_number=1 if best else None,
        best_value=1.5 if best else None,
        best_params=best,
        requested_by="test",
        **values,
    )


def _nothing_queued(settings: Settings) -> bool:
    with session_scope(settings.app_db_url) as session:
        return not any(session.scalars(select(t)).first() for t in (Job, ModelRun, AgentLock))


@pytest.fixture
def both(db_url: str, tmp_path: Path, empty_mlflow_store: Path) -> Settings:
    return _store(tmp_path, empty_mlflow_store, db_url)


def test_a_running_or_fruitless_sweep_is_refused_naming_why(both: Settings) -> None:
    running = _sweep(both, "running", n_complete=1)
    with pytest.raises(ConflictError, match=rf"sweep {running.id} is still running \(1 of 2 trials evaluated\)"):
        submit_register_best(both, running.id, actor=ACTOR)
    fruitless = _sweep(both, "stopped", n_failed=2)
    with pytest.raises(NotFoundError, match=f"sweep {fruitless.id} has no completed trial to register"):
        submit_register_best(both, fruitless.id, actor=ACTOR)
    with pytest.raises(NotFoundError, match="no sweep with id 999"):
        submit_register_best(both, 999, actor=ACTOR)
    # The inline twin (`skippy ai sweep --register-best`) refuses the same, for the same reasons.
    with pytest.raises(ConflictError, match=rf"sweep {running.id} is still running"):
        register_best(both, running.id, actor=ACTOR)
    with pytest.raises(NotFoundError, match=f"sweep {fruitless.id} has no completed trial to register"):
        register_best(both, fruitless.id, actor=ACTOR)
    assert _nothing_queued(both)
    refusals = list_audit(both, actor=ACTOR, action="sweep register-best")
    assert sorted(r.parameters["sweep_id"] for r in refusals) == sorted([running.id, fruitless.id, 999])
    assert {r.result["error_type"] for r in refusals} == {"ConflictError", "NotFoundError"}


def test_the_best_configuration_is_retrained_through_the_gate_in_a_job(
    tmp_path: Path, empty_mlflow_store: Path
) -> None:
    settings = _store(tmp_path, empty_mlflow_store)
    finished = _sweep(settings, "stopped", BEST, n_complete=1, n_failed=1)  # stopped: its best so far counts
    job = submit_register_best(settings, finished.id, actor=ACTOR)
    assert (job.kind, job.status, job.agent_type, job.requested_by) == ("retrain", "queued", "market_insight", ACTOR)
    assert job.parameters == {"symbol": "SYNTH", "hyperparameters": BEST, "trigger": "sweep"}
    [audit] = list_audit(settings, actor=ACTOR, action="sweep register-best")
    assert audit.parameters == {"sweep_id": finished.id}
    assert audit.result == {
        "agent": "market_insight",
        "best_trial_number": 1,
        "hyperparameters": BEST,
        "job_id": job.id,
        "model_run_id": job.model_run_id,
    }
    with pytest.raises(ConflictError, match="already queued or running"):  # the agent's one lock, as any retrain
        submit_register_best(settings, finished.id, actor=ACTOR)

    assert run_job(settings, job.id) == 0  # what the dispatcher's worker process runs
    ended = get_job(settings, job.id)
    assert ended.status in ("succeeded", "rejected") and ended.result["model_run_id"] == job.model_run_id
    assert ended.result["reason"]  # the gate's verdict, in words
    assert job.model_run_id is not None
    run = get_run(settings, job.model_run_id)
    assert run.trigger == "sweep" and run.status == ended.status
    assert {k: run.hyperparameters[k] for k in BEST} == BEST
