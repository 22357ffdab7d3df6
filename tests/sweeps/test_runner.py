"""sweeps/ on its own: create, claim, recover, the worker loop, finalize and the forked supervisor, on
real stores (journal-file Optuna storage, SQLite app DB and MLflow store) with training callbacks that
train nothing — the package knows no agent, so a toy grid and a toy callback exercise all of it."""

from __future__ import annotations

import math
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from mlops.db.sweeps import TrialRecord, get_sweep, list_trials, ranked_trials, record_trial
from mlops.errors import ConflictError, InvalidRequestError
from mlops.processes import HOSTNAME
from mlops.settings import Settings
from mlops.stores import init_stores
from sweeps.claims import MAX_ATTEMPTS, claim_next, recover_dead_trials
from sweeps.create import create_sweep
from sweeps.finalize import finalize
from sweeps.study import WORKER_ATTR, open_study, progress
from sweeps.supervisor import run_sweep
from sweeps.trial import TrainFn, TrialContext, TrialOutcome, TrialResult, log_child_run, run_callback, start_child_run
from sweeps.worker import run_worker
from tests.conftest import make_settings

TOY = "toy"  # the sweep's MLflow experiment: sweeps/ needs a name, not an agent
GRID = {"x": [1, 2, 3], "y": [0.5, 1.5]}  # 6 points


@pytest.fixture(scope="module")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    s = make_settings(tmp_path_factory.mktemp("sweeps-unit"))
    init_stores(s)
    return s


def toy_metrics(params: dict[str, Any]) -> dict[str, float]:
    """Metrics the selection test can judge: a Sharpe that grows with x·y, per-bar inputs included."""
    return {"sharpe_ratio": params["x"] * params["y"], "periods_per_year": 252.0, "n_samples": 300.0}


def toy_train(params: dict[str, Any]) -> TrialResult:
    return TrialResult(params=params | {"z": 0}, metrics=toy_metrics(params), curves={"loss": [1.0, 0.5, 0.25]})


def new_sweep(settings: Settings, grid: dict[str, list[Any]] = GRID, **kwargs: Any) -> Any:
    values = {"agent_type": TOY, "symbol": "SYNTH", "objective": "sharpe_ratio", "direction": "maximize"}
    return create_sweep(settings, grid=grid, requested_by="cli:test", **(values | kwargs))


def states(settings: Settings, sweep: Any) -> list[str]:
    opened = open_study(settings, sweep)
    return [t.state.name for t in opened.storage.get_all_trials(opened.study_id, deepcopy=False)]


def test_a_created_sweep_queues_every_point_with_its_parameters(settings: Settings) -> None:
    from tracking.client import get_client

    sweep = new_sweep(settings, name="queued")
    assert (sweep.status, sweep.n_trials, sweep.name, sweep.agent_type) == ("running", 6, "queued", TOY)
    opened = open_study(settings, sweep)
    waiting = opened.storage.get_all_trials(opened.study_id, deepcopy=False)
    assert [t.state.name for t in waiting] == ["WAITING"] * 6
    # Optuna's tools show the parameters of a queued point before any worker touches it.
    assert [t.params for t in waiting] == [{"x": x, "y": y} for x in (1, 2, 3) for y in (0.5, 1.5)]
    assert all(t.system_attrs["fixed_params"] == t.params for t in waiting)
    parent = get_client(settings).get_run(sweep.parent_run_id)
    assert parent.info.status == "RUNNING" and parent.data.params["n_points"] == "6"
    assert parent.data.tags["skippy.study_name"] == sweep.study_name == f"skippy-sweep-{sweep.id}-{TOY}"
    with pytest.raises(InvalidRequestError, match="direction must be maximize or minimize, got 'up'"):
        new_sweep(settings, direction="up")


