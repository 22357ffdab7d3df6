"""Sweep services the interfaces call: run a sweep end to end, and send its best configuration
through the normal retrain + validation gate."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mlops.errors import InvalidRequestError, NotFoundError
from mlops.pipeline.retrain import RetrainResult, retrain
from mlops.settings import Settings
from sweeps.grid import Grid, load_grid
from sweeps.records import SweepRecord, get_sweep
from sweeps.runner import SweepProgress, create_sweep, run_sweep


def default_workers(settings: Settings) -> int:
    return settings.sweep_workers or os.cpu_count() or 1


def sweep(
    settings: Settings,
    *,
    agent: str,
    grid: Grid | None = None,
    config: Path | None = None,
    name: str | None = None,
    symbol: str | None = None,
    workers: int | None = None,
    objective: str = "sharpe_ratio",
    direction: str | None = None,
    time_budget_seconds: float | None = None,
    requested_by: str = "cli",
    on_created: Callable[[SweepRecord], None] | None = None,
    on_progress: Callable[[SweepProgress], None] | None = None,
) -> SweepRecord:
    """Create a sweep from a grid (or a JSON config file, or the agent's default grid) and run it."""
    if grid is not None and config is not None:
        raise InvalidRequestError("give either a grid or a config file, not both")
    if config is not None:
        grid = load_grid(config)
    created = create_sweep(
        settings,
        agent=agent,
        grid=grid,
        name=name,
        symbol=symbol,
        objective=objective,
        direction=direction,
        requested_by=requested_by,
    )
    if on_created is not None:
        on_created(created)
    return run_sweep(
        settings,
        created.id,
        workers=workers or default_workers(settings),
        time_budget_seconds=time_budget_seconds,
        on_progress=on_progress,
    )


def register_best(settings: Settings, sweep_id: int, *, requested_by: str = "cli") -> RetrainResult:
    """Retrain the agent with the sweep's best configuration: validated like any candidate."""
    record = get_sweep(settings, sweep_id)
    if not record.best_params:
        raise NotFoundError(f"sweep {sweep_id} has no completed trial to register")
    params: dict[str, Any] = dict(record.best_params)
    return retrain(
        settings,
        agent=record.agent_type,
        trigger="sweep",
        requested_by=requested_by,
        symbol=record.symbol,
        hyperparameters=params,
    )
