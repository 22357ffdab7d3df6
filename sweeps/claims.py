"""Claims on grid points, and their recovery when a worker dies.

Every grid point is enqueued once as a WAITING Optuna trial when the sweep is created; a worker
claims one by moving it WAITING → RUNNING in the storage, which succeeds for exactly one process.
(Optuna's GridSampler alone picks points per process and repeats them under concurrency.) A worker
killed mid-trial leaves a RUNNING trial: it is marked FAIL and its point re-enqueued once.

Recovery runs in the supervisor and in idle workers at once. Each recoverer enqueues its replacement
first (so the grid never looks exhausted in between), then tries to fail the dead trial: one wins and
marks its replacement `confirmed`; the losers prune theirs. A replacement can be claimed only once it is
confirmed — else a loser's duplicate, claimed before it was pruned, would evaluate the point twice.
(Should the winner die before confirming, the lowest-numbered replacement becomes claimable after
RECOVERY_GRACE_SECONDS.)
"""

from __future__ import annotations

import os
import time
import uuid
from typing import Any

from mlops.db.sweeps import SweepRecord, TrialRecord, find_trial, record_trial
from mlops.logs import get_logger
from mlops.processes import HOSTNAME, process_alive
from mlops.settings import Settings
from sweeps.study import WORKER_ATTR, OpenStudy, enqueue_point, open_study

log = get_logger(__name__)
MAX_ATTEMPTS = 2  # a point whose worker died is tried once more
RECOVERY_GRACE_SECONDS = 60.0
CONFIRMED = "confirmed"  # user attr of the replacement its recoverer won with


def claim_next(storage: Any, study_id: int) -> Any:
    """Move one WAITING trial to RUNNING and sign it with this worker; returns the trial as it was
    while waiting (an optuna FrozenTrial: its number, and its point in system attr `fixed_params`),
    None when nothing waits. The storage lets exactly one process win each trial."""
    from optuna.exceptions import UpdateFinishedTrialError
    from optuna.trial import TrialState

    trials = storage.get_all_trials(study_id, deepcopy=False)
    for frozen in trials:
        if frozen.state != TrialState.WAITING or not _claimable(frozen, trials):
            continue
        trial_id = frozen._trial_id  # the id get_trial_id_from_study_id_trial_number looks up
        try:
            if not storage.set_trial_state_values(trial_id, state=TrialState.RUNNING):
                continue
        except UpdateFinishedTrialError:
            continue
        worker = {"host": HOSTNAME, "pid": os.getpid(), "started": time.time()}
        storage.set_trial_system_attr(trial_id, WORKER_ATTR, worker)
        return frozen
    return None


def _claimable(waiting: Any, trials: list[Any]) -> bool:
    """A grid point's first trial always; a replacement once its recoverer has won and confirmed it."""
    number = waiting.user_attrs.get("requeued_from")
    if number is None or waiting.user_attrs.get(CONFIRMED):
        return True
    dead = next((t for t in trials if t.number == number), None)
    if dead is None or not dead.state.is_finished():
        return False  # its recoverer has not won yet
    siblings = [t for t in trials if t.user_attrs.get("requeued_from") == number]
    if any(t.user_attrs.get(CONFIRMED) for t in siblings):
        return False  # a loser's duplicate, about to be pruned
    finished = dead.datetime_complete.timestamp() if dead.datetime_complete else 0.0
    if time.time() - finished < RECOVERY_GRACE_SECONDS:
        return False  # its recoverer is about to confirm it
    # The recoverer died before confirming: the lowest-numbered replacement still waiting stands in.
    return bool(waiting.number == min(t.number for t in siblings if not t.state.is_finished()))


