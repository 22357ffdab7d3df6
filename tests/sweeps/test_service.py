"""The sweep service end to end: real Optuna studies (journal file and PostgreSQL), nested MLflow runs,
parallel worker processes, each grid point exactly once, dead workers recovered, one audit row."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from app import create_app
from mlops.audit import list_audit
from mlops.auth import create_key
from mlops.cli import app as cli
from mlops.data.generate import generate_market
from mlops.db.sweeps import SweepRecord, TrialRecord, get_sweep, list_sweeps, list_trials, ranked_trials
from mlops.errors import ConflictError, FeatureDisabledError, InvalidRequestError, NotFoundError
from mlops.flags import set_flag
from mlops.pipeline.sweeps import execute_sweep, join_sweep, prepare_sweep, progress, register_best, sweep
from mlops.settings import Settings, get_settings
from mlops.stores import init_stores
from sweeps.finalize import judge_selection
from tests.conftest import fresh_postgres_url, make_settings

pytestmark = pytest.mark.slow
ACTOR = "cli:quant"
GRID = {"learning_rate": [0.005, 0.05], "hidden_units": [0, 4], "batch_size": [32, 64]}  # 8 points


@pytest.fixture(scope="module")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    s = make_settings(tmp_path_factory.mktemp("sweeps"))
    init_stores(s)
    generate_market(s, symbol="SYNTH", n_bars=1200)
    return s


def study_trials(settings: Settings, study_name: str) -> list:  # type: ignore[type-arg]
    import optuna

    from sweeps.storage import open_storage

    return optuna.load_study(study_name=study_name, storage=open_storage(settings.optuna_storage)).get_trials()


def test_parallel_sweep_evaluates_each_point_once_as_nested_runs(settings: Settings) -> None:
    from optuna.trial import TrialState

    from tracking.client import get_client

    seen = []
    record = sweep(
        settings,
        agent="market_insight",
        grid=GRID,
        name="eight",
        workers=2,
        actor=ACTOR,
        on_progress=seen.append,
    )
    assert record.status == "completed" and (record.n_complete, record.n_failed) == (8, 0)
    assert seen[-1].complete == 8 and seen[-1].remaining == 0
    [audit] = [a for a in list_audit(settings, actor=ACTOR, action="sweep") if a.parameters["sweep_id"] == record.id]
    assert audit.parameters == {
        "agent": "market_insight",
        "sweep_id": record.id,
        "grid": GRID,
        "symbol": "SYNTH",
        "objective": "sharpe_ratio",
        "workers": 2,
    }
    assert audit.result["status"] == "completed" and audit.result["n_trials"] == 8
    assert audit.result["best_params"] == record.best_params and audit.result["stop_reason"] is None
    assert audit.result["best_value"] == pytest.approx(record.best_value)

    trials = study_trials(settings, str(record.study_name))
    assert [t.state for t in trials] == [TrialState.COMPLETE] * 8
    assert len({tuple(sorted(t.params.items())) for t in trials}) == 8

    client = get_client(settings)
    parent = client.get_run(record.parent_run_id)
    assert parent.info.status == "FINISHED" and parent.data.tags["mlflow.user"] == ACTOR
    assert parent.data.metrics["best_sharpe_ratio"] == pytest.approx(record.best_value)
    children = client.search_runs(
        [parent.info.experiment_id], filter_string=f"tags.mlflow.parentRunId = '{record.parent_run_id}'"
    )
    assert len(children) == 8
    assert all({"sharpe_ratio", "val_loss", "test_sharpe_ratio"} <= set(c.data.metrics) for c in children)
    assert len(client.get_metric_history(children[0].info.run_id, "train_loss")) >= 1

    ranked = ranked_trials(settings, record)
    values = [t.objective_value for t in ranked]
    assert values == sorted(values, reverse=True) and ranked[0].params == record.best_params
    # The winner is picked on validation, never on the held-out test split.
    assert ranked[0].objective_value == pytest.approx(ranked[0].metrics["sharpe_ratio"])
    _assert_selection_stored_and_shown(settings, record, ranked[0], parent.data)


def _assert_selection_stored_and_shown(settings: Settings, record: SweepRecord, best: TrialRecord, run: Any) -> None:
    """The winner's Deflated Sharpe Ratio: in the app DB, on the parent run, in the API and the CLI."""
    selection = record.selection
    assert selection is not None and selection.dsr is not None and selection.n_trials == record.n_complete
    assert selection.best_trial_number == best.trial_number
    assert selection.best_sharpe == pytest.approx(best.metrics["sharpe_ratio"])
    assert selection.periods_per_year == best.metrics["periods_per_year"] > 0
    assert selection.n_samples == best.metrics["n_samples"]
    expected = judge_selection(record, [t for t in ranked_trials(settings, record) if t.status == "complete"])
    assert selection == expected  # what was stored is what the rule gives on the stored trials
    measured = "returns_skew" in best.metrics and "returns_kurtosis" in best.metrics
    assert (selection.moments == "measured") is measured
    assert run.metrics["best_deflated_sharpe_ratio"] == pytest.approx(selection.dsr)
    assert run.metrics["best_expected_max_sharpe"] == pytest.approx(selection.expected_max_sharpe)
    assert run.metrics["best_psr"] == pytest.approx(selection.psr_vs_zero)
    assert run.tags["skippy.selection_verdict"] == selection.verdict

    key = create_key(settings, name=f"sweep-viewer-{record.id}", role="viewer", actor="test").key
    with TestClient(create_app(settings, dispatch=False)) as client:
        response = client.get(
            "/api/mlops/sweep-results", params={"sweep_id": record.id}, headers={"Authorization": f"Bearer {key}"}
        )
    assert response.status_code == 200, response.text
    shown = response.json()[0]["sweep"]["selection"]
    assert shown["dsr"] == pytest.approx(selection.dsr) and shown["verdict"] == selection.verdict
    assert shown["n_trials"] == selection.n_trials and shown["expected_max_sharpe"] is not None

    env = {"SKIPPY_HOME": str(settings.home), "COLUMNS": "200", "MLFLOW_TRACKING_URI": None, "DATABASE_URL": None}
    get_settings.cache_clear()
    try:
        text = CliRunner().invoke(cli, ["ai", "sweep-results", "--sweep-id", str(record.id)], env=env)
        listed = CliRunner().invoke(cli, ["ai", "sweeps", "--json"], env=env)
    finally:
        get_settings.cache_clear()
    assert text.exit_code == 0, text.output
    assert f"DSR {selection.dsr:.3f}" in text.stdout and selection.verdict in " ".join(text.stdout.split())
    row = next(r for r in json.loads(listed.stdout) if r["id"] == record.id)
    assert row["selection"]["dsr"] == pytest.approx(selection.dsr)


