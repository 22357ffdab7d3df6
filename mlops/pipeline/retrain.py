"""The retrain pipeline, one function for the CLI, the API, the scheduler and drift:

lock → data + quality gate → train → validate against the champion → log to MLflow and register a
version → app DB records → alias moves (last, so a crash never half-deploys) → deployment history.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mlops.agents.metrics import net_returns
from mlops.agents.specs import AgentSpec, Hyperparameters, get_spec
from mlops.agents.training import Dataset, TrainedAgent, build_dataset, train_agent, training_options
from mlops.data.features import FEATURE_NAMES
from mlops.data.store import count_bars, load_bars, resolve_symbol
from mlops.db import session_scope
from mlops.db.models import DriftBaseline, FeatureImportance, ModelPerformanceHistory, ModelRun, TrainingDataQuality
from mlops.errors import ChampionUnavailableError, DataQualityError, SkippyError, brief
from mlops.logs import get_logger
from mlops.pipeline.artifacts import write_artifacts
from mlops.pipeline.champion import champion_out_of_sample, scored
from mlops.pipeline.deployments import move_alias
from mlops.pipeline.locks import release_lock, start_locked_run
from mlops.pipeline.quality import QualityReport, check_quality
from mlops.pipeline.validation import GateInputs, ValidationDecision, decide
from mlops.settings import Settings
from mlops.timing import PhaseTimer

log = get_logger(__name__)
REPORTED = (
    "accuracy",
    "precision",
    "recall",
    "f1",
    "sharpe_ratio",
    "max_drawdown",
    "turnover",
    "buy_hold_sharpe_ratio",
    "total_return",
)


@dataclass(frozen=True)
class RetrainResult:
    model_run_id: int
    agent_type: str
    status: str  # succeeded | rejected | failed
    deployment_status: str | None  # promoted | challenger | rejected | None
    model_version: int | None
    mlflow_run_id: str | None
    metrics: dict[str, float] = field(default_factory=dict)
    reason: str = ""
    champion_version: int | None = None
    timings: dict[str, float] = field(default_factory=dict)  # seconds per phase
    validation: dict[str, Any] = field(default_factory=dict)  # the gate's record (ValidationDecision.record)


def retrain(
    settings: Settings,
    *,
    agent: str,
    trigger: str = "manual",
    requested_by: str = "cli",
    symbol: str | None = None,
    hyperparameters: dict[str, Any] | None = None,
    queued_run_id: int | None = None,
) -> RetrainResult:
    """Retrain `agent` and deploy the candidate if it validates. Bad input never raises past this
    point once the run row exists: the run ends `rejected` (data/validation) or `failed` (error).
    `queued_run_id` starts a run row the API created (status queued) instead of a new one."""
    spec = get_spec(agent)
    hp = spec.hyperparameters(hyperparameters)
    symbol = resolve_symbol(settings.app_db_url, symbol, settings.symbol)
    if count_bars(settings.app_db_url, symbol) == 0:
        load_bars(settings.app_db_url, symbol)  # raises NotFoundError naming the symbols that have bars
    from tracking.client import get_client

    get_client(settings)  # a tracking URI this app DB does not belong to stops here, before any row is written
    run_id = start_locked_run(
        settings,
        ModelRun(
            agent_type=agent, trigger=trigger, requested_by=requested_by, symbol=symbol, hyperparameters=hp.model_dump()
        ),
        queued_id=queued_run_id,
    )
    log.info("retrain started", agent_type=agent, model_run_id=run_id, symbol=symbol, trigger=trigger)
    mlflow_run_id: str | None = None
    timer = PhaseTimer()
    try:
        with timer.phase("data"):
            bars = load_bars(settings.app_db_url, symbol)
            data = build_dataset(bars, spec, hp, fill=settings.execution_fill)
            quality = check_quality(data, settings)
            _record_quality(settings, run_id, agent, symbol, data, quality)
        if not quality.passed:
            raise DataQualityError("data quality gate failed: " + "; ".join(quality.problems))
        with timer.phase("mlflow_logging"):
            mlflow_run_id = _start_mlflow_run(settings, spec, run_id, symbol, trigger, requested_by, hp)
        with timer.phase("training"):
            trained = train_agent(spec, hp, data, **training_options(settings, symbol))
        with timer.phase("validation"):
            decision = validate_against_champion(settings, spec, trained, data, bars=bars, symbol=symbol)
        version = _log_and_register(
            settings, spec, trained, data, quality, decision, mlflow_run_id, run_id, timer, symbol
        )
        with timer.phase("app_db"):
            _record_training(settings, run_id, agent, version, trained, data, symbol, decision)
        with timer.phase("deployment"):
            result = _deploy(settings, spec, run_id, version, trained, decision, mlflow_run_id, requested_by)
        return replace(result, timings=timer.seconds)
    except DataQualityError as exc:
        return _finish_unsuccessful(settings, run_id, agent, "rejected", str(exc), mlflow_run_id)
    except SkippyError as exc:
        return _finish_unsuccessful(settings, run_id, agent, "failed", str(exc), mlflow_run_id)
    except Exception as exc:
        log.exception("retrain crashed", agent_type=agent, model_run_id=run_id)
        reason = brief(f"{type(exc).__name__}: {exc}")
        return _finish_unsuccessful(settings, run_id, agent, "failed", reason, mlflow_run_id)


def validate_against_champion(
    settings: Settings, spec: AgentSpec, trained: TrainedAgent, data: Dataset, *, bars: pd.DataFrame, symbol: str
) -> ValidationDecision:
    """The promotion gate (mlops/pipeline/validation.py) on the candidate's held-out window, against the
    champion scored out of sample (mlops/pipeline/champion.py)."""
    from tracking import registry

    rows = data.splits.test
    cost = settings.cost_bps_for(symbol)
    p = trained.predict(data.features.to_numpy()[rows])
    candidate = scored(spec, trained.hyperparameters, p, data, rows, cost, data.base_rate)
    inputs = GateInputs(
        agent=spec.name,
        y=data.y[rows],
        next_returns=data.next_returns[rows],
        market=net_returns(np.ones(len(rows)), data.next_returns[rows], cost),
        periods_per_year=data.periods_per_year,
        train_positive_share=data.base_rate if data.base_rate is not None else 0.5,
        candidate=candidate,
        risk_free_rate=settings.risk_free_rate,
    )
    champion = registry.alias_version(settings, spec.name, registry.CHAMPION)
    if champion is None:
        return decide(inputs, settings)
    try:
        theirs, comparison, note = champion_out_of_sample(
            settings, spec, champion, bars=bars, data=data, symbol=symbol, candidate=trained.hyperparameters
        )
    except Exception as exc:
        # A champion that cannot be scored is neither replaced blindly nor a verdict on the candidate (the
        # cause may be passing: a store restarting): the run fails, nothing is registered, retry later.
        raise ChampionUnavailableError(f"could not score champion v{champion} to compare with: {exc}") from exc
    return decide(
        replace(inputs, champion=theirs, champion_version=champion, comparison=comparison, comparison_note=note),
        settings,
    )


def _start_mlflow_run(
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
    # Hyperparameters first: a run that fails later can still be found by them in the MLflow UI.
    log_batch(settings, mlflow_run_id, params=hp.model_dump())
    with session_scope(settings.app_db_url) as session:
        row = session.get_one(ModelRun, run_id)
        row.mlflow_run_id, row.mlflow_experiment_id = mlflow_run_id, experiment_id
    return mlflow_run_id


def _log_and_register(
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


def _window_bounds(data: Dataset, part: str) -> tuple[datetime | None, datetime | None]:
    window = data.window(part)
    if window is None:
        return None, None
    return pd.Timestamp(window[0]).to_pydatetime(), pd.Timestamp(window[1]).to_pydatetime()


def _record_quality(
    settings: Settings, run_id: int, agent: str, symbol: str, data: Dataset, quality: QualityReport
) -> None:
    sizes = data.splits.sizes()
    with session_scope(settings.app_db_url) as session:
        session.add(
            TrainingDataQuality(
                model_run_id=run_id,
                agent_type=agent,
                symbol=symbol,
                n_bars=data.n_bars,
                n_train=sizes["train"],
                n_validation=sizes["validation"],
                n_test=sizes["test"],
                n_non_finite=data.n_non_finite,
                n_duplicate_ts=data.n_duplicate_ts,
                positive_share=quality.positive_share,
                passed=quality.passed,
                problems=quality.problems,
                checks=quality.checks,
            )
        )


def _record_training(
    settings: Settings,
    run_id: int,
    agent: str,
    version: int,
    trained: TrainedAgent,
    data: Dataset,
    symbol: str,
    decision: ValidationDecision,
) -> None:
    from drift.baseline import compute_baseline

    train = data.splits.train
    x_train = data.features.to_numpy()[train]
    baseline = compute_baseline(
        x_train,
        list(FEATURE_NAMES),
        trained.predict(x_train),
        baseline_sharpe=trained.test["sharpe_ratio"],
        periods_per_year=data.periods_per_year,
        baseline_returns=trained.test_returns,
        risk_free_rate=settings.risk_free_rate,
        bins=settings.drift_bins,
        seed=settings.seed,
        floor=settings.drift_floor,
        windows=(*settings.drift_null_windows, settings.drift_window_bars),
        draws=settings.drift_null_draws,
        prediction_draws=settings.drift_null_prediction_draws,
        block_share=settings.drift_null_block_share,
    )
    reference_start, reference_end = _window_bounds(data, "train")
    with session_scope(settings.app_db_url) as session:
        session.add(
            DriftBaseline(
                agent_type=agent,
                model_version=version,
                symbol=symbol,
                reference_start=reference_start,
                reference_end=reference_end,
                payload=baseline,
            )
        )
        for rank, (feature, importance, std) in enumerate(trained.importance, start=1):
            session.add(
                FeatureImportance(
                    agent_type=agent,
                    model_version=version,
                    model_run_id=run_id,
                    feature=feature,
                    importance=importance,
                    importance_std=std,
                    rank=rank,
                )
            )
        for window, metrics in (("validation", trained.validation), ("test", trained.test)):
            start, end = _window_bounds(data, window)
            session.add(
                ModelPerformanceHistory.from_metrics(
                    metrics,
                    agent_type=agent,
                    model_version=version,
                    model_run_id=run_id,
                    window=window,
                    window_start=start,
                    window_end=end,
                )
            )
        row = session.get_one(ModelRun, run_id)
        row.model_version = version
        row.validation = decision.record()  # before any alias moves: a run killed later keeps its verdict
        row.metrics = {k: trained.validation[k] for k in (*REPORTED, "val_loss")} | {
            f"test_{k}": trained.test[k] for k in REPORTED
        }


def _deploy(
    settings: Settings,
    spec: AgentSpec,
    run_id: int,
    version: int,
    trained: TrainedAgent,
    decision: ValidationDecision,
    mlflow_run_id: str,
    actor: str,
) -> RetrainResult:
    from tracking import registry
    from tracking.runs import end_run, set_tags

    summary = {k: trained.test[k] for k in REPORTED}
    if not decision.passed:
        deployment = "rejected"
        status = "rejected"
    else:
        # Every validated candidate becomes challenger; immediate mode promotes it straight on.
        moves = [(registry.CHALLENGER, "challenger")]
        if settings.promotion_mode == "immediate":
            moves.append((registry.CHAMPION, "promote"))
        for alias, action in moves:
            move_alias(
                settings,
                agent=spec.name,
                alias=alias,
                version=version,
                action=action,
                actor=actor,
                reason=decision.reason,
                metrics=summary,
                model_run_id=run_id,
            )
        deployment = "challenger"
        if settings.promotion_mode == "immediate":
            registry.delete_alias(settings, spec.name, registry.CHALLENGER)
            deployment = "promoted"
        status = "succeeded"
    with session_scope(settings.app_db_url) as session:
        row = session.get_one(ModelRun, run_id)
        row.status, row.deployment_status = status, deployment
        row.validation = decision.record()
        row.error = None if decision.passed else decision.reason
        row.finished_at = datetime.now(UTC)
        release_lock(session, spec.name, run_id)
    try:  # the outcome is recorded; a tag that fails to land must not turn it into a failure
        set_tags(settings, mlflow_run_id, {"skippy.status": status, "skippy.deployment_status": deployment})
        end_run(settings, mlflow_run_id, "FINISHED")
    except Exception as exc:
        log.warning("could not close MLflow run", mlflow_run_id=mlflow_run_id, error=str(exc))
    log.info(
        "retrain finished",
        agent_type=spec.name,
        model_version=version,
        metrics=summary,
        deployment_status=deployment,
        model_run_id=run_id,
        reason=decision.reason,
    )
    return RetrainResult(
        run_id,
        spec.name,
        status,
        deployment,
        version,
        mlflow_run_id,
        summary,
        decision.reason,
        decision.champion_version,
        validation=decision.record(),
    )


def _finish_unsuccessful(
    settings: Settings, run_id: int, agent: str, status: str, reason: str, mlflow_run_id: str | None
) -> RetrainResult:
    with session_scope(settings.app_db_url) as session:
        row = session.get_one(ModelRun, run_id)
        if row.status == "running":  # never overwrite an outcome already recorded
            row.status, row.error, row.finished_at = status, reason, datetime.now(UTC)
            row.deployment_status = "rejected" if status == "rejected" else None
        release_lock(session, agent, run_id)
        version = row.model_version
    if mlflow_run_id:
        from tracking.runs import end_run, set_tags

        try:
            set_tags(settings, mlflow_run_id, {"skippy.status": status, "skippy.error": reason[:5000]})
            end_run(settings, mlflow_run_id, "FAILED" if status == "failed" else "FINISHED")
        except Exception as exc:
            log.warning("could not close MLflow run", mlflow_run_id=mlflow_run_id, error=str(exc))
    log.warning("retrain " + status, agent_type=agent, model_run_id=run_id, deployment_status=status, reason=reason)
    return RetrainResult(
        run_id, agent, status, "rejected" if status == "rejected" else None, version, mlflow_run_id, {}, reason
    )