def recover_dead_trials(settings: Settings, sweep: SweepRecord) -> list[int]:
    """Fail RUNNING trials whose worker died (same host: pid gone; other hosts: silent for twice the
    trial timeout) and re-enqueue their points once. Returns the failed trial numbers."""
    from optuna.exceptions import UpdateFinishedTrialError
    from optuna.trial import TrialState

    opened = open_study(settings, sweep)
    storage = opened.storage
    _prune_stranded(storage, opened.study_id)
    stale_after = 2 * settings.sweep_trial_timeout_seconds + 60
    failed = []
    for frozen in storage.get_all_trials(opened.study_id, deepcopy=False, states=(TrialState.RUNNING,)):
        worker = frozen.system_attrs.get(WORKER_ATTR)
        started = worker["started"] if worker else frozen.datetime_start.timestamp()
        if worker and worker["host"] == HOSTNAME:
            dead = not process_alive(worker["pid"])
        else:
            dead = time.time() - started > stale_after
        if not dead:
            continue
        trial_id = frozen._trial_id
        if _finish_as_recorded(settings, storage, sweep, frozen):
            continue
        who = f"pid {worker['pid']} on {worker['host']}" if worker else "a worker"
        error = f"worker ({who}) died during the trial"
        params = frozen.system_attrs.get("fixed_params", frozen.params)
        attempt = int(frozen.user_attrs.get("skippy_attempt", 1))
        requeued = attempt < MAX_ATTEMPTS
        # Re-queue *before* failing the dead trial: in between, a finalizer must never see the grid as
        # exhausted while the point is in neither state.
        replacement = _enqueue_replacement(opened, sweep, params, attempt, frozen.number) if requeued else None
        try:
            storage.set_trial_user_attr(trial_id, "error", error)
            won = storage.set_trial_state_values(trial_id, state=TrialState.FAIL)
        except UpdateFinishedTrialError:
            won = False
        if not won:  # another process recovered it first, and re-queued it itself
            if replacement is not None:
                _discard(storage, replacement)
            continue
        if replacement is not None:
            storage.set_trial_user_attr(replacement, CONFIRMED, True)
        record_trial(
            settings,
            TrialRecord(
                sweep_id=sweep.id,
                trial_number=frozen.number,
                params=dict(params),
                status="failed",
                objective_value=None,
                error=error + ("; point re-queued" if requeued else ""),
            ),
        )
        failed.append(frozen.number)
        log.warning("sweep trial recovered", sweep_id=sweep.id, trial=frozen.number, requeued=requeued)
    return failed


def _finish_as_recorded(settings: Settings, storage: Any, sweep: SweepRecord, frozen: Any) -> bool:
    """A worker that died between a trial's app-DB row and its Optuna state had evaluated the point:
    finish the trial as recorded instead of evaluating the point again. False when it has no row."""
    from optuna.exceptions import UpdateFinishedTrialError
    from optuna.trial import TrialState

    recorded = find_trial(settings, sweep.id, frozen.number)
    if recorded is None:
        return False
    value = recorded.objective_value
    try:
        if recorded.status == "complete" and value is not None:
            storage.set_trial_state_values(frozen._trial_id, state=TrialState.COMPLETE, values=[value])
        else:
            storage.set_trial_state_values(frozen._trial_id, state=TrialState.FAIL)
    except UpdateFinishedTrialError:
        pass  # another process finished it first
    log.warning("sweep trial finished as recorded", sweep_id=sweep.id, trial=frozen.number, status=recorded.status)
    return True


def _enqueue_replacement(
    opened: OpenStudy, sweep: SweepRecord, params: dict[str, Any], attempt: int, number: int
) -> int | None:
    """Enqueue the point again; the new trial's id, found by a token of this recoverer's own (another may be
    re-queueing the same point at the same moment)."""
    from optuna.trial import TrialState

    token = uuid.uuid4().hex
    enqueue_point(
        opened.study,
        sweep.parameter_grid,
        dict(params),
        skippy_attempt=attempt + 1,
        requeued_from=number,
        recovery=token,
    )
    for t in opened.storage.get_all_trials(opened.study_id, deepcopy=False, states=(TrialState.WAITING,)):
        if t.user_attrs.get("recovery") == token:
            return int(t._trial_id)
    return None


def _prune_stranded(storage: Any, study_id: int) -> None:
    """Prune the duplicates of losing recoverers that died before pruning them: a waiting replacement
    whose point another, confirmed replacement stands for can never be claimed, and would keep the grid
    from ever looking exhausted."""
    from optuna.trial import TrialState

    trials = storage.get_all_trials(study_id, deepcopy=False)
    confirmed = {t.user_attrs.get("requeued_from") for t in trials if t.user_attrs.get(CONFIRMED)}
    for t in trials:
        stranded = t.state == TrialState.WAITING and not t.user_attrs.get(CONFIRMED)
        if stranded and t.user_attrs.get("requeued_from") in confirmed - {None}:
            _discard(storage, t._trial_id)


def _discard(storage: Any, trial_id: int) -> None:
    """Drop a duplicate replacement (another recoverer re-queued the same point)."""
    from optuna.exceptions import UpdateFinishedTrialError
    from optuna.trial import TrialState

    try:
        storage.set_trial_user_attr(trial_id, "error", "duplicate re-queue, discarded")
        storage.set_trial_state_values(trial_id, state=TrialState.PRUNED)
    except UpdateFinishedTrialError:
        pass
