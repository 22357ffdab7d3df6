"""Job records: queue, read, cancel, and reap the jobs whose worker process died.

Queueing is generic and thin: each `submit_*` runs its use case's `prepare` — every validation, and
the records the work needs (a retrain's queued run and its agent's lock, a sweep's rows and study) —
exactly as the inline path does, then stores a job the dispatcher hands to a worker
(mlops/jobs/kinds.py runs it). A retrain's exclusivity is its agent's lock, nothing else."""

from __future__ import annotations

import os
import signal
from collections.abc import Collection
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict
from sqlalchemy import delete, func, select, update

from mlops.audit import audited
from mlops.db import session_scope
from mlops.db.models import AgentLock, Job, ModelRun
from mlops.errors import ConflictError, NotFoundError
from mlops.logs import get_logger
from mlops.processes import HOSTNAME, process_alive
from mlops.settings import Settings

log = get_logger(__name__)
KINDS = ("retrain", "sweep", "drift", "validation", "watch")
ACTIVE = ("queued", "running")
TERMINAL = ("succeeded", "rejected", "failed", "cancelled")
FOREIGN_GRACE_SECONDS = 300.0


class JobRecord(BaseModel):
    model_config = ConfigDict(from_attributes=True, frozen=True)

    id: int
    kind: str
    agent_type: str | None
    status: str
    parameters: dict[str, Any]
    result: dict[str, Any]
    error: str | None
    requested_by: str
    model_run_id: int | None
    sweep_id: int | None
    timeout_seconds: float
    pid: int | None
    hostname: str | None
    cancel_requested: bool
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None


def _job(row: Job) -> JobRecord:
    return JobRecord.model_validate(row)


def enqueue(
    settings: Settings,
    *,
    kind: str,
    actor: str,
    agent: str | None,
    parameters: dict[str, Any],
    model_run_id: int | None = None,
    sweep_id: int | None = None,
) -> JobRecord:
    """Store a prepared piece of work as a queued job, audited as "<kind> queued" (the work writes its
    own row when it ends, the same row as when it runs inline)."""
    with audited(settings, actor=actor, action=f"{kind} queued", parameters=parameters | {"agent": agent}) as audit:
        with session_scope(settings.app_db_url) as session:
            job = Job(
                kind=kind,
                agent_type=agent,
                parameters=parameters,
                requested_by=actor,
                model_run_id=model_run_id,
                sweep_id=sweep_id,
                timeout_seconds=settings.job_timeout_seconds,
                result={},
            )
            session.add(job)
            session.flush()
            record = _job(job)
        audit.update(job_id=record.id, model_run_id=model_run_id, sweep_id=sweep_id)
    return record


def submit_retrain(
    settings: Settings,
    *,
    agent: str,
    actor: str,
    symbol: str | None = None,
    hyperparameters: dict[str, Any] | None = None,
    trigger: str = "api",
) -> JobRecord:
    """Queue a retrain: prepared (validated, its run queued with the agent's lock) as an inline retrain
    is. ConflictError if the agent already has a retrain queued or running, from any caller."""
    from mlops.pipeline.retrain import prepare_retrain

    prepared = prepare_retrain(
        settings,
        actor=actor,
        agent=agent,
        symbol=symbol,
        hyperparameters=hyperparameters,
        trigger=trigger,
        queued=True,
    )
    try:
        return enqueue(
            settings,
            kind="retrain",
            actor=actor,
            agent=agent,
            parameters={"symbol": prepared.symbol, "hyperparameters": prepared.hyperparameters, "trigger": trigger},
            model_run_id=prepared.model_run_id,
        )
    except BaseException:
        _abandon_run(settings, prepared.model_run_id, agent, "its job could not be queued")
        raise


def _abandon_run(settings: Settings, run_id: int, agent: str, error: str) -> None:
    """A queued run whose job never started: failed, and its agent's lock released."""
    with session_scope(settings.app_db_url) as session:
        session.execute(
            update(ModelRun)
            .where(ModelRun.id == run_id, ModelRun.status == "queued")
            .values(status="failed", error=error, finished_at=datetime.now(UTC))
        )
        session.execute(delete(AgentLock).where(AgentLock.agent_type == agent, AgentLock.model_run_id == run_id))


