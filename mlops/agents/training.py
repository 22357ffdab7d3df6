"""From bars to a trained, evaluated agent: dataset, standardisation, fit, metrics, importance.
Pure computation (no database, no MLflow); the retrain pipeline does the I/O around it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from mlops.agents.labels import realised_volatility
from mlops.agents.metrics import (
    classification_metrics,
    direction_metrics,
    equity_curve,
    net_returns,
    periods_per_year,
    probability_metrics,
    return_moments,
    trading_metrics,
)
from mlops.agents.network import TrainingResult, forward, log_loss, train_network
from mlops.agents.specs import AgentSpec, Hyperparameters
from mlops.data.bar_quality import bar_checks
from mlops.data.features import (
    FEATURE_NAMES,
    Fill,
    Splits,
    check_fill,
    chronological_splits,
    compute_features,
    forward_returns,
    label_purge,
    next_bar_returns,
)
from mlops.settings import Settings


@dataclass(frozen=True)
class Dataset:
    """Feature rows with labels, the return each row's position earns, and the splits."""

    features: pd.DataFrame  # raw (unstandardised) features, FEATURE_NAMES columns
    y: np.ndarray
    next_returns: np.ndarray  # what a position decided at each row earns under `fill`
    splits: Splits
    label_cut: float  # market_insight: 0; risk_assessor: k = −Φ⁻¹(τ) (tail: return < −k·σ̂ₜ·√horizon)
    periods_per_year: float
    n_bars: int
    n_non_finite: int
    n_duplicate_ts: int
    base_rate: float | None = None  # positive-label share of the training split (the risk exposure rule uses it)
    fill: Fill = "open"
    bar_checks: dict[str, Any] = field(default_factory=dict)  # calendar, volume and open/close artefacts

    def window(self, part: str) -> tuple[pd.Timestamp, pd.Timestamp] | None:
        idx = getattr(self.splits, part)
        if len(idx) == 0:
            return None
        return self.features.index[idx[0]], self.features.index[idx[-1]]


