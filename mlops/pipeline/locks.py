"""The per-agent retrain lock and the reaper that cleans up after killed processes.

The lock is a row in `agent_locks` keyed by agent: inserting it is atomic on SQLite and Postgres, so
a second retrain of the same agent is refused, never queued twice. A process killed with -9 leaves
its lock and a `running` model run behind; `reap_dead_runs` (called at every start) marks such runs
`failed`, ends their MLflow run as FAILED and frees the lock. Alias moves are the last step of a
retrain, so a killed run never leaves a half-deployed model.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from mlops.db import session_scope
from mlops.db.models import AgentLock, Job, ModelRun
from mlops.errors import ConflictError
from mlops.logs import get_logger
from mlops.processes import HOSTNAME, process_alive
from mlops.settings import Settings

log = get_logger(__name__)


def _conflict(session: Session, agent: str) -> str:
    holder = session.get(AgentLock, agent)
    if holder is None:
        who = "another run"
    elif holder.pid is None:
        job = session.scalar(select(Job.id).where(Job.model_run_id == holder.model_run_id))
        who = f"run {holder.model_run_id} (queued as job {job})" if job else f"run {holder.model_run_id} (queued)"
    else:
        who = f"run {holder.model_run_id} (pid {holder.pid} on {holder.hostname})"
    return f"a retrain of {agent} is already queued or running: {who}"


def queue_locked_run(settings: Settings, run: ModelRun) -> int:
    """Insert `run` as queued and take its agent's lock for it, in one transaction; returns the run id.
    The lock has no process yet: the jobs reaper releases it if the job ends before the run starts.
    Raises ConflictError naming the run that holds the lock."""
    run.status = "queued"
    try:
        with session_scope(settings.app_db_url) as session:
            session.add(run)
            session.flush()
            session.add(AgentLock(agent_type=run.agent_type, model_run_id=run.id, pid=None, hostname=None))
            session.flush()
            return run.id
    except IntegrityError:
        with session_scope(settings.app_db_url) as session:
            message = _conflict(session, run.agent_type)
        raise ConflictError(message) from None


def start_locked_run(settings: Settings, run: ModelRun, queued_id: int | None = None) -> int:
    """Insert `run` as running and take its agent's lock in one transaction — or start the queued run
    `queued_id`, whose lock `queue_locked_run` took, by giving the lock this process. Returns the run id.
    Raises ConflictError naming the run that holds the lock; a queued run that lost its lock (reaped
    meanwhile) and finds another holder is marked failed with that message."""
    started = {"status": "running", "pid": os.getpid(), "hostname": HOSTNAME, "started_at": datetime.now(UTC)}
    try:
        with session_scope(settings.app_db_url) as session:
            if queued_id is None:
                for name, value in started.items():
                    setattr(run, name, value)
                session.add(run)
                session.flush()
                session.add(
                    AgentLock(agent_type=run.agent_type, model_run_id=run.id, pid=os.getpid(), hostname=HOSTNAME)
                )
                session.flush()
                return run.id
            moved = session.execute(
                update(ModelRun).where(ModelRun.id == queued_id, ModelRun.status == "queued").values(**started)
            )
            if not moved.rowcount:  # type: ignore[attr-defined]
                raise ConflictError(f"model run {queued_id} is no longer queued (cancelled or reaped)")
            owned = session.execute(
                update(AgentLock)
                .where(AgentLock.agent_type == run.agent_type, AgentLock.model_run_id == queued_id)
                .values(pid=os.getpid(), hostname=HOSTNAME, acquired_at=datetime.now(UTC))
            )
            if not owned.rowcount:  # type: ignore[attr-defined]
                session.add(
                    AgentLock(agent_type=run.agent_type, model_run_id=queued_id, pid=os.getpid(), hostname=HOSTNAME)
                )
                session.flush()
            return queued_id
    except IntegrityError:
        with session_scope(settings.app_db_url) as session:
            message = _conflict(session, run.agent_type)
            if queued_id is not None:
                session.execute(
                    update(ModelRun)
                    .where(ModelRun.id == queued_id, ModelRun.status == "queued")
                    .values(status="failed", error=message, finished_at=datetime.now(UTC))
                )
        raise ConflictError(message) from None


def release_lock(session: Session, agent: str, run_id: int) -> None:
    session.execute(delete(AgentLock).where(AgentLock.agent_type == agent, AgentLock.model_run_id == run_id))


def _is_dead(pid: int | None, hostname: str | None, since: datetime | None, stale_after: timedelta) -> bool:
    if hostname == HOSTNAME and pid is not None:
        return not process_alive(pid)
    # Another machine's process: we cannot see it, so only a lock older than the stale limit is dead.
    if since is None:
        return True
    since = since.replace(tzinfo=UTC) if since.tzinfo is None else since
    return datetime.now(UTC) - since > stale_after


def reap_dead_runs(settings: Settings) -> list[int]:
    """Mark runs whose process died as failed and free their locks; returns the reaped run ids."""
    stale = timedelta(seconds=settings.lock_stale_seconds)
    reaped: list[tuple[int, str | None]] = []
    # Conditional writes: another reaper, or the run itself, may act between our read and our write.
    # Queued runs belong to API jobs: the jobs reaper ends them with their job.
    active = ("running",)
    with session_scope(settings.app_db_url) as session:
        candidates = session.execute(
            select(
                ModelRun.id,
                ModelRun.pid,
                ModelRun.hostname,
                ModelRun.started_at,
                ModelRun.created_at,
                ModelRun.mlflow_run_id,
            ).where(ModelRun.status.in_(active))
        ).all()
        for run_id, pid, hostname, started_at, created_at, mlflow_run_id in candidates:
            if pid == os.getpid() and hostname == HOSTNAME:
                continue
            if not _is_dead(pid, hostname, started_at or created_at, stale):
                continue
            error = f"process {pid} on {hostname} died before the run finished (killed or crashed); no alias was moved"
            result = session.execute(
                update(ModelRun)
                .where(ModelRun.id == run_id, ModelRun.status.in_(active))
                .values(status="failed", error=error, finished_at=datetime.now(UTC))
            )
            if result.rowcount:  # type: ignore[attr-defined]
                reaped.append((run_id, mlflow_run_id))
        for agent, run_id, pid, hostname, acquired_at, run_status in session.execute(
            select(
                AgentLock.agent_type,
                AgentLock.model_run_id,
                AgentLock.pid,
                AgentLock.hostname,
                AgentLock.acquired_at,
                ModelRun.status,
            ).outerjoin(ModelRun, ModelRun.id == AgentLock.model_run_id)
        ).all():
            if pid is None and run_status == "queued":
                continue  # a queued job's lock: the jobs reaper releases it with its job
            if run_status not in ("queued", "running") or _is_dead(pid, hostname, acquired_at, stale):
                session.execute(
                    delete(AgentLock).where(AgentLock.agent_type == agent, AgentLock.model_run_id == run_id)
                )
    for run_id, mlflow_run_id in reaped:
        log.warning("reaped dead run", model_run_id=run_id, deployment_status="failed")
        if mlflow_run_id:
            _fail_mlflow_run(settings, mlflow_run_id)
    return [r for r, _ in reaped]


def _fail_mlflow_run(settings: Settings, mlflow_run_id: str) -> None:
    from tracking.runs import end_run, run_status, set_tags

    try:
        if run_status(settings, mlflow_run_id) == "RUNNING":
            set_tags(settings, mlflow_run_id, {"skippy.status": "failed", "skippy.error": "process died"})
            end_run(settings, mlflow_run_id, "FAILED")
    except Exception as exc:  # the app DB record is what matters; MLflow may be unreachable
        log.warning("could not mark MLflow run failed", mlflow_run_id=mlflow_run_id, error=str(exc))
