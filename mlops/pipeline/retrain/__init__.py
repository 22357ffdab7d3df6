"""The retrain use case, one service for the CLI, the API's jobs, sweeps, the scheduler and drift:

prepare (validate the request, lock the agent, create the run row) → data + quality gate → train →
validate against the champion → log to MLflow and register a version → app DB records → alias
moves (last, so a crash never half-deploys). The drift baseline is computed in a thread from the end of
training until the app DB records, which write it.

`prepare_retrain` runs once whether the work then runs in this process (`retrain`) or in a job
(`mlops.jobs.submit_retrain` queues the prepared run, its worker calls `execute_retrain`). The run's
audit row ("retrain") is written by `execute_retrain`, the same whoever asked.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from mlops.agents.specs import get_spec
from mlops.agents.training import build_dataset, train_agent, training_options
from mlops.audit import audited
from mlops.data.store import count_bars, load_bars, resolve_symbol
from mlops.db.models import ModelRun
from mlops.errors import DataQualityError, Interrupted, SkippyError, brief
from mlops.insights import note_retrain
from mlops.logs import get_logger
from mlops.pipeline.deployments import deploy_validated, describe_undone, undo_run_moves
from mlops.pipeline.locks import queue_locked_run, start_locked_run
from mlops.pipeline.quality import check_quality
from mlops.pipeline.retrain.gate import validate_against_champion
from mlops.pipeline.retrain.payload import close_mlflow_run, log_and_register, start_mlflow_run
from mlops.pipeline.retrain.records import (
    REPORTED,
    bars_end,
    record_outcome,
    record_quality,
    record_training,
    start_drift_baseline,
)
from mlops.settings import Settings
from mlops.timing import PhaseTimer

__all__ = [
    "PreparedRetrain",
    "RetrainResult",
    "execute_retrain",
    "prepare_retrain",
    "retrain",
    "validate_against_champion",
]

log = get_logger(__name__)


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


@dataclass(frozen=True)
class PreparedRetrain:
    """A validated request with its run row: queued (for a job) or already running (inline)."""

    model_run_id: int
    agent: str
    symbol: str
    hyperparameters: dict[str, Any]  # the overrides asked for (the run row holds the full set)
    trigger: str
    actor: str
    queued: bool = False  # True: the run row waits for a job's worker to start it

    def audit_parameters(self) -> dict[str, Any]:
        return {
            "agent": self.agent,
            "symbol": self.symbol,
            "hyperparameters": self.hyperparameters,
            "trigger": self.trigger,
            "model_run_id": self.model_run_id,
        }


def prepare_retrain(
    settings: Settings,
    *,
    actor: str,
    agent: str,
    symbol: str | None = None,
    hyperparameters: dict[str, Any] | None = None,
    trigger: str = "manual",
    queued: bool = False,
) -> PreparedRetrain:
    """Validate a retrain request and take the agent's lock with its run row — queued for a job, or
    running in this process. Raises (and writes nothing) on an unknown agent, a bad hyperparameter, a
    symbol with no bars, a tracking store this app DB does not belong to, or a retrain of the agent
    already queued or running (ConflictError naming it)."""
    spec = get_spec(agent)
    hp = spec.hyperparameters(hyperparameters)
    symbol = resolve_symbol(settings.app_db_url, symbol, settings.symbol)
    if count_bars(settings.app_db_url, symbol) == 0:
        load_bars(settings.app_db_url, symbol)  # raises NotFoundError naming the symbols that have bars
    from tracking.client import get_client

    get_client(settings)  # a tracking URI this app DB does not belong to stops here, before any row is written
    run = ModelRun(
        agent_type=agent, trigger=trigger, requested_by=actor, symbol=symbol, hyperparameters=hp.model_dump()
    )
    run_id = queue_locked_run(settings, run) if queued else start_locked_run(settings, run)
    return PreparedRetrain(run_id, agent, symbol, dict(hyperparameters or {}), trigger, actor, queued)


def retrain(
    settings: Settings,
    *,
    actor: str,
    agent: str,
    trigger: str = "manual",
    symbol: str | None = None,
    hyperparameters: dict[str, Any] | None = None,
) -> RetrainResult:
    """Retrain `agent` in this process and deploy the candidate if it validates (prepare + execute).
    A request refused before the run exists is audited with its error and raised."""
    parameters = {"agent": agent, "symbol": symbol, "hyperparameters": hyperparameters or {}, "trigger": trigger}
    try:
        prepared = prepare_retrain(
            settings, actor=actor, agent=agent, symbol=symbol, hyperparameters=hyperparameters, trigger=trigger
        )
    except SkippyError:
        with audited(settings, actor=actor, action="retrain", parameters=parameters):
            raise
    return execute_retrain(settings, prepared)


def execute_retrain(settings: Settings, prepared: PreparedRetrain) -> RetrainResult:
    """Run a prepared retrain to its end and write its audit row. Bad data or a failure never raises:
    the run ends `rejected` (data/validation) or `failed` (error). An interruption (job cancelled or
    timed out) ends the run `failed` and is re-raised for the job to record. However it ends, the run's
    insight is recorded last (its template at once; the generated text later, in the background)."""
    try:
        with audited(
            settings, actor=prepared.actor, action="retrain", parameters=prepared.audit_parameters()
        ) as audit:
            result = _execute(settings, prepared)
            audit.update(
                model_run_id=result.model_run_id,
                status=result.status,
                deployment_status=result.deployment_status,
                model_version=result.model_version,
                reason=brief(result.reason, 500),
            )
    finally:
        note_retrain(settings, prepared.model_run_id)  # cheap DB writes; never raises
    return result


def _execute(settings: Settings, prepared: PreparedRetrain) -> RetrainResult:
    spec = get_spec(prepared.agent)
    hp = spec.hyperparameters(prepared.hyperparameters)
    run_id, symbol = prepared.model_run_id, prepared.symbol
    mlflow_run_id: str | None = None
    timer = PhaseTimer()
    try:
        if prepared.queued:  # a job's run: this worker process takes over the lock its submission took
            start_locked_run(settings, ModelRun(agent_type=spec.name), queued_id=run_id)
        log.info("retrain started", agent_type=spec.name, model_run_id=run_id, symbol=symbol, trigger=prepared.trigger)
        with timer.phase("data"):
            bars = load_bars(settings.app_db_url, symbol)
            data = build_dataset(bars, spec, hp, fill=settings.execution_fill)
            quality = check_quality(data, settings)
            record_quality(settings, run_id, spec.name, symbol, data, quality, bars_end(bars))
        if not quality.passed:
            raise DataQualityError("data quality gate failed: " + "; ".join(quality.problems))
        with timer.phase("mlflow_logging"):
            mlflow_run_id = start_mlflow_run(settings, spec, run_id, symbol, prepared.trigger, prepared.actor, hp)
        with timer.phase("training"):
            trained = train_agent(spec, hp, data, **training_options(settings, symbol))
        baseline = start_drift_baseline(settings, trained, data)  # in a thread, until record_training
        with timer.phase("validation"):
            decision = validate_against_champion(settings, spec, trained, data, bars=bars, symbol=symbol)
        version = log_and_register(
            settings, spec, trained, data, quality, decision, mlflow_run_id, run_id, timer, symbol
        )
        with timer.phase("app_db"):
            record_training(settings, run_id, spec.name, version, trained, data, symbol, decision, baseline)
        summary = {k: trained.test[k] for k in REPORTED}
        with timer.phase("deployment"):
            deployment = "rejected"
            if decision.passed:
                deployment = deploy_validated(
                    settings,
                    agent=spec.name,
                    version=version,
                    actor=prepared.actor,
                    reason=decision.reason,
                    metrics=summary,
                    model_run_id=run_id,
                )
            status = "succeeded" if decision.passed else "rejected"
            record_outcome(
                settings,
                run_id,
                spec.name,
                status=status,
                deployment=deployment,
                error=None if decision.passed else decision.reason,
                validation=decision.record(),
            )
            close_mlflow_run(
                settings, mlflow_run_id, {"skippy.status": status, "skippy.deployment_status": deployment}, "FINISHED"
            )
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
            timings=timer.seconds,
            validation=decision.record(),
        )
    except DataQualityError as exc:
        return _unsuccessful(settings, run_id, spec.name, "rejected", str(exc), mlflow_run_id)
    except SkippyError as exc:
        return _unsuccessful(settings, run_id, spec.name, "failed", str(exc), mlflow_run_id)
    except Interrupted as exc:
        _unsuccessful(settings, run_id, spec.name, "failed", str(exc), mlflow_run_id)
        raise
    except Exception as exc:
        log.exception("retrain crashed", agent_type=spec.name, model_run_id=run_id)
        return _unsuccessful(
            settings, run_id, spec.name, "failed", brief(f"{type(exc).__name__}: {exc}"), mlflow_run_id
        )


def _put_back_aliases(settings: Settings, run_id: int, reason: str) -> str:
    """Undo the failed run's alias moves; what to add to its error (nothing when it moved none)."""
    try:
        undone = undo_run_moves(settings, run_id, actor=f"run {run_id}", reason=f"run {run_id} failed: {brief(reason)}")
    except Exception as exc:  # MLflow unreachable: the run still ends failed, its error says what is left
        log.exception("could not put back the aliases of a failed run", model_run_id=run_id)
        return f"; its alias moves could not be checked or put back ({type(exc).__name__}: {brief(str(exc), 300)})"
    return f"; aliases put back: {describe_undone(undone)}" if undone else ""


def _unsuccessful(
    settings: Settings, run_id: int, agent: str, status: str, reason: str, mlflow_run_id: str | None
) -> RetrainResult:
    deployment = "rejected" if status == "rejected" else None
    if status == "failed":  # it may have failed between two alias moves: put back what it moved
        reason += _put_back_aliases(settings, run_id, reason)
    version = record_outcome(settings, run_id, agent, status=status, deployment=deployment, error=reason)
    if mlflow_run_id:
        close_mlflow_run(
            settings,
            mlflow_run_id,
            {"skippy.status": status, "skippy.error": reason[:5000]},
            "FAILED" if status == "failed" else "FINISHED",
        )
    log.warning("retrain " + status, agent_type=agent, model_run_id=run_id, deployment_status=status, reason=reason)
    return RetrainResult(run_id, agent, status, deployment, version, mlflow_run_id, {}, reason)
