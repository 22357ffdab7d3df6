"""Job records: submit, read, cancel, and reap the jobs whose worker process died.

A retrain job carries a unique `active_key` ("retrain:<agent>") while queued or running: a second
submission for the same agent fails on that constraint, atomically across API replicas → 409."""

from __future__ import annotations

import os
import signal
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.exc import IntegrityError

from mlops.agents.specs import get_spec
from mlops.db import session_scope
from mlops.db.models import AgentLock, Job, ModelRun
from mlops.errors import ConflictError, InvalidRequestError, NotFoundError
from mlops.flags import require
from mlops.logs import get_logger
from mlops.pipeline.locks import HOSTNAME, process_alive
from mlops.settings import Settings

log = get_logger(__name__)
KINDS = ("retrain", "sweep", "drift")
ACTIVE = ("queued", "running")
TERMINAL = ("succeeded", "rejected", "failed", "cancelled")
FOREIGN_GRACE_SECONDS = 300.0


@dataclass(frozen=True)
class JobRecord:
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
    return JobRecord(
        row.id,
        row.kind,
        row.agent_type,
        row.status,
        dict(row.parameters or {}),
        dict(row.result or {}),
        row.error,
        row.requested_by,
        row.model_run_id,
        row.sweep_id,
        row.timeout_seconds,
        row.pid,
        row.hostname,
        row.cancel_requested,
        row.created_at,
        row.started_at,
        row.finished_at,
    )


def _active_holder(settings: Settings, key: str) -> str:
    with session_scope(settings.app_db_url) as session:
        job = session.scalars(select(Job).where(Job.active_key == key)).first()
        return f"job {job.id} ({job.status})" if job else "another job"


def submit_retrain(
    settings: Settings,
    *,
    agent: str,
    requested_by: str,
    symbol: str | None = None,
    hyperparameters: dict[str, Any] | None = None,
    trigger: str = "api",
) -> JobRecord:
    """Queue a retrain: a `queued` model run and its job, in one transaction. ConflictError if the
    agent is already retraining (a queued/running job, or a CLI retrain holding the agent's lock)."""
    from mlops.data.store import count_bars, resolve_symbol

    spec = get_spec(agent)
    hp = spec.hyperparameters(hyperparameters)
    symbol = resolve_symbol(settings.app_db_url, symbol, settings.symbol)
    if count_bars(settings.app_db_url, symbol) == 0:
        raise NotFoundError(f"no market bars for symbol {symbol!r}; import or generate some first")
    key = f"retrain:{agent}"
    try:
        with session_scope(settings.app_db_url) as session:
            lock = session.get(AgentLock, agent)
            if lock is not None:
                raise ConflictError(
                    f"a retrain of {agent} is already running: run {lock.model_run_id} (pid {lock.pid} on "
                    f"{lock.hostname})"
                )
            run = ModelRun(
                agent_type=agent,
                status="queued",
                trigger=trigger,
                requested_by=requested_by,
                symbol=symbol,
                hyperparameters=hp.model_dump(),
            )
            session.add(run)
            session.flush()
            job = Job(
                kind="retrain",
                agent_type=agent,
                active_key=key,
                parameters={"symbol": symbol, "hyperparameters": hyperparameters or {}, "trigger": trigger},
                requested_by=requested_by,
                model_run_id=run.id,
                timeout_seconds=settings.job_timeout_seconds,
                result={},
            )
            session.add(job)
            session.flush()
            return _job(job)
    except IntegrityError:
        raise ConflictError(
            f"a retrain of {agent} is already queued or running: {_active_holder(settings, key)}"
        ) from None


def submit_sweep(
    settings: Settings,
    *,
    agent: str,
    grid: dict[str, Any] | None,
    name: str | None,
    requested_by: str,
    symbol: str | None = None,
    objective: str = "sharpe_ratio",
    direction: str | None = None,
    workers: int | None = None,
    time_budget_seconds: float | None = None,
) -> JobRecord:
    """Create the sweep now (so a bad grid fails the request) and queue the job that runs it."""
    from sweeps.runner import create_sweep

    if workers is not None and workers < 1:
        raise InvalidRequestError(f"workers must be >= 1, got {workers}")
    sweep = create_sweep(
        settings,
        agent=agent,
        grid=grid,
        name=name,
        symbol=symbol,
        objective=objective,
        direction=direction,
        requested_by=requested_by,
    )
    return _insert(
        settings,
        Job(
            kind="sweep",
            agent_type=agent,
            parameters={"workers": workers, "time_budget_seconds": time_budget_seconds},
            requested_by=requested_by,
            sweep_id=sweep.id,
            timeout_seconds=settings.job_timeout_seconds,
            result={},
        ),
    )


