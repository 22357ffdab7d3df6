"""Sweeps: create one (study + enqueued grid + parent MLflow run), run workers that each claim an
unevaluated grid point at a time from the Optuna storage, recover the points of dead workers, and
finalize (best trial on the parent run and in the app DB, with its Deflated Sharpe Ratio for the
number of trials run: `sweeps.selection`).

Claims: every grid point is enqueued once as a WAITING Optuna trial when the sweep is created; a
worker claims one by moving it WAITING → RUNNING in the storage, which succeeds for exactly one
process. (Optuna's GridSampler alone picks points per process and repeats them under concurrency.)
A worker killed mid-trial leaves a RUNNING trial: it is marked FAIL and its point re-enqueued once.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import signal
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from mlops.agents.specs import get_spec
from mlops.data.features import compute_features
from mlops.data.store import load_bars, resolve_symbol
from mlops.errors import ConflictError, InvalidRequestError
from mlops.flags import require
from mlops.logs import get_logger
from mlops.pipeline.locks import HOSTNAME, process_alive
from mlops.settings import Settings
from sweeps.grid import DEFAULT_GRIDS, Grid, grid_points, validate_grid
from sweeps.records import (
    TERMINAL,
    SweepRecord,
    TrialRecord,
    create_sweep_row,
    finish_sweep_once,
    get_sweep,
    ranked_trials,
    record_trial,
    update_sweep,
)
from sweeps.selection import SelectionReport, assess_selection
from sweeps.storage import open_storage
from sweeps.trial import evaluate_point

log = get_logger(__name__)
OBJECTIVES: dict[str, str] = {
    "sharpe_ratio": "maximize",
    "accuracy": "maximize",
    "precision": "maximize",
    "recall": "maximize",
    "f1": "maximize",
    "total_return": "maximize",
    "val_loss": "minimize",
    "log_loss": "minimize",
    "max_drawdown": "minimize",
    "turnover": "minimize",
}
WORKER_ATTR = "skippy_worker"
MAX_ATTEMPTS = 2  # a point whose worker died is tried once more
RECOVERY_INTERVAL_SECONDS = 5.0
SHOWN_METRICS = ("sharpe_ratio", "accuracy", "val_loss", "test_sharpe_ratio")  # in Optuna's user attrs


@dataclass(frozen=True)
class SweepProgress:
    total: int
    complete: int
    failed: int
    running: int
    waiting: int
    best_value: float | None = None
    best_params: dict[str, Any] = field(default_factory=dict)

    @property
    def remaining(self) -> int:
        return self.running + self.waiting


def _study(settings: Settings, sweep: SweepRecord) -> tuple[Any, Any, int]:
    import optuna

    storage = open_storage(settings.optuna_storage)
    study = optuna.load_study(study_name=sweep.study_name, storage=storage)
    return study, storage, storage.get_study_id_from_name(sweep.study_name)


def create_sweep(
    settings: Settings,
    *,
    agent: str,
    grid: Grid | None = None,
    name: str | None = None,
    symbol: str | None = None,
    objective: str = "sharpe_ratio",
    direction: str | None = None,
    requested_by: str = "cli",
) -> SweepRecord:
    """Validate everything, then create the study with every grid point enqueued and the parent run."""
    import optuna

    from tracking.client import ensure_experiment
    from tracking.runs import adopt_launcher_run, log_batch, start_run

    require(settings, "mlops_hyperparameter_sweeps")
    spec = get_spec(agent)
    clean = validate_grid(agent, grid if grid is not None else DEFAULT_GRIDS[agent], settings.sweep_max_points)
    if objective not in OBJECTIVES:
        raise InvalidRequestError(f"unknown objective {objective!r}; choose one of: {', '.join(OBJECTIVES)}")
    direction = direction or OBJECTIVES[objective]
    if direction not in ("maximize", "minimize"):
        raise InvalidRequestError(f"direction must be maximize or minimize, got {direction!r}")
    symbol = resolve_symbol(settings.app_db_url, symbol, settings.symbol)
    load_bars(settings.app_db_url, symbol)  # fails now, naming the symbols that exist, rather than in every trial
    points = grid_points(clean)
    name = name or f"{agent}-{datetime.now(UTC):%Y%m%d-%H%M%S}"
    sweep = create_sweep_row(
        settings,
        name=name,
        agent_type=agent,
        symbol=symbol,
        parameter_grid=clean,
        status="queued",
        objective_metric=objective,
        direction=direction,
        n_trials=len(points),
        requested_by=requested_by,
    )
    study_name = f"skippy-sweep-{sweep.id}-{spec.name}"
    study = optuna.create_study(
        study_name=study_name,
        storage=open_storage(settings.optuna_storage),
        direction=direction,  # type: ignore[arg-type]  # validated above
        sampler=optuna.samplers.GridSampler(clean, seed=settings.seed),
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        study.set_metric_names([objective])  # optuna-dashboard labels the objective with it
    for key, value in {
        "skippy_sweep_id": sweep.id,
        "agent": agent,
        "symbol": symbol,
        "grid": clean,
        "name": name,
    }.items():
        study.set_user_attr(key, value)
    for point in points:
        study.enqueue_trial(point, skip_if_exists=False)
    experiment_id = ensure_experiment(settings, agent)
    tags = {
        "skippy.agent": agent,
        "skippy.sweep_id": str(sweep.id),
        "skippy.study_name": study_name,
        "skippy.symbol": symbol,
        "mlflow.user": requested_by,
        "skippy.grid": json.dumps(clean)[:5000],
    }
    # Launched by `mlflow run -e sweep --experiment-name <agent>`: the project's run is the parent.
    parent = adopt_launcher_run(settings, experiment_id, tags) or start_run(
        settings, experiment_id, f"sweep-{name}", tags
    )
    log_batch(
        settings,
        parent,
        params={
            "grid": json.dumps(clean)[:6000],
            "n_points": len(points),
            "objective": objective,
            "direction": direction,
            "symbol": symbol,
        },
    )
    update_sweep(
        settings, sweep.id, study_name=study_name, parent_run_id=parent, status="running", started_at=datetime.now(UTC)
    )
    log.info("sweep created", agent_type=agent, sweep_id=sweep.id, points=len(points), study_name=study_name)
    return get_sweep(settings, sweep.id)


def _claim_next(storage: Any, study_id: int) -> int | None:
    """Move one WAITING trial to RUNNING; the storage lets exactly one process win each trial."""
    from optuna.exceptions import UpdateFinishedTrialError
    from optuna.trial import TrialState

    for frozen in storage.get_all_trials(study_id, deepcopy=False, states=(TrialState.WAITING,)):
        trial_id = storage.get_trial_id_from_study_id_trial_number(study_id, frozen.number)
        try:
            if storage.set_trial_state_values(trial_id, state=TrialState.RUNNING):
                return int(trial_id)
        except UpdateFinishedTrialError:
            continue
    return None


def recover_dead_trials(settings: Settings, sweep: SweepRecord) -> list[int]:
    """Fail RUNNING trials whose worker died (same host: pid gone; other hosts: silent for twice the
    trial timeout) and re-enqueue their points once. Returns the failed trial numbers."""
    from optuna.exceptions import UpdateFinishedTrialError
    from optuna.trial import TrialState

    study, storage, study_id = _study(settings, sweep)
    stale_after = 2 * settings.sweep_trial_timeout_seconds + 60
    failed = []
    for frozen in storage.get_all_trials(study_id, deepcopy=False, states=(TrialState.RUNNING,)):
        worker = frozen.system_attrs.get(WORKER_ATTR)
        started = worker["started"] if worker else frozen.datetime_start.timestamp()
        if worker and worker["host"] == HOSTNAME:
            dead = not process_alive(worker["pid"])
        else:
            dead = time.time() - started > stale_after
        if not dead:
            continue
        trial_id = storage.get_trial_id_from_study_id_trial_number(study_id, frozen.number)
        who = f"pid {worker['pid']} on {worker['host']}" if worker else "a worker"
        error = f"worker ({who}) died during the trial"
        params = frozen.system_attrs.get("fixed_params", frozen.params)
        attempt = int(frozen.user_attrs.get("skippy_attempt", 1))
        requeued = attempt < MAX_ATTEMPTS
        # Re-queue *before* failing the dead trial: in between, a finalizer must never see the grid as
        # exhausted while the point is in neither state.
        replacement = (
            _enqueue_replacement(study, storage, study_id, params, attempt, frozen.number) if requeued else None
        )
        try:
            storage.set_trial_user_attr(trial_id, "error", error)
            won = storage.set_trial_state_values(trial_id, state=TrialState.FAIL)
        except UpdateFinishedTrialError:
            won = False
        if not won:  # another process recovered it first, and re-queued it itself
            if replacement is not None:
                _discard(storage, replacement)
            continue
        record_trial(
            settings,
            TrialRecord(
                sweep.id,
                frozen.number,
                dict(params),
                "failed",
                None,
                error=error + ("; point re-queued" if requeued else ""),
            ),
        )
        failed.append(frozen.number)
        log.warning("sweep trial recovered", sweep_id=sweep.id, trial=frozen.number, requeued=requeued)
    return failed


def _enqueue_replacement(
    study: Any, storage: Any, study_id: int, params: dict[str, Any], attempt: int, number: int
) -> int | None:
    from optuna.trial import TrialState

    study.enqueue_trial(
        params, user_attrs={"skippy_attempt": attempt + 1, "requeued_from": number}, skip_if_exists=False
    )
    for t in storage.get_all_trials(study_id, deepcopy=False, states=(TrialState.WAITING,)):
        if t.user_attrs.get("requeued_from") == number:
            return int(storage.get_trial_id_from_study_id_trial_number(study_id, t.number))
    return None


def _discard(storage: Any, trial_id: int) -> None:
    """Drop a duplicate replacement (another recoverer re-queued the same point)."""
    from optuna.exceptions import UpdateFinishedTrialError
    from optuna.trial import TrialState

    try:
        storage.set_trial_user_attr(trial_id, "error", "duplicate re-queue, discarded")
        storage.set_trial_state_values(trial_id, state=TrialState.PRUNED)
    except UpdateFinishedTrialError:
        pass


def run_worker(settings: Settings, sweep_id: int, *, deadline: float | None = None) -> int:
    """Evaluate unevaluated grid points of a sweep until none are left (or `deadline`, a time.time()
    value, passes). Any number of workers, on any machine sharing the stores, may run this at once."""
    import optuna
    from optuna.distributions import CategoricalDistribution
    from optuna.trial import TrialState

    from tracking.client import ensure_experiment

    sweep = get_sweep(settings, sweep_id)
    if sweep.status in ("completed", "failed"):
        raise ConflictError(f"sweep {sweep_id} is {sweep.status}: there is nothing left to evaluate")
    require(settings, "mlops_hyperparameter_sweeps")
    if sweep.status == "stopped":
        update_sweep(settings, sweep_id, status="running", finished_at=None)
    spec = get_spec(sweep.agent_type)
    study, storage, study_id = _study(settings, sweep)
    bars = load_bars(settings.app_db_url, sweep.symbol or settings.symbol)
    features = compute_features(bars)  # the same for every grid point
    experiment_id = ensure_experiment(settings, sweep.agent_type)
    choices = {name: CategoricalDistribution(values) for name, values in sweep.parameter_grid.items()}
    done = 0
    next_recovery = 0.0
    while deadline is None or time.time() < deadline:
        trial_id = _claim_next(storage, study_id)
        if trial_id is None and time.time() >= next_recovery:
            # Nothing waiting: a dead worker's point may be stuck RUNNING; recover and look again.
            # (Checked at most every few seconds, not before every claim: it reads every trial.)
            next_recovery = time.time() + RECOVERY_INTERVAL_SECONDS
            if recover_dead_trials(settings, sweep):
                trial_id = _claim_next(storage, study_id)
        if trial_id is None:
            break
        storage.set_trial_system_attr(
            trial_id, WORKER_ATTR, {"host": HOSTNAME, "pid": os.getpid(), "started": time.time()}
        )
        trial = optuna.trial.Trial(study, trial_id)
        params = {name: trial.suggest_categorical(name, dist.choices) for name, dist in choices.items()}
        outcome = evaluate_point(
            settings,
            spec=spec,
            params=params,
            bars=bars,
            features=features,
            experiment_id=experiment_id,
            parent_run_id=str(sweep.parent_run_id),
            sweep_id=sweep.id,
            trial_number=trial.number,
            objective=sweep.objective_metric,
            symbol=sweep.symbol or settings.symbol,
        )
        shown = {k: outcome.metrics[k] for k in SHOWN_METRICS if k in outcome.metrics}
        trial.set_user_attr("skippy", {"mlflow_run_id": outcome.child_run_id, **shown})
        # The app DB row first: once Optuna says the grid is exhausted, a finalizer (possibly another
        # worker) ranks the trials from the app DB, so every told trial must already be there.
        record_trial(
            settings,
            TrialRecord(
                sweep.id,
                trial.number,
                params,
                "complete" if outcome.ok else "failed",
                outcome.objective,
                outcome.metrics,
                outcome.child_run_id,
                outcome.error,
                outcome.seconds,
            ),
        )
        if outcome.ok:
            study.tell(trial, outcome.objective)
        else:
            trial.set_user_attr("error", str(outcome.error)[:1000])
            study.tell(trial, state=TrialState.FAIL)
        done += 1
    finalize(settings, sweep_id)
    return done


def progress(settings: Settings, sweep_id: int) -> SweepProgress:
    from optuna.trial import TrialState

    sweep = get_sweep(settings, sweep_id)
    _, storage, study_id = _study(settings, sweep)
    trials = storage.get_all_trials(study_id, deepcopy=False)
    count = {s: sum(1 for t in trials if t.state == s) for s in TrialState}
    complete = [t for t in trials if t.state == TrialState.COMPLETE and t.value is not None]
    best = (max if sweep.direction == "maximize" else min)(complete, key=lambda t: t.value) if complete else None
    return SweepProgress(
        total=sweep.n_trials,
        complete=count[TrialState.COMPLETE],
        failed=count[TrialState.FAIL],
        running=count[TrialState.RUNNING],
        waiting=count[TrialState.WAITING],
        best_value=best.value if best else None,
        best_params=dict(best.params) if best else {},
    )


def finalize(settings: Settings, sweep_id: int, *, stop_reason: str | None = None) -> SweepRecord:
    """Close the sweep when its grid is exhausted (or stopped with `stop_reason`): best trial to the
    app DB and the parent run. Idempotent: only the first caller writes."""
    from tracking.runs import end_run, log_batch

    sweep = get_sweep(settings, sweep_id)
    if sweep.status in TERMINAL:
        return sweep
    state = progress(settings, sweep_id)
    if state.remaining and stop_reason is None:
        return sweep
    status = "completed" if not state.remaining else "stopped"
    ranked = [t for t in ranked_trials(settings, sweep) if t.status == "complete"]
    best = ranked[0] if ranked else None
    selection = judge_selection(sweep, ranked)
    if not finish_sweep_once(
        settings,
        sweep_id,
        status=status,
        n_complete=state.complete,
        n_failed=state.failed,
        best_trial_number=best.trial_number if best else None,
        best_value=best.objective_value if best else None,
        best_params=best.params if best else None,
        selection=selection.to_json(),
        error=stop_reason,
    ):
        return get_sweep(settings, sweep_id)
    if sweep.parent_run_id:
        metrics: dict[str, float] = {
            "n_complete": state.complete,
            "n_failed": state.failed,
            "n_remaining": state.remaining,
        }
        params: dict[str, Any] = {}
        if best is not None:
            metrics[f"best_{sweep.objective_metric}"] = float(best.objective_value or 0.0)
            metrics |= {f"best_trial_{k}": v for k, v in best.metrics.items() if not k.startswith("test_")}
            params = {f"best_{k}": v for k, v in best.params.items()} | {"best_trial_number": best.trial_number}
        if selection.dsr is not None:
            metrics |= {
                "best_deflated_sharpe_ratio": selection.dsr,
                "best_expected_max_sharpe": float(selection.expected_max_sharpe or 0.0),
                "best_psr": float(selection.psr_vs_zero or 0.0),
            }
        log_batch(
            settings,
            sweep.parent_run_id,
            params=params,
            metrics=metrics,
            tags={
                "skippy.status": status,
                "skippy.best_child_run_id": (best.child_run_id or "") if best else "",
                "skippy.selection_verdict": selection.verdict[:5000],
            },
        )
        end_run(settings, sweep.parent_run_id, "FINISHED")
    log.info(
        "sweep finished",
        sweep_id=sweep_id,
        agent_type=sweep.agent_type,
        deployment_status=status,
        metrics={"complete": state.complete, "failed": state.failed, "best": best.objective_value if best else None},
    )
    return get_sweep(settings, sweep_id)


def judge_selection(sweep: SweepRecord, complete: list[TrialRecord]) -> SelectionReport:
    """The winner (first of `complete`, ranked best first) judged for selection bias: its validation
    Sharpe deflated for the number of trials it was picked from, whatever the sweep's objective."""
    if not complete:
        return SelectionReport(verdict="no DSR: no trial completed", objective=sweep.objective_metric)
    return assess_selection(
        complete[0].metrics,
        [t.metrics for t in complete],
        objective=sweep.objective_metric,
        best_trial_number=complete[0].trial_number,
    )