def submit_sweep(
    settings: Settings,
    *,
    agent: str,
    grid: dict[str, Any] | None,
    name: str | None,
    actor: str,
    symbol: str | None = None,
    objective: str = "sharpe_ratio",
    direction: str | None = None,
    workers: int | None = None,
    time_budget_seconds: float | None = None,
) -> JobRecord:
    """Prepare the sweep now (so a bad grid fails the request) and queue the job that runs it."""
    from mlops.errors import InvalidRequestError
    from mlops.pipeline.sweeps import prepare_sweep

    if workers is not None and workers < 1:
        raise InvalidRequestError(f"workers must be >= 1, got {workers}")
    sweep = prepare_sweep(
        settings,
        actor=actor,
        agent=agent,
        grid=grid,
        name=name,
        symbol=symbol,
        objective=objective,
        direction=direction,
    )
    return enqueue(
        settings,
        kind="sweep",
        actor=actor,
        agent=agent,
        parameters={"workers": workers, "time_budget_seconds": time_budget_seconds},
        sweep_id=sweep.id,
    )


def submit_drift(settings: Settings, *, agent: str | None, actor: str, window_bars: int | None = None) -> JobRecord:
    """Validate the drift check now (flag, agent, window) as an inline check does, and queue it."""
    from mlops.pipeline.drift import prepare_drift_check

    params = prepare_drift_check(settings, agent=agent, window_bars=window_bars)
    parameters = {"window_bars": params.window_bars}
    return enqueue(settings, kind="drift", actor=actor, agent=agent, parameters=parameters)


def submit_validation(settings: Settings, *, agent: str | None, actor: str) -> JobRecord:
    """Queue the weekly validation of `agent`'s champion (None: of every agent that has one when it runs).
    An unknown agent is refused now, not as a failed job."""
    return _submit_per_champion(settings, kind="validation", agent=agent, actor=actor)


def submit_watch(settings: Settings, *, agent: str | None, actor: str) -> JobRecord:
    """Queue the champion watch (the auto-rollback test) of `agent` (None: every agent with a champion)."""
    return _submit_per_champion(settings, kind="watch", agent=agent, actor=actor)


def _submit_per_champion(settings: Settings, *, kind: str, agent: str | None, actor: str) -> JobRecord:
    from mlops.agents.specs import get_spec

    if agent is not None:
        get_spec(agent)  # UnknownAgentError naming the known agents
    return enqueue(settings, kind=kind, actor=actor, agent=agent, parameters={})


def get_job(settings: Settings, job_id: int) -> JobRecord:
    with session_scope(settings.app_db_url) as session:
        row = session.get(Job, job_id)
        if row is None:
            raise NotFoundError(f"no job with id {job_id}")
        return _job(row)


def list_jobs(
    settings: Settings,
    *,
    kind: str | None = None,
    status: str | None = None,
    agent: str | None = None,
    limit: int = 50,
    offset: int = 0,
) -> list[JobRecord]:
    query = select(Job).order_by(Job.id.desc()).limit(limit).offset(offset)
    if kind:
        query = query.where(Job.kind == kind)
    if status:
        query = query.where(Job.status == status)
    if agent:
        query = query.where(Job.agent_type == agent)
    with session_scope(settings.app_db_url) as session:
        return [_job(r) for r in session.scalars(query)]


def count_running(settings: Settings) -> int:
    with session_scope(settings.app_db_url) as session:
        return int(session.scalar(select(func.count()).select_from(Job).where(Job.status == "running")) or 0)


def finish_job(
    settings: Settings,
    job_id: int,
    status: str,
    *,
    result: dict[str, Any] | None = None,
    error: str | None = None,
    only_from: tuple[str, ...] = ACTIVE,
) -> bool:
    """Move an active job to a terminal status (once: a later writer loses). The queued model run of a
    retrain that never started ends failed with the same error, and its agent's lock is released."""
    with session_scope(settings.app_db_url) as session:
        values: dict[str, Any] = {"status": status, "finished_at": datetime.now(UTC)}
        if result is not None:
            values["result"] = result
        if error is not None:
            values["error"] = error
        moved = session.execute(update(Job).where(Job.id == job_id, Job.status.in_(only_from)).values(**values))
        if not moved.rowcount:  # type: ignore[attr-defined]
            return False
        run_id = session.scalar(select(Job.model_run_id).where(Job.id == job_id))
    if run_id is not None and status != "succeeded":
        with session_scope(settings.app_db_url) as session:
            agent = session.scalar(select(ModelRun.agent_type).where(ModelRun.id == run_id))
        if agent is not None:
            _abandon_run(settings, run_id, agent, error or status)
    log.info("job finished", job_id=job_id, deployment_status=status, error=error)
    from mlops.jobs.reactions import job_ended

    # Here, after the conditional update: every end of a job passes (worker, dispatcher, reaper, cancel)
    # and only the one writer that moved it gets here, so a job's end reacts once.
    job_ended(settings, job_id)
    return True


