"""Executions of scheduled jobs: the claim that makes each run happen once, the end of a run, and the
settling of runs whose queue jobs have ended.

The claim is the INSERT of the execution's row: (job_name, scheduled_for) is unique, so of several
schedulers that fire for one slot exactly one insert lands; the others get the unique violation and
do nothing. An execution that queued work stays `running` until all its jobs have ended; `settle`
then gives it their combined status: any failed (or cancelled) → failed, else any rejected →
rejected, else succeeded, with a short summary of what the jobs found."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError

from mlops.db import session_scope
from mlops.db.models import Job, ScheduledExecution
from mlops.errors import NotFoundError, brief
from mlops.logs import get_logger
from mlops.processes import HOSTNAME, process_alive
from mlops.settings import Settings

log = get_logger(__name__)
ENDED = ("succeeded", "rejected", "failed", "skipped")
JOBS_ENDED = ("succeeded", "rejected", "failed", "cancelled")
# A claimed execution that queued nothing within this long lost its scheduler (crashed between the claim
# and the submission, on another host: on this one a dead pid says so at once).
ORPHAN_AFTER = timedelta(minutes=10)
PER_AGENT_RECORDS = ("checks", "checkups", "verdicts")


class ExecutionRecord(BaseModel):
    model_config = ConfigDict(from_attributes=True, frozen=True)

    id: int
    job_name: str
    scheduled_for: datetime = Field(description="The slot it ran for (UTC): a fire time, or the request time")
    trigger: str = Field(description="schedule | manual")
    requested_by: str
    status: str = Field(description="running | succeeded | rejected | failed | skipped")
    job_ids: list[int] = Field(description="The queue jobs it submitted (GET /api/mlops/jobs/{id})")
    result: dict[str, Any] = Field(description="What it did or found; `summary` says it in words")
    error: str | None
    hostname: str | None
    pid: int | None
    started_at: datetime
    finished_at: datetime | None


def claim(
    settings: Settings, job_name: str, scheduled_for: datetime, *, trigger: str, requested_by: str, now: datetime
) -> ExecutionRecord | None:
    """Insert the execution of `job_name` for `scheduled_for`, running; None when another process has it."""
    try:
        with session_scope(settings.app_db_url) as session:
            row = ScheduledExecution(
                job_name=job_name,
                scheduled_for=scheduled_for,
                trigger=trigger,
                requested_by=requested_by,
                status="running",
                job_ids=[],
                result={},
                hostname=HOSTNAME,
                pid=os.getpid(),
                started_at=now,
            )
            session.add(row)
            session.flush()
            return ExecutionRecord.model_validate(row)
    except IntegrityError:
        return None


def record_jobs(settings: Settings, execution_id: int, job_ids: list[int], result: dict[str, Any]) -> None:
    with session_scope(settings.app_db_url) as session:
        session.execute(
            update(ScheduledExecution)
            .where(ScheduledExecution.id == execution_id)
            .values(job_ids=job_ids, result=result)
        )


def finish(
    settings: Settings,
    execution_id: int,
    status: str,
    *,
    result: dict[str, Any] | None = None,
    error: str | None = None,
    now: datetime | None = None,
) -> bool:
    """End a running execution (once: a later writer loses)."""
    values: dict[str, Any] = {"status": status, "finished_at": now or datetime.now(UTC)}
    if result is not None:
        values["result"] = result
    if error is not None:
        values["error"] = brief(error)
    with session_scope(settings.app_db_url) as session:
        moved = session.execute(
            update(ScheduledExecution)
            .where(ScheduledExecution.id == execution_id, ScheduledExecution.status == "running")
            .values(**values)
        )
    return bool(moved.rowcount)  # type: ignore[attr-defined]


def get_execution(settings: Settings, execution_id: int) -> ExecutionRecord:
    with session_scope(settings.app_db_url) as session:
        row = session.get(ScheduledExecution, execution_id)
        if row is None:
            raise NotFoundError(f"no scheduled execution with id {execution_id}")
        return ExecutionRecord.model_validate(row)


def list_executions(
    settings: Settings,
    *,
    job_name: str | None = None,
    status: str | None = None,
    limit: int = 50,
    offset: int = 0,
) -> list[ExecutionRecord]:
    """Executions, newest first."""
    query = select(ScheduledExecution).order_by(ScheduledExecution.id.desc()).limit(limit).offset(offset)
    if job_name:
        query = query.where(ScheduledExecution.job_name == job_name)
    if status:
        query = query.where(ScheduledExecution.status == status)
    with session_scope(settings.app_db_url) as session:
        return [ExecutionRecord.model_validate(r) for r in session.scalars(query)]


def last_executions(settings: Settings) -> dict[str, ExecutionRecord]:
    """The newest execution of each job (scheduled or manual)."""
    newest = select(func.max(ScheduledExecution.id)).group_by(ScheduledExecution.job_name)
    with session_scope(settings.app_db_url) as session:
        rows = session.scalars(select(ScheduledExecution).where(ScheduledExecution.id.in_(newest)))
        return {r.job_name: ExecutionRecord.model_validate(r) for r in rows}


def last_scheduled_slot(settings: Settings, job_name: str) -> datetime | None:
    """The newest slot the schedule (not a manual trigger) ran `job_name` for: None if it never has."""
    with session_scope(settings.app_db_url) as session:
        slot: datetime | None = session.scalar(
            select(func.max(ScheduledExecution.scheduled_for)).where(
                ScheduledExecution.job_name == job_name, ScheduledExecution.trigger == "schedule"
            )
        )
    return slot.replace(tzinfo=UTC) if slot is not None and slot.tzinfo is None else slot


# --- settling ------------------------------------------------------------------------------------------


def settle(settings: Settings, *, now: datetime | None = None) -> list[ExecutionRecord]:
    """Finish the running executions whose queue jobs have all ended, and those whose scheduler died
    before it queued anything. Returns the executions it finished."""
    now = now or datetime.now(UTC)
    with session_scope(settings.app_db_url) as session:
        running = [
            ExecutionRecord.model_validate(r)
            for r in session.scalars(select(ScheduledExecution).where(ScheduledExecution.status == "running"))
        ]
    finished = []
    for execution in running:
        if execution.job_ids:
            ended = _settle_jobs(settings, execution, now)
        else:
            ended = _settle_orphan(settings, execution, now)
        if ended:
            finished.append(get_execution(settings, execution.id))
    return finished


def _settle_orphan(settings: Settings, execution: ExecutionRecord, now: datetime) -> bool:
    started = execution.started_at
    here_and_dead = execution.hostname == HOSTNAME and execution.pid is not None and not process_alive(execution.pid)
    if not here_and_dead and now - started < ORPHAN_AFTER:
        return False
    return finish(
        settings,
        execution.id,
        "failed",
        error=f"the scheduler process {execution.pid} on {execution.hostname} stopped before it queued the work",
        now=now,
    )


def _settle_jobs(settings: Settings, execution: ExecutionRecord, now: datetime) -> bool:
    with session_scope(settings.app_db_url) as session:
        jobs = list(session.scalars(select(Job).where(Job.id.in_(execution.job_ids)).order_by(Job.id)))
        ended = [
            {
                "id": j.id,
                "kind": j.kind,
                "agent": j.agent_type,
                "status": j.status,
                "result": j.result or {},
                "error": j.error,
            }
            for j in jobs
        ]
    if len(ended) < len(execution.job_ids) or any(j["status"] not in JOBS_ENDED for j in ended):
        return False
    statuses = {j["status"] for j in ended}
    status = "failed" if statuses & {"failed", "cancelled"} else "rejected" if "rejected" in statuses else "succeeded"
    outcomes = [job_outcome(j) for j in ended]
    result = dict(execution.result) | {
        "summary": "; ".join(o["summary"] for o in outcomes),
        "jobs": outcomes,
    }
    errors = [
        f"job {j['id']} {j['status']}: {j['error'] or 'no error recorded'}" for j in ended if j["status"] != "succeeded"
    ]
    return finish(settings, execution.id, status, result=result, error="; ".join(errors) or None, now=now)


def job_outcome(job: dict[str, Any]) -> dict[str, Any]:
    """What one ended queue job found, in a few fields and one phrase: a retrain's version and verdict, a
    drift check's status per agent, a validation's or watch's verdict per agent."""
    result: dict[str, Any] = job["result"]
    outcome: dict[str, Any] = {"job_id": job["id"], "kind": job["kind"], "status": job["status"]}
    if job["status"] == "cancelled" or (job["status"] == "failed" and not result):
        outcome["summary"] = f"{job['kind']} job {job['id']} {job['status']}: {job['error'] or 'no error recorded'}"
        return outcome
    if job["kind"] == "retrain":
        outcome |= {
            "agent": result.get("agent_type", job["agent"]),
            "model_version": result.get("model_version"),
            "deployment_status": result.get("deployment_status"),
            "verdict": result.get("reason") or job["error"],
        }
        version = f" v{outcome['model_version']}" if outcome["model_version"] is not None else ""
        deployed = outcome["deployment_status"] or job["status"]
        outcome["summary"] = f"{outcome['agent']}{version} {deployed}: {outcome['verdict'] or job['status']}"
        return outcome
    verdicts = _per_agent(result)
    outcome["agents"] = verdicts
    if verdicts:
        outcome["summary"] = f"{job['kind']}: " + ", ".join(f"{agent} {verdict}" for agent, verdict in verdicts.items())
    elif any(isinstance(result.get(key), list) for key in PER_AGENT_RECORDS):
        outcome["summary"] = f"{job['kind']} {job['status']}: no agent had a champion to check when it ran"
    else:
        outcome["summary"] = f"{job['kind']} {job['status']}" + (f": {job['error']}" if job["error"] else "")
    return outcome


def _per_agent(result: dict[str, Any]) -> dict[str, str]:
    """`agent → status` from a job's per-agent records: a drift job's `checks` and a validation's
    `checkups` (their `status`), a watch's `verdicts` (their `decision`)."""
    verdicts: dict[str, str] = {}
    for key in PER_AGENT_RECORDS:
        value = result.get(key)
        if not isinstance(value, list):
            continue
        for item in value:
            if isinstance(item, dict) and isinstance(item.get("agent_type"), str):
                verdict = item.get("status") or item.get("decision")
                if verdict is not None:
                    verdicts[item["agent_type"]] = str(verdict)
    return verdicts