def _worker_process(settings: Settings, sweep_id: int, deadline: float | None) -> None:
    """Entry point of a forked worker: fresh connections, then the same loop as `sweep-worker`."""
    from threadpoolctl import threadpool_limits

    from mlops.db.session import reset_after_fork
    from sweeps.storage import reset_after_fork as reset_storage_after_fork
    from tracking.client import reset_after_fork as reset_mlflow_after_fork

    # A worker is stopped by its supervisor with SIGTERM: die plainly, whatever handler the
    # supervisor's process installed (a job worker's SIGTERM means "cancel the job").
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    reset_after_fork()
    reset_mlflow_after_fork()
    reset_storage_after_fork()
    try:
        # One BLAS thread per worker: the workers are the parallelism; the matrices are small, and
        # several multi-threaded BLAS pools on the same cores only fight each other.
        with threadpool_limits(limits=1):
            run_worker(settings, sweep_id, deadline=deadline)
    except Exception:
        log.exception("sweep worker crashed", sweep_id=sweep_id)
        raise SystemExit(1) from None


def run_sweep(
    settings: Settings,
    sweep_id: int,
    *,
    workers: int,
    time_budget_seconds: float | None = None,
    on_progress: Callable[[SweepProgress], None] | None = None,
    poll_seconds: float = 0.5,
) -> SweepRecord:
    """Run a created sweep with `workers` forked worker processes until its grid is exhausted or the
    time budget is spent. Dead workers' points are recovered and workers respawned while points remain."""
    if workers < 1:
        raise InvalidRequestError(f"workers must be >= 1, got {workers}")
    context = multiprocessing.get_context("fork")
    deadline = time.time() + time_budget_seconds if time_budget_seconds else None
    sweep = get_sweep(settings, sweep_id)

    def spawn() -> Any:
        process = context.Process(target=_worker_process, args=(settings, sweep_id, deadline), daemon=False)
        process.start()
        return process

    processes = [spawn() for _ in range(workers)]
    respawns_left = 3 * workers
    next_recovery = time.time() + RECOVERY_INTERVAL_SECONDS
    try:
        while True:
            alive = [p for p in processes if p.is_alive()]
            # The supervisor shares the cores with its workers: recover only now and then, or when a
            # worker has exited (it may have died mid-trial).
            if len(alive) < len(processes) or time.time() >= next_recovery:
                recover_dead_trials(settings, sweep)
                next_recovery = time.time() + RECOVERY_INTERVAL_SECONDS
            state = progress(settings, sweep_id)
            if on_progress is not None:
                on_progress(state)
            out_of_time = deadline is not None and time.time() >= deadline
            if not alive:
                if state.waiting and not out_of_time and respawns_left > 0:
                    missing = min(workers, state.waiting)
                    respawns_left -= missing
                    processes = [spawn() for _ in range(missing)]
                    continue
                break
            time.sleep(poll_seconds)
    finally:
        for process in processes:
            if process.is_alive():
                process.terminate()
            process.join(timeout=30)
    state = progress(settings, sweep_id)
    if state.remaining:
        reason = "time budget spent" if deadline is not None and time.time() >= deadline else "workers kept failing"
        return finalize(settings, sweep_id, stop_reason=f"{reason}; {state.remaining} grid points not evaluated")
    return finalize(settings, sweep_id)