def cancel_job(settings: Settings, job_id: int, *, actor: str) -> JobRecord:
    """Cancel a queued job at once; ask a running one to stop (its worker gets SIGTERM and ends its
    retrain/sweep/drift cleanly: run failed, lock released, sweep stopped and resumable)."""
    with audited(settings, actor=actor, action="job cancel", parameters={"job_id": job_id}) as audit:
        job = _cancel(settings, job_id, actor)
        audit.update(kind=job.kind, status=job.status, cancel_requested=job.cancel_requested)
    return job


def _cancel(settings: Settings, job_id: int, actor: str) -> JobRecord:
    job = get_job(settings, job_id)
    if job.status in TERMINAL:
        raise ConflictError(f"job {job_id} has already ended ({job.status})")
    if job.status == "queued" and finish_job(
        settings, job_id, "cancelled", error=f"cancelled by {actor} before it started", only_from=("queued",)
    ):
        stop_sweep_of(settings, job.sweep_id, "cancelled before it started")
        return get_job(settings, job_id)
    with session_scope(settings.app_db_url) as session:
        session.execute(update(Job).where(Job.id == job_id).values(cancel_requested=True))
    job = get_job(settings, job_id)
    if job.hostname == HOSTNAME and job.pid and process_alive(job.pid):
        os.kill(job.pid, signal.SIGTERM)
    return job


def stop_sweep_of(settings: Settings, sweep_id: int | None, reason: str) -> None:
    """Close the sweep of a job that ended without closing it: `stopped`, resumable, parent run ended."""
    if sweep_id is None:
        return
    from mlops.pipeline.sweeps import stop_sweep

    stop_sweep(settings, sweep_id, f"{reason}; `skippy ai sweep-worker` resumes it")


def reap_dead_jobs(settings: Settings, *, collected_elsewhere: Collection[int] = ()) -> list[int]:
    """Fail the running jobs whose worker process died: on this host, its pid is gone; on another
    host (or a container that was replaced), it is past its timeout plus a grace period, by which time
    its own alarm has stopped it. Called at every start and by the dispatcher, which collects its own
    children itself (`collected_elsewhere`: their exit status says how they ended, e.g. cancelled)."""
    with session_scope(settings.app_db_url) as session:
        rows = session.execute(
            select(Job.id, Job.pid, Job.hostname, Job.started_at, Job.timeout_seconds, Job.model_run_id).where(
                Job.status == "running"
            )
        ).all()
    now = datetime.now(UTC)
    dead: list[tuple[int, int | None, str | None, int | None]] = []
    for job_id, pid, hostname, started_at, timeout, run_id in rows:
        if job_id in collected_elsewhere:
            continue
        age = (now - started_at).total_seconds() if started_at is not None else float("inf")
        if hostname != HOSTNAME:
            if age < timeout + FOREIGN_GRACE_SECONDS:
                continue
        elif pid is None:
            if age < 60:  # claimed but not spawned yet: give the claimer a minute
                continue
        elif process_alive(pid):
            continue
        dead.append((job_id, pid, hostname, run_id))
    if dead:
        from mlops.pipeline.locks import reap_dead_runs

        # First their model runs (aliases put back, MLflow runs ended) and agent locks, then the jobs: whoever
        # sees a job failed may retry at once. This host's runs, and those of a host that is gone.
        known = {run_id: f"its job's worker {pid} on {hostname} died" for _, pid, hostname, run_id in dead if run_id}
        reap_dead_runs(settings, dead_runs=known)
    reaped = []
    for job_id, pid, hostname, _ in dead:
        if finish_job(settings, job_id, "failed", error=f"worker process {pid} on {hostname} died before finishing"):
            reaped.append(job_id)
            log.warning("reaped dead job", job_id=job_id, deployment_status="failed")
    return reaped


def submit_register_best(settings: Settings, sweep_id: int, *, actor: str) -> JobRecord:
    """Queue the retrain of sweep `sweep_id`'s best configuration (trigger "sweep", the sweep's symbol):
    the job-queue twin of `register_best`, validated by the same gate as any candidate, in a worker process
    so that the caller (the dashboard) never waits for the training. Refused, naming why, while the sweep
    still runs (its best is not settled: it is registered once the sweep has finished or was stopped) and
    when no trial completed. Audited as "sweep register-best" (the sweep it came from), with the job."""
    from mlops.pipeline.sweeps.service import settled_best

    with audited(settings, actor=actor, action="sweep register-best", parameters={"sweep_id": sweep_id}) as audit:
        record = settled_best(settings, sweep_id)
        job = submit_retrain(
            settings,
            agent=record.agent_type,
            actor=actor,
            symbol=record.symbol,
            hyperparameters=dict(record.best_params or {}),  # settled_best: never empty
            trigger="sweep",
        )
        audit.update(
            agent=record.agent_type,
            best_trial_number=record.best_trial_number,
            hyperparameters=record.best_params,
            job_id=job.id,
            model_run_id=job.model_run_id,
        )
    return job
