"""What a job of each kind runs: the same service function the inline path calls, on the work its
`submit_*` prepared. Each returns a typed `Outcome`; nothing is inferred from message text."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, is_dataclass
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel

from mlops.errors import SkippyError
from mlops.jobs.service import JobRecord
from mlops.settings import Settings

Status = Literal["succeeded", "rejected", "failed", "cancelled"]


@dataclass(frozen=True)
class Outcome:
    status: Status
    result: dict[str, Any] = field(default_factory=dict)
    error: str | None = None


def _iso(value: Any) -> str:
    return value.isoformat() if isinstance(value, datetime) else str(value)


def _jsonable(value: Any) -> Any:
    """A result record (dataclass or pydantic model) as JSON-safe data for the job's `result` column."""
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
    from mlops.pipeline.drift import DriftCheckParams, execute_drift_check

    params = DriftCheckParams(job.agent_type, job.parameters["window_bars"])  # validated when it was queued
    checks = execute_drift_check(settings, params, actor=job.requested_by)
    return Outcome("succeeded", {"checks": [_jsonable(c) for c in checks]})


RUNNERS: dict[str, Callable[[Settings, JobRecord], Outcome]] = {
    "retrain": run_retrain,
    "sweep": run_sweep,
    "drift": run_drift,
}


def run(settings: Settings, job: JobRecord) -> Outcome:
    runner = RUNNERS.get(job.kind)
    if runner is None:
        raise SkippyError(f"unknown job kind {job.kind!r}; known: {', '.join(RUNNERS)}")
    return runner(settings, job)
