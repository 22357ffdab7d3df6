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


def settings_env(settings: Settings) -> dict[str, str]:
    """The settings of the submitting process, for its workers (tests and `serve` build them in code)."""
    payload = settings.model_dump(mode="json", by_alias=False)
    payload["model_key"] = settings.model_key_value
    return {SETTINGS_ENV: json.dumps(payload)}


def settings_from_env() -> Settings:
    from mlops.settings import get_settings

    raw = os.environ.get(SETTINGS_ENV)
    return Settings(**json.loads(raw)) if raw else get_settings()


def _interrupt(status: str, message: str) -> Any:
    def handler(signum: int, frame: Any) -> None:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # one interruption is enough
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.alarm(0)
        raise Interrupted(status, message)

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
    return run_job(settings, int(argv[0]))
