"""Rows of the dashboard bench store's written history (see bench/dashboard_store.py): the seed's real rows as
templates and the noise applied to them, the drift checks, and what a year of automation leaves (jobs, scheduled
executions, alerts, audit rows, served predictions). bench/dashboard_history.py writes the model runs."""

from __future__ import annotations

import bisect
import math
import os
import random
import socket
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import inspect, select
from sqlalchemy.orm import Session

from mlops.db.models import (
    Alert,
    AuditLog,
    DriftBaseline,
    DriftMetric,
    Insight,
    Job,
    ModelPerformanceHistory,
    PredictionLog,
    ScheduledExecution,
)
from mlops.settings import AGENTS

HOST, PID = socket.gethostname(), os.getpid()
PROBABILITIES = ("accuracy", "precision", "recall", "f1", "roc_auc", "auc", "turnover", "coverage", "p_value")


def columns(row: Any) -> dict[str, Any]:
    """A row's column values, without its id: what a copy is made from."""
    return {a.key: getattr(row, a.key) for a in inspect(row).mapper.column_attrs if a.key != "id"}


@dataclass
class Template:
    """One agent's real seed rows."""

    agent: str
    run: dict[str, Any]
    quality: dict[str, Any]
    importance: list[dict[str, Any]]
    performance: list[dict[str, Any]]
    baseline: dict[str, Any]
    check: list[dict[str, Any]]
    live: dict[str, Any] | None
    source: str
    params: dict[str, str]
    mlflow_metrics: dict[str, float]
    experiment_id: str
    insights: dict[str, dict[str, Any]]
    artifacts: Path  # the seed run's report artifacts, downloaded


@dataclass
class AgentState:
    version: int
    champion: int
    previous: list[int] = field(default_factory=list)  # champions before, newest last (for rollbacks)
    since: list[tuple[datetime, int]] = field(default_factory=list)  # (from when, champion)
    checked: set[int] = field(default_factory=set)

    def champion_at(self, when: datetime) -> int:
        i = bisect.bisect_right([t for t, _ in self.since], when) - 1
        return self.since[max(i, 0)][1]


@dataclass
class Ids:
    run: int
    job: int


def jitter(value: Any, key: str, rng: random.Random, scale: float = 0.08) -> Any:
    if isinstance(value, bool) or not isinstance(value, float) or not math.isfinite(value):
        return value
    moved = value + (abs(value) + 0.01) * rng.gauss(0.0, scale)
    return min(max(moved, 0.0), 1.0) if any(p in key for p in PROBABILITIES) else moved


def jittered(values: dict[str, Any] | None, rng: random.Random, scale: float = 0.08) -> dict[str, Any]:
    return {k: jitter(v, k, rng, scale) for k, v in (values or {}).items()}


# ---------------------------------------------------------------------------------------------- checks


def write_check(
    session: Session, rng: random.Random, tpl: Template, state: AgentState, ids: Ids, when: datetime
) -> None:
    check_id = uuid.uuid4().hex[:16]
    version = state.champion_at(when)
    state.checked.add(version)
    level = rng.random()
    status = "ok" if level < 0.65 else "warning" if level < 0.88 else "critical"
    features = [r for r in tpl.check if r["drift_type"] == "feature" and r["feature"] is not None]
    drifted = set(rng.sample([r["feature"] for r in features], rng.randint(1, 3))) if status != "ok" else set()
    rows = []
    for row in tpl.check:
        value = jitter(row["value"], "value", rng, 0.25) if row["value"] is not None else None
        details = {k: v for k, v in row["details"].items() if k != "report"}
        row_status = row["status"] if row["status"] in ("ok", "insufficient") else "ok"
        if row["feature"] in drifted and value is not None:
            value = max(value, row["critical_threshold"]) * rng.uniform(1.5, 4.0)
            row_status = status
            details |= {"p_value": rng.uniform(1e-5, 0.004), "adjusted_p": rng.uniform(1e-4, 0.02)}
        rows.append(
            row
            | {
                "check_id": check_id,
                "model_version": version,
                "value": value,
                "status": row_status,
                "details": details,
                "computed_at": when,
            }
        )
    for row in rows:
        if row["drift_type"] == "feature" and row["feature"] is None:
            row["status"] = status
            row["details"] = row["details"] | {
                "drifted": sorted(drifted),
                "critical": sorted(drifted) if status == "critical" else [],
            }
        if row["drift_type"] == "prediction" and status == "critical" and rng.random() < 0.4:
            row["status"] = "warning"
        session.add(DriftMetric(**row))
    if tpl.live is not None:
        sharpe = jitter(tpl.live["sharpe_ratio"], "sharpe", rng, 0.4)
        session.add(
            ModelPerformanceHistory(
                **(
                    tpl.live
                    | {
                        "model_version": version,
                        "sharpe_ratio": sharpe,
                        "recorded_at": when,
                        "metrics": tpl.live["metrics"] | {"sharpe_ratio": sharpe, "check_id": check_id},
                    }
                )
            )
        )
    finished = when + timedelta(seconds=rng.uniform(1, 4))
    job_id = job_row(
        session,
        ids,
        "drift",
        tpl.agent,
        "succeeded",
        "scheduler",
        {"agent": tpl.agent},
        {"check_ids": [check_id], "status": {tpl.agent: status}},
        None,
        when,
        finished,
    )
    execution_row(session, "drift_check", when, "succeeded", [job_id], f"{tpl.agent}: {status}")
    audit_row(
        session,
        "scheduler",
        "drift check",
        {"agent": tpl.agent, "window_bars": 250},
        {"check_ids": [check_id], "status": {tpl.agent: status}},
        finished,
    )
    if status == "critical":
        names = ", ".join(sorted(drifted))
        alert_row(
            session,
            "critical",
            "drift_critical",
            tpl.agent,
            f"{tpl.agent} v{version}: critical drift in {names}",
            {"check_id": check_id, "features": sorted(drifted)},
            finished,
        )
        insight = tpl.insights.get("drift")
        if insight is not None:
            session.add(Insight(**(insight | {"subject_id": check_id, "created_at": finished, "alert_ids": []})))