def build_dataset(
    bars: pd.DataFrame,
    spec: AgentSpec,
    hp: Hyperparameters,
    features: pd.DataFrame | None = None,
    *,
    fill: Fill = "open",
) -> Dataset:
    """Features (pass them in when building several datasets from the same bars: they do not depend on
    hyperparameters), labels, returns and splits. Labels and returns start at the `fill` (settings
    `execution_fill`), and the purge between splits grows by one bar when fills are at the next open."""
    fill = check_fill(fill)
    n_duplicate_ts = int(pd.Index(bars.index).duplicated().sum())
    if n_duplicate_ts:  # counted for the quality gate, which rejects them; the features need unique stamps
        bars = bars[~pd.Index(bars.index).duplicated(keep="last")]
        features = None
    features = compute_features(bars) if features is None else features
    forward = forward_returns(bars, spec.horizon, fill).reindex(features.index).to_numpy()
    sigma = realised_volatility(bars["close"]).reindex(features.index).to_numpy()
    nxt = next_bar_returns(bars, fill).reindex(features.index).to_numpy()
    labelled = np.isfinite(forward)  # the last bars have no label yet
    values = features.to_numpy()
    non_finite = int((~np.isfinite(values[labelled])).any(axis=1).sum())
    features = features[labelled]
    forward = forward[labelled]
    splits = chronological_splits(len(features), purge=label_purge(spec.horizon, fill))
    y, cut = spec.labels(forward, sigma[labelled], hp)
    base_rate = float(np.mean(y[splits.train])) if len(splits.train) else None
    return Dataset(
        features=features,
        y=y,
        next_returns=nxt[labelled],
        splits=splits,
        label_cut=cut,
        periods_per_year=periods_per_year(pd.DatetimeIndex(bars.index)),
        n_bars=len(bars),
        n_non_finite=non_finite,
        n_duplicate_ts=n_duplicate_ts,
        base_rate=base_rate,
        fill=fill,
        bar_checks=bar_checks(bars),
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
    *,
    base_rate: float | None = None,
    risk_free_rate: float = 0.0,
) -> dict[str, float]:
    """Every metric of probabilities `p` on one window, and buy-and-hold's on the same window, as one
    flat dict for MLflow. `base_rate` is the training split's positive share (`Dataset.base_rate`, or the
    model's `base_rate` param): risk_assessor's exposure and threshold use it (τ when None), Brier skill
    is measured against it, and market_insight's majority class is read from it.

    Both agents: accuracy/precision/recall/f1 at `spec.decision_threshold` (see `classification_metrics`),
    log_loss, auc, brier, brier_skill; Sharpe at the configured cost and at 0/5/10 bp, drawdown, turnover;
    skew, kurtosis and `n_samples` of the net per-bar returns. market_insight also: the 3-class confusion
    matrix `cm_*`, coverage, hit_rate, majority_hit_rate."""
    rate = spec.base_rate(hp, base_rate)
    positions = spec.positions(p, hp, base_rate)
    metrics = classification_metrics(y, p, spec.decision_threshold(hp, base_rate))
    metrics |= probability_metrics(y, p, rate)
    metrics |= trading_metrics(positions, next_returns, cost_bps, ppy, risk_free_rate=risk_free_rate)
    metrics |= trading_metrics(
        np.ones_like(p), next_returns, cost_bps, ppy, prefix="buy_hold_", risk_free_rate=risk_free_rate
    )
    if spec.name == "market_insight":
        metrics |= direction_metrics(positions, y, next_returns, majority_up=rate >= 0.5)
    metrics |= return_moments(net_returns(positions, next_returns, cost_bps))
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
    test_returns: np.ndarray = field(repr=False)  # net per-bar returns of the positions on the held-out split
    test_equity: np.ndarray = field(repr=False)
    test_buy_hold_equity: np.ndarray = field(repr=False)
    label_cut: float = 0.0
    base_rate: float | None = None  # the training split's positive share: log it as MLflow param `base_rate`
    fill: Fill = "open"

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


def training_options(settings: Settings, symbol: str | None = None) -> dict[str, Any]:
    """The training knobs that come from settings, for `train_agent(..., **training_options(s, symbol))`;
    the cost is `symbol`'s (settings `transaction_costs_bps`) or the default."""
    return {
        "seed": settings.seed,
        "patience": settings.early_stopping_patience,
        "cost_bps": settings.cost_bps_for(symbol),
        "divergence_factor": settings.divergence_factor,
        "risk_free_rate": settings.risk_free_rate,
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
    risk_free_rate: float = 0.0,
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

    def score_rows(rows: np.ndarray) -> dict[str, float]:
        return score(
            spec,
            hp,
            p[rows],
            data.y[rows],
            data.next_returns[rows],
            data.periods_per_year,
            cost_bps,
            base_rate=data.base_rate,
            risk_free_rate=risk_free_rate,
        )

    validation = score_rows(s.validation)
    validation["val_loss"] = validation["log_loss"]
    test = score_rows(s.test)
    importances = (
        permutation_importance(
            lambda raw: forward(result.params, standardiser.apply(raw)), x[s.test], data.y[s.test], seed
        )
        if importance
        else []
    )
    positions = spec.positions(p[s.test], hp, data.base_rate)
    test_returns = net_returns(positions, data.next_returns[s.test], cost_bps)
    return TrainedAgent(
        agent=spec.name,
        hyperparameters=hp,
        standardiser=standardiser,
        training=result,
        validation=validation,
        test=test,
        importance=importances,
        test_returns=test_returns,
        test_equity=np.cumprod(1 + test_returns),
        test_buy_hold_equity=equity_curve(np.ones(len(s.test)), data.next_returns[s.test], cost_bps),
        label_cut=data.label_cut,
        base_rate=data.base_rate,
        fill=data.fill,
    )
