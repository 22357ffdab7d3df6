"""The per-agent retrain lock and the reaper that cleans up after killed processes.

The lock is a row in `agent_locks` keyed by agent: inserting it is atomic on SQLite and Postgres, so
a second retrain of the same agent is refused, never queued twice. A process killed with -9 leaves
its lock and a `running` model run behind; `reap_dead_runs` (called at every start, and by the jobs
reaper for the runs of dead workers) puts back every alias the run moved (alias moves are a retrain's
last step, yet a process can die between two of them, or between MLflow and the history row), marks the
run `failed` saying what it put back, ends its MLflow run as FAILED — found by its `skippy.model_run_id`
tag when the process died before recording its id — and frees the lock.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta

from sqlalchemy import and_, delete, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from mlops.db import session_scope
from mlops.db.models import AgentLock, Job, ModelRun
from mlops.errors import ConflictError
from mlops.logs import get_logger
from mlops.processes import HOSTNAME, process_alive
from mlops.settings import Settings

log = get_logger(__name__)
ACTIVE = ("queued", "running")


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


def reap_dead_runs(settings: Settings, *, dead_runs: Mapping[int, str] | None = None) -> list[int]:
    """Fail the runs whose process died, put back their alias moves, end their MLflow runs and free their
    locks; returns the reaped run ids. `dead_runs`: runs known dead whatever their host (a dead job's, on
    a machine that is gone), with what to say of them."""
    stale = timedelta(seconds=settings.lock_stale_seconds)
    dead_runs = dict(dead_runs or {})
    # Queued runs belong to API jobs: the jobs reaper ends them with their job (through `dead_runs`).
    with session_scope(settings.app_db_url) as session:
        candidates = session.execute(
            select(
                ModelRun.id,
                ModelRun.pid,
                ModelRun.hostname,
                ModelRun.started_at,
                ModelRun.created_at,
                ModelRun.mlflow_run_id,
                ModelRun.mlflow_experiment_id,
            ).where(
                or_(ModelRun.status == "running", and_(ModelRun.id.in_(list(dead_runs)), ModelRun.status.in_(ACTIVE)))
            )
        ).all()
    reaped: list[tuple[int, str | None, str | None]] = []
    for run_id, pid, hostname, started_at, created_at, mlflow_run_id, experiment_id in candidates:
        if run_id not in dead_runs:
            if pid == os.getpid() and hostname == HOSTNAME:
                continue
            if not _is_dead(pid, hostname, started_at or created_at, stale):
                continue
        died = dead_runs.get(run_id) or f"process {pid} on {hostname} died before the run finished (killed or crashed)"
        # Aliases first, while the dead run still holds its agent's lock: no retrain can move them meanwhile.
        # Conditional writes: another reaper, or the run itself, may act between our read and our write.
        error = f"{died}; {_put_back_aliases(settings, run_id, died)}"
        with session_scope(settings.app_db_url) as session:
            result = session.execute(
                update(ModelRun)
                .where(ModelRun.id == run_id, ModelRun.status.in_(ACTIVE))
                .values(status="failed", error=error, finished_at=datetime.now(UTC))
            )
            if result.rowcount:  # type: ignore[attr-defined]
                reaped.append((run_id, mlflow_run_id, experiment_id))
    with session_scope(settings.app_db_url) as session:
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
            if run_status not in ACTIVE or _is_dead(pid, hostname, acquired_at, stale):
                session.execute(
                    delete(AgentLock).where(AgentLock.agent_type == agent, AgentLock.model_run_id == run_id)
                )
    for run_id, mlflow_run_id, experiment_id in reaped:
        log.warning("reaped dead run", model_run_id=run_id, deployment_status="failed")
        if mlflow_run_id or experiment_id:
            _fail_mlflow_runs(settings, run_id, mlflow_run_id, experiment_id)
    return [r for r, _, _ in reaped]


def _put_back_aliases(settings: Settings, run_id: int, died: str) -> str:
    """Undo the dead run's alias moves; says what was done, for the run's error."""
    from mlops.pipeline.deployments import describe_undone, undo_run_moves

    try:
        undone = undo_run_moves(settings, run_id, actor="reaper", reason=f"run {run_id} failed: {died}")
    except Exception as exc:  # MLflow unreachable: the run is failed anyway, and the log says what is left
        log.error("could not put back the aliases of a dead run", model_run_id=run_id, error=str(exc)[:500])
        return f"its alias moves could not be checked or put back ({type(exc).__name__}: {str(exc)[:300]})"
    return f"aliases put back: {describe_undone(undone)}" if undone else "no alias was moved"


def _fail_mlflow_runs(settings: Settings, run_id: int, mlflow_run_id: str | None, experiment_id: str | None) -> None:
    """End the dead run's MLflow run as FAILED: the one it recorded, else any RUNNING run of its experiment
    tagged with its id (created by the process, which died before the app DB recorded it)."""
    from tracking.runs import end_run, run_status, running_runs_tagged, set_tags

    try:
        if mlflow_run_id:
            orphans = [mlflow_run_id] if run_status(settings, mlflow_run_id) == "RUNNING" else []
        else:
            assert experiment_id is not None
            orphans = running_runs_tagged(settings, experiment_id, {"skippy.model_run_id": str(run_id)})
        for orphan in orphans:
            set_tags(settings, orphan, {"skippy.status": "failed", "skippy.error": "process died"})
            end_run(settings, orphan, "FAILED")
    except Exception as exc:  # the app DB record is what matters; MLflow may be unreachable
        log.warning(
            "could not mark MLflow run failed", model_run_id=run_id, mlflow_run_id=mlflow_run_id, error=str(exc)
        )
