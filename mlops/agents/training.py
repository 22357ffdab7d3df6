"""From bars to a trained, evaluated agent: dataset, standardisation, fit, metrics, importance.
Pure computation (no database, no MLflow); the retrain pipeline does the I/O around it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from mlops.agents.metrics import classification_metrics, equity_curve, periods_per_year, trading_metrics
from mlops.agents.network import TrainingResult, forward, log_loss, train_network
from mlops.agents.specs import AgentSpec, Hyperparameters
from mlops.data.features import (
    FEATURE_NAMES,
    Splits,
    chronological_splits,
    compute_features,
    forward_returns,
    next_bar_returns,
)
from mlops.settings import Settings


@dataclass(frozen=True)
class Dataset:
    """Feature rows with labels, the return each row's position earns, and the splits."""

    features: pd.DataFrame  # raw (unstandardised) features, FEATURE_NAMES columns
    y: np.ndarray
    next_returns: np.ndarray
    splits: Splits
    label_cut: float
    periods_per_year: float
    n_bars: int
    n_non_finite: int
    n_duplicate_ts: int

    def window(self, part: str) -> tuple[pd.Timestamp, pd.Timestamp] | None:
        idx = getattr(self.splits, part)
        if len(idx) == 0:
            return None
        return self.features.index[idx[0]], self.features.index[idx[-1]]


def build_dataset(
    bars: pd.DataFrame, spec: AgentSpec, hp: Hyperparameters, features: pd.DataFrame | None = None
) -> Dataset:
    """Features (pass them in when building several datasets from the same bars: they do not depend on
    hyperparameters), labels, returns and splits."""
    features = compute_features(bars) if features is None else features
    forward = forward_returns(bars, spec.horizon).reindex(features.index).to_numpy()
    nxt = next_bar_returns(bars).reindex(features.index).to_numpy()
    labelled = np.isfinite(forward)  # the last `horizon` bars have no label yet
    values = features.to_numpy()
    non_finite = int((~np.isfinite(values[labelled])).any(axis=1).sum())
    features = features[labelled]
    forward = forward[labelled]
    splits = chronological_splits(len(features), purge=spec.horizon)
    y, cut = spec.labels(forward, splits.train, hp) if len(splits.train) else (np.zeros(len(forward)), 0.0)
    return Dataset(
        features=features,
        y=y,
        next_returns=nxt[labelled],
        splits=splits,
        label_cut=cut,
        periods_per_year=periods_per_year(pd.DatetimeIndex(bars.index)),
        n_bars=len(bars),
        n_non_finite=non_finite,
        n_duplicate_ts=int(pd.Index(bars.index).duplicated().sum()),
    )


@dataclass(frozen=True)
class Standardiser:
    mean: np.ndarray
    std: np.ndarray

    @classmethod
    def fit(cls, x: np.ndarray) -> Standardiser:
        std = x.std(axis=0)
        return cls(x.mean(axis=0), np.where(std > 0, std, 1.0))

    def apply(self, x: np.ndarray) -> np.ndarray:
        return np.asarray((x - self.mean) / self.std)


def score(
    spec: AgentSpec,
    hp: Hyperparameters,
    p: np.ndarray,
    y: np.ndarray,
    next_returns: np.ndarray,
    ppy: float,
    cost_bps: float,
) -> dict[str, float]:
    """Every metric of probabilities `p` on one window, and buy-and-hold's on the same window."""
    metrics = classification_metrics(y, p, spec.decision_threshold(hp))
    metrics |= trading_metrics(spec.positions(p, hp), next_returns, cost_bps, ppy)
    metrics |= trading_metrics(np.ones_like(p), next_returns, cost_bps, ppy, prefix="buy_hold_")
    metrics["n_samples"] = float(len(y))
    return metrics


@dataclass(frozen=True)
class TrainedAgent:
    agent: str
    hyperparameters: Hyperparameters
    standardiser: Standardiser
    training: TrainingResult
    validation: dict[str, float]
    test: dict[str, float]
    importance: list[tuple[str, float, float]]  # (feature, mean loss increase, std), most important first
    test_equity: np.ndarray = field(repr=False)
    test_buy_hold_equity: np.ndarray = field(repr=False)
    label_cut: float = 0.0

    def predict(self, raw_features: np.ndarray) -> np.ndarray:
        return forward(self.training.params, self.standardiser.apply(raw_features))


def permutation_importance(
    predict: Callable[[np.ndarray], np.ndarray], x: np.ndarray, y: np.ndarray, seed: int, repeats: int = 5
) -> list[tuple[str, float, float]]:
    """Mean and std of the log-loss increase when each feature's column is shuffled."""
    rng = np.random.default_rng(seed)
    base = log_loss(y, predict(x))
    rows = []
    for j, name in enumerate(FEATURE_NAMES):
        increases = []
        for _ in range(repeats):
            shuffled = x.copy()
            shuffled[:, j] = rng.permutation(shuffled[:, j])
            increases.append(log_loss(y, predict(shuffled)) - base)
        rows.append((name, float(np.mean(increases)), float(np.std(increases))))
    return sorted(rows, key=lambda r: r[1], reverse=True)


def training_options(settings: Settings) -> dict[str, Any]:
    """The training knobs that come from settings, for `train_agent(..., **training_options(s))`."""
    return {
        "seed": settings.seed,
        "patience": settings.early_stopping_patience,
        "cost_bps": settings.transaction_cost_bps,
        "divergence_factor": settings.divergence_factor,
    }


def train_agent(
    spec: AgentSpec,
    hp: Hyperparameters,
    data: Dataset,
    *,
    seed: int,
    patience: int,
    cost_bps: float,
    divergence_factor: float = 10.0,
    importance: bool = True,
    time_limit_seconds: float | None = None,
) -> TrainedAgent:
    """Fit on the training split, early-stop on validation, report validation and held-out metrics."""
    x = data.features.to_numpy()
    s = data.splits
    standardiser = Standardiser.fit(x[s.train])
    xs = standardiser.apply(x)
    result = train_network(
        xs[s.train],
        data.y[s.train],
        xs[s.validation],
        data.y[s.validation],
        learning_rate=hp.learning_rate,
        batch_size=hp.batch_size,
        epochs=hp.epochs,
        l2=hp.l2,
        hidden_units=hp.hidden_units,
        seed=seed,
        patience=patience,
        divergence_factor=divergence_factor,
        time_limit_seconds=time_limit_seconds,
    )
    p = forward(result.params, xs)
    validation = score(
        spec,
        hp,
        p[s.validation],
        data.y[s.validation],
        data.next_returns[s.validation],
        data.periods_per_year,
        cost_bps,
    )
    validation["val_loss"] = validation["log_loss"]
    test = score(spec, hp, p[s.test], data.y[s.test], data.next_returns[s.test], data.periods_per_year, cost_bps)
    importances = (
        permutation_importance(
            lambda raw: forward(result.params, standardiser.apply(raw)), x[s.test], data.y[s.test], seed
        )
        if importance
        else []
    )
    positions = spec.positions(p[s.test], hp)
    return TrainedAgent(
        agent=spec.name,
        hyperparameters=hp,
        standardiser=standardiser,
        training=result,
        validation=validation,
        test=test,
        importance=importances,
        test_equity=equity_curve(positions, data.next_returns[s.test], cost_bps),
        test_buy_hold_equity=equity_curve(np.ones(len(s.test)), data.next_returns[s.test], cost_bps),
        label_cut=data.label_cut,
    )