def test_each_point_is_claimed_once_and_signed_by_its_worker(settings: Settings) -> None:
    sweep = new_sweep(settings)
    opened = open_study(settings, sweep)
    claimed = [claim_next(opened.storage, opened.study_id) for _ in range(7)]
    assert claimed[-1] is None
    numbers = [c.number for c in claimed[:-1]]
    assert sorted(numbers) == list(range(6))
    trials = opened.storage.get_all_trials(opened.study_id, deepcopy=False)
    assert {t.state.name for t in trials} == {"RUNNING"}
    assert {(t.system_attrs[WORKER_ATTR]["host"], t.system_attrs[WORKER_ATTR]["pid"]) for t in trials} == {
        (HOSTNAME, os.getpid())
    }


def _dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def test_a_dead_workers_point_is_failed_and_requeued_once(settings: Settings) -> None:
    sweep = new_sweep(settings, grid={"x": [1, 2]})
    opened = open_study(settings, sweep)
    storage = opened.storage
    first, second = (claim_next(storage, opened.study_id) for _ in range(2))
    dead = {"host": HOSTNAME, "pid": _dead_pid(), "started": time.time()}
    storage.set_trial_system_attr(first._trial_id, WORKER_ATTR, dead)  # `second` stays ours: alive

    assert recover_dead_trials(settings, sweep) == [first.number]
    trials = storage.get_all_trials(opened.study_id, deepcopy=False)
    assert [t.state.name for t in trials] == ["FAIL", "RUNNING", "WAITING"]
    assert "died during the trial" in trials[0].user_attrs["error"]
    replacement = trials[2]
    assert replacement.params == first.params and replacement.user_attrs["skippy_attempt"] == 2
    [row] = list_trials(settings, sweep.id)
    assert row.status == "failed" and row.params == first.params and "point re-queued" in (row.error or "")

    # The second attempt dies too: failed for good, the point is not queued a third time.
    assert MAX_ATTEMPTS == 2
    retry = claim_next(storage, opened.study_id)
    assert retry.number == replacement.number
    storage.set_trial_system_attr(retry._trial_id, WORKER_ATTR, dead)
    assert recover_dead_trials(settings, sweep) == [replacement.number]
    assert states(settings, sweep) == ["FAIL", "RUNNING", "FAIL"]
    assert recover_dead_trials(settings, sweep) == []  # nothing more: `second`'s worker is alive
    assert second.number == 1


def test_a_losing_recoverers_replacement_is_never_claimed(settings: Settings) -> None:
    """Seen in CI: the supervisor and an idle worker recovered one dead trial at once; the loser's
    replacement was claimed before the loser pruned it, and the point was evaluated twice."""
    from sweeps.claims import _enqueue_replacement

    sweep = new_sweep(settings, grid={"x": [1]})
    opened = open_study(settings, sweep)
    storage = opened.storage
    first = claim_next(storage, opened.study_id)
    storage.set_trial_system_attr(first._trial_id, WORKER_ATTR, {"host": HOSTNAME, "pid": _dead_pid(), "started": 0})
    # The loser has enqueued its replacement and not yet lost: nothing is claimable.
    losers = _enqueue_replacement(opened, sweep, first.params, 1, first.number)
    assert losers is not None and claim_next(storage, opened.study_id) is None
    # The winner fails the dead trial and confirms its own replacement: only that one can be claimed.
    assert recover_dead_trials(settings, sweep) == [first.number]
    claimed = claim_next(storage, opened.study_id)
    assert claimed is not None and claimed._trial_id != losers and claimed.user_attrs["confirmed"] is True
    assert claim_next(storage, opened.study_id) is None  # the loser's stays unclaimable until it is pruned
    # Should the loser die before pruning it, the next recovery does: the grid can still be exhausted.
    recover_dead_trials(settings, sweep)
    assert storage.get_trial(losers).state.name == "PRUNED"


