"""The dispatcher: a thread in each API process that starts queued jobs as worker processes (at most
`job_max_concurrent` running at once), kills workers past their timeout, forwards cancellations,
and fails the jobs whose worker died. Several API replicas can run one each: claiming a job is a
conditional update that exactly one of them wins."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime

from sqlalchemy import select, update

from mlops.db import session_scope
from mlops.db.models import Job
from mlops.jobs.service import count_running, finish_job, reap_dead_jobs, stop_sweep_of
from mlops.jobs.worker import settings_env
from mlops.logs import get_logger
from mlops.processes import HOSTNAME, process_alive
from mlops.settings import Settings

log = get_logger(__name__)
KILL_GRACE_SECONDS = 30.0


class Dispatcher:
    def __init__(self, settings: Settings, poll_seconds: float = 1.0) -> None:
        self.settings = settings
        self.poll_seconds = poll_seconds
        self._children: dict[int, tuple[subprocess.Popen[bytes], float]] = {}  # job id → (process, deadline)
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="skippy-dispatcher", daemon=True)
        self._thread.start()

    def wake(self) -> None:
        self._wake.set()

    def stop(self, wait_seconds: float = 20.0) -> None:
        """Stop dispatching and stop this process's running jobs (SIGINT: they end cleanly as
        "stopped because the API server shut down", then exit); a worker that lingers is killed."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        for job_id, (process, _) in list(self._children.items()):
            if process.poll() is None:
                log.info("stopping job worker", job_id=job_id)
                process.send_signal(signal.SIGINT)
        deadline = time.monotonic() + wait_seconds
        for process, _ in self._children.values():
            try:
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                _kill_group(process)
        self._collect()

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.tick()
            except Exception:
                log.exception("dispatcher tick failed")
            self._wake.wait(self.poll_seconds)
            self._wake.clear()

    def tick(self) -> None:
        self._collect()
        self._enforce_deadlines()
        self._forward_cancellations()
        reap_dead_jobs(self.settings, collected_elsewhere=set(self._children))
        while count_running(self.settings) < self.settings.job_max_concurrent:
            if not self._start_next():
                break

    def _start_next(self) -> bool:
        with session_scope(self.settings.app_db_url) as session:
            job_id = session.scalar(select(Job.id).where(Job.status == "queued").order_by(Job.id).limit(1))
            if job_id is None:
                return False
            claimed = session.execute(
                update(Job)
                .where(Job.id == job_id, Job.status == "queued")
                .values(status="running", hostname=HOSTNAME, pid=None, started_at=datetime.now(UTC))
            )
            timeout = session.scalar(select(Job.timeout_seconds).where(Job.id == job_id))
        if not claimed.rowcount:  # type: ignore[attr-defined]
            return True  # another replica took it: look again
        process = subprocess.Popen(
            [sys.executable, "-m", "mlops.jobs", str(job_id)],
            env=os.environ | settings_env(self.settings),
            start_new_session=True,  # Ctrl-C on the server's terminal is the server's to handle
        )
        with session_scope(self.settings.app_db_url) as session:
            session.execute(update(Job).where(Job.id == job_id, Job.pid.is_(None)).values(pid=process.pid))
        self._children[job_id] = (process, time.monotonic() + float(timeout or 0) + KILL_GRACE_SECONDS)
        log.info("job dispatched", job_id=job_id, pid=process.pid)
        return True

    def _collect(self) -> None:
        """Fail the jobs whose worker exited without recording an end (killed, crashed)."""
        for job_id, (process, _) in list(self._children.items()):
            code = process.poll()
            if code is None:
                continue
            del self._children[job_id]
            if code != 0:
                from mlops.pipeline.locks import reap_dead_runs

                # First the run and its agent lock, then the job: whoever sees the job failed may retry.
                reap_dead_runs(self.settings)
            with session_scope(self.settings.app_db_url) as session:
                cancelled = bool(session.scalar(select(Job.cancel_requested).where(Job.id == job_id)))
            if code != 0:
                self._stop_sweep(job_id)
            if cancelled and code == -signal.SIGTERM:
                # Stopped before it had installed its handlers (still importing): nothing of its work began.
                finish_job(self.settings, job_id, "cancelled", error="cancelled on request before the work started")
            elif finish_job(self.settings, job_id, "failed", error=f"worker process exited with code {code}"):
                log.warning("job worker died", job_id=job_id, exit_code=code)

    def _stop_sweep(self, job_id: int) -> None:
        with session_scope(self.settings.app_db_url) as session:
            sweep_id = session.scalar(select(Job.sweep_id).where(Job.id == job_id))
        try:
            stop_sweep_of(self.settings, sweep_id, "its job's worker died")
        except Exception:
            log.exception("could not stop the sweep of a dead job", job_id=job_id, sweep_id=sweep_id)

    def _enforce_deadlines(self) -> None:
        """The worker times itself out (SIGALRM); this is the backstop for one that does not react."""
        now = time.monotonic()
        for job_id, (process, deadline) in self._children.items():
            if now > deadline and process.poll() is None:
                log.warning("killing job worker past its timeout", job_id=job_id)
                _kill_group(process)
                finish_job(self.settings, job_id, "failed", error="timed out; the worker did not stop and was killed")

    def _forward_cancellations(self) -> None:
        with session_scope(self.settings.app_db_url) as session:
            rows = session.execute(
                select(Job.id, Job.pid).where(
                    Job.status == "running", Job.cancel_requested.is_(True), Job.hostname == HOSTNAME
                )
            ).all()
        for _, pid in rows:
            if pid and process_alive(pid):
                os.kill(pid, signal.SIGTERM)


def _kill_group(process: subprocess.Popen[bytes]) -> None:
    """SIGKILL a worker and what it forked (a sweep's trial processes): it leads its own session."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=10)
