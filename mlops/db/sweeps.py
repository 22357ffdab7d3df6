"""The app DB mirror of sweeps: `hyperparameter_sweeps` (one row per sweep) and `sweep_results`
(one row per trial attempt), read as typed records. Optuna's storage stays the source of truth for
claims and trial states; these rows are what the CLI, the API and the dashboard list."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import func, select, update

from mlops.db import session_scope
from mlops.db.models import HyperparameterSweep, SweepResult
from mlops.errors import NotFoundError
from mlops.settings import Settings

TERMINAL = ("completed", "stopped", "failed")


class SelectionReport(BaseModel):
    """What a sweep stores about its winner's selection bias (computed by `sweeps.selection`).
    Sharpe ratios and their variance are annualised (as the trials' `sharpe_ratio`), on the validation
    window; dsr/psr are probabilities; p_value = 1 − dsr. Fields are None when no DSR could be
    computed, and `verdict` says why."""

    model_config = ConfigDict(frozen=True, extra="ignore")  # keys written by other versions are ignored

    verdict: str = "no verdict recorded"
    n_trials: int = 0
    objective: str = "sharpe_ratio"
    best_trial_number: int | None = None
    best_sharpe: float | None = None
    sharpe_variance: float | None = None
    expected_max_sharpe: float | None = None
    dsr: float | None = None
    psr_vs_zero: float | None = None
    p_value: float | None = None
    significant: bool | None = None
    alpha: float = 0.05
    periods_per_year: float | None = None
    n_samples: int | None = None
    returns_skew: float | None = None
    returns_kurtosis: float | None = None
    moments: str | None = None  # "measured", or why normal returns were assumed
    notes: list[str] = Field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return self.model_dump(mode="json")

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> SelectionReport:
        return cls.model_validate(dict(data))


class SweepRecord(BaseModel):
    model_config = ConfigDict(from_attributes=True, frozen=True)

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

    @property
    def stop_reason(self) -> str | None:
        """Why a sweep ended before its grid was exhausted (stopped or failed), else None."""
        return self.error if self.status in ("stopped", "failed") else None


class TrialRecord(BaseModel):
    model_config = ConfigDict(from_attributes=True, frozen=True)

    sweep_id: int
    trial_number: int
    params: dict[str, Any]
    status: str  # complete | failed
    objective_value: float | None
    metrics: dict[str, float] = Field(default_factory=dict)
    child_run_id: str | None = None
    error: str | None = None
    duration_seconds: float | None = None


def create_sweep_row(settings: Settings, **values: Any) -> SweepRecord:
    with session_scope(settings.app_db_url) as session:
        row = HyperparameterSweep(**values)
        session.add(row)
        session.flush()
        return SweepRecord.model_validate(row)


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
        return SweepRecord.model_validate(row)


def list_sweeps(settings: Settings, agent: str | None = None, limit: int = 50) -> list[SweepRecord]:
    query = select(HyperparameterSweep).order_by(HyperparameterSweep.id.desc()).limit(limit)
    if agent:
        query = query.where(HyperparameterSweep.agent_type == agent)
    with session_scope(settings.app_db_url) as session:
        return [SweepRecord.model_validate(r) for r in session.scalars(query)]


def record_trial(settings: Settings, trial: TrialRecord) -> None:
    """One trial attempt's row, and the sweep row's live counts (for readers of the sweep while it
    runs: the API, the dashboard; finalize writes the final ones)."""
    with session_scope(settings.app_db_url) as session:
        session.add(SweepResult(**trial.model_dump()))
        session.flush()
        done = select(func.count()).where(SweepResult.sweep_id == trial.sweep_id)
        session.execute(
            update(HyperparameterSweep)
            .where(HyperparameterSweep.id == trial.sweep_id, HyperparameterSweep.status == "running")
            .values(
                n_complete=done.where(SweepResult.status == "complete").scalar_subquery(),
                n_failed=done.where(SweepResult.status != "complete").scalar_subquery(),
            )
        )


def find_trial(settings: Settings, sweep_id: int, trial_number: int) -> TrialRecord | None:
    with session_scope(settings.app_db_url) as session:
        row = session.scalar(
            select(SweepResult).where(SweepResult.sweep_id == sweep_id, SweepResult.trial_number == trial_number)
        )
        return TrialRecord.model_validate(row) if row is not None else None


def list_trials(settings: Settings, sweep_id: int) -> list[TrialRecord]:
    with session_scope(settings.app_db_url) as session:
        rows = session.scalars(select(SweepResult).where(SweepResult.sweep_id == sweep_id)).all()
        return [TrialRecord.model_validate(r) for r in rows]


def ranked_trials(settings: Settings, sweep: SweepRecord) -> list[TrialRecord]:
    """Completed trials best first (by the sweep's objective and direction), then failed ones."""
    trials = list_trials(settings, sweep.id)
    done = [t for t in trials if t.status == "complete" and t.objective_value is not None]
    sign = -1.0 if sweep.direction == "maximize" else 1.0
    done.sort(key=lambda t: (sign * (t.objective_value or 0.0), t.trial_number))
    return done + sorted((t for t in trials if t not in done), key=lambda t: t.trial_number)
