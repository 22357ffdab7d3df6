"""The dispatcher's own rules (`mlops.jobs.dispatcher.Dispatcher.tick`): oldest queued job first, at most
`job_max_concurrent` running across every replica, a job claimed by exactly one of two dispatchers, and
what happens to a job whose worker exits without recording an end, is cancelled, or outlives its deadline.
SQLite and PostgreSQL.

The worker process is a real child process that does no work (`sh` waiting for the exit code the test
writes to it), so the dispatcher polls, signals and kills a real pid while no retrain runs."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, update

from mlops.db import create_db_engine, session_scope
from mlops.db.models import Job
from mlops.jobs import dispatcher as dispatching
from mlops.jobs import get_job
from mlops.jobs.dispatcher import Dispatcher
from mlops.jobs.service import finish_job
from mlops.jobs.worker import SETTINGS_ENV
from mlops.processes import HOSTNAME
from mlops.settings import Settings
from tests import factories
from tests.conftest import make_settings

# The stand-in worker: says it is ready (its SIGTERM handler, if any, installed), then exits with the
# code written to its stdin. With "handles-sigterm" it reports a SIGTERM instead of dying of it.
WORKER = """
import signal, sys
if sys.argv[1] == "handles-sigterm":
    signal.signal(signal.SIGTERM, lambda *_: print("SIGTERM", flush=True))
print("ready", flush=True)
sys.exit(int(sys.stdin.readline() or 0))
"""


class Workers:
    """Stands in for `subprocess.Popen([python, -m, mlops.jobs, <id>])` inside the dispatcher: starts a
    child that does no work, and remembers which job each child is for."""

    def __init__(self) -> None:
        self.started: list[int] = []
        self.processes: dict[int, subprocess.Popen[bytes]] = {}
        self.calls: list[tuple[list[str], dict[str, Any]]] = []
        self.handle_sigterm = False

    def __call__(self, args: list[str], **kwargs: Any) -> subprocess.Popen[bytes]:
        self.calls.append((args, kwargs))
        job_id = int(args[-1])
        mode = "handles-sigterm" if self.handle_sigterm else "dies-of-sigterm"
        process = subprocess.Popen(
            [sys.executable, "-I", "-S", "-c", WORKER, mode],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            start_new_session=kwargs.get("start_new_session", False),
        )
        assert self.said(job_id, process) == "ready"
        self.started.append(job_id)
        self.processes[job_id] = process
        return process

    @staticmethod
    def said(job_id: int, process: subprocess.Popen[bytes]) -> str:
        """The next line the worker of `job_id` printed (blocks until it prints one)."""
        assert process.stdout is not None
        return process.stdout.readline().decode().strip()

    def exit(self, job_id: int, code: int = 0) -> None:
        """The worker of `job_id` exits with `code` (and is gone before the test goes on)."""
        process = self.processes[job_id]
        assert process.stdin is not None
        process.stdin.write(f"{code}\n".encode())
        process.stdin.close()
        assert process.wait(timeout=10) == code

    def close(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                process.kill()
                process.wait(timeout=10)
            for pipe in (process.stdin, process.stdout):
                if pipe is not None:
                    pipe.close()


@pytest.fixture
def workers(monkeypatch: pytest.MonkeyPatch) -> Iterator[Workers]:
    fake = Workers()
    # Only the dispatcher's view of `subprocess` changes: Popen is the stand-in, the rest is the real module.
    monkeypatch.setattr(
        dispatching, "subprocess", types.SimpleNamespace(Popen=fake, TimeoutExpired=subprocess.TimeoutExpired)
    )
    yield fake
    fake.close()


@pytest.fixture
def settings(db_url: str, tmp_path: Path) -> Settings:
    return make_settings(tmp_path, database_url=db_url, job_max_concurrent=2)


def queue(settings: Settings, n: int, **overrides: Any) -> list[int]:
    with session_scope(settings.app_db_url) as session:
        return [factories.job(session, **overrides).id for _ in range(n)]


def statuses(settings: Settings, ids: list[int]) -> list[str]:
    return [get_job(settings, i).status for i in ids]


def test_queued_jobs_start_oldest_first_up_to_the_concurrency_limit(settings: Settings, workers: Workers) -> None:
    with session_scope(settings.app_db_url) as session:  # ended jobs are never started again
        factories.job(session, status="succeeded")
        factories.job(session, status="cancelled")
    ids = queue(settings, 3)
    dispatcher = Dispatcher(settings)
    dispatcher.tick()
    assert workers.started == ids[:2]
    assert statuses(settings, ids) == ["running", "running", "queued"]
    for job_id in ids[:2]:
        job = get_job(settings, job_id)
        assert (job.hostname, job.pid) == (HOSTNAME, workers.processes[job_id].pid) and job.started_at is not None
    dispatcher.tick()  # the limit is reached: nothing more starts
    assert workers.started == ids[:2]
    # The first worker records its end and exits: its slot goes to the next queued job.
    assert finish_job(settings, ids[0], "succeeded", result={"done": True})
    workers.exit(ids[0], 0)
    dispatcher.tick()
    assert workers.started == ids
    assert statuses(settings, ids) == ["succeeded", "running", "running"]
    assert get_job(settings, ids[0]).result == {"done": True}  # a clean exit is not second-guessed


def test_the_worker_runs_the_job_with_the_dispatchers_settings(settings: Settings, workers: Workers) -> None:
    [job_id] = queue(settings, 1)
    Dispatcher(settings).tick()
    [(args, kwargs)] = workers.calls
    assert args[1:] == ["-m", "mlops.jobs", str(job_id)]
    assert json.loads(kwargs["env"][SETTINGS_ENV])["database_url"] == settings.app_db_url
    assert kwargs["start_new_session"]  # Ctrl-C on the server's terminal is not the worker's


def test_jobs_running_on_another_replica_count_against_the_limit(settings: Settings, workers: Workers) -> None:
    one = settings.model_copy(update={"job_max_concurrent": 1})
    [elsewhere] = queue(one, 1, status="running", hostname="replica-2", pid=4242)  # within its timeout: alive
    [waiting] = queue(one, 1)
    dispatcher = Dispatcher(one)
    dispatcher.tick()
    assert workers.started == [] and statuses(one, [elsewhere, waiting]) == ["running", "queued"]
    assert finish_job(one, elsewhere, "succeeded")
    dispatcher.tick()
    assert workers.started == [waiting]


def test_a_job_is_claimed_by_exactly_one_of_two_dispatchers(settings: Settings, workers: Workers) -> None:
    """Replica A picks the oldest queued job; before its claim lands, replica B claims the same job. A's
    conditional claim must then change nothing, and A moves on to the next job."""
    first, second = queue(settings, 2)
    a, b = Dispatcher(settings), Dispatcher(settings)
    interleaved: list[str] = []

    def b_claims_first(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if not interleaved and statement.lstrip().upper().startswith("UPDATE JOBS SET STATUS"):
            interleaved.append(statement)
            b.tick()  # between A's read of the queue and A's claim

    engine = create_db_engine(settings.app_db_url)
    event.listen(engine, "before_cursor_execute", b_claims_first)
    try:
        a.tick()
    finally:
        event.remove(engine, "before_cursor_execute", b_claims_first)
    assert interleaved, "the dispatcher no longer claims with an UPDATE of jobs.status: adapt this test"
    assert workers.started == [first, second]  # each job started once: B took the first, A the second
    assert statuses(settings, [first, second]) == ["running", "running"]
    assert get_job(settings, first).pid == workers.processes[first].pid


def test_a_worker_that_exits_without_recording_an_end_fails_its_job(settings: Settings, workers: Workers) -> None:
    [job_id] = queue(settings, 1)
    dispatcher = Dispatcher(settings)
    dispatcher.tick()
    workers.exit(job_id, 3)  # crashed before writing its outcome
    dispatcher.tick()
    job = get_job(settings, job_id)
    assert (job.status, job.error) == ("failed", "worker process exited with code 3")
    assert job.finished_at is not None


def cancel_elsewhere(settings: Settings, job_id: int) -> None:
    """What another replica's API does on a cancel: it cannot signal a worker on this host."""
    with session_scope(settings.app_db_url) as session:
        session.execute(update(Job).where(Job.id == job_id).values(cancel_requested=True))


