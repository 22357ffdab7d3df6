"""The worker process of one job: `python -m mlops.jobs <job_id>` (started by the dispatcher).

SIGTERM (cancel) and SIGALRM (the job's timeout) raise inside the running service, which ends its
work the way it ends any failure: the model run failed and its lock released, the sweep stopped
(resumable), no alias half-moved."""

from __future__ import annotations

import json
import math
import os
import signal
import sys
from datetime import UTC, datetime
from typing import Any

from pydantic import SecretStr
from sqlalchemy import update

from mlops.db import session_scope
from mlops.db.models import Job
from mlops.errors import Interrupted, SkippyError, brief
from mlops.jobs.kinds import run
from mlops.jobs.service import finish_job, get_job, stop_sweep_of
from mlops.logs import get_logger
from mlops.processes import HOSTNAME
from mlops.settings import Settings

log = get_logger(__name__)
SETTINGS_ENV = "SKIPPY_JOB_SETTINGS"
ALERT_FLUSH_SECONDS = 10.0


def settings_env(settings: Settings) -> dict[str, str]:
    """The settings of the submitting process, for its workers (tests and `serve` build them in code).
    Secrets in clear (the model key, the alert channels' URLs and keys): a JSON dump masks them, and a
    worker must decrypt models and send its alerts. Only the worker's own environment holds them."""
    payload = settings.model_dump(mode="json", by_alias=False)
    for name in type(settings).model_fields:
        payload[name] = _reveal(getattr(settings, name), payload[name])
    return {SETTINGS_ENV: json.dumps(payload)}


def _reveal(value: Any, dumped: Any) -> Any:
    if isinstance(value, SecretStr):
        return value.get_secret_value()
    if isinstance(value, list | tuple) and any(isinstance(v, SecretStr) for v in value):
        return [_reveal(v, d) for v, d in zip(value, dumped, strict=True)]
    return dumped


def settings_from_env() -> Settings:
    from mlops.settings import get_settings

    raw = os.environ.get(SETTINGS_ENV)
    return Settings(**json.loads(raw)) if raw else get_settings()


# The interruption raised in this process, if any. Raised inside an extension module's initialisation (an
# import the work makes lazily), it surfaces as "ImportError: initialization failed": the job's end must
# still say it was cancelled or timed out.
_raised: list[Interrupted] = []


def _interrupt(status: str, message: str) -> Any:
    def handler(signum: int, frame: Any) -> None:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # one interruption is enough
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.alarm(0)
        _raised.append(Interrupted(status, message))
        raise _raised[-1]

    return handler


def run_job(settings: Settings, job_id: int) -> int:
    """Run job `job_id` in this process; returns the exit code."""
    job = get_job(settings, job_id)
    with session_scope(settings.app_db_url) as session:
        started = session.execute(
            update(Job)
            .where(Job.id == job_id, Job.status.in_(("queued", "running")), Job.finished_at.is_(None))
            .values(status="running", pid=os.getpid(), hostname=HOSTNAME, started_at=datetime.now(UTC))
        )
    if not started.rowcount:  # type: ignore[attr-defined]
        log.warning("job not runnable", job_id=job_id, deployment_status=job.status)
        return 0
    signal.signal(signal.SIGTERM, _interrupt("cancelled", "cancelled on request"))
    signal.signal(signal.SIGINT, _interrupt("cancelled", "stopped because the API server shut down; submit it again"))
    signal.signal(signal.SIGALRM, _interrupt("failed", f"timed out after {job.timeout_seconds:g} s"))
    signal.alarm(max(1, math.ceil(job.timeout_seconds)))
    log.info("job started", job_id=job_id, agent_type=job.agent_type, kind=job.kind)
    try:
        outcome = run(settings, job)
        signal.alarm(0)
        # The work is done: a stop request now must not cut short the recording of its end (and the
        # reaction to it: its alert).
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        finish_job(settings, job_id, outcome.status, result=outcome.result, error=outcome.error)
        return 0
    except Interrupted as exc:
        signal.alarm(0)
        stop_sweep_of(settings, job.sweep_id, str(exc))
        finish_job(settings, job_id, exc.status, error=str(exc))
        return 1
    except SkippyError as exc:
        signal.alarm(0)
        finish_job(settings, job_id, "failed", error=str(exc))
        return 1
    except Exception as exc:
        signal.alarm(0)
        if _raised:  # the interruption, disguised by the code it hit
            stop_sweep_of(settings, job.sweep_id, str(_raised[0]))
            finish_job(settings, job_id, _raised[0].status, error=str(_raised[0]))
            return 1
        log.exception("job crashed", job_id=job_id)
        finish_job(settings, job_id, "failed", error=brief(f"{type(exc).__name__}: {exc}"))
        return 1


def main(argv: list[str]) -> int:
    from mlops.logs import configure_logging

    if len(argv) != 1 or not argv[0].isdigit():
        sys.stderr.write("usage: python -m mlops.jobs <job_id>\n")
        return 2
    settings = settings_from_env()
    configure_logging(settings.log_level, settings.log_json)
    try:
        return run_job(settings, int(argv[0]))
    finally:
        # The job has ended: a stop request now just ends the process (what is unsent stays queued).
        signal.alarm(0)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        flush_alerts(settings)


def flush_alerts(settings: Settings) -> None:
    """Give the alerts this short-lived process raised a bounded time to leave before it exits; what
    is still unsent stays queued in the app DB, and a long-lived process's Courier sends it."""
    from mlops.alerts import flush

    try:
        flush(settings, ALERT_FLUSH_SECONDS)
    except Exception:
        log.exception("could not flush the alerts of a job worker")