def test_a_diverging_trial_is_recorded_and_the_sweep_goes_on(settings: Settings) -> None:
    grid = {"learning_rate": [0.01, 80.0], "hidden_units": [16]}
    record = sweep(settings, actor=ACTOR, agent="market_insight", grid=grid, workers=1, objective="val_loss")
    assert record.direction == "minimize"
    assert (record.status, record.n_complete, record.n_failed) == ("completed", 1, 1)
    failed = [t for t in list_trials(settings, record.id) if t.status == "failed"]
    assert len(failed) == 1 and "diverged" in (failed[0].error or "")
    assert record.best_params == {"learning_rate": 0.01, "hidden_units": 16}
    # One complete trial: nothing to deflate against, and the sweep says so instead of failing.
    assert record.selection is not None and record.selection.dsr is None
    assert record.selection.verdict.startswith("no DSR: 1 complete trial") and record.selection.objective == "val_loss"


def test_a_time_budget_stops_cleanly_and_a_worker_can_resume(settings: Settings) -> None:
    created = prepare_sweep(settings, actor=ACTOR, agent="market_insight", grid=GRID)
    stopped = execute_sweep(settings, created.id, actor=ACTOR, workers=1, time_budget_seconds=0.001)
    assert stopped.status == "stopped" and "time budget" in (stopped.stop_reason or "")
    assert progress(settings, created.id).remaining > 0
    assert join_sweep(settings, created.id, actor=ACTOR) == progress(settings, created.id).complete - stopped.n_complete
    resumed = get_sweep(settings, created.id)
    assert resumed.status == "completed" and resumed.stop_reason is None
    with pytest.raises(ConflictError, match="is completed"):
        join_sweep(settings, created.id, actor=ACTOR)
    with pytest.raises(ConflictError, match="is completed"):
        execute_sweep(settings, created.id, actor=ACTOR, workers=1)


def test_bad_sweeps_are_refused_before_anything_starts(settings: Settings) -> None:
    before = len(list_sweeps(settings, limit=500))
    with pytest.raises(InvalidRequestError, match="unknown objective 'profit'"):
        prepare_sweep(settings, actor=ACTOR, agent="market_insight", grid=GRID, objective="profit")
    with pytest.raises(InvalidRequestError, match="unknown hyperparameter"):
        prepare_sweep(settings, actor=ACTOR, agent="market_insight", grid={"dropout": [0.1]})
    with pytest.raises(NotFoundError, match="no bars for symbol 'NOPE'"):
        prepare_sweep(settings, actor=ACTOR, agent="market_insight", grid=GRID, symbol="NOPE")
    with pytest.raises(InvalidRequestError, match="either a grid or a config file"):
        prepare_sweep(settings, actor=ACTOR, agent="market_insight", grid=GRID, config=Path("grid.json"))
    set_flag(settings, "mlops_hyperparameter_sweeps", False, "test")
    try:
        with pytest.raises(FeatureDisabledError, match="skippy flags set mlops_hyperparameter_sweeps on"):
            prepare_sweep(settings, actor="api:refused", agent="market_insight", grid=GRID)
    finally:
        set_flag(settings, "mlops_hyperparameter_sweeps", True, "test")
    assert len(list_sweeps(settings, limit=500)) == before  # nothing was created
    [refused] = list_audit(settings, actor="api:refused", action="sweep")
    assert refused.parameters["agent"] == "market_insight" and refused.parameters["sweep_id"] is None
    assert refused.result["error_type"] == "FeatureDisabledError"