def test_a_cancellation_is_forwarded_to_the_worker(settings: Settings, workers: Workers) -> None:
    workers.handle_sigterm = True
    [job_id] = queue(settings, 1)
    dispatcher = Dispatcher(settings)
    dispatcher.tick()
    cancel_elsewhere(settings, job_id)
    dispatcher.tick()
    assert workers.said(job_id, workers.processes[job_id]) == "SIGTERM"


def test_a_worker_killed_by_its_cancellation_ends_cancelled_not_failed(settings: Settings, workers: Workers) -> None:
    [job_id] = queue(settings, 1)
    dispatcher = Dispatcher(settings)
    dispatcher.tick()
    cancel_elsewhere(settings, job_id)
    workers.processes[job_id].send_signal(signal.SIGTERM)  # forwarded while it was still importing
    assert workers.processes[job_id].wait(timeout=10) == -signal.SIGTERM
    dispatcher.tick()
    job = get_job(settings, job_id)
    assert (job.status, job.error) == ("cancelled", "cancelled on request before the work started")


def test_a_cancellation_forwarded_and_fatal_in_the_same_tick_ends_cancelled(
    settings: Settings, workers: Workers, monkeypatch: pytest.MonkeyPatch
) -> None:
    [job_id] = queue(settings, 1)
    dispatcher = Dispatcher(settings)
    dispatcher.tick()
    cancel_elsewhere(settings, job_id)
    reap = dispatching.reap_dead_jobs

    def reap_once_the_worker_died(s: Settings, **options: Any) -> list[int]:
        # The worker dies of the SIGTERM just forwarded before the reaper looks (it does on a busy host):
        # wait for that, leaving it a zombie as the dispatcher has not polled it yet.
        os.waitid(os.P_PID, workers.processes[job_id].pid, os.WEXITED | os.WNOWAIT)
        return reap(s, **options)

    monkeypatch.setattr(dispatching, "reap_dead_jobs", reap_once_the_worker_died)
    dispatcher.tick()
    monkeypatch.setattr(dispatching, "reap_dead_jobs", reap)
    dispatcher.tick()
    job = get_job(settings, job_id)
    assert (job.status, job.error) == ("cancelled", "cancelled on request before the work started")


def test_a_worker_past_its_deadline_is_killed_and_its_job_failed(
    settings: Settings, workers: Workers, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(dispatching, "KILL_GRACE_SECONDS", 0.0)
    [late] = queue(settings, 1, timeout_seconds=0.0)  # its deadline passes as soon as it starts
    [on_time] = queue(settings, 1)
    dispatcher = Dispatcher(settings)
    dispatcher.tick()
    dispatcher.tick()
    assert workers.processes[late].poll() == -signal.SIGKILL
    job = get_job(settings, late)
    assert (job.status, job.error) == ("failed", "timed out; the worker did not stop and was killed")
    assert workers.processes[on_time].poll() is None and get_job(settings, on_time).status == "running"
