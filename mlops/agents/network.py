"""A small neural classifier trained by mini-batch gradient descent (Adam) in numpy.

hidden_units = 0 is logistic regression; otherwise one tanh hidden layer. Binary cross-entropy with
L2 on the weights, early stopping on validation loss (the best epoch's weights are kept). Seeded:
the same data, hyperparameters and seed give the same weights bit for bit.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from mlops.errors import TrainingDivergedError, TrialTimeoutError

EPS = 1e-12
Params = dict[str, np.ndarray]


def sigmoid(x: np.ndarray) -> np.ndarray:
    return np.asarray(0.5 * (1.0 + np.tanh(0.5 * x)))


def forward(params: Params, x: np.ndarray) -> np.ndarray:
    """Positive-class probability for standardised inputs `x` (n × features)."""
    if "w1" in params:
        hidden = np.tanh(x @ params["w1"] + params["b1"])
        logits = hidden @ params["w2"] + params["b2"]
    else:
        logits = x @ params["w"] + params["b"]
    return sigmoid(logits.ravel())


def log_loss(y: np.ndarray, p: np.ndarray) -> float:
    p = np.clip(p, EPS, 1 - EPS)
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))


def _init(n_features: int, hidden_units: int, rng: np.random.Generator) -> Params:
    if hidden_units == 0:
        return {"w": np.zeros((n_features, 1)), "b": np.zeros(1)}
    scale = np.sqrt(1.0 / n_features)
    return {
        "w1": rng.normal(0.0, scale, (n_features, hidden_units)),
        "b1": np.zeros(hidden_units),
        "w2": rng.normal(0.0, np.sqrt(1.0 / hidden_units), (hidden_units, 1)),
        "b2": np.zeros(1),
    }


def _gradients(params: Params, x: np.ndarray, y: np.ndarray, l2: float) -> Params:
    n = len(y)
    if "w1" in params:
        hidden = np.tanh(x @ params["w1"] + params["b1"])
        p = sigmoid((hidden @ params["w2"] + params["b2"]).ravel())
        d_logit = ((p - y) / n)[:, None]
        d_hidden = (d_logit @ params["w2"].T) * (1 - hidden**2)
        return {
            "w1": x.T @ d_hidden + l2 * params["w1"],
            "b1": d_hidden.sum(axis=0),
            "w2": hidden.T @ d_logit + l2 * params["w2"],
            "b2": d_logit.sum(axis=0),
        }
    p = sigmoid((x @ params["w"] + params["b"]).ravel())
    d_logit = ((p - y) / n)[:, None]
    return {"w": x.T @ d_logit + l2 * params["w"], "b": d_logit.sum(axis=0)}


@dataclass(frozen=True)
class TrainingResult:
    params: Params
    train_loss: list[float]
    val_loss: list[float]
    best_epoch: int
    stopped_early: bool
    epochs_run: int = field(default=0)


def train_network(
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_val: np.ndarray,
    y_val: np.ndarray,
    *,
    learning_rate: float,
    batch_size: int,
    epochs: int,
    l2: float,
    hidden_units: int,
    seed: int,
    patience: int,
    divergence_factor: float = 10.0,
    on_epoch: Callable[[int, float, float], None] | None = None,
    time_limit_seconds: float | None = None,
) -> TrainingResult:
    """Fit with Adam on shuffled mini-batches. Raises TrainingDivergedError when the loss becomes
    non-finite or exceeds `divergence_factor` × the loss of the untrained model."""
    rng = np.random.default_rng(seed)
    params = _init(x_train.shape[1], hidden_units, rng)
    moments = {k: (np.zeros_like(v), np.zeros_like(v)) for k, v in params.items()}
    beta1, beta2, step = 0.9, 0.999, 0
    initial_loss = log_loss(y_train, forward(params, x_train))
    best = (np.inf, 0, {k: v.copy() for k, v in params.items()})
    train_curve: list[float] = []
    val_curve: list[float] = []
    n = len(y_train)
    stopped_early = False
    deadline = time.monotonic() + time_limit_seconds if time_limit_seconds is not None else None
    with np.errstate(over="ignore", invalid="ignore"):
        for epoch in range(epochs):
            order = rng.permutation(n)
            for start in range(0, n, batch_size):
                batch = order[start : start + batch_size]
                grads = _gradients(params, x_train[batch], y_train[batch], l2)
                step += 1
                for key, grad in grads.items():
                    m, v = moments[key]
                    m *= beta1
                    m += (1 - beta1) * grad
                    v *= beta2
                    v += (1 - beta2) * grad**2
                    m_hat = m / (1 - beta1**step)
                    v_hat = v / (1 - beta2**step)
                    params[key] -= learning_rate * m_hat / (np.sqrt(v_hat) + 1e-8)
            if deadline is not None and time.monotonic() > deadline:
                raise TrialTimeoutError(
                    f"training stopped after {epoch + 1} epochs: time limit of {time_limit_seconds:g} s exceeded"
                )
            train_loss = log_loss(y_train, forward(params, x_train))
            val_loss = log_loss(y_val, forward(params, x_val))
            train_curve.append(train_loss)
            val_curve.append(val_loss)
            if on_epoch is not None:
                on_epoch(epoch, train_loss, val_loss)
            finite = all(np.isfinite(v).all() for v in params.values()) and np.isfinite(train_loss)
            if not finite or train_loss > divergence_factor * initial_loss:
                raise TrainingDivergedError(
                    f"training diverged at epoch {epoch + 1}: train loss {train_loss:.4g} vs "
                    f"{initial_loss:.4g} untrained (learning_rate={learning_rate} is probably too high)"
                )
            if val_loss < best[0] - 1e-7:
                best = (val_loss, epoch, {k: v.copy() for k, v in params.items()})
            elif epoch - best[1] >= patience:
                stopped_early = True
                break
    return TrainingResult(best[2], train_curve, val_curve, best[1] + 1, stopped_early, len(train_curve))
