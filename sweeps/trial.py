"""One trial: train one grid point and log it as a child MLflow run of the sweep's parent run."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any

import pandas as pd

from mlops.agents.specs import AgentSpec
from mlops.agents.training import build_dataset, train_agent, training_options
from mlops.errors import SkippyError, brief
from mlops.settings import Settings

COUNTS = ("tp", "fp", "fn", "tn")


@dataclass(frozen=True)
class TrialOutcome:
    ok: bool
    objective: float | None
    metrics: dict[str, float]
    child_run_id: str
    error: str | None
    seconds: float


def evaluate_point(
    settings: Settings,
    *,
    spec: AgentSpec,
    params: dict[str, Any],
    bars: pd.DataFrame,
    features: pd.DataFrame,
    experiment_id: str,
    parent_run_id: str,
    sweep_id: int,
    trial_number: int,
    objective: str,
    symbol: str | None = None,
) -> TrialOutcome:
    """Train with `params` (the agent's defaults for the rest), objective from the *validation* split.
    Fills and costs are the ones a retrain of `symbol` uses, so the winner is judged as it will be
    trained when registered."""
    from tracking.runs import end_run, log_batch, start_run

    start = time.perf_counter()
    hp = spec.hyperparameters(params)
    child = start_run(
        settings,
        experiment_id,
        f"trial-{trial_number}",
        {"skippy.agent": spec.name, "skippy.sweep_id": str(sweep_id), "skippy.trial_number": str(trial_number)},
        parent_run_id=parent_run_id,
    )
    try:
        data = build_dataset(bars, spec, hp, features, fill=settings.execution_fill)
        trained = train_agent(
            spec,
            hp,
            data,
            **training_options(settings, symbol),
            importance=False,
            time_limit_seconds=settings.sweep_trial_timeout_seconds,
        )
    except Exception as exc:  # a trial's failure is the trial's, never the worker's
        message = brief(str(exc) if isinstance(exc, SkippyError) else f"{type(exc).__name__}: {exc}")
        try:
            log_batch(settings, child, params=hp.model_dump(), tags={"skippy.error": message[:5000]})
            end_run(settings, child, "FAILED")
        except Exception:
            pass  # the app DB and the study still record the failure
        return TrialOutcome(False, None, {}, child, message, time.perf_counter() - start)
    metrics = {k: v for k, v in trained.validation.items() if k not in COUNTS}
    metrics |= {f"test_{k}": v for k, v in trained.test.items() if k not in COUNTS}
    metrics |= {"best_epoch": trained.training.best_epoch, "epochs_run": trained.training.epochs_run}
    # The Sharpe ratios are annualised with it; the sweep's selection test needs them per bar.
    metrics["periods_per_year"] = float(data.periods_per_year)
    value = metrics.get(objective)
    log_batch(
        settings,
        child,
        params=hp.model_dump(),
        metrics=metrics,
        curves={"train_loss": trained.training.train_loss, "val_loss_curve": trained.training.val_loss},
    )
    if value is None or not math.isfinite(value):
        end_run(settings, child, "FAILED")
        return TrialOutcome(
            False, None, metrics, child, f"objective {objective} is {value}", time.perf_counter() - start
        )
    end_run(settings, child, "FINISHED")
    return TrialOutcome(True, float(value), metrics, child, None, time.perf_counter() - start)
