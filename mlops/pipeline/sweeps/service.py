"""The sweep use case, one entry for the CLI, the API's jobs, the scheduler and the dashboard:

    prepare_sweep   validate (flag, agent, grid, symbol, objective) and create the sweep rows, study
                    and parent run — once, whether the sweep then runs here or in a job
    execute_sweep   run it with forked workers on the training callback built here; audited ("sweep")
    sweep           prepare + execute
    join_sweep      one more worker, in this process (`skippy ai sweep-worker`: resume, other machines)
    stop_sweep      close it as stopped, resumable
    register_best   retrain the best configuration through the normal validation gate

sweeps/ runs the study; what a trial trains is decided here (`training.sweep_trainer`).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlops.audit import audited
from mlops.db.sweeps import SweepRecord, get_sweep
from mlops.errors import ConflictError, FeatureDisabledError, InvalidRequestError, NotFoundError, SkippyError, brief
from mlops.flags import require
from mlops.settings import Settings
from sweeps.grid import Grid, load_grid
from sweeps.study import SweepProgress

FLAG = "mlops_hyperparameter_sweeps"

if TYPE_CHECKING:  # imported when called: the retrain service is heavy to import
    from mlops.pipeline.retrain import RetrainResult


def default_workers(settings: Settings) -> int:
    return settings.sweep_workers or os.cpu_count() or 1


def _audit_parameters(record: SweepRecord, workers: int | None) -> dict[str, Any]:
    return {
        "agent": record.agent_type,
        "sweep_id": record.id,
        "grid": record.parameter_grid,
        "symbol": record.symbol,
        "objective": record.objective_metric,
        "workers": workers,
    }


def prepare_sweep(
    settings: Settings,
    *,
    actor: str,
    agent: str,
    grid: Grid | None = None,
    config: Path | None = None,
    name: str | None = None,
    symbol: str | None = None,
    objective: str = "sharpe_ratio",
    direction: str | None = None,
) -> SweepRecord:
    """Validate a sweep request and create the sweep (app-DB row, Optuna study with every grid point
    queued, parent MLflow run), ready for `execute_sweep` here or in a job. Raises, naming the problem,
    on a disabled flag, an unknown agent, a bad grid or objective, or a symbol with no bars; a refused
    request is audited with its error."""
    try:
        return _prepare(
            settings,
            actor=actor,
            agent=agent,
            grid=grid,
            config=config,
            name=name,
            symbol=symbol,
            objective=objective,
            direction=direction,
        )
    except SkippyError:
        parameters = {"agent": agent, "sweep_id": None, "grid": grid, "symbol": symbol, "objective": objective}
        with audited(settings, actor=actor, action="sweep", parameters=parameters | {"workers": None}):
            raise


def _prepare(
    settings: Settings,
    *,
    actor: str,
    agent: str,
    grid: Grid | None,
    config: Path | None,
    name: str | None,
    symbol: str | None,
    objective: str,
    direction: str | None,
) -> SweepRecord:
    from mlops.data.store import count_bars, load_bars, resolve_symbol
    from mlops.pipeline.sweeps.grids import DEFAULT_GRIDS, objective_direction, validate_grid
    from sweeps.create import create_sweep

    require(settings, FLAG)
    if grid is not None and config is not None:
        raise InvalidRequestError("give either a grid or a config file, not both")
    if config is not None:
        grid = load_grid(config)
    clean = validate_grid(agent, grid if grid is not None else DEFAULT_GRIDS.get(agent), settings.sweep_max_points)
    direction = objective_direction(objective, direction)
    symbol = resolve_symbol(settings.app_db_url, symbol, settings.symbol)
    if count_bars(settings.app_db_url, symbol) == 0:
        load_bars(settings.app_db_url, symbol)  # raises NotFoundError naming the symbols that have bars
    return create_sweep(
        settings,
        agent_type=agent,
        grid=clean,
        symbol=symbol,
        objective=objective,
        direction=direction,
        name=name,
        requested_by=actor,
    )


def execute_sweep(
    settings: Settings,
    sweep_id: int,
    *,
    actor: str,
    workers: int | None = None,
    time_budget_seconds: float | None = None,
    on_progress: Callable[[SweepProgress], None] | None = None,
) -> SweepRecord:
    """Run a prepared (or stopped) sweep with `workers` forked processes until its grid is exhausted or
    the time budget is spent (then it ends `stopped`, resumable). Writes the audit row "sweep"."""
    from mlops.pipeline.sweeps.training import sweep_trainer
    from sweeps.supervisor import run_sweep

    record = get_sweep(settings, sweep_id)
    workers = workers or default_workers(settings)
    with audited(settings, actor=actor, action="sweep", parameters=_audit_parameters(record, workers)) as audit:
        if workers < 1:
            raise InvalidRequestError(f"workers must be >= 1, got {workers}")
        if record.status in ("completed", "failed"):
            raise ConflictError(f"sweep {sweep_id} is {record.status}: there is nothing left to evaluate")
        _require_flag(settings, record)
        done = run_sweep(
            settings,
            sweep_id,
            sweep_trainer(settings, record),
            workers=workers,
            time_budget_seconds=time_budget_seconds,
            on_progress=on_progress,
        )
        audit.update(
            status=done.status,
            n_trials=done.n_trials,
            n_complete=done.n_complete,
            n_failed=done.n_failed,
            best_value=done.best_value,
            best_params=done.best_params,
            stop_reason=done.stop_reason,
        )
    return done


def sweep(
    settings: Settings,
    *,
    actor: str,
    agent: str,
    grid: Grid | None = None,
    config: Path | None = None,
    name: str | None = None,
    symbol: str | None = None,
    workers: int | None = None,
    objective: str = "sharpe_ratio",
    direction: str | None = None,
    time_budget_seconds: float | None = None,
    on_created: Callable[[SweepRecord], None] | None = None,
    on_progress: Callable[[SweepProgress], None] | None = None,
) -> SweepRecord:
    """Create a sweep from a grid (or a JSON config file, or the agent's default grid) and run it here."""
    if workers is not None and workers < 1:
        raise InvalidRequestError(f"workers must be >= 1, got {workers}")
    created = prepare_sweep(
        settings,
        actor=actor,
        agent=agent,
        grid=grid,
        config=config,
        name=name,
        symbol=symbol,
        objective=objective,
        direction=direction,
    )
    if on_created is not None:
        on_created(created)
    return execute_sweep(
        settings,
        created.id,
        actor=actor,
        workers=workers,
        time_budget_seconds=time_budget_seconds,
        on_progress=on_progress,
    )


def join_sweep(settings: Settings, sweep_id: int, *, actor: str) -> int:
    """Evaluate, in this process, grid points of sweep `sweep_id` no other worker has taken, until none
    are left; returns how many. Resumes a stopped sweep; any number may join, on any machine sharing
    the stores. Audited as "sweep-worker"."""
    from threadpoolctl import threadpool_limits

    from mlops.pipeline.sweeps.training import sweep_trainer
    from sweeps.worker import run_worker

    record = get_sweep(settings, sweep_id)
    parameters = {"agent": record.agent_type, "sweep_id": sweep_id}
    with audited(settings, actor=actor, action="sweep-worker", parameters=parameters) as audit:
        if record.status in ("completed", "failed"):
            raise ConflictError(f"sweep {sweep_id} is {record.status}: there is nothing left to evaluate")
        _require_flag(settings, record)
        train = sweep_trainer(settings, record)
        with threadpool_limits(limits=1):  # as a forked worker: other workers share the cores
            done = run_worker(settings, sweep_id, train)
        audit.update(evaluated=done, status=get_sweep(settings, sweep_id).status)
    return done


def _require_flag(settings: Settings, record: SweepRecord) -> None:
    """The flag, checked again when the work starts: a sweep refused then is closed as stopped, so that
    it resumes once the flag is back on."""
    try:
        require(settings, FLAG)
    except FeatureDisabledError as exc:
        stop_sweep(settings, record.id, brief(str(exc), 500))
        raise


def stop_sweep(settings: Settings, sweep_id: int, reason: str) -> None:
    """Close a sweep that will not run on (its job was cancelled, timed out or died): `stopped` with
    `reason`, its remaining points still queued (`skippy ai sweep-worker` resumes it), the parent MLflow
    run ended. Nothing happens to a sweep that is already closed."""
    from sweeps.finalize import finalize

    finalize(settings, sweep_id, stop_reason=reason)


def settled_best(settings: Settings, sweep_id: int) -> SweepRecord:
    """Sweep `sweep_id`, if its best configuration is settled and can be registered. Refused, naming why,
    while the sweep still runs (register it once it has finished or was stopped) and when no trial completed."""
    from mlops.db.sweeps import TERMINAL

    record = get_sweep(settings, sweep_id)
    if record.status not in TERMINAL:
        done = record.n_complete + record.n_failed
        raise ConflictError(
            f"sweep {sweep_id} is still {record.status} ({done} of {record.n_trials} trials evaluated): its best "
            "configuration is settled when the sweep finishes; register it then, or stop the sweep (cancel its "
            "job) to register the best so far"
        )
    if not record.best_params:
        raise NotFoundError(f"sweep {sweep_id} has no completed trial to register ({record.status})")
    return record


def register_best(settings: Settings, sweep_id: int, *, actor: str) -> RetrainResult:
    """Retrain the agent with the sweep's settled best configuration (`settled_best`): validated like any
    candidate."""
    from mlops.pipeline.retrain import retrain

    record = settled_best(settings, sweep_id)
    return retrain(
        settings,
        actor=actor,
        agent=record.agent_type,
        trigger="sweep",
        symbol=record.symbol,
        hyperparameters=dict(record.best_params or {}),  # settled_best: never empty
    )
