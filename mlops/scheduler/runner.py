"""The scheduler in a process: APScheduler 3's BackgroundScheduler (UTC) firing the five jobs on their
cron triggers, settling executions every `scheduler_poll_seconds`, and catching up missed runs at start.

APScheduler only says *when*; the app DB says *who*: every process keeps its own in-memory job store and
fires every job, and the execution row's unique (job, slot) claim lets exactly one of them run each slot
(APScheduler's shared job stores would run duplicates). Jobs coalesce and have no misfire limit: a call
delayed however long (a busy or suspended process) runs once, for the newest slot due at that moment —
the same rule as the catch-up after downtime."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Any

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from mlops.logs import get_logger
from mlops.scheduler.executions import settle
from mlops.scheduler.jobs import preload
from mlops.scheduler.schedules import JOBS, triggers
from mlops.scheduler.service import catch_up, run_scheduled
from mlops.settings import Settings

log = get_logger(__name__)


class Scheduler:
    """`start()` validates every schedule (ConfigurationError naming each bad SKIPPY_SCHEDULE_...) and
    begins; `stop()` waits for the steps in progress (each only queues work: seconds at most)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._scheduler: BackgroundScheduler | None = None

    @property
    def running(self) -> bool:
        return self._scheduler is not None and self._scheduler.running

    def start(self, *, warm: bool = False) -> None:
        """`warm`: import what the steps use before returning (else in the background, at once)."""
        compiled = triggers(self.settings)
        logging.getLogger("apscheduler").setLevel(logging.WARNING)  # our own log lines say what ran
        scheduler = BackgroundScheduler(
            timezone="UTC",
            executors={"default": ThreadPoolExecutor(max_workers=3)},
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": None},
        )
        for job in JOBS:
            scheduler.add_job(
                _guarded(run_scheduled),
                trigger=compiled[job.name],
                args=(self.settings, job.name, compiled[job.name]),
                id=job.name,
                name=job.name,
            )
        scheduler.add_job(
            _guarded(settle),
            trigger=IntervalTrigger(seconds=self.settings.scheduler_poll_seconds, timezone="UTC"),
            args=(self.settings,),
            id="settle",
            name="settle executions",
        )
        if warm:
            preload()
        # At once (no trigger: a one-off run now), off the caller's thread: a server starts without waiting.
        scheduler.add_job(_guarded(_start_up), args=(self.settings, compiled), id="start_up", name="catch up")
        scheduler.start()
        self._scheduler = scheduler
        log.info(
            "scheduler started",
            schedules={job.name: getattr(self.settings, job.setting) for job in JOBS},
            poll_seconds=self.settings.scheduler_poll_seconds,
        )

    def stop(self) -> None:
        if self._scheduler is not None and self._scheduler.running:
            self._scheduler.shutdown(wait=True)
            log.info("scheduler stopped")
        self._scheduler = None


def _start_up(settings: Settings, compiled: dict[str, CronTrigger]) -> None:
    preload()
    catch_up(settings, compiled)


def _guarded(step: Callable[..., Any]) -> Callable[..., Any]:
    """A step that raises (the database away for a moment) is logged, and its next fire tries again."""

    @functools.wraps(step)
    def guarded(*args: Any) -> Any:
        try:
            return step(*args)
        except Exception:
            log.exception("scheduler step failed", step=step.__name__)
            return None

    return guarded
