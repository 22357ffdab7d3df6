"""The training callback a sweep runs for each grid point, built from the agent's spec, the sweep's
bars and the settings. Built once per sweep, before the workers fork: the bars, their features and
the datasets are computed here and shared by every trial of every worker."""

from __future__ import annotations

from typing import Any

from mlops.agents.specs import Hyperparameters, get_spec
from mlops.agents.training import Dataset, TrainedAgent, build_dataset, train_agent, training_options
from mlops.data.features import compute_features
from mlops.data.store import load_bars
from mlops.db.sweeps import SweepRecord
from mlops.settings import Settings
from sweeps.grid import grid_points
from sweeps.trial import TrainFn, TrialResult

COUNTS = ("tp", "fp", "fn", "tn")  # confusion counts: not metrics to compare trials by
# Hyperparameters that act on the fit only: a dataset (labels, splits) is the same whatever their
# values, so trials that differ only in these share one. Any other hyperparameter — risk_threshold
# sets risk_assessor's tail labels — gets a dataset of its own.
FIT_ONLY = frozenset({"learning_rate", "batch_size", "epochs", "l2", "hidden_units"})


def _dataset_key(hp: Hyperparameters) -> tuple[tuple[str, Any], ...]:
    return tuple((k, v) for k, v in hp.model_dump().items() if k not in FIT_ONLY)


def sweep_trainer(settings: Settings, sweep: SweepRecord) -> TrainFn:
    """Train the sweep's agent on its symbol's bars with each point's hyperparameters (the agent's
    defaults for the rest); the objective comes from the *validation* split. Fills and costs are the
    ones a retrain of the symbol uses, so the winner is judged as it will be trained when registered."""
    spec = get_spec(sweep.agent_type)
    symbol = sweep.symbol or settings.symbol
    bars = load_bars(settings.app_db_url, symbol)
    features = compute_features(bars)
    options = training_options(settings, symbol)
    datasets: dict[tuple[tuple[str, Any], ...], Dataset] = {}

    def dataset(hp: Hyperparameters) -> Dataset:
        key = _dataset_key(hp)
        if key not in datasets:
            datasets[key] = build_dataset(bars, spec, hp, features, fill=settings.execution_fill)
        return datasets[key]

    for point in grid_points(sweep.parameter_grid):  # before the fork: every worker inherits them
        dataset(spec.hyperparameters(point))

    def train(params: dict[str, Any]) -> TrialResult:
        hp = spec.hyperparameters(params)
        data = dataset(hp)
        trained = train_agent(
            spec, hp, data, **options, importance=False, time_limit_seconds=settings.sweep_trial_timeout_seconds
        )
        return TrialResult(params=hp.model_dump(), metrics=trial_metrics(trained, data), curves=_curves(trained))

    return train


def trial_metrics(trained: TrainedAgent, data: Dataset) -> dict[str, float]:
    """Validation metrics by name, held-out ones as `test_<name>`, the epochs, and the bars per year the
    Sharpe ratios are annualised with (the sweep's selection test needs them per bar)."""
    metrics = {k: v for k, v in trained.validation.items() if k not in COUNTS}
    metrics |= {f"test_{k}": v for k, v in trained.test.items() if k not in COUNTS}
    metrics |= {"best_epoch": trained.training.best_epoch, "epochs_run": trained.training.epochs_run}
    metrics["periods_per_year"] = float(data.periods_per_year)
    return metrics


def _curves(trained: TrainedAgent) -> dict[str, list[float]]:
    return {"train_loss": list(trained.training.train_loss), "val_loss_curve": list(trained.training.val_loss)}