def write_baselines(session: Session, tpl: Template, state: AgentState) -> None:
    """A baseline for every version checked or deployed now (each a copy of the seed's: the same model)."""
    have = set(session.scalars(select(DriftBaseline.model_version).filter_by(agent_type=tpl.agent)))
    for version in sorted((state.checked | {state.champion}) - have):
        session.add(DriftBaseline(**(tpl.baseline | {"model_version": version})))


# ------------------------------------------------------------------------------------- automation rows


def write_routine(
    session: Session, rng: random.Random, states: dict[str, AgentState], ids: Ids, start: datetime, end: datetime
) -> None:
    """Weekly validations, served predictions (a few a day per agent) and skipped scheduled retrains."""
    day = start
    while day < end:
        for agent, state in states.items():
            for _ in range(rng.randint(2, 6)):
                at = day + timedelta(seconds=rng.uniform(0, 86_400))
                session.add(
                    PredictionLog(
                        agent_type=agent,
                        model_version=state.champion_at(at),
                        alias="champion",
                        symbol="SYNTH",
                        n_rows=rng.randint(1, 50),
                        mean_probability=rng.uniform(0.1, 0.7),
                        requested_by="trading-api",
                        created_at=at,
                    )
                )
        if day.weekday() == 6:
            at = day.replace(hour=3, minute=0, second=0, microsecond=0)
            job_id = job_row(
                session,
                ids,
                "validation",
                None,
                "succeeded",
                "scheduler",
                {},
                {"passed": True},
                None,
                at,
                at + timedelta(seconds=20),
            )
            execution_row(session, "weekly_validation", at, "succeeded", [job_id], "every champion passed")
        if rng.random() < 0.3:
            at = day.replace(hour=2, minute=0, second=0, microsecond=0)
            agent = rng.choice(AGENTS)
            execution_row(session, f"retrain_{agent}", at, "skipped", [], "no new bars since the champion's training")
        day += timedelta(days=1)


def job_row(
    session: Session,
    ids: Ids,
    kind: str,
    agent: str | None,
    status: str,
    actor: str,
    parameters: dict[str, Any],
    result: dict[str, Any],
    error: str | None,
    began: datetime,
    ended: datetime,
    model_run_id: int | None = None,
) -> int:
    job_id = ids.job
    ids.job += 1
    session.add(
        Job(
            id=job_id,
            kind=kind,
            agent_type=agent,
            status=status,
            parameters=parameters,
            result=result,
            error=error,
            requested_by=actor,
            model_run_id=model_run_id,
            timeout_seconds=3600.0,
            pid=PID,
            hostname=HOST,
            created_at=began,
            started_at=began + timedelta(milliseconds=300),
            finished_at=ended,
        )
    )
    return job_id


def execution_row(
    session: Session, job_name: str, when: datetime, status: str, job_ids: list[int], summary: str
) -> None:
    session.add(
        ScheduledExecution(
            job_name=job_name,
            scheduled_for=when,
            trigger="schedule",
            requested_by="scheduler",
            status=status,
            job_ids=job_ids,
            result={"summary": summary},
            hostname=HOST,
            pid=PID,
            started_at=when,
            finished_at=when + timedelta(seconds=30),
        )
    )


def audit_row(
    session: Session, actor: str, action: str, parameters: dict[str, Any], result: dict[str, Any], when: datetime
) -> None:
    session.add(AuditLog(actor=actor, action=action, parameters=parameters, result=result, created_at=when))


def alert_row(
    session: Session, severity: str, kind: str, agent: str | None, message: str, details: dict[str, Any], when: datetime
) -> None:
    acknowledged = when < datetime.now(when.tzinfo) - timedelta(days=7)
    session.add(
        Alert(
            severity=severity,
            kind=kind,
            agent_type=agent,
            message=message,
            details=details,
            dedup_key=f"{kind}:{agent}:{uuid.uuid4().hex[:8]}",
            first_seen=when,
            last_seen=when,
            count=1,
            acknowledged_by="dashboard:ana-admin" if acknowledged else None,
            acknowledged_at=when + timedelta(hours=3) if acknowledged else None,
        )
    )
