"""One trial: run the sweep's training callback on one grid point and log it as a child MLflow run
of the sweep's parent run. What training means is the callback's business (the sweep service builds
it from the agent); a sweep only needs its metrics back.

A trial is three steps: `start_child_run` (before training: the run's start time is the trial's) →
`run_callback` → `log_child_run`."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from mlops.errors import SkippyError, brief
from mlops.settings import Settings


@dataclass(frozen=True)
class TrialResult:
    """What the training callback returns for one grid point: every parameter it trained with (the
    point's and the defaults it filled in), final metrics (the objective among them), and per-step
    curves (e.g. the loss per epoch)."""

    params: Mapping[str, Any]
    metrics: Mapping[str, float]
    curves: Mapping[str, Sequence[float]] = field(default_factory=dict)


# Trains one grid point; raises on failure (the message becomes the trial's error).
TrainFn = Callable[[dict[str, Any]], TrialResult]


@dataclass(frozen=True)
class TrialContext:
    """Where a sweep's trials log: the same for every trial of a worker."""

    experiment_id: str
    parent_run_id: str
    sweep_id: int
    agent_type: str
    objective: str


@dataclass(frozen=True)
class Trained:
    """The callback's result for one point, or its error message; and how long it took."""

    params: dict[str, Any]
    result: TrialResult | None
    error: str | None
    seconds: float


@dataclass(frozen=True)
class TrialOutcome:
    ok: bool
    objective: float | None
    metrics: dict[str, float]
    child_run_id: str
    error: str | None
    seconds: float


def start_child_run(settings: Settings, context: TrialContext, trial_number: int) -> str:
    from tracking.runs import start_run

    tags = {
        "skippy.agent": context.agent_type,
        "skippy.sweep_id": str(context.sweep_id),
        "skippy.trial_number": str(trial_number),
    }
    return start_run(
        settings, context.experiment_id, f"trial-{trial_number}", tags, parent_run_id=context.parent_run_id
    )


def run_callback(train: TrainFn, params: dict[str, Any]) -> Trained:
    """Train `params`; a failure of the callback is the trial's, never the worker's."""
    start = time.perf_counter()
    try:
        result = train(dict(params))
    except Exception as exc:
        message = brief(str(exc) if isinstance(exc, SkippyError) else f"{type(exc).__name__}: {exc}")
        return Trained(params, None, message, time.perf_counter() - start)
    return Trained(params, result, None, time.perf_counter() - start)


def log_child_run(settings: Settings, child: str, context: TrialContext, trained: Trained) -> TrialOutcome:
    """Log what the trial gave into its child run and end it: FINISHED with a finite objective, else
    FAILED (a failed callback, or an objective that is missing or not finite)."""
    from tracking.runs import end_run, log_batch

    start = time.perf_counter()
    if trained.result is None:
        try:
            log_batch(settings, child, params=trained.params, tags={"skippy.error": str(trained.error)[:5000]})
            end_run(settings, child, "FAILED")
        except Exception:
            pass  # the app DB and the study still record the failure
        return TrialOutcome(False, None, {}, child, trained.error, trained.seconds + time.perf_counter() - start)
    metrics = {k: float(v) for k, v in trained.result.metrics.items()}
    value = metrics.get(context.objective)
    ok = value is not None and math.isfinite(value)
    log_batch(settings, child, params=trained.result.params, metrics=metrics, curves=trained.result.curves)
    end_run(settings, child, "FINISHED" if ok else "FAILED")
    seconds = trained.seconds + time.perf_counter() - start
    if not ok:
        return TrialOutcome(False, None, metrics, child, f"objective {context.objective} is {value}", seconds)
    return TrialOutcome(True, value, metrics, child, None, seconds)
