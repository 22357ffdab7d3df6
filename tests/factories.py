"""Test data without a retrain: app-database rows (model runs, deployments, drift checks, jobs) with
sensible defaults and keyword overrides, the promotion gate's inputs from seeded numpy series, training
sets for the quality gate, and a store with a synthetic market.

Row factories take an open session (`with session_scope(settings.app_db_url) as session:`), add the row,
flush it (so its id is set) and return it; any column can be overridden by keyword."""

from __future__ import annotations

import shutil
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from mlops.agents.metrics import net_returns
from mlops.agents.specs import SPECS
from mlops.agents.training import Dataset, build_dataset
from mlops.db.models import DriftMetric, Job, ModelDeployment, ModelRun
from mlops.pipeline.validation import GateInputs, Scored, ValidationDecision
from mlops.settings import Settings
from tests.conftest import bars_frame, make_settings

# --- app-database rows ---------------------------------------------------------------------------------

RUN_METRICS: dict[str, float] = {
    "accuracy": 0.54,
    "precision": 0.55,
    "recall": 0.6,
    "f1": 0.57,
    "val_loss": 0.69,
    "sharpe_ratio": 0.8,
    "test_sharpe_ratio": 0.6,
    "max_drawdown": -0.12,
    "turnover": 0.3,
    "buy_hold_sharpe_ratio": 0.4,
}


def validation_record(
    passed: bool = True, *, champion_version: int | None = None, metrics: dict[str, float] | None = None
) -> dict[str, Any]:
    """A `model_runs.validation` value of the shape the gate records (`ValidationDecision.record()`)."""
    against = f"champion v{champion_version} (champion scored)" if champion_version else "naive baselines"
    verdict = "passed" if passed else "rejected"
    check = "beats_champion_sharpe" if champion_version else "edge_sharpe_vs_always_long"
    rule: dict[str, Any] = {
        "passed": passed,
        "value": 0.3 if passed else -0.1,
        "p_value": 0.01 if passed else 0.4,
        "rule": "Sharpe above the comparator's",
    }
    return ValidationDecision(
        passed=passed,
        reason=f"{verdict} against {against}: {check} {'ok' if passed else 'FAILED'}",
        champion_version=champion_version,
        comparison="champion_scored" if champion_version else "none",
        metrics={"gate_p_value": rule["p_value"], "gate_sharpe_diff": rule["value"], "gate_passed": float(passed)}
        | dict(metrics or {}),
        checks={check: rule},
    ).record()


def _next_version(session: Session, agent: str) -> int:
    newest = session.scalar(select(func.max(ModelRun.model_version)).where(ModelRun.agent_type == agent))
    return int(newest or 0) + 1


def model_run(session: Session, **overrides: Any) -> ModelRun:
    """A finished retrain's row. `status` decides the defaults of the rest: succeeded → a new model
    version, promoted, a passed validation; rejected → a new version, rejected, the verdict as error;
    failed → no version, an error; queued/running → not started/finished."""
    status = overrides.get("status", "succeeded")
    agent = overrides.get("agent_type", "market_insight")
    now = datetime.now(UTC)
    registered = status in ("succeeded", "rejected")
    validation = validation_record(status == "succeeded") if registered else None
    values: dict[str, Any] = {
        "agent_type": agent,
        "status": status,
        "trigger": "manual",
        "requested_by": "cli:test",
        "symbol": "SYNTH",
        "mlflow_run_id": uuid.uuid4().hex if status != "queued" else None,
        "mlflow_experiment_id": "1" if status != "queued" else None,
        "model_version": _next_version(session, agent) if registered else None,
        "deployment_status": {"succeeded": "promoted", "rejected": "rejected"}.get(status),
        "hyperparameters": SPECS[agent].defaults.model_dump() if agent in SPECS else {},
        "metrics": dict(RUN_METRICS) if registered else {},
        "validation": validation,
        "error": {"rejected": validation and validation["verdict"], "failed": "training diverged"}.get(status),
        "created_at": now - timedelta(minutes=2),
        "started_at": None if status == "queued" else now - timedelta(minutes=2),
        "finished_at": now if status in ("succeeded", "rejected", "failed") else None,
    } | overrides
    row = ModelRun(**values)
    session.add(row)
    session.flush()
    return row


