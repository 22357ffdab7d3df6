"""Running a scheduled job once: claim its slot, do its work (or record why not), and say what happened.

The same function serves the schedule, the catch-up after downtime and a person's manual trigger:

- scheduled: the slot is the trigger's last fire time at or before now (`previous_fire`), the same in
  every process, so of several schedulers exactly one claims it;
- catch-up (at every start): for each job the schedule has run before, if its last fire time is newer
  than the newest slot it ran for, that one most recent missed slot runs — missed runs coalesce into
  one; a job that has never run on its schedule waits for its next fire time (a new installation does
  not start everything at once);
- manual: the slot is the request's time, `requested_by` the person; audited as "scheduled job trigger".

A failure of the scheduler's own step (not of the queued work, which its job records) ends the execution
`failed` with the error and raises a `scheduled_job_failed` warning alert."""

from __future__ import annotations

from datetime import UTC, datetime

from apscheduler.triggers.cron import CronTrigger
from pydantic import BaseModel, Field

from mlops.audit import audited
from mlops.errors import ConfigurationError, ConflictError, brief
from mlops.logs import get_logger
from mlops.scheduler.executions import (
    ExecutionRecord,
    claim,
    finish,
    get_execution,
    last_executions,
    last_scheduled_slot,
    list_executions,
    record_jobs,
    settle,
)
from mlops.scheduler.schedules import (
    ENABLE_HINT,
    JOB_NAMES,
    JOBS,
    JobDefinition,
    definition,
    enabled_reason,
    next_fire,
    parse_cron,
    previous_fire,
    scheduler_enabled,
)
from mlops.settings import Settings

log = get_logger(__name__)
SCHEDULER_ACTOR = "scheduler"


def execute(
    settings: Settings,
    job_name: str,
    *,
    scheduled_for: datetime,
    trigger: str,
    actor: str,
    now: datetime | None = None,
) -> ExecutionRecord | None:
    """Claim (`job_name`, `scheduled_for`) and run the job's step as `actor`; None when another process
    claimed that slot first (it runs it: this one does nothing)."""
    job = definition(job_name)
    now = now or datetime.now(UTC)
    execution = claim(settings, job.name, scheduled_for, trigger=trigger, requested_by=actor, now=now)
    if execution is None:
        log.info("scheduled job already claimed", job_name=job.name, scheduled_for=scheduled_for.isoformat())
        return None
    log.info("scheduled job claimed", job_name=job.name, scheduled_for=scheduled_for.isoformat(), trigger=trigger)
    from mlops.scheduler.jobs import perform

    try:
        step = perform(settings, job, actor)
    except BaseException as exc:
        error = brief(f"{type(exc).__name__}: {exc}")
        finish(settings, execution.id, "failed", error=error)
        log.exception("scheduled job failed", job_name=job.name, execution_id=execution.id)
        _alert_failure(settings, job, execution, error)
        if not isinstance(exc, Exception):
            raise
        return get_execution(settings, execution.id)
    if step.skipped is not None:
        result = step.result | {"reason": step.skipped, "summary": f"skipped: {step.skipped}"}
        finish(settings, execution.id, "skipped", result=result)
        log.info("scheduled job skipped", job_name=job.name, execution_id=execution.id, reason=step.skipped)
    else:
        summary = f"queued job {', '.join(map(str, step.job_ids))}"
        record_jobs(settings, execution.id, step.job_ids, {"summary": summary} | step.result)
        log.info("scheduled job queued its work", job_name=job.name, execution_id=execution.id, job_ids=step.job_ids)
    return get_execution(settings, execution.id)


def _alert_failure(settings: Settings, job: JobDefinition, execution: ExecutionRecord, error: str) -> None:
    from mlops.alerts import raise_alert  # never raises: a failure to alert is logged

    raise_alert(
        settings,
        severity="warning",
        kind="scheduled_job_failed",
        agent=job.agent,
        message=f"scheduled job {job.name} ({execution.trigger}, for {execution.scheduled_for:%Y-%m-%d %H:%M:%S} UTC) "
        f"failed: {error}",
        details={
            "execution_id": execution.id,
            "job_name": job.name,
            "scheduled_for": execution.scheduled_for.isoformat(),
            "trigger": execution.trigger,
            "requested_by": execution.requested_by,
        },
        key=job.name,
    )


def run_scheduled(
    settings: Settings, job_name: str, trigger: CronTrigger, *, now: datetime | None = None
) -> ExecutionRecord | None:
    """What APScheduler calls at a fire time: run the slot the trigger last fired for (once, across
    processes). A call delayed past the next fire time runs that newer slot: late runs coalesce."""
    now = now or datetime.now(UTC)
    slot = previous_fire(trigger, now)
    if slot is None:
        return None
    return execute(settings, job_name, scheduled_for=slot, trigger="schedule", actor=SCHEDULER_ACTOR, now=now)


