"""The read side of retrains (`mlops.pipeline.queries`): runs and model versions as the app DB mirrors
them, on rows built by the factories — no retrain, no MLflow. SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import update

from mlops.db import session_scope
from mlops.db.models import ModelRun
from mlops.errors import NotFoundError, UnknownAgentError
from mlops.pipeline.queries import get_run, list_models, list_runs, runs_watermark
from mlops.settings import Settings
from tests import factories
from tests.conftest import make_settings

MI, RA = "market_insight", "risk_assessor"


@pytest.fixture
def settings(db_url: str, tmp_path: Path) -> Settings:
    return make_settings(tmp_path, database_url=db_url)


def test_runs_are_listed_newest_first_and_filtered(settings: Settings) -> None:
    with session_scope(settings.app_db_url) as session:
        ids = [
            factories.model_run(session).id,
            factories.model_run(session, status="rejected").id,
            factories.model_run(session, status="failed", trigger="drift").id,
            factories.model_run(session, agent_type=RA).id,
        ]
    assert [r.id for r in list_runs(settings)] == ids[::-1]
    assert [r.id for r in list_runs(settings, agent=MI)] == ids[2::-1]
    assert [r.id for r in list_runs(settings, status="rejected")] == [ids[1]]
    assert [r.id for r in list_runs(settings, trigger="drift")] == [ids[2]]
    assert [r.id for r in list_runs(settings, agent=RA, status="failed")] == []
    assert [r.id for r in list_runs(settings, limit=2, offset=1)] == [ids[2], ids[1]]
    with pytest.raises(UnknownAgentError, match="known agents: market_insight, risk_assessor"):
        list_runs(settings, agent="alpha")


def test_a_run_is_read_with_the_gates_verdict(settings: Settings) -> None:
    with session_scope(settings.app_db_url) as session:
        v1 = factories.model_run(session)
        v2 = factories.model_run(
            session, status="rejected", validation=factories.validation_record(False, champion_version=1)
        )
        v1_id, v2_id = v1.id, v2.id
    first, second = get_run(settings, v1_id), get_run(settings, v2_id)
    assert (first.status, first.model_version, first.deployment_status) == ("succeeded", 1, "promoted")
    assert first.validation is not None and first.validation["passed"]
    assert (second.model_version, second.deployment_status) == (2, "rejected")
    assert second.validation is not None and second.validation["champion_version"] == 1
    assert second.validation["verdict"].startswith("rejected against champion v1")
    with pytest.raises(NotFoundError, match="no model run with id 999"):
        get_run(settings, 999)


def test_the_runs_watermark_moves_when_a_run_changes(settings: Settings) -> None:
    with session_scope(settings.app_db_url) as session:
        run_id = factories.model_run(session, status="running").id
    before = runs_watermark(settings)
    with session_scope(settings.app_db_url) as session:
        session.execute(update(ModelRun).where(ModelRun.id == run_id).values(status="failed"))
    assert runs_watermark(settings) != before


def test_models_are_listed_from_runs_and_the_deployment_history(settings: Settings) -> None:
    """Six versions of market_insight, champion v1 (rolled back to), challenger v6: the newest `limit` are
    shown, and the champion's too though it is older."""
    with session_scope(settings.app_db_url) as session:
        runs = [factories.model_run(session) for _ in range(5)]
        runs.append(factories.model_run(session, validation=None))  # a version without a recorded verdict
        factories.deployment(session, to_version=1)
        factories.deployment(session, from_version=1, to_version=5)
        factories.deployment(session, action="rollback", from_version=5, to_version=1)
        factories.deployment(session, alias="challenger", action="challenger", to_version=6)
        run_of = {r.model_version: r.id for r in runs}
    models = {m.agent_type: m for m in list_models(settings, limit=3)}
    mine = models[MI]
    assert (mine.champion, mine.challenger, mine.model_uri) == (1, 6, "models:/market_insight@champion")
    assert [v.version for v in mine.versions] == [6, 5, 4, 1]
    by_version = {v.version: v for v in mine.versions}
    assert by_version[1].aliases == ["champion"] and by_version[6].aliases == ["challenger"]
    assert by_version[5].aliases == []
    assert (by_version[5].validation, by_version[6].validation) == ("passed", "?")
    assert by_version[5].metrics == factories.RUN_METRICS and by_version[5].model_run_id == run_of[5]
    theirs = models[RA]
    assert (theirs.champion, theirs.challenger, theirs.model_uri, theirs.versions) == (None, None, None, [])
    assert [m.agent_type for m in list_models(settings, agent=RA)] == [RA]
