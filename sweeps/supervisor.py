"""Run a created sweep with forked worker processes: each runs the worker loop with the training
callback it inherits from this process (so data loaded before the fork is shared, not reloaded);
dead workers' points are recovered and workers respawned while points remain."""

from __future__ import annotations

import gc
import multiprocessing
import signal
import time
from collections.abc import Callable
from typing import Any

from mlops.db.sweeps import SweepRecord, get_sweep, update_sweep
from mlops.errors import ConflictError, InvalidRequestError
from mlops.logs import get_logger
from mlops.settings import Settings
from sweeps.claims import recover_dead_trials
from sweeps.finalize import finalize
from sweeps.study import SweepProgress, progress
from sweeps.trial import TrainFn
from sweeps.worker import RECOVERY_INTERVAL_SECONDS, run_worker

log = get_logger(__name__)


def _worker_process(settings: Settings, sweep_id: int, train: TrainFn, deadline: float | None) -> None:
    """Entry point of a forked worker: fresh connections, then the same loop as `sweep-worker`."""
    from threadpoolctl import threadpool_limits

    from mlops.db.session import reset_after_fork
    from sweeps.storage import reset_after_fork as reset_storage_after_fork
    from tracking.client import reset_after_fork as reset_mlflow_after_fork

    # A worker is stopped by its supervisor with SIGTERM: die plainly, whatever handler the
    # supervisor's process installed (a job worker's SIGTERM means "cancel the job").
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    reset_after_fork()
    reset_mlflow_after_fork()
    reset_storage_after_fork()
    try:
        # One BLAS thread per worker: the workers are the parallelism; the matrices are small, and
        # several multi-threaded BLAS pools on the same cores only fight each other.
        with threadpool_limits(limits=1):
            run_worker(settings, sweep_id, train, deadline=deadline)
    except Exception:
        log.exception("sweep worker crashed", sweep_id=sweep_id)
        raise SystemExit(1) from None


def run_sweep(
    settings: Settings,
    sweep_id: int,
    train: TrainFn,
    *,
    workers: int,
    time_budget_seconds: float | None = None,
    on_progress: Callable[[SweepProgress], None] | None = None,
    poll_seconds: float = 0.5,
) -> SweepRecord:
    """Run a created sweep with `workers` forked worker processes, each training with `train`, until
    its grid is exhausted or the time budget is spent (then it is closed as `stopped`, resumable)."""
    if workers < 1:
        raise InvalidRequestError(f"workers must be >= 1, got {workers}")
    sweep = get_sweep(settings, sweep_id)
    if sweep.status in ("completed", "failed"):
        raise ConflictError(f"sweep {sweep_id} is {sweep.status}: there is nothing left to evaluate")
    if sweep.status == "stopped":
        update_sweep(settings, sweep_id, status="running", finished_at=None, error=None)
    context = multiprocessing.get_context("fork")
    deadline = time.time() + time_budget_seconds if time_budget_seconds else None

    def spawn() -> Any:
        process = context.Process(target=_worker_process, args=(settings, sweep_id, train, deadline), daemon=False)
        # Everything this process holds (the bars, the datasets, the imported libraries) is shared with the
        # worker copy-on-write; frozen, it is left out of the worker's garbage collections, which would
        # otherwise write to every object's header and copy the pages of all of them.
        gc.freeze()
        try:
            process.start()
        finally:
            gc.unfreeze()
        return process

    processes = [spawn() for _ in range(workers)]
    respawns_left = 3 * workers
    next_recovery = time.time() + RECOVERY_INTERVAL_SECONDS
    exits_seen: set[int | None] = set()
    try:
        while True:
            alive = [p for p in processes if p.is_alive()]
            exited = [p for p in processes if not p.is_alive() and p.pid not in exits_seen]
            exits_seen.update(p.pid for p in exited)
            # The supervisor shares the cores with its workers: it recovers only now and then, or right
            # after a worker died (mid-trial, maybe). A worker that ended cleanly left nothing behind.
            if any(p.exitcode != 0 for p in exited) or time.time() >= next_recovery:
                recover_dead_trials(settings, sweep)
                next_recovery = time.time() + RECOVERY_INTERVAL_SECONDS
            if on_progress is not None:
                on_progress(progress(settings, sweep_id))
            if not alive:
                state = progress(settings, sweep_id)
                out_of_time = deadline is not None and time.time() >= deadline
                if state.waiting and not out_of_time and respawns_left > 0:
                    missing = min(workers, state.waiting)
                    respawns_left -= missing
                    processes = [spawn() for _ in range(missing)]
                    continue
                break
            _wait_for_exit(alive, poll_seconds)
    finally:
        for process in processes:
            if process.is_alive():
                process.terminate()
            process.join(timeout=30)
    state = progress(settings, sweep_id)
    if state.remaining:
        reason = "time budget spent" if deadline is not None and time.time() >= deadline else "workers kept failing"
        return finalize(settings, sweep_id, stop_reason=f"{reason}; {state.remaining} grid points not evaluated")
    return finalize(settings, sweep_id)


def _wait_for_exit(processes: list[Any], seconds: float) -> None:
    """Sleep up to `seconds`, waking as soon as a worker exits (the last one's exit ends the sweep)."""
    from multiprocessing.connection import wait

    wait([p.sentinel for p in processes], timeout=seconds)
