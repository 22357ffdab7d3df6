"""The worker loop: claim a grid point, train it with the sweep's callback, log its child run, record
it (app-DB row, then the Optuna trial), until no point is left; then try to finalize the sweep.

Recording runs inline, between trainings. (A recording thread, to overlap the stores' disk syncs with
the next training, cost more than it saved: it fights the training for the GIL — bench/sweep.py.)"""

from __future__ import annotations

import time
from typing import Any

from mlops.db.sweeps import TrialRecord, get_sweep, record_trial, update_sweep
from mlops.errors import ConflictError
from mlops.settings import Settings
from sweeps.claims import claim_next, recover_dead_trials
from sweeps.finalize import finalize
from sweeps.study import open_study
from sweeps.trial import TrainFn, TrialContext, TrialOutcome, log_child_run, run_callback, start_child_run

RECOVERY_INTERVAL_SECONDS = 5.0


def run_worker(settings: Settings, sweep_id: int, train: TrainFn, *, deadline: float | None = None) -> int:
    """Evaluate unevaluated grid points of a sweep with `train` until none are left (or `deadline`, a
    time.time() value, passes); returns how many this worker evaluated. Any number of workers, on any
    machine sharing the stores, may run this at once."""
    from tracking.client import ensure_experiment

    sweep = get_sweep(settings, sweep_id)
    if sweep.status in ("completed", "failed"):
        raise ConflictError(f"sweep {sweep_id} is {sweep.status}: there is nothing left to evaluate")
    if sweep.status == "stopped":
        update_sweep(settings, sweep_id, status="running", finished_at=None, error=None)
    opened = open_study(settings, sweep)
    storage, study_id = opened.storage, opened.study_id
    context = TrialContext(
        experiment_id=ensure_experiment(settings, sweep.agent_type),
        parent_run_id=str(sweep.parent_run_id),
        sweep_id=sweep.id,
        agent_type=sweep.agent_type,
        objective=sweep.objective_metric,
    )
    done = 0
    next_recovery = 0.0
    while deadline is None or time.time() < deadline:
        claimed = claim_next(storage, study_id)
        if claimed is None and time.time() >= next_recovery:
            # Nothing waiting: a dead worker's point may be stuck RUNNING; recover and look again.
            # (Checked at most every few seconds, not before every claim: it reads every trial.)
            next_recovery = time.time() + RECOVERY_INTERVAL_SECONDS
            if recover_dead_trials(settings, sweep):
                claimed = claim_next(storage, study_id)
        if claimed is None:
            break
        trial_id, number = claimed._trial_id, claimed.number
        params = {name: claimed.system_attrs["fixed_params"][name] for name in sweep.parameter_grid}
        if not claimed.params:  # queued by an older version, without its parameters
            _set_params(storage, trial_id, sweep.parameter_grid, params)
        child = start_child_run(settings, context, number)
        outcome = log_child_run(settings, child, context, run_callback(train, params))
        _record(settings, storage, trial_id, number, params, outcome, context)
        done += 1
    finalize(settings, sweep_id)
    return done


def _record(
    settings: Settings,
    storage: Any,
    trial_id: int,
    number: int,
    params: dict[str, Any],
    outcome: TrialOutcome,
    context: TrialContext,
) -> None:
    """The trial's app-DB row, then its Optuna state: once Optuna says the grid is exhausted, a finalizer
    (possibly another worker) ranks the trials from the app DB, so every finished trial must be there.
    (The trial's metrics and MLflow run are in the app DB and MLflow, not repeated in Optuna's user
    attributes: every write to the journal storage waits for a disk sync.)"""
    from optuna.trial import TrialState

    record_trial(
        settings,
        TrialRecord(
            sweep_id=context.sweep_id,
            trial_number=number,
            params=params,
            status="complete" if outcome.ok else "failed",
            objective_value=outcome.objective,
            metrics=outcome.metrics,
            child_run_id=outcome.child_run_id,
            error=outcome.error,
            duration_seconds=outcome.seconds,
        ),
    )
    if outcome.ok:
        storage.set_trial_state_values(trial_id, state=TrialState.COMPLETE, values=[outcome.objective])
    else:
        storage.set_trial_user_attr(trial_id, "error", str(outcome.error)[:1000])
        storage.set_trial_state_values(trial_id, state=TrialState.FAIL)


def _set_params(storage: Any, trial_id: int, grid: dict[str, list[Any]], params: dict[str, Any]) -> None:
    """Record the point as the trial's parameters, with the grid's choices as their distributions (what
    `trial.suggest_categorical` would write; the point is already fixed, so no sampler is asked)."""
    from optuna.distributions import CategoricalDistribution

    for name, value in params.items():
        distribution = CategoricalDistribution(grid[name])
        storage.set_trial_param(trial_id, name, distribution.to_internal_repr(value), distribution)