def test_a_worker_that_died_after_recording_its_trial_is_not_evaluated_again(settings: Settings) -> None:
    """Killed between the app-DB row and Optuna's state: the recorded outcome finishes the trial."""
    sweep = new_sweep(settings, grid={"x": [1, 2]})
    opened = open_study(settings, sweep)
    done, failed = (claim_next(opened.storage, opened.study_id) for _ in range(2))
    for trial, status, value in ((done, "complete", 2.5), (failed, "failed", None)):
        row = {"sweep_id": sweep.id, "trial_number": trial.number, "params": trial.params, "status": status}
        record_trial(settings, TrialRecord(**row, objective_value=value))
        dead = {"host": HOSTNAME, "pid": _dead_pid(), "started": time.time()}
        opened.storage.set_trial_system_attr(trial._trial_id, WORKER_ATTR, dead)
    assert recover_dead_trials(settings, sweep) == []  # nothing failed by the recovery, nothing re-queued
    trials = opened.storage.get_all_trials(opened.study_id, deepcopy=False)
    assert [(t.state.name, t.value) for t in trials] == [("COMPLETE", 2.5), ("FAIL", None)]
    assert [r.status for r in list_trials(settings, sweep.id)] == ["complete", "failed"]


def test_another_hosts_claim_is_dead_only_once_it_is_stale(settings: Settings) -> None:
    sweep = new_sweep(settings, grid={"x": [1, 2]})
    opened = open_study(settings, sweep)
    fresh, old = (claim_next(opened.storage, opened.study_id) for _ in range(2))
    stale = 2 * settings.sweep_trial_timeout_seconds + 61
    for trial, started in ((fresh, time.time()), (old, time.time() - stale)):
        worker = {"host": "elsewhere", "pid": 1, "started": started}
        opened.storage.set_trial_system_attr(trial._trial_id, WORKER_ATTR, worker)
    assert recover_dead_trials(settings, sweep) == [old.number]


def evaluate_point(
    settings: Settings, train: TrainFn, params: dict[str, Any], context: TrialContext, number: int
) -> TrialOutcome:
    """A trial's steps in a row, as a worker and its recorder run them."""
    child = start_child_run(settings, context, number)
    return log_child_run(settings, child, context, run_callback(train, params))


def test_a_trial_logs_a_child_run_and_a_failing_callback_fails_only_its_trial(settings: Settings) -> None:
    from tracking.client import ensure_experiment, get_client

    sweep = new_sweep(settings)
    context = TrialContext(
        experiment_id=ensure_experiment(settings, TOY),
        parent_run_id=str(sweep.parent_run_id),
        sweep_id=sweep.id,
        agent_type=TOY,
        objective="sharpe_ratio",
    )
    client = get_client(settings)

    ok = evaluate_point(settings, toy_train, {"x": 2, "y": 1.5}, context, 0)
    assert (ok.ok, ok.objective, ok.error) == (True, 3.0, None)
    run = client.get_run(ok.child_run_id)
    assert run.info.status == "FINISHED" and run.data.tags["mlflow.parentRunId"] == sweep.parent_run_id
    assert run.data.params == {"x": "2", "y": "1.5", "z": "0"} and run.data.metrics["sharpe_ratio"] == 3.0
    assert [m.value for m in client.get_metric_history(ok.child_run_id, "loss")] == [1.0, 0.5, 0.25]

    def broken(params: dict[str, Any]) -> TrialResult:
        raise ValueError("x" * 5000)

    failed = evaluate_point(settings, broken, {"x": 1, "y": 0.5}, context, 1)
    assert not failed.ok and failed.objective is None
    assert (failed.error or "").startswith("ValueError: xxx") and "more characters" in (failed.error or "")
    assert client.get_run(failed.child_run_id).info.status == "FAILED"

    def no_objective(params: dict[str, Any]) -> TrialResult:
        return TrialResult(params=params, metrics={"sharpe_ratio": math.nan})

    nan = evaluate_point(settings, no_objective, {"x": 1, "y": 0.5}, context, 2)
    assert not nan.ok and nan.error == "objective sharpe_ratio is nan"
    assert client.get_run(nan.child_run_id).info.status == "FAILED"


