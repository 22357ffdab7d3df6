"""A retrain's MLflow side: its run (params first, so a failed run can be found by them), the batched
metrics/curves/tags, the report artifacts, the pyfunc model and its registered version, and closing
the run with its outcome."""

from __future__ import annotations

import tempfile
from pathlib import Path

from mlops.agents.specs import AgentSpec, Hyperparameters
from mlops.agents.training import Dataset, TrainedAgent
from mlops.data.features import FEATURE_NAMES
from mlops.db import session_scope
from mlops.db.models import ModelRun
from mlops.logs import get_logger
from mlops.pipeline.artifacts import write_artifacts
from mlops.pipeline.quality import QualityReport
from mlops.pipeline.validation import ValidationDecision
from mlops.settings import Settings
from mlops.timing import PhaseTimer

log = get_logger(__name__)


def start_mlflow_run(
    settings: Settings,
    spec: AgentSpec,
    run_id: int,
    symbol: str,
    trigger: str,
    requested_by: str,
    hp: Hyperparameters,
) -> str:
    from tracking.client import ensure_experiment
    from tracking.runs import adopt_launcher_run, log_batch, start_run

    experiment_id = ensure_experiment(settings, spec.name)
    # The experiment is recorded before the run exists, and the run is created with the model run's id as
    # a tag: a process killed before it records the run's id leaves a run the reaper can still find and end.
    _record(settings, run_id, mlflow_experiment_id=experiment_id)
    tags = {
        "skippy.agent": spec.name,
        "skippy.model_run_id": str(run_id),
        "skippy.trigger": trigger,
        "skippy.symbol": symbol,
        "mlflow.user": requested_by,
    }
    # Launched by `mlflow run ... --experiment-name <agent>`: log into the project's run, not a second one.
    mlflow_run_id = adopt_launcher_run(settings, experiment_id, tags)
    if mlflow_run_id is None:
        mlflow_run_id = start_run(settings, experiment_id, f"{spec.name}-retrain-{run_id}", tags)
    _record(settings, run_id, mlflow_run_id=mlflow_run_id)
    # Hyperparameters first: a run that fails later can still be found by them in the MLflow UI.
    log_batch(settings, mlflow_run_id, params=hp.model_dump())
    return mlflow_run_id


def _record(settings: Settings, run_id: int, **values: str) -> None:
    with session_scope(settings.app_db_url) as session:
        row = session.get_one(ModelRun, run_id)
        for name, value in values.items():
            setattr(row, name, value)


def log_and_register(
    settings: Settings,
    spec: AgentSpec,
    trained: TrainedAgent,
    data: Dataset,
    quality: QualityReport,
    decision: ValidationDecision,
    mlflow_run_id: str,
    run_id: int,
    timer: PhaseTimer,
    symbol: str,
) -> int:
    from mlops.agents.network import forward
    from tracking import registry
    from tracking.pyfunc import save_weights
    from tracking.runs import log_artifacts, log_batch, log_pyfunc_model

    counts = ("tp", "fp", "fn", "tn")
    metrics = {k: v for k, v in trained.validation.items() if k not in counts}
    metrics |= {f"test_{k}": v for k, v in trained.test.items() if k not in counts}
    metrics |= {"best_epoch": trained.training.best_epoch, "epochs_run": trained.training.epochs_run}
    metrics |= decision.metrics
    params = {
        "horizon": spec.horizon,
        "seed": settings.seed,
        "n_features": len(FEATURE_NAMES),
        "label_cut": data.label_cut,
        **{f"n_{k}": v for k, v in data.splits.sizes().items()},
        # How positions and returns were made: serving, drift and the gate re-create them from these.
        "execution_fill": data.fill,
        "cost_bps": settings.cost_bps_for(symbol),
        "risk_free_rate": settings.risk_free_rate,
        "periods_per_year": data.periods_per_year,
    }
    if data.base_rate is not None:
        params["base_rate"] = data.base_rate
    validation = "passed" if decision.passed else "rejected"
    with timer.phase("mlflow_logging"):
        log_batch(
            settings,
            mlflow_run_id,
            params=params,
            metrics=metrics,
            curves={"train_loss": trained.training.train_loss, "val_loss_curve": trained.training.val_loss},
            tags={
                "skippy.validation": validation,
                "skippy.validation_reason": decision.reason[:5000],
                "skippy.gate_comparison": decision.comparison,
            },
        )
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        (folder / "report").mkdir()
        with timer.phase("artifacts"):
            write_artifacts(folder / "report", trained, data, quality, decision)
            meta = {
                "agent": spec.name,
                "features": list(FEATURE_NAMES),
                "horizon": spec.horizon,
                "hyperparameters": trained.hyperparameters.model_dump(),
                "label_cut": data.label_cut,
                "base_rate": data.base_rate,
                "execution_fill": data.fill,
            }
            weights = save_weights(
                folder,
                trained.training.params,
                trained.standardiser.mean,
                trained.standardiser.std,
                meta,
                key=settings.model_key_value,
            )
            example = data.features.iloc[data.splits.test[:5]].reset_index(drop=True)
        with timer.phase("mlflow_logging"):
            log_artifacts(settings, mlflow_run_id, folder / "report")
        with timer.phase("mlflow_model"):
            model_uri = log_pyfunc_model(
                settings,
                mlflow_run_id,
                predict=forward,
                artifacts=weights,
                input_example=example,
                output_example=trained.predict(example.to_numpy()),
                model_name="model",
            )
    with timer.phase("registration"):
        return registry.register_version(
            settings,
            spec.name,
            model_uri,
            mlflow_run_id,
            tags={
                "skippy.model_run_id": str(run_id),
                "validation": validation,
                "validation_reason": decision.reason[:5000],
                "test_sharpe_ratio": f"{trained.test['sharpe_ratio']:.4f}",
                "test_accuracy": f"{trained.test['accuracy']:.4f}",
            },
            description=decision.reason[:5000],
        )


def close_mlflow_run(settings: Settings, mlflow_run_id: str, tags: dict[str, str], status: str) -> None:
    """Tag the run with its outcome and end it. The outcome is already recorded in the app DB: a tag
    that fails to land (the tracking server restarting) is logged, never turned into a failure."""
    from tracking.runs import end_run, set_tags

    try:
        set_tags(settings, mlflow_run_id, tags)
        end_run(settings, mlflow_run_id, status)
    except Exception as exc:
        log.warning("could not close MLflow run", mlflow_run_id=mlflow_run_id, error=str(exc))
