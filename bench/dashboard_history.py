"""The written part of the dashboard bench store (see bench/dashboard_store.py): a year of model runs derived
with noise from each agent's real seed rows (a retrain and a drift check), so every value has the shape and the
scale the services produce. MLflow runs and registered versions are real entries of the store (the versions'
source is the seed's real model); the drift checks and the automation rows come from bench/dashboard_rows.py."""

from __future__ import annotations

import contextlib
import random
import tempfile
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from bench.dashboard_rows import (
    HOST,
    PID,
    AgentState,
    Ids,
    Template,
    alert_row,
    audit_row,
    columns,
    execution_row,
    jitter,
    jittered,
    job_row,
    write_baselines,
    write_check,
    write_routine,
)
from mlops.db import session_scope
from mlops.db.models import (
    DriftBaseline,
    DriftMetric,
    FeatureImportance,
    Insight,
    Job,
    ModelDeployment,
    ModelPerformanceHistory,
    ModelRun,
    TrainingDataQuality,
)
from mlops.settings import AGENTS, Settings

PEOPLE = ("cli:ana", "ops-bot", "dashboard:ana-admin", "cli:jo")
TRIGGERS = (("scheduled", 55), ("manual", 22), ("drift", 15), ("performance", 5), ("sweep", 3))
RETRAIN_ERRORS = (
    "job timed out after 3600 s",
    "worker process 41213 died (exit code -9) while the run was running",
    "MLflow unreachable: HTTPConnectionPool(host='127.0.0.1', port=5001): Max retries exceeded",
)
QUALITY_PROBLEMS = (
    "positive share 0.94 in training: the labels are nearly constant",
    "412 bars missing after 2026-03-02 (11.8 % of the sessions)",
    "37 non-finite feature rows",
)


def load_template(settings: Settings, agent: str, run_id: int, check_id: str, folder: Path) -> Template:
    from tracking.client import get_client

    client = get_client(settings)
    artifacts = folder / agent
    artifacts.mkdir()
    with session_scope(settings.app_db_url) as session:
        run = session.get_one(ModelRun, run_id)
        version = run.model_version
        mlflow = client.get_run(run.mlflow_run_id)
        insights = {
            r.subject: columns(r)
            for r in session.scalars(
                select(Insight).where(
                    ((Insight.subject == "retrain") & (Insight.subject_id == str(run_id)))
                    | ((Insight.subject == "drift") & (Insight.subject_id == check_id))
                )
            )
        }
        live = session.scalar(
            select(ModelPerformanceHistory).where(
                ModelPerformanceHistory.agent_type == agent, ModelPerformanceHistory.window == "live"
            )
        )
        return Template(
            agent=agent,
            run=columns(run),
            quality=columns(session.scalars(select(TrainingDataQuality).filter_by(model_run_id=run_id)).one()),
            importance=[columns(r) for r in session.scalars(select(FeatureImportance).filter_by(model_run_id=run_id))],
            performance=[
                columns(r) for r in session.scalars(select(ModelPerformanceHistory).filter_by(model_run_id=run_id))
            ],
            baseline=columns(
                session.scalars(select(DriftBaseline).filter_by(agent_type=agent, model_version=version)).one()
            ),
            check=[columns(r) for r in session.scalars(select(DriftMetric).filter_by(check_id=check_id))],
            live=columns(live) if live is not None else None,
            source=client.get_model_version(agent, str(version)).source,
            params=dict(mlflow.data.params),
            mlflow_metrics=dict(mlflow.data.metrics),
            experiment_id=mlflow.info.experiment_id,
            insights=insights,
            artifacts=Path(client.download_artifacts(run.mlflow_run_id, "", str(artifacts))),
        )


def write_history(
    settings: Settings,
    seed: dict[str, tuple[int, int, str]],
    n_runs: int,
    n_checks: int,
    start: datetime,
    end: datetime,
) -> None:
    """`n_runs` model runs and `n_checks` drift checks between `start` and `end` (see the module docstring)."""

    with tempfile.TemporaryDirectory() as folder:
        templates = {a: load_template(settings, a, seed[a][0], seed[a][2], Path(folder)) for a in AGENTS}
        _write(settings, templates, seed, n_runs, n_checks, start, end)