def catch_up(
    settings: Settings, triggers: dict[str, CronTrigger], *, now: datetime | None = None
) -> list[ExecutionRecord]:
    """After downtime: one execution per job for its most recent missed fire time, if the schedule has run
    that job before and not for that slot (module docstring)."""
    now = now or datetime.now(UTC)
    ran = []
    for job in JOBS:
        slot = previous_fire(triggers[job.name], now)
        last = last_scheduled_slot(settings, job.name)
        if slot is None or last is None or last >= slot:
            continue
        log.info(
            "catching up a missed scheduled run",
            job_name=job.name,
            scheduled_for=slot.isoformat(),
            last_run_for=last.isoformat(),
        )
        record = execute(settings, job.name, scheduled_for=slot, trigger="schedule", actor=SCHEDULER_ACTOR, now=now)
        if record is not None:
            ran.append(record)
    return ran


def trigger(settings: Settings, job_name: str, *, actor: str, now: datetime | None = None) -> ExecutionRecord:
    """Run a scheduled job now, on request: the same step as on its schedule (same skips), recorded with
    trigger `manual` and the requester. NotFoundError (naming the jobs) for an unknown job."""
    with audited(settings, actor=actor, action="scheduled job trigger", parameters={"job_name": job_name}) as audit:
        definition(job_name)
        now = now or datetime.now(UTC)
        record = execute(settings, job_name, scheduled_for=now, trigger="manual", actor=actor, now=now)
        if record is None:
            raise ConflictError(f"{job_name} was already triggered at {now.isoformat()}: try again")
        audit.update(execution_id=record.id, status=record.status, job_ids=record.job_ids)
    return record


# --- status --------------------------------------------------------------------------------------------


class ScheduledJobStatus(BaseModel):
    name: str
    description: str
    cron: str = Field(description="Cron expression, UTC")
    setting: str = Field(description="The environment variable that sets the schedule")
    flag: str | None = Field(description="The feature flag that gates it (null: a safety check, never gated)")
    enabled: bool = Field(description="Its flag is on (always true without a flag)")
    disabled_reason: str | None = Field(description="Why it would be skipped, and how to turn it on")
    next_run: datetime | None = Field(description="Next fire time (UTC) of its schedule")
    schedule_error: str | None = Field(description="Why the schedule is invalid (the scheduler refuses to start)")
    last_execution: ExecutionRecord | None


class SchedulerStatus(BaseModel):
    enabled: bool = Field(description="The configuration runs the scheduler in `skippy up` / `skippy serve`")
    configuration: str = Field(description="Why it is on or off, and how to turn it on")
    running_here: bool | None = Field(description="The scheduler runs in this API process (null: not asked)")
    how_to_enable: str
    now: datetime
    jobs: list[ScheduledJobStatus]


def scheduler_status(
    settings: Settings, *, running_here: bool | None = None, now: datetime | None = None
) -> SchedulerStatus:
    """Each scheduled job: schedule, flag state, next run, last execution (settled first)."""
    from mlops.flags import FLAGS, list_flags

    now = now or datetime.now(UTC)
    settle(settings, now=now)
    flags = {f.name: f.enabled for f in list_flags(settings)}
    last = last_executions(settings)
    jobs = []
    for job in JOBS:
        cron = str(getattr(settings, job.setting))
        try:
            upcoming, problem = next_fire(parse_cron(cron, setting=job.setting), now), None
        except ConfigurationError as exc:
            upcoming, problem = None, str(exc)
        enabled = job.flag is None or flags[job.flag]
        reason = None
        if not enabled and job.flag is not None:
            reason = f"feature flag {job.flag} is off ({FLAGS[job.flag]}): `skippy flags set {job.flag} on` turns it on"
        jobs.append(
            ScheduledJobStatus(
                name=job.name,
                description=job.description,
                cron=cron,
                setting=job.env_var,
                flag=job.flag,
                enabled=enabled,
                disabled_reason=reason,
                next_run=upcoming,
                schedule_error=problem,
                last_execution=last.get(job.name),
            )
        )
    return SchedulerStatus(
        enabled=scheduler_enabled(settings),
        configuration=enabled_reason(settings),
        running_here=running_here,
        how_to_enable=ENABLE_HINT,
        now=now,
        jobs=jobs,
    )


EXECUTION_STATUSES = ("running", "succeeded", "rejected", "failed", "skipped")


def execution_history(
    settings: Settings,
    *,
    job_name: str | None = None,
    status: str | None = None,
    limit: int = 50,
    offset: int = 0,
) -> list[ExecutionRecord]:
    """Executions, newest first, each settled first (an execution whose queued jobs have all ended takes
    their outcome now, whether or not a scheduler runs). InvalidRequestError names an unknown job or status."""
    from mlops.errors import InvalidRequestError

    if job_name is not None and job_name not in JOB_NAMES:
        raise InvalidRequestError(f"unknown scheduled job {job_name!r}; scheduled jobs: {', '.join(JOB_NAMES)}")
    if status is not None and status not in EXECUTION_STATUSES:
        raise InvalidRequestError(f"unknown status {status!r}; statuses: {', '.join(EXECUTION_STATUSES)}")
    settle(settings)
    return list_executions(settings, job_name=job_name, status=status, limit=limit, offset=offset)
