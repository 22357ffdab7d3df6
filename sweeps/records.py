"""The app DB mirror of sweeps: `hyperparameter_sweeps` (one row per sweep) and `sweep_results`
(one row per trial attempt). Optuna's storage stays the source of truth for claims and trial states."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select, update

from mlops.db import session_scope
from mlops.db.models import HyperparameterSweep, SweepResult
from mlops.errors import NotFoundError
from mlops.settings import Settings
from sweeps.selection import SelectionReport

TERMINAL = ("completed", "stopped", "failed")


@dataclass(frozen=True)
class SweepRecord:
    id: int
    name: str
    agent_type: str
    symbol: str | None
    parameter_grid: dict[str, Any]
    status: str
    study_name: str | None
    parent_run_id: str | None
    objective_metric: str
    direction: str
    n_trials: int
    n_complete: int
    n_failed: int
    best_trial_number: int | None
    best_value: float | None
    best_params: dict[str, Any] | None
    requested_by: str
    error: str | None
    created_at: datetime
    finished_at: datetime | None
    selection: SelectionReport | None = None  # the winner judged for selection bias, once finished


@dataclass(frozen=True)
class TrialRecord:
    sweep_id: int
    trial_number: int
    params: dict[str, Any]
    status: str  # complete | failed
    objective_value: float | None
    metrics: dict[str, float] = field(default_factory=dict)
    child_run_id: str | None = None
    error: str | None = None
    duration_seconds: float | None = None


def _sweep(row: HyperparameterSweep) -> SweepRecord:
    return SweepRecord(
        row.id,
        row.name,
        row.agent_type,
        row.symbol,
        dict(row.parameter_grid),
        row.status,
        row.study_name,
        row.parent_run_id,
        row.objective_metric,
        row.direction,
        row.n_trials,
        row.n_complete,
        row.n_failed,
        row.best_trial_number,
        row.best_value,
        row.best_params,
        row.requested_by,
        row.error,
        row.created_at,
        row.finished_at,
        SelectionReport.from_json(row.selection) if row.selection else None,
    )


def _trial(row: SweepResult) -> TrialRecord:
    return TrialRecord(
        row.sweep_id,
        row.trial_number,
        dict(row.params),
        row.status,
        row.objective_value,
        dict(row.metrics),
        row.child_run_id,
        row.error,
        row.duration_seconds,
    )


def create_sweep_row(settings: Settings, **values: Any) -> SweepRecord:
    with session_scope(settings.app_db_url) as session:
        row = HyperparameterSweep(**values)
        session.add(row)
        session.flush()
        return _sweep(row)


def update_sweep(settings: Settings, sweep_id: int, **values: Any) -> None:
    with session_scope(settings.app_db_url) as session:
        session.execute(update(HyperparameterSweep).where(HyperparameterSweep.id == sweep_id).values(**values))


def finish_sweep_once(settings: Settings, sweep_id: int, **values: Any) -> bool:
    """Set a terminal state unless another process already did; True for the one that did."""
    with session_scope(settings.app_db_url) as session:
        result = session.execute(
            update(HyperparameterSweep)
            .where(HyperparameterSweep.id == sweep_id, HyperparameterSweep.status.not_in(TERMINAL))
            .values(finished_at=datetime.now(UTC), **values)
        )
        return bool(result.rowcount)  # type: ignore[attr-defined]


def get_sweep(settings: Settings, sweep_id: int) -> SweepRecord:
    with session_scope(settings.app_db_url) as session:
        row = session.get(HyperparameterSweep, sweep_id)
        if row is None:
            raise NotFoundError(f"no sweep with id {sweep_id}")
        return _sweep(row)


def list_sweeps(settings: Settings, agent: str | None = None, limit: int = 50) -> list[SweepRecord]:
    query = select(HyperparameterSweep).order_by(HyperparameterSweep.id.desc()).limit(limit)
    if agent:
        query = query.where(HyperparameterSweep.agent_type == agent)
    with session_scope(settings.app_db_url) as session:
        return [_sweep(r) for r in session.scalars(query)]


def record_trial(settings: Settings, trial: TrialRecord) -> None:
    with session_scope(settings.app_db_url) as session:
        session.add(
            SweepResult(
                sweep_id=trial.sweep_id,
                trial_number=trial.trial_number,
                params=trial.params,
                metrics=trial.metrics,
                objective_value=trial.objective_value,
                status=trial.status,
                child_run_id=trial.child_run_id,
                error=trial.error,
                duration_seconds=trial.duration_seconds,
            )
        )
        session.flush()
        # Live progress for readers of the sweep row (the API, the dashboard); finalize writes the final counts.
        done = select(func.count()).where(SweepResult.sweep_id == trial.sweep_id)
        session.execute(
            update(HyperparameterSweep)
            .where(HyperparameterSweep.id == trial.sweep_id, HyperparameterSweep.status == "running")
            .values(
                n_complete=done.where(SweepResult.status == "complete").scalar_subquery(),
                n_failed=done.where(SweepResult.status != "complete").scalar_subquery(),
            )
        )


def list_trials(settings: Settings, sweep_id: int) -> list[TrialRecord]:
    with session_scope(settings.app_db_url) as session:
        rows = session.scalars(select(SweepResult).where(SweepResult.sweep_id == sweep_id)).all()
        return [_trial(r) for r in rows]


def ranked_trials(settings: Settings, sweep: SweepRecord) -> list[TrialRecord]:
    """Completed trials best first (by the sweep's objective and direction), then failed ones."""
    trials = list_trials(settings, sweep.id)
    done = [t for t in trials if t.status == "complete" and t.objective_value is not None]
    sign = -1.0 if sweep.direction == "maximize" else 1.0
    done.sort(key=lambda t: (sign * (t.objective_value or 0.0), t.trial_number))
    return done + sorted((t for t in trials if t not in done), key=lambda t: t.trial_number)