def submit_drift(
    settings: Settings, *, agent: str | None, requested_by: str, window_bars: int | None = None
) -> JobRecord:
    require(settings, "mlops_drift_detection")
    if agent is not None:
        get_spec(agent)
    if window_bars is not None and window_bars < 1:
        raise InvalidRequestError(f"window_bars must be >= 1, got {window_bars}")
    return _insert(
        settings,
        Job(
            kind="drift",
            agent_type=agent,
            parameters={"window_bars": window_bars},
            requested_by=requested_by,
            timeout_seconds=settings.job_timeout_seconds,
            result={},
        ),
    )


def _insert(settings: Settings, job: Job) -> JobRecord:
    with session_scope(settings.app_db_url) as session:
        session.add(job)
        session.flush()
        return _job(job)


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
    """Move an active job to a terminal status (once: a later writer loses) and release its key.
    The queued model run of a retrain that never started ends failed with the same error."""
    with session_scope(settings.app_db_url) as session:
        values: dict[str, Any] = {"status": status, "active_key": None, "finished_at": datetime.now(UTC)}
        if result is not None:
            values["result"] = result
        if error is not None:
            values["error"] = error
        moved = session.execute(update(Job).where(Job.id == job_id, Job.status.in_(only_from)).values(**values))
        if not moved.rowcount:  # type: ignore[attr-defined]
            return False
        run_id = session.scalar(select(Job.model_run_id).where(Job.id == job_id))
        if run_id is not None and status != "succeeded":
            session.execute(
                update(ModelRun)
                .where(ModelRun.id == run_id, ModelRun.status == "queued")
                .values(status="failed", error=error or status, finished_at=datetime.now(UTC))
            )
    log.info("job finished", job_id=job_id, deployment_status=status, error=error)
    return True


def cancel_job(settings: Settings, job_id: int, *, actor: str) -> JobRecord:
    """Cancel a queued job at once; ask a running one to stop (its worker gets SIGTERM and ends its
    retrain/sweep/drift cleanly: run failed, lock released, sweep stopped and resumable)."""
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
    from sweeps.runner import finalize

    finalize(settings, sweep_id, stop_reason=f"{reason}; `skippy ai sweep-worker` resumes it")


def reap_dead_jobs(settings: Settings) -> list[int]:
    """Fail the running jobs whose worker process died: on this host, its pid is gone; on another
    host (or a container that was replaced), it is past its timeout plus a grace period, by which time
    its own alarm has stopped it. Called at every start and by the dispatcher."""
    with session_scope(settings.app_db_url) as session:
        rows = session.execute(
            select(Job.id, Job.pid, Job.hostname, Job.started_at, Job.timeout_seconds, Job.model_run_id).where(
                Job.status == "running"
            )
        ).all()
    now = datetime.now(UTC)
    dead: list[tuple[int, int | None, str | None, int | None]] = []
    for job_id, pid, hostname, started_at, timeout, run_id in rows:
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

        # First their model runs and agent locks, then the jobs: whoever sees a job failed may retry at once.
        reap_dead_runs(settings)  # this host's runs (and their MLflow runs)
        with session_scope(settings.app_db_url) as session:  # and those of a host that is gone
            for _, pid, hostname, run_id in dead:
                if run_id is None:
                    continue
                session.execute(
                    update(ModelRun)
                    .where(ModelRun.id == run_id, ModelRun.status.in_(ACTIVE))
                    .values(status="failed", error=f"its job's worker {pid} on {hostname} died", finished_at=now)
                )
                session.execute(delete(AgentLock).where(AgentLock.model_run_id == run_id))
    reaped = []
    for job_id, pid, hostname, _ in dead:
        if finish_job(settings, job_id, "failed", error=f"worker process {pid} on {hostname} died before finishing"):
            reaped.append(job_id)
            log.warning("reaped dead job", job_id=job_id, deployment_status="failed")
    return reaped