def deployment(session: Session, **overrides: Any) -> ModelDeployment:
    """One alias move (default: v1 promoted to champion of market_insight, from nothing)."""
    values: dict[str, Any] = {
        "agent_type": "market_insight",
        "alias": "champion",
        "action": "promote",
        "from_version": None,
        "to_version": 1,
        "actor": "cli:test",
        "reason": "passed the gate",
        "metrics": {},
        "model_run_id": None,
    } | overrides
    row = ModelDeployment(**values)
    session.add(row)
    session.flush()
    return row


def drift_metric(session: Session, **overrides: Any) -> DriftMetric:
    """One statistic of one drift check (default: an `ok` KL divergence of `ret_1`)."""
    now = datetime.now(UTC)
    values: dict[str, Any] = {
        "check_id": uuid.uuid4().hex,
        "symbol": "SYNTH",
        "agent_type": "market_insight",
        "model_version": 1,
        "drift_type": "feature",
        "feature": "ret_1",
        "statistic": "kl_divergence",
        "value": 0.01,
        "warning_threshold": 0.05,
        "critical_threshold": 0.1,
        "status": "ok",
        "details": {},
        "reference_start": now - timedelta(days=900),
        "reference_end": now - timedelta(days=300),
        "current_start": now - timedelta(days=250),
        "current_end": now,
        "computed_at": now,
    } | overrides
    row = DriftMetric(**values)
    session.add(row)
    session.flush()
    return row


def drift_check(session: Session, rows: list[dict[str, Any]], **shared: Any) -> list[DriftMetric]:
    """The rows of one drift check: each dict overrides one row, `shared` overrides all of them, and
    all carry the same `check_id`."""
    shared = {"check_id": uuid.uuid4().hex, "computed_at": datetime.now(UTC)} | shared
    return [drift_metric(session, **(shared | row)) for row in rows]


def job(session: Session, **overrides: Any) -> Job:
    """A job row (default: a queued drift check of every agent, no model run or sweep behind it).
    A running job gets a start time; give it `hostname`/`pid` to say whose worker runs it."""
    status = overrides.get("status", "queued")
    values: dict[str, Any] = {
        "kind": "drift",
        "agent_type": None,
        "status": status,
        "parameters": {},
        "result": {},
        "requested_by": "api:test",
        "timeout_seconds": 3600.0,
        "started_at": datetime.now(UTC) if status == "running" else None,
    } | overrides
    row = Job(**values)
    session.add(row)
    session.flush()
    return row


# --- stores --------------------------------------------------------------------------------------------


def store(home: Path, *, mlflow_store: Path | None = None, **overrides: Any) -> Settings:
    """Settings on fresh, empty stores under `home`. `mlflow_store`: a migrated empty MLflow SQLite file to
    start the MLflow store from (the `empty_mlflow_store` fixture), instead of migrating a new one."""
    from mlops.stores import init_stores

    settings = make_settings(home, **overrides)
    target = Path(settings.tracking_uri.removeprefix("sqlite:///"))
    if mlflow_store is not None and settings.tracking_uri.startswith("sqlite:///") and not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(mlflow_store, target)
    init_stores(settings)
    return settings


def market_store(
    home: Path,
    *,
    symbol: str = "SYNTH",
    n_bars: int = 1500,
    seed: int = 3,
    mlflow_store: Path | None = None,
    **overrides: Any,
) -> Settings:
    """`store` holding one synthetic market (the default one is a market whose first models have an edge
    over the naive baselines)."""
    from mlops.data.generate import generate_market

    settings = store(home, mlflow_store=mlflow_store, **overrides)
    generate_market(settings, symbol=symbol, n_bars=n_bars, seed=seed)
    return settings


