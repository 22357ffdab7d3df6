"""A sweep's Optuna study as the other modules use it: opened from the sweep's app-DB record, its
progress counted from the trial states (the storage is the source of truth for them)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from mlops.db.sweeps import SweepRecord, get_sweep
from mlops.settings import Settings
from sweeps.storage import bound_storage, open_storage

WORKER_ATTR = "skippy_worker"  # trial system attr: {"host", "pid", "started"} of the worker evaluating it


@dataclass(frozen=True)
class OpenStudy:
    study: Any  # optuna.Study
    storage: Any  # the process's storage object (optuna.storages.BaseStorage)
    study_id: int


def open_study(settings: Settings, sweep: SweepRecord) -> OpenStudy:
    """The sweep's study, to write to: on the storage the app DB belongs to (checked)."""
    import optuna

    storage = bound_storage(settings)
    study = optuna.load_study(study_name=str(sweep.study_name), storage=storage)
    return OpenStudy(study, storage, storage.get_study_id_from_name(sweep.study_name))


def enqueue_point(study: Any, grid: dict[str, list[Any]], point: dict[str, Any], **user_attrs: Any) -> None:
    """Queue grid point `point` as a WAITING trial that already carries its parameters (with the grid's
    choices as their distributions), so that a worker's claim writes nothing more about them. The point
    is also kept where `study.enqueue_trial` keeps it (system attr `fixed_params`)."""
    from optuna.distributions import CategoricalDistribution
    from optuna.trial import TrialState, create_trial

    distributions = {name: CategoricalDistribution(grid[name]) for name in point}
    waiting = create_trial(
        state=TrialState.WAITING,
        params=point,
        distributions=distributions,  # type: ignore[arg-type]
        system_attrs={"fixed_params": point},
        user_attrs=user_attrs,
    )
    study.add_trial(waiting)


@dataclass(frozen=True)
class SweepProgress:
    total: int
    complete: int
    failed: int
    running: int
    waiting: int
    best_value: float | None = None
    best_params: dict[str, Any] = field(default_factory=dict)

    @property
    def remaining(self) -> int:
        return self.running + self.waiting


def progress(settings: Settings, sweep_id: int) -> SweepProgress:
    from optuna.trial import TrialState

    sweep = get_sweep(settings, sweep_id)
    storage = open_storage(settings.optuna_storage)  # no Study object: only the trials are read
    trials = storage.get_all_trials(storage.get_study_id_from_name(sweep.study_name), deepcopy=False)
    count = {s: sum(1 for t in trials if t.state == s) for s in TrialState}
    complete = [t for t in trials if t.state == TrialState.COMPLETE and t.value is not None]
    best = (max if sweep.direction == "maximize" else min)(complete, key=lambda t: t.value) if complete else None
    return SweepProgress(
        total=sweep.n_trials,
        complete=count[TrialState.COMPLETE],
        failed=count[TrialState.FAIL],
        running=count[TrialState.RUNNING],
        waiting=count[TrialState.WAITING],
        best_value=best.value if best else None,
        best_params=dict(best.params) if best else {},
    )
