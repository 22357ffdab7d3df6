"""The dashboard's read services (Overview, Performance, Feature importance) on rows built by the factories —
no retrain, no MLflow: an agent's overview, the champion's moves on a time axis, bounded importance history.
SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from mlops.alerts import acknowledge_alert, list_alerts, raise_alert
from mlops.db import session_scope
from mlops.db.models import FeatureImportance
from mlops.errors import InvalidRequestError, UnknownAgentError
from mlops.pipeline.queries.importance_history import importance_history
from mlops.pipeline.queries.overview import agent_overview, gate_checks, open_alerts, overview, verdict_in_words
from mlops.pipeline.queries.runs import get_run
from mlops.pipeline.queries.timeline import champion_events
from mlops.settings import Settings
from tests import factories
from tests.conftest import make_settings

MI, RA = "market_insight", "risk_assessor"


@pytest.fixture
def settings(db_url: str, tmp_path: Path) -> Settings:
    return make_settings(tmp_path, database_url=db_url)


def test_an_agents_overview_has_its_deployed_runs_last_retrain_drift_and_alerts(settings: Settings) -> None:
    earlier = datetime.now(UTC) - timedelta(hours=1)
    with session_scope(settings.app_db_url) as session:
        v1 = factories.model_run(session)
        v2 = factories.model_run(session, deployment_status="challenger")
        factories.model_run(session, agent_type=RA)
        failed = factories.model_run(session, status="failed", trigger="drift")
        factories.deployment(session, to_version=1, model_run_id=v1.id)
        factories.deployment(session, alias="challenger", action="challenger", to_version=2, model_run_id=v2.id)
        old = {"computed_at": earlier}
        factories.drift_check(session, [{"drift_type": "feature", "feature": None, "status": "critical"}], **old)
        factories.drift_check(
            session,
            [
                {"drift_type": "feature", "feature": None, "status": "warning"},
                {"drift_type": "prediction", "feature": None, "statistic": "wasserstein", "status": "ok"},
                {"drift_type": "feature", "feature": "ret_1", "status": "critical"},  # a feature row: not a kind
            ],
        )
        ids = (v1.id, v2.id, failed.id)
    raise_alert(settings, kind="drift", severity="critical", agent=MI, message="feature drift")
    raise_alert(settings, kind="job", severity="warning", agent=None, message="a job failed")
    raise_alert(settings, kind="other", severity="info", agent=MI, message="acknowledged")
    acknowledge_alert(settings, list_alerts(settings, kind="other")[0].id, actor="test")

    mi = agent_overview(settings, MI)
    assert (mi.champion_version, mi.challenger_version) == (1, 2)
    assert mi.champion is not None and mi.champion.id == ids[0] and mi.champion.metrics["test_sharpe_ratio"]
    assert mi.challenger is not None and mi.challenger.id == ids[1]
    assert mi.last_retrain is not None and (mi.last_retrain.id, mi.last_retrain.status) == (ids[2], "failed")
    assert mi.drift is not None and {k: v.status for k, v in mi.drift.kinds.items()} == {
        "feature": "warning",
        "prediction": "ok",
    }
    assert mi.open_alerts == 1
    ra = agent_overview(settings, RA)
    assert (ra.champion_version, ra.champion, ra.drift, ra.open_alerts) == (None, None, None, 0)
    assert [o.agent_type for o in overview(settings)] == [MI, RA]
    alerts = open_alerts(settings, latest=1)
    assert alerts.count == 2 and [a.message for a in alerts.latest] == ["a job failed"]
    with pytest.raises(UnknownAgentError):
        agent_overview(settings, "alpha")


def test_the_gates_verdict_in_words(settings: Settings) -> None:
    with session_scope(settings.app_db_url) as session:
        passed = factories.model_run(session).id
        rejected = factories.model_run(
            session, status="rejected", validation=factories.validation_record(False, champion_version=1)
        ).id
        failed = factories.model_run(session, status="failed").id
        running = factories.model_run(session, status="running").id
    assert verdict_in_words(get_run(settings, passed)) == (
        "v1 passed the gate against the naive baselines (there was no champion) (1 check held) "
        "and was promoted to champion."
    )
    assert verdict_in_words(get_run(settings, rejected)) == (
        "v2 was rejected against champion v1: Sharpe above the comparator's."
    )
    assert (
        verdict_in_words(get_run(settings, failed)) == "The retrain failed before the gate decided: training diverged."
    )
    assert verdict_in_words(get_run(settings, running)) == "The retrain is running."
    [check] = gate_checks(get_run(settings, rejected).validation)
    assert (check.name, check.passed, check.value, check.p_value, check.naive) == (
        "beats_champion_sharpe",
        False,
        -0.1,
        0.4,
        False,
    )
    assert gate_checks(None) == []


def test_champion_events_mark_promotions_rollbacks_and_the_watchs_auto_rollbacks(settings: Settings) -> None:
    start = datetime.now(UTC) - timedelta(days=3)
    with session_scope(settings.app_db_url) as session:
        factories.deployment(session, to_version=1, created_at=start)
        factories.deployment(session, alias="challenger", action="challenger", to_version=2, created_at=start)
        factories.deployment(session, from_version=1, to_version=2, created_at=start + timedelta(days=1))
        factories.deployment(
            session,
            action="rollback",
            from_version=2,
            to_version=1,
            actor="scheduler",
            reason="auto-rollback: v2 significantly worse than v1 on 84 SYNTH bars",
            created_at=start + timedelta(days=2),
        )
        factories.deployment(
            session, action="rollback", from_version=1, to_version=2, actor="cli:ops", reason="rollback from v1"
        )
        factories.deployment(session, agent_type=RA, to_version=1)
    events = champion_events(settings, agent=MI)
    assert [(e.kind, e.from_version, e.to_version) for e in events] == [
        ("promotion", None, 1),
        ("promotion", 1, 2),
        ("auto-rollback", 2, 1),
        ("rollback", 1, 2),
    ]
    recent = champion_events(settings, agent=MI, since=start + timedelta(hours=36))
    assert [e.kind for e in recent] == ["promotion", "auto-rollback", "rollback"]  # and the move before
    assert [e.to_version for e in champion_events(settings, agent=MI, limit=1)] == [2]


def test_importance_history_reads_the_newest_versions_and_the_champions(settings: Settings) -> None:
    with session_scope(settings.app_db_url) as session:
        factories.deployment(session, to_version=2)
        for version in range(1, 8):
            for rank, feature in enumerate(("ret_1", "vol_5"), start=1):
                session.add(
                    FeatureImportance(
                        agent_type=MI,
                        model_version=version,
                        feature=feature,
                        importance=0.1 / rank,
                        importance_std=0.01,
                        rank=rank,
                    )
                )
    rows, champion = importance_history(settings, agent=MI, versions=3)
    assert champion == 2
    assert [(r.model_version, r.feature) for r in rows] == [(v, f) for v in (7, 6, 5, 2) for f in ("ret_1", "vol_5")]
    assert importance_history(settings, agent=RA) == ([], None)
    with pytest.raises(InvalidRequestError, match=r"versions must be within 1\.\.1000, got 0"):
        importance_history(settings, agent=MI, versions=0)