def _write(
    settings: Settings,
    templates: dict[str, Template],
    seed: dict[str, tuple[int, int, str]],
    n_runs: int,
    n_checks: int,
    start: datetime,
    end: datetime,
) -> None:
    from tracking.client import get_client

    rng = random.Random(2026)
    states = {a: AgentState(version=v, champion=v, since=[(start, v)]) for a, (_, v, _) in seed.items()}
    client = get_client(settings)
    span = (end - start).total_seconds()
    times = sorted(start + timedelta(seconds=span * (i + rng.random()) / n_runs) for i in range(n_runs))
    with session_scope(settings.app_db_url) as session:
        ids = Ids(
            run=int(session.scalar(select(func.max(ModelRun.id))) or 0) + 1,
            job=int(session.scalar(select(func.max(Job.id))) or 0) + 1,
        )
        for i, when in enumerate(times):
            agent = AGENTS[i % len(AGENTS)]
            write_run(session, client, rng, templates[agent], states[agent], ids, when)
        check_times = [start + timedelta(seconds=span * (i + 0.5) / n_checks) for i in range(n_checks)]
        for i, when in enumerate(check_times):
            agent = AGENTS[i % len(AGENTS)]
            write_check(session, rng, templates[agent], states[agent], ids, when)
        for agent, state in states.items():
            write_baselines(session, templates[agent], state)
            set_aliases(client, agent, session)
        write_routine(session, rng, states, ids, start, end)


# ------------------------------------------------------------------------------------------------ runs


def write_run(
    session: Session, client: Any, rng: random.Random, tpl: Template, state: AgentState, ids: Ids, when: datetime
) -> None:
    from mlflow.entities import Metric, Param, RunTag

    run_id, agent = ids.run, tpl.agent
    ids.run += 1
    trigger = rng.choices([t for t, _ in TRIGGERS], [w for _, w in TRIGGERS])[0]
    actor = {"scheduled": "scheduler", "drift": "automation", "performance": "automation"}.get(
        trigger, rng.choice(PEOPLE)
    )
    roll = rng.random()
    outcome = "failed" if roll < 0.04 else "quality" if roll < 0.08 else "passed" if roll < 0.40 else "rejected"
    took = timedelta(seconds=rng.uniform(6, 45))
    finished = when + took
    hp = dict(tpl.run["hyperparameters"])
    hp["learning_rate"] = rng.choice([0.002, 0.005, 0.01, 0.02, hp["learning_rate"]])
    hp["hidden_units"] = rng.choice([0, 8, 16, 32, hp["hidden_units"]])
    metrics = jittered(tpl.run["metrics"], rng) if outcome in ("passed", "rejected") else {}
    ms = lambda t: int(t.timestamp() * 1000)  # noqa: E731
    tags = {"skippy.agent": agent, "skippy.model_run_id": str(run_id), "skippy.trigger": trigger}
    tags |= {"skippy.symbol": tpl.run["symbol"], "mlflow.user": actor}
    mlflow_run = client.create_run(
        tpl.experiment_id, start_time=ms(when), run_name=f"{agent}-retrain-{run_id}", tags=tags
    )
    mlflow_id = mlflow_run.info.run_id
    status = {"passed": "succeeded", "rejected": "rejected", "quality": "rejected", "failed": "failed"}[outcome]
    deployment = {"passed": "promoted", "rejected": "rejected", "quality": "rejected", "failed": None}[outcome]
    version = None
    validation = None
    error = None
    params = tpl.params | {k: str(v) for k, v in hp.items()}
    logged = jittered(tpl.mlflow_metrics, rng) if outcome in ("passed", "rejected") else {}
    client.log_batch(
        mlflow_id,
        metrics=[Metric(k, float(v), ms(finished), 0) for k, v in logged.items() if isinstance(v, float)],
        params=[Param(k, v) for k, v in params.items()],
    )
    if outcome in ("passed", "rejected"):
        validation = _validation(tpl, rng, outcome == "passed", state.version + 1, state.champion)
        if outcome == "rejected":
            error = validation["verdict"]
        version = state.version + 1
        mv = client.create_model_version(
            agent,
            source=tpl.source,
            run_id=mlflow_id,
            tags={"skippy.model_run_id": str(run_id), "validation": "passed" if outcome == "passed" else "rejected"},
            description=validation["verdict"],
        )
        if int(mv.version) != version:
            raise SystemExit(f"MLflow registered {agent} v{mv.version}, the history expected v{version}")
        state.version = version
        client.log_artifacts(mlflow_id, str(tpl.artifacts))
    elif outcome == "failed":
        error = rng.choice(RETRAIN_ERRORS)
    else:
        error = "data quality gate failed: " + rng.choice(QUALITY_PROBLEMS)
    close_tags = [RunTag("skippy.status", status)]
    if deployment:
        close_tags.append(RunTag("skippy.deployment_status", deployment))
    client.log_batch(mlflow_id, tags=close_tags)
    client.set_terminated(mlflow_id, "FAILED" if outcome == "failed" else "FINISHED", end_time=ms(finished))
    session.add(
        ModelRun(
            id=run_id,
            agent_type=agent,
            status=status,
            trigger=trigger,
            requested_by=actor,
            symbol=tpl.run["symbol"],
            mlflow_run_id=mlflow_id,
            mlflow_experiment_id=tpl.experiment_id,
            model_version=version,
            deployment_status=deployment,
            hyperparameters=hp,
            metrics=metrics,
            validation=validation,
            error=error,
            data_end=tpl.run["data_end"],
            pid=PID,
            hostname=HOST,
            created_at=when,
            started_at=when + timedelta(seconds=1),
            finished_at=finished,
            updated_at=finished,
        )
    )
    session.flush()  # the run's id exists before the rows that refer to it
    if outcome != "failed":
        quality = tpl.quality | {"model_run_id": run_id, "created_at": when + timedelta(seconds=2)}
        if outcome == "quality":
            quality |= {"passed": False, "problems": [str(error).removeprefix("data quality gate failed: ")]}
        session.add(TrainingDataQuality(**quality))
    if version is not None:
        _version_rows(session, rng, tpl, run_id, version, finished)
    if outcome == "passed":
        _promote(session, rng, tpl, state, run_id, version, metrics, actor, finished)  # type: ignore[arg-type]
    job_id = (
        job_row(
            session,
            ids,
            "retrain",
            agent,
            status,
            actor,
            {"agent": agent, "trigger": trigger},
            {"model_run_id": run_id, "status": status, "model_version": version},
            error,
            when,
            finished,
            model_run_id=run_id,
        )
        if actor != "cli:ana"
        else None
    )
    if trigger == "scheduled" and job_id is not None:
        execution_row(session, f"retrain_{agent}", when, status, [job_id], f"retrain of {agent} queued as job {job_id}")
    audit_row(
        session,
        actor,
        "retrain",
        {"agent": agent, "trigger": trigger, "model_run_id": run_id},
        {"status": status, "deployment_status": deployment, "model_version": version},
        finished,
    )
    _retrain_alert(session, rng, agent, trigger, outcome, run_id, version, error, finished)
    insight = tpl.insights.get("retrain")
    if insight is not None:
        session.add(Insight(**(insight | {"subject_id": str(run_id), "created_at": finished, "alert_ids": []})))


