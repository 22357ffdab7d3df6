"""What the dashboard's landing page shows per agent, in a handful of bounded queries whatever the size of the
store: where champion and challenger point and the runs that trained them (held-out metrics, the gate's
checks and their baselines), the newest retrain and its outcome, the newest drift check's status per kind and
the open alerts. No MLflow: everything is read from the rows the write side mirrors."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict
from sqlalchemy import func, select

from mlops.alerts import list_alerts
from mlops.alerts.records import AlertRecord
from mlops.db import session_scope
from mlops.db.models import Alert, ModelRun
from mlops.pipeline.deployments import CHALLENGER, CHAMPION, current_aliases
from mlops.pipeline.drift_history import drift_history
from mlops.pipeline.queries.agents import known_agent
from mlops.pipeline.queries.runs import RUN_COLUMNS, RunRecord
from mlops.settings import AGENTS, Settings

DRIFT_KINDS = ("feature", "prediction", "performance")
# The newest check writes one summary row per kind; a few more rows than kinds find them all even when an
# older check's rows interleave (two checks finishing at the same time).
DRIFT_ROWS = 3 * len(DRIFT_KINDS)


class GateCheck(BaseModel):
    """One rule of the promotion gate as the run recorded it (mlops/pipeline/validation.py)."""

    model_config = ConfigDict(frozen=True)

    name: str  # edge_* (against a naive baseline) | beats_champion_* / not_worse_* (against the champion)
    rule: str  # the rule, in words
    passed: bool
    value: float | None
    baseline: float | None = None  # the naive baseline's value (edge checks)
    ci: tuple[float, float] | None = None  # the paired test's interval (champion checks)
    p_value: float | None = None
    note: str | None = None  # e.g. a waived edge check

    @property
    def naive(self) -> bool:
        return self.name.startswith("edge_")


class DriftKindStatus(BaseModel):
    model_config = ConfigDict(frozen=True)

    drift_type: str
    statistic: str
    value: float | None
    status: str
    warning: float
    critical: float


class DriftSummary(BaseModel):
    """The newest drift check of an agent: its status per kind (kinds it did not compute are missing)."""

    model_config = ConfigDict(frozen=True)

    check_id: str
    computed_at: datetime
    model_version: int | None
    kinds: dict[str, DriftKindStatus]


class AgentOverview(BaseModel):
    model_config = ConfigDict(frozen=True)

    agent_type: str
    champion: RunRecord | None  # the run that trained the champion version (its metrics and verdict)
    challenger: RunRecord | None
    champion_version: int | None  # from the deployment history, even if its run row is missing
    challenger_version: int | None
    last_retrain: RunRecord | None  # the newest retrain, whatever its outcome (queued and running included)
    drift: DriftSummary | None
    open_alerts: int


class OpenAlerts(BaseModel):
    model_config = ConfigDict(frozen=True)

    count: int
    latest: list[AlertRecord]


def gate_checks(validation: dict[str, Any] | None) -> list[GateCheck]:
    """The checks of a recorded verdict, in the order the gate ran them (naive baselines first)."""
    checks: dict[str, Any] = (validation or {}).get("checks") or {}
    found = []
    for name, c in checks.items():
        ci = c.get("ci")
        found.append(
            GateCheck(
                name=name,
                rule=str(c.get("rule") or name),
                passed=bool(c.get("passed")),
                value=c.get("value"),
                baseline=c.get("baseline"),
                ci=(float(ci[0]), float(ci[1])) if isinstance(ci, list | tuple) and len(ci) == 2 else None,
                p_value=c.get("p_value"),
                note=c.get("note"),
            )
        )
    return found


def verdict_in_words(run: RunRecord) -> str:
    """One sentence a person reads: what happened to the run, and against what the gate judged it."""
    validation = run.validation or {}
    if run.status in ("queued", "running"):
        return f"The retrain is {run.status}."
    if run.status == "failed":
        return f"The retrain failed before the gate decided: {run.error or 'no error recorded'}."
    if not validation:
        return f"Rejected before training: {run.error}." if run.error else f"The retrain ended {run.status}."
    champion = validation.get("champion_version")
    against = f"champion v{champion}" if champion is not None else "the naive baselines (there was no champion)"
    checks = gate_checks(validation)
    failed = [c.rule for c in checks if not c.passed]
    version = f"v{run.model_version}" if run.model_version is not None else "The candidate"
    if validation.get("passed"):
        what = {"promoted": "promoted to champion", "challenger": "made challenger"}.get(
            run.deployment_status or "", "passed"
        )
        held = f"{len(checks)} check{'s' if len(checks) != 1 else ''} held"
        return f"{version} passed the gate against {against} ({held}) and was {what}."
    return f"{version} was rejected against {against}: " + "; ".join(failed or ["see the verdict"]) + "."


def _version_runs(settings: Settings, agent: str, versions: list[int]) -> dict[int, RunRecord]:
    if not versions:
        return {}
    query = select(*RUN_COLUMNS).where(ModelRun.agent_type == agent, ModelRun.model_version.in_(versions))
    with session_scope(settings.app_db_url) as session:
        return {r.model_version: RunRecord.model_validate(r) for r in session.execute(query)}


def _last_retrain(settings: Settings, agent: str) -> RunRecord | None:
    query = select(*RUN_COLUMNS).where(ModelRun.agent_type == agent).order_by(ModelRun.id.desc()).limit(1)
    with session_scope(settings.app_db_url) as session:
        row = session.execute(query).first()
    return RunRecord.model_validate(row) if row is not None else None


def latest_drift(settings: Settings, agent: str) -> DriftSummary | None:
    """The newest drift check of `agent`: its summary row per kind."""
    rows = drift_history(settings, agent=agent, limit=DRIFT_ROWS)
    if not rows:
        return None
    newest = rows[0]
    kinds = {
        r.drift_type: DriftKindStatus(
            drift_type=r.drift_type,
            statistic=r.statistic,
            value=r.value,
            status=r.status,
            warning=r.warning,
            critical=r.critical,
        )
        for r in reversed(rows)
        if r.check_id == newest.check_id
    }
    return DriftSummary(
        check_id=newest.check_id,
        computed_at=newest.computed_at,
        model_version=newest.model_version,
        kinds=kinds,
    )


def count_open_alerts(settings: Settings, agent: str | None = None) -> int:
    query = select(func.count()).select_from(Alert).where(Alert.acknowledged_at.is_(None))
    if agent is not None:
        query = query.where(Alert.agent_type == known_agent(agent))
    with session_scope(settings.app_db_url) as session:
        return int(session.scalar(query) or 0)


def open_alerts(settings: Settings, latest: int = 5) -> OpenAlerts:
    """How many alerts nobody acknowledged yet, and the `latest` most recently seen of them."""
    return OpenAlerts(count=count_open_alerts(settings), latest=list_alerts(settings, acknowledged=False, limit=latest))


def agent_overview(settings: Settings, agent: str) -> AgentOverview:
    known_agent(agent)
    with session_scope(settings.app_db_url) as session:
        aliases = current_aliases(session, agent)
    champion, challenger = aliases[CHAMPION], aliases[CHALLENGER]
    runs = _version_runs(settings, agent, [v for v in (champion, challenger) if v is not None])
    return AgentOverview(
        agent_type=agent,
        champion=runs.get(champion) if champion is not None else None,
        challenger=runs.get(challenger) if challenger is not None else None,
        champion_version=champion,
        challenger_version=challenger,
        last_retrain=_last_retrain(settings, agent),
        drift=latest_drift(settings, agent),
        open_alerts=count_open_alerts(settings, agent),
    )


def overview(settings: Settings) -> list[AgentOverview]:
    """Every agent's overview, in the order of AGENTS."""
    return [agent_overview(settings, agent) for agent in AGENTS]
