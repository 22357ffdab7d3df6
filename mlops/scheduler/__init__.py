"""The scheduler (DESIGN §9): scheduled retraining, drift checks, validation and the champion watch.

schedules.py the jobs and their cron triggers; executions.py the claimed rows (exactly once per slot)
and their settling; jobs.py what each job does or why it is skipped; service.py one execution (scheduled,
caught up or manual) and the status; runner.py APScheduler in a process."""

from mlops.scheduler.executions import ExecutionRecord, get_execution, list_executions, settle
from mlops.scheduler.runner import Scheduler
from mlops.scheduler.schedules import JOB_NAMES, JOBS, enabled_reason, parse_cron, scheduler_enabled, triggers
from mlops.scheduler.service import (
    SCHEDULER_ACTOR,
    ScheduledJobStatus,
    SchedulerStatus,
    catch_up,
    execution_history,
    run_scheduled,
    scheduler_status,
    trigger,
)

__all__ = [
    "JOBS",
    "JOB_NAMES",
    "SCHEDULER_ACTOR",
    "ExecutionRecord",
    "ScheduledJobStatus",
    "Scheduler",
    "SchedulerStatus",
    "catch_up",
    "enabled_reason",
    "execution_history",
    "get_execution",
    "list_executions",
    "parse_cron",
    "run_scheduled",
    "scheduler_enabled",
    "scheduler_status",
    "settle",
    "trigger",
    "triggers",
]
