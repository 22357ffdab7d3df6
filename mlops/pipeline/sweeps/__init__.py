"""Hyperparameter sweeps of the agents, as services (`service`): what a grid may hold (`grids`) and
what each trial trains (`training`) are decided here; sweeps/ runs the Optuna study and the nested
MLflow runs on the training callback it is given."""

from mlops.db.sweeps import SweepRecord, TrialRecord, get_sweep, list_sweeps, ranked_trials
from mlops.pipeline.sweeps.service import (
    default_workers,
    execute_sweep,
    join_sweep,
    prepare_sweep,
    register_best,
    stop_sweep,
    sweep,
)
from sweeps.study import SweepProgress, progress

__all__ = [
    "SweepProgress",
    "SweepRecord",
    "TrialRecord",
    "default_workers",
    "execute_sweep",
    "get_sweep",
    "join_sweep",
    "list_sweeps",
    "prepare_sweep",
    "progress",
    "ranked_trials",
    "register_best",
    "stop_sweep",
    "sweep",
]