def test_register_best_goes_through_the_validation_gate(settings: Settings) -> None:
    record = sweep(settings, actor=ACTOR, agent="risk_assessor", grid={"learning_rate": [0.005, 0.02]}, workers=1)
    result = register_best(settings, record.id, actor=ACTOR)
    assert result.status in ("succeeded", "rejected") and result.reason
    from mlops.pipeline.queries.runs import get_run

    run = get_run(settings, result.model_run_id)
    assert run.trigger == "sweep" and run.hyperparameters["learning_rate"] == record.best_params["learning_rate"]


def _worker_env(settings: Settings) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SKIPPY_", "MLFLOW_", "DATABASE_URL"))}
    env |= {"SKIPPY_HOME": str(settings.home), "SKIPPY_LOG_JSON": "true"}
    if settings.database_url:
        env["DATABASE_URL"] = settings.database_url
    return env


def test_killing_a_worker_mid_sweep_loses_nothing(settings: Settings) -> None:
    """kill -9 one worker while it trains: its trial is failed and re-queued, every other point is
    evaluated once, no completed trial is lost."""
    from optuna.trial import TrialState

    slow = settings.model_copy(update={"early_stopping_patience": 100_000})
    grid = {"learning_rate": [0.0005, 0.001, 0.002], "epochs": [3000]}
    created = prepare_sweep(slow, actor=ACTOR, agent="market_insight", grid=grid)
    env = _worker_env(slow) | {"SKIPPY_EARLY_STOPPING_PATIENCE": "100000"}
    worker = subprocess.Popen(
        [sys.executable, "-m", "mlops.cli", "ai", "sweep-worker", "--sweep-id", str(created.id)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and progress(slow, created.id).running == 0:
        assert worker.poll() is None, "the worker ended before it could be killed"
        time.sleep(0.2)
    time.sleep(1.0)
    os.kill(worker.pid, signal.SIGKILL)
    worker.wait(timeout=30)

    quick = settings.model_copy(update={"early_stopping_patience": 3})  # the rest finish fast
    join_sweep(quick, created.id, actor=ACTOR)
    record = get_sweep(settings, created.id)
    assert record.status == "completed"
    trials = study_trials(settings, str(record.study_name))
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    failed = [t for t in trials if t.state == TrialState.FAIL]
    assert len(failed) == 1 and "died" in failed[0].user_attrs["error"]
    assert len(complete) == 3 and len({tuple(sorted(t.params.items())) for t in complete}) == 3
    rows = list_trials(settings, created.id)
    assert sum(r.status == "complete" for r in rows) == 3
    assert any("re-queued" in (r.error or "") for r in rows if r.status == "failed")


@pytest.mark.postgres
def test_two_worker_processes_share_a_sweep_on_postgres(postgres_server: str, tmp_path: Path) -> None:
    """Optuna storage, app DB and MLflow on the real PostgreSQL; two `skippy ai sweep-worker`
    processes join one sweep and split its grid without evaluating any point twice."""
    from optuna.trial import TrialState

    db = fresh_postgres_url(postgres_server)
    pg = make_settings(tmp_path, database_url=db)
    assert pg.optuna_storage.endswith("_optuna") and pg.optuna_storage.startswith("postgresql+psycopg2://")
    init_stores(pg)
    generate_market(pg, symbol="SYNTH", n_bars=1000)
    grid = {"learning_rate": [0.002, 0.01, 0.05], "hidden_units": [0, 4], "batch_size": [32, 64]}  # 12 points
    created = prepare_sweep(pg, actor=ACTOR, agent="market_insight", grid=grid)
    env = _worker_env(pg)
    workers = [
        subprocess.Popen(
            [sys.executable, "-m", "mlops.cli", "ai", "sweep-worker", "--sweep-id", str(created.id), "--json"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    outputs = [w.communicate(timeout=600) for w in workers]
    assert all(w.returncode == 0 for w in workers), [o[1][-2000:] for o in outputs]
    evaluated = [json.loads(out)["evaluated"] for out, _ in outputs]
    assert sum(evaluated) == 12
    trials = study_trials(pg, str(created.study_name))
    assert all(t.state == TrialState.COMPLETE for t in trials) and len(trials) == 12
    assert len({tuple(sorted(t.params.items())) for t in trials}) == 12
    assert get_sweep(pg, created.id).status == "completed"
    assert get_sweep(pg, created.id).selection is not None