# --- the quality gate's input --------------------------------------------------------------------------


def training_set(
    agent: str = "market_insight", *, n_bars: int = 1500, seed: int = 3, **hyperparameters: Any
) -> Dataset:
    """A training set built the way a retrain builds it, from a synthetic market."""
    spec = SPECS[agent]
    return build_dataset(bars_frame(n_bars, seed=seed), spec, spec.hyperparameters(hyperparameters))


# --- the promotion gate's inputs -----------------------------------------------------------------------

GATE_BARS = 750


def market_moves(seed: int = 0, *, drift: float = 0.0003, n: int = GATE_BARS) -> np.ndarray:
    """Per-bar market returns: normal, 1 % daily volatility."""
    return np.random.default_rng(seed).normal(drift, 0.01, n)


def foresight(moves: np.ndarray, share: float, seed: int) -> np.ndarray:
    """Positions that know the next move's sign on a random `share` of bars and are random elsewhere:
    more foresight is a truly better strategy on the same bars."""
    rng = np.random.default_rng(seed)
    known = rng.random(len(moves)) < share
    return np.where(known, np.sign(moves), rng.choice([-1.0, 1.0], len(moves)))


def strategy(positions: np.ndarray, moves: np.ndarray, p: np.ndarray | None = None, **kw: Any) -> Scored:
    """A model's output on the comparison bars: its positions' net returns at a 1 bp cost."""
    return Scored(
        p=np.full(len(moves), 0.5) if p is None else p,
        positions=positions,
        returns=net_returns(positions, moves, 1.0),
        **kw,
    )


def gate_inputs(moves: np.ndarray, candidate: Scored, champion: Scored | None = None, **overrides: Any) -> GateInputs:
    """market_insight's gate inputs on daily bars (a champion, when given, is v1 scored on these bars)."""
    values: dict[str, Any] = {
        "agent": "market_insight",
        "y": (moves > 0).astype(float),
        "next_returns": moves,
        "market": net_returns(np.ones(len(moves)), moves, 1.0),
        "periods_per_year": 252.0,
        "train_positive_share": 0.53,
        "candidate": candidate,
    }
    if champion is not None:
        values |= {"champion": champion, "champion_version": 1, "comparison": "champion_scored"}
    return GateInputs(**(values | overrides))


def tail_labels(seed: int, share: float = 0.1, n: int = GATE_BARS) -> np.ndarray:
    """risk_assessor labels: 1 on a random `share` of bars (the tails)."""
    return (np.random.default_rng(seed).random(n) < share).astype(float)


def tail_probabilities(y: np.ndarray, skill: float, seed: int, base: float = 0.1) -> np.ndarray:
    """Predicted tail probabilities that rise by `skill` on the bars that are tails (0: no information)."""
    noise = np.random.default_rng(seed).normal(0, 0.03, len(y))
    return np.clip(base + skill * (y - base) + noise, 0.01, 0.99)


def risk_scored(p: np.ndarray, moves: np.ndarray, tail_share: float = 0.1) -> Scored:
    """risk_assessor's output: exposure cut as the tail probability rises above the base rate."""
    exposure = np.clip(1 - (p - tail_share) / tail_share, 0, 1)
    return Scored(p=p, positions=exposure, returns=net_returns(exposure, moves, 1.0), tail_share=tail_share)


def risk_gate_inputs(
    y: np.ndarray, p: np.ndarray, moves: np.ndarray, champion: Scored | None = None, **overrides: Any
) -> GateInputs:
    return gate_inputs(
        moves,
        risk_scored(p, moves),
        champion,
        **({"agent": "risk_assessor", "y": y, "train_positive_share": 0.1} | overrides),
    )