def _validation(tpl: Template, rng: random.Random, passed: bool, version: int, champion: int) -> dict[str, Any]:
    """The gate's record, worded as the gate words it (the comparison against the champion)."""
    record = dict(tpl.run["validation"] or {})
    diff = rng.uniform(0.05, 0.9) if passed else rng.uniform(-0.8, 0.15)
    p = rng.uniform(0.001, 0.045) if passed else rng.uniform(0.06, 0.95)
    rule = f"Sharpe above the champion's, paired block bootstrap p < 0.05: {diff:+.3f}, p {p:.3f}"
    verdict = (
        f"v{version} passed against champion v{champion}: {rule}"
        if passed
        else f"v{version} was rejected against champion v{champion}: {rule}"
    )
    metrics = jittered(record.get("metrics"), rng) | {"gate_sharpe_diff": diff, "gate_p_value": p}
    return record | {
        "passed": passed,
        "verdict": verdict,
        "comparison": "champion",
        "champion_version": champion,
        "metrics": metrics,
    }


def _version_rows(
    session: Session, rng: random.Random, tpl: Template, run_id: int, version: int, when: datetime
) -> None:
    importances = [(r, max(jitter(r["importance"], "importance", rng, 0.4), 0.0)) for r in tpl.importance]
    importances.sort(key=lambda pair: pair[1], reverse=True)
    for rank, (row, value) in enumerate(importances, start=1):
        session.add(
            FeatureImportance(
                **(
                    row
                    | {
                        "model_version": version,
                        "model_run_id": run_id,
                        "importance": value,
                        "rank": rank,
                        "importance_std": abs(jitter(row["importance_std"], "std", rng, 0.2)),
                        "created_at": when,
                    }
                )
            )
        )
    for row in tpl.performance:
        metrics = jittered(row["metrics"], rng)
        named = {
            k: metrics.get(k, row[k])
            for k in ("accuracy", "precision", "recall", "f1", "log_loss", "sharpe_ratio", "max_drawdown")
        }
        session.add(
            ModelPerformanceHistory(
                **(
                    row
                    | named
                    | {"model_version": version, "model_run_id": run_id, "metrics": metrics, "recorded_at": when}
                )
            )
        )