def test_a_worker_evaluates_the_grid_and_finalizes_the_sweep(settings: Settings) -> None:
    from tracking.client import get_client

    sweep = new_sweep(settings)

    def train(params: dict[str, Any]) -> TrialResult:
        if params == {"x": 2, "y": 0.5}:
            raise RuntimeError("this point fails")
        return toy_train(params)

    assert run_worker(settings, sweep.id, train) == 6
    done = get_sweep(settings, sweep.id)
    assert (done.status, done.n_complete, done.n_failed) == ("completed", 5, 1)
    assert done.best_params == {"x": 3, "y": 1.5} and done.best_value == 4.5
    assert done.selection is not None and done.selection.n_trials == 5 and done.selection.dsr is not None
    ranked = ranked_trials(settings, done)
    assert [t.objective_value for t in ranked[:5]] == [4.5, 3.0, 1.5, 1.5, 0.5]
    assert ranked[-1].status == "failed" and "RuntimeError: this point fails" in (ranked[-1].error or "")
    assert states(settings, done).count("COMPLETE") == 5
    parent = get_client(settings).get_run(str(done.parent_run_id))
    assert parent.info.status == "FINISHED" and parent.data.metrics["best_sharpe_ratio"] == 4.5
    with pytest.raises(ConflictError, match="is completed"):
        run_worker(settings, sweep.id, train)


def test_a_stopped_sweep_keeps_its_points_and_resumes(settings: Settings) -> None:
    sweep = new_sweep(settings)
    stopped = finalize(settings, sweep.id, stop_reason="asked to stop")
    assert (stopped.status, stopped.stop_reason) == ("stopped", "asked to stop")
    assert finalize(settings, sweep.id, stop_reason="again") == stopped  # the first closer wins
    assert progress(settings, sweep.id).waiting == 6
    assert run_worker(settings, sweep.id, toy_train) == 6
    resumed = get_sweep(settings, sweep.id)
    assert (resumed.status, resumed.n_complete, resumed.stop_reason) == ("completed", 6, None)


def test_forked_workers_share_the_grid_and_a_killed_one_is_replaced(settings: Settings, tmp_path: Path) -> None:
    """Two forked workers inherit the callback; the one that draws point x=3, y=0.5 dies on it the
    first time (as under kill -9): the point is recovered, evaluated again, and the sweep completes
    with every point once."""
    marker = tmp_path / "died-once"

    def train(params: dict[str, Any]) -> TrialResult:
        if params == {"x": 3, "y": 0.5} and not marker.exists():
            marker.touch()
            os._exit(9)
        return toy_train(params)

    sweep = new_sweep(settings)
    seen: list[Any] = []
    done = run_sweep(settings, sweep.id, train, workers=2, poll_seconds=0.05, on_progress=seen.append)
    assert marker.exists()
    assert (done.status, done.n_complete) == ("completed", 6)
    rows = list_trials(settings, sweep.id)
    complete = [r for r in rows if r.status == "complete"]
    [died] = [r for r in rows if r.status == "failed"]
    assert len(complete) == 6 and len({tuple(sorted(r.params.items())) for r in complete}) == 6
    assert died.params == {"x": 3, "y": 0.5} and "died during the trial; point re-queued" in (died.error or "")
    assert seen[-1].complete == 6 and seen[-1].remaining == 0
    with pytest.raises(InvalidRequestError, match="workers must be >= 1"):
        run_sweep(settings, sweep.id, train, workers=0)


def test_a_worker_that_cannot_record_stops_and_leaves_its_points_recoverable(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The app DB refuses the trial rows: the worker raises that error instead of training on, and its
    unrecorded point stays RUNNING in Optuna, where the recovery of a dead worker finds it."""
    import sweeps.worker

    def refuse(*_: Any, **__: Any) -> None:
        raise OSError("disk full")

    sweep = new_sweep(settings)
    monkeypatch.setattr(sweeps.worker, "record_trial", refuse)
    with pytest.raises(OSError, match="disk full"):
        run_worker(settings, sweep.id, toy_train)
    assert states(settings, sweep) == ["RUNNING"] + ["WAITING"] * 5
    assert get_sweep(settings, sweep.id).status == "running"
    assert list_trials(settings, sweep.id) == []
