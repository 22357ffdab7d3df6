"""What a job of each kind runs: the same service function the inline path calls, on the work its
`submit_*` prepared. Each returns a typed `Outcome`; nothing is inferred from message text."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, is_dataclass
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel

from mlops.errors import SkippyError, brief
from mlops.jobs.service import JobRecord
from mlops.logs import get_logger
from mlops.settings import Settings

log = get_logger(__name__)

Status = Literal["succeeded", "rejected", "failed", "cancelled"]


@dataclass(frozen=True)
class Outcome:
    status: Status
    result: dict[str, Any] = field(default_factory=dict)
    error: str | None = None


def _iso(value: Any) -> str:
    return value.isoformat() if isinstance(value, datetime) else str(value)


def _jsonable(value: Any) -> Any:
    """A result record (dataclass or pydantic model, or a list of them) as JSON-safe data for the job's
    `result` column."""
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    if isinstance(value, BaseModel):
        value = value.model_dump(mode="json")
    elif is_dataclass(value) and not isinstance(value, type):
        value = asdict(value)
    return json.loads(json.dumps(value, default=_iso))


def run_retrain(settings: Settings, job: JobRecord) -> Outcome:
    from mlops.pipeline.retrain import PreparedRetrain, execute_retrain

    assert job.agent_type is not None and job.model_run_id is not None
    params = job.parameters
    prepared = PreparedRetrain(
        model_run_id=job.model_run_id,
        agent=job.agent_type,
        symbol=params["symbol"],
        hyperparameters=params.get("hyperparameters") or {},
        trigger=params.get("trigger", "api"),
        actor=job.requested_by,
        queued=True,
    )
    result = execute_retrain(settings, prepared)
    status: Status = result.status if result.status in ("succeeded", "rejected") else "failed"  # type: ignore[assignment]
    return Outcome(status, _jsonable(result), None if status == "succeeded" else result.reason)


def run_sweep(settings: Settings, job: JobRecord) -> Outcome:
    from mlops.pipeline.sweeps import execute_sweep

    assert job.sweep_id is not None
    record = execute_sweep(
        settings,
        job.sweep_id,
        actor=job.requested_by,
        workers=job.parameters.get("workers"),
        time_budget_seconds=job.parameters.get("time_budget_seconds"),
    )
    result = _jsonable(record)
    if record.status == "completed":
        return Outcome("succeeded", result)
    return Outcome("failed", result, record.stop_reason or f"sweep ended {record.status}")


def run_drift(settings: Settings, job: JobRecord) -> Outcome:
    """The check, then the loop's reaction to it (reactions.react_to_drift): the result holds both."""
    from mlops.jobs.reactions import react_to_drift
    from mlops.pipeline.drift import DriftCheckParams, execute_drift_check

    params = DriftCheckParams(job.agent_type, job.parameters["window_bars"])  # validated when it was queued
    checks = execute_drift_check(settings, params, actor=job.requested_by)
    reactions = react_to_drift(settings, checks)
    return Outcome("succeeded", {"checks": [_jsonable(c) for c in checks], "reactions": _jsonable(reactions)})


def champion_agents(settings: Settings, agent: str | None) -> list[str]:
    """`agent`, or every agent that has a champion now (from the deployment history: no MLflow)."""
    from mlops.db import session_scope
    from mlops.pipeline.deployments import CHAMPION, current_aliases
    from mlops.settings import AGENTS

    if agent is not None:
        return [agent]
    with session_scope(settings.app_db_url) as session:
        return [a for a in AGENTS if current_aliases(session, a)[CHAMPION] is not None]


def _per_agent(agents: list[str], work: Callable[[str], Any]) -> tuple[list[Any], list[str]]:
    """`work` for each agent, each whatever the others did: (what the agents gave, one error per agent
    that raised). An interruption (cancel, timeout) is not an agent's error: it stops the job."""
    done, errors = [], []
    for agent in agents:
        try:
            done.append(work(agent))
        except SkippyError as exc:
            errors.append(f"{agent}: {exc}")
        except Exception as exc:
            log.exception("job work crashed", agent_type=agent)
            errors.append(f"{agent}: {brief(f'{type(exc).__name__}: {exc}')}")
    return done, errors


def run_validation(settings: Settings, job: JobRecord) -> Outcome:
    """The weekly validation of each champion, then the loop's reaction (reactions.react_to_checkups).
    A degraded or failed champion is a finding of a job that ran (`succeeded`, the alert raised); an
    agent whose validation raised makes the job `failed`, after the other agents were validated."""
    from mlops.jobs.reactions import react_to_checkups
    from mlops.pipeline.checkup import validate_champion

    checkups, errors = _per_agent(
        champion_agents(settings, job.agent_type),
        lambda agent: validate_champion(settings, agent=agent, actor=job.requested_by),
    )
    reactions = react_to_checkups(settings, checkups)
    result = {"checkups": _jsonable(checkups), "reactions": _jsonable(reactions), "errors": errors}
    return Outcome("failed", result, "; ".join(errors)) if errors else Outcome("succeeded", result)


def run_watch(settings: Settings, job: JobRecord) -> Outcome:
    """The champion watch (auto-rollback test) of each champion; a rollback raises its own alert."""
    from mlops.pipeline.watch import watch_champion

    verdicts, errors = _per_agent(
        champion_agents(settings, job.agent_type),
        lambda agent: watch_champion(settings, agent=agent, actor=job.requested_by),
    )
    result = {"verdicts": _jsonable(verdicts), "errors": errors}
    return Outcome("failed", result, "; ".join(errors)) if errors else Outcome("succeeded", result)


RUNNERS: dict[str, Callable[[Settings, JobRecord], Outcome]] = {
    "retrain": run_retrain,
    "sweep": run_sweep,
    "drift": run_drift,
    "validation": run_validation,
    "watch": run_watch,
}


def run(settings: Settings, job: JobRecord) -> Outcome:
    runner = RUNNERS.get(job.kind)
    if runner is None:
        raise SkippyError(f"unknown job kind {job.kind!r}; known: {', '.join(RUNNERS)}")
    return runner(settings, job)