def _promote(
    session: Session,
    rng: random.Random,
    tpl: Template,
    state: AgentState,
    run_id: int,
    version: int,
    metrics: dict[str, Any],
    actor: str,
    when: datetime,
) -> None:
    reason = f"v{version} passed the gate against v{state.champion}"
    summary = {k: v for k, v in metrics.items() if not k.startswith("test_")}
    moves = [
        ("challenger", "challenger", None),
        ("champion", "promote", state.champion),
        ("challenger", "clear", version),
    ]
    for step, (alias, action, from_version) in enumerate(moves):
        session.add(
            ModelDeployment(
                agent_type=tpl.agent,
                alias=alias,
                action=action,
                from_version=from_version,
                to_version=version,
                actor=actor,
                reason=reason if action != "clear" else f"v{version} promoted to champion",
                metrics=summary if action != "clear" else {},
                model_run_id=run_id,
                created_at=when + timedelta(milliseconds=20 * step),
            )
        )
    state.previous.append(state.champion)
    state.champion = version
    state.since.append((when, version))
    if rng.random() < 0.06:  # a champion that lost money on probation: the watch rolled it back
        back = state.previous.pop()
        later = when + timedelta(days=rng.uniform(2, 6))
        session.add(
            ModelDeployment(
                agent_type=tpl.agent,
                alias="champion",
                action="rollback",
                from_version=version,
                to_version=back,
                actor="automation",
                reason=f"auto-rollback: v{version} trailed v{back} on probation (sequential Sharpe test, p 0.004)",
                metrics={},
                created_at=later,
            )
        )
        alert_row(
            session,
            "critical",
            "auto_rollback",
            tpl.agent,
            f"{tpl.agent}: v{version} rolled back to v{back}",
            {"from_version": version, "to_version": back},
            later,
        )
        state.champion = back
        state.since.append((later, back))


def set_aliases(client: Any, agent: str, session: Session) -> None:
    """MLflow's aliases where the written deployment history leaves them."""
    from mlops.pipeline.deployments import current_aliases

    session.flush()
    for alias, version in current_aliases(session, agent).items():
        if version is not None:
            client.set_registered_model_alias(agent, alias, str(version))
        else:
            with contextlib.suppress(Exception):  # never set: nothing to delete
                client.delete_registered_model_alias(agent, alias)


def _retrain_alert(
    session: Session,
    rng: random.Random,
    agent: str,
    trigger: str,
    outcome: str,
    run_id: int,
    version: int | None,
    error: str | None,
    when: datetime,
) -> None:
    """As the job reactions raise them: only for automatic retrains."""
    if trigger not in ("scheduled", "drift", "performance"):
        return
    loop = trigger != "scheduled"
    details = {"model_run_id": run_id, "model_version": version, "trigger": trigger}
    if outcome == "failed":
        alert_row(
            session,
            "warning",
            "retrain_failed",
            agent,
            f"The {trigger} retrain of {agent} (run {run_id}) failed: {error}",
            details,
            when,
        )
    elif outcome in ("rejected", "quality") and (loop or rng.random() < 0.3):
        which = f"run {run_id}, v{version}" if version is not None else f"run {run_id}"
        alert_row(
            session,
            "warning" if loop else "info",
            "retrain_rejected",
            agent,
            f"The {trigger} retrain of {agent} ({which}) was rejected: {error}",
            details,
            when,
        )
    elif outcome == "passed" and loop:
        alert_row(
            session, "info", "retrain_promoted", agent, f"{agent} v{version} promoted after {trigger}", details, when
        )
