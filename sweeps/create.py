"""Create a sweep: its app-DB row, an Optuna study with every grid point enqueued as a WAITING trial
(what workers claim: `sweeps.claims`), and the parent MLflow run the trials nest under."""

from __future__ import annotations

import json
import warnings
from datetime import UTC, datetime

from mlops.db.sweeps import SweepRecord, create_sweep_row, get_sweep, update_sweep
from mlops.errors import InvalidRequestError
from mlops.logs import get_logger
from mlops.settings import Settings
from sweeps.grid import Grid, grid_points
from sweeps.storage import bound_storage
from sweeps.study import enqueue_point

log = get_logger(__name__)
DIRECTIONS = ("maximize", "minimize")


def create_sweep(
    settings: Settings,
    *,
    agent_type: str,
    grid: Grid,
    symbol: str,
    objective: str,
    direction: str,
    name: str | None = None,
    requested_by: str,
) -> SweepRecord:
    """Create the sweep of an already validated `grid` (the caller checks names and values): the trials
    log into MLflow experiment `agent_type`, and `objective` is the metric the training callback
    reports that the study optimises in `direction`."""
    import optuna

    from tracking.client import ensure_experiment
    from tracking.runs import adopt_launcher_run, log_batch, start_run

    if direction not in DIRECTIONS:
        raise InvalidRequestError(f"direction must be maximize or minimize, got {direction!r}")
    points = grid_points(grid)
    if not points:
        raise InvalidRequestError("parameter grid has no points")
    # Both stores are checked (the app DB must belong to them) before any row is written.
    storage = bound_storage(settings)
    experiment_id = ensure_experiment(settings, agent_type)
    name = name or f"{agent_type}-{datetime.now(UTC):%Y%m%d-%H%M%S}"
    sweep = create_sweep_row(
        settings,
        name=name,
        agent_type=agent_type,
        symbol=symbol,
        parameter_grid=grid,
        status="queued",
        objective_metric=objective,
        direction=direction,
        n_trials=len(points),
        requested_by=requested_by,
    )
    study_name = f"skippy-sweep-{sweep.id}-{agent_type}"
    study = optuna.create_study(
        study_name=study_name,
        storage=storage,
        direction=direction,  # type: ignore[arg-type]  # checked above
        sampler=optuna.samplers.GridSampler(grid, seed=settings.seed),
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        study.set_metric_names([objective])  # optuna-dashboard labels the objective with it
    # One attribute, not five: every write to the journal storage waits for a disk sync.
    study.set_user_attr(
        "skippy", {"sweep_id": sweep.id, "agent": agent_type, "symbol": symbol, "grid": grid, "name": name}
    )
    for point in points:
        enqueue_point(study, grid, point)
    tags = {
        "skippy.agent": agent_type,
        "skippy.sweep_id": str(sweep.id),
        "skippy.study_name": study_name,
        "skippy.symbol": symbol,
        "mlflow.user": requested_by,
        "skippy.grid": json.dumps(grid)[:5000],
    }
    # Launched by `mlflow run -e sweep --experiment-name <agent>`: the project's run is the parent.
    parent = adopt_launcher_run(settings, experiment_id, tags) or start_run(
        settings, experiment_id, f"sweep-{name}", tags
    )
    log_batch(
        settings,
        parent,
        params={
            "grid": json.dumps(grid)[:6000],
            "n_points": len(points),
            "objective": objective,
            "direction": direction,
            "symbol": symbol,
        },
    )
    update_sweep(
        settings, sweep.id, study_name=study_name, parent_run_id=parent, status="running", started_at=datetime.now(UTC)
    )
    log.info("sweep created", agent_type=agent_type, sweep_id=sweep.id, points=len(points), study_name=study_name)
    return get_sweep(settings, sweep.id)
