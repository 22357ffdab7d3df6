"""Alias moves as services: every change (deletion included) leaves a `model_deployments` row, so the app
DB alone says where `champion` and `challenger` point; promote and rollback each write one audit row;
neither lands on a version validation rejected without force. On SQLite and on the real PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from mlops.db import session_scope
from mlops.db.models import AuditLog, ModelRun
from mlops.errors import ConflictError, InvalidRequestError
from mlops.pipeline.deployments import (
    CHALLENGER,
    CHAMPION,
    current_aliases,
    deploy_validated,
    list_deployments,
    promote,
    retire_challenger,
    rollback,
)
from mlops.pipeline.queries.models import list_models
from mlops.pipeline.retrain import retrain
from mlops.settings import Settings
from tests.conftest import fresh_postgres_url
from tests.factories import deployment, market_store

pytestmark = pytest.mark.slow
AGENT = "market_insight"


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def settings(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, empty_mlflow_store: Path
) -> Iterator[Settings]:
    """v1 validated and deployed; v2 the same recipe on the same bars, so no better: rejected."""
    overrides: dict[str, object] = {}
    if request.param == "postgres":
        overrides["database_url"] = fresh_postgres_url(request.getfixturevalue("postgres_server"))
    home = tmp_path_factory.mktemp(f"deployments-{request.param}")
    settings = market_store(home, mlflow_store=empty_mlflow_store, **overrides)
    first = retrain(settings, agent=AGENT, actor="test")
    assert (first.model_version, first.deployment_status) == (1, "promoted"), first.reason
    second = retrain(settings, agent=AGENT, actor="test")
    assert (second.model_version, second.status) == (2, "rejected"), second.reason
    yield settings


def registry_aliases(settings: Settings) -> dict[str, int | None]:
    from tracking import registry

    return {alias: registry.alias_version(settings, AGENT, alias) for alias in (CHAMPION, CHALLENGER)}


def aliases(settings: Settings) -> dict[str, int | None]:
    """Where the aliases point by the app DB's history, checked against the registry (the write side's truth)."""
    with session_scope(settings.app_db_url) as session:
        recorded = current_aliases(session, AGENT)
    assert recorded == registry_aliases(settings)
    return recorded


def champion_is(settings: Settings, version: int) -> None:
    """Set up a known champion (and no challenger) whatever the previous test left."""
    challenger = registry_aliases(settings)[CHALLENGER]
    if challenger is not None:
        retire_challenger(settings, agent=AGENT, version=challenger, actor="test", reason="set up")
    if registry_aliases(settings)[CHAMPION] != version:
        promote(settings, agent=AGENT, version=version, actor="test", reason="set up", force=True)
    assert aliases(settings) == {CHAMPION: version, CHALLENGER: None}


def run_of(settings: Settings, version: int) -> int:
    with session_scope(settings.app_db_url) as session:
        return session.scalars(
            select(ModelRun.id).where(ModelRun.agent_type == AGENT, ModelRun.model_version == version)
        ).one()


def audit_rows_after(settings: Settings, last_id: int) -> list[AuditLog]:
    with session_scope(settings.app_db_url) as session:
        rows = session.scalars(select(AuditLog).where(AuditLog.id > last_id).order_by(AuditLog.id)).all()
        session.expunge_all()
        return list(rows)


def last_audit_id(settings: Settings) -> int:
    with session_scope(settings.app_db_url) as session:
        return session.scalar(select(func.max(AuditLog.id))) or 0


def test_deploy_validated_moves_the_aliases_and_the_history_follows(settings: Settings) -> None:
    champion_is(settings, 2)
    staged = settings.model_copy(update={"promotion_mode": "staged"})
    metrics: dict[str, Any] = {"test_sharpe_ratio": 1.25}
    run_id = run_of(settings, 1)

    waiting = deploy_validated(
        staged, agent=AGENT, version=1, actor="test", reason="validated", metrics=metrics, model_run_id=run_id
    )
    assert waiting == "challenger" and aliases(settings) == {CHAMPION: 2, CHALLENGER: 1}
    retire_challenger(settings, agent=AGENT, version=1, actor="paper-trading", reason="not better on paper")
    assert aliases(settings) == {CHAMPION: 2, CHALLENGER: None}

    promoted = deploy_validated(
        settings, agent=AGENT, version=1, actor="test", reason="validated", metrics=metrics, model_run_id=run_id
    )
    assert promoted == "promoted" and aliases(settings) == {CHAMPION: 1, CHALLENGER: None}
    newest = list_deployments(settings, AGENT, limit=3)
    assert [(d.alias, d.action, d.from_version, d.to_version) for d in newest] == [
        (CHALLENGER, "clear", 1, 1),
        (CHAMPION, "promote", 2, 1),
        (CHALLENGER, "challenger", None, 1),
    ]
    assert {d.model_run_id for d in newest[1:]} == {run_id} and {d.actor for d in newest} == {"test"}


def test_promoting_the_challenger_clears_it_in_the_history_too(settings: Settings) -> None:
    champion_is(settings, 2)
    staged = settings.model_copy(update={"promotion_mode": "staged"})
    deploy_validated(
        staged, agent=AGENT, version=1, actor="test", reason="ok", metrics={}, model_run_id=run_of(settings, 1)
    )
    assert aliases(settings) == {CHAMPION: 2, CHALLENGER: 1}
    promote(settings, agent=AGENT, version=1, actor="carol", reason="paper trading went well")
    assert aliases(settings) == {CHAMPION: 1, CHALLENGER: None}
    assert list_deployments(settings, AGENT, limit=1)[0].action == "clear"


def test_promote_and_rollback_each_write_one_audit_row(settings: Settings) -> None:
    champion_is(settings, 1)
    mark = last_audit_id(settings)
    record = promote(settings, agent=AGENT, version=2, actor="cli:dana", reason="desk call", force=True)
    (row,) = audit_rows_after(settings, mark)
    assert (row.actor, row.action, row.status_code) == ("cli:dana", "promote", None)
    assert row.parameters == {"agent": AGENT, "version": 2, "force": True, "reason": "desk call"}
    assert row.result == {"from_version": 1, "to_version": 2, "alias": CHAMPION} and record.from_version == 1

    mark = last_audit_id(settings)
    rollback(settings, agent=AGENT, actor="api:desk")
    (row,) = audit_rows_after(settings, mark)
    assert (row.actor, row.action) == ("api:desk", "rollback")
    assert row.parameters == {"agent": AGENT, "to_version": None, "force": False, "reason": ""}
    assert row.result == {"from_version": 2, "to_version": 1, "alias": CHAMPION}

    mark = last_audit_id(settings)
    with pytest.raises(ConflictError, match="already the champion"):
        promote(settings, agent=AGENT, version=1, actor="cli:dana")
    (refused,) = audit_rows_after(settings, mark)  # a refusal is recorded too, with its reason
    assert refused.action == "promote" and refused.result["error_type"] == "ConflictError"
    assert "already the champion" in refused.result["error"]


def test_neither_promote_nor_rollback_lands_on_a_rejected_version_without_force(settings: Settings) -> None:
    champion_is(settings, 1)
    with pytest.raises(InvalidRequestError, match=r"v2 was rejected by validation .* --force"):
        promote(settings, agent=AGENT, version=2, actor="test")
    promote(settings, agent=AGENT, version=2, actor="test", force=True)
    rollback(settings, agent=AGENT, actor="test")
    assert aliases(settings)[CHAMPION] == 1
    # The previous champion is now v2 again, which validation rejected: a second rollback is refused.
    with pytest.raises(InvalidRequestError, match=r"would deploy v2, which validation rejected .* --force"):
        rollback(settings, agent=AGENT, actor="test")
    assert aliases(settings)[CHAMPION] == 1
    assert rollback(settings, agent=AGENT, actor="test", force=True).to_version == 2
    assert aliases(settings)[CHAMPION] == 2


def test_models_are_listed_from_the_app_db_as_the_registry_has_them(settings: Settings) -> None:
    from tracking import registry

    champion_is(settings, 1)
    (listed,) = list_models(settings, AGENT, limit=1)
    # The newest version, and the champion although it is older than the limit.
    assert [v.version for v in listed.versions] == [2, 1]
    assert (listed.champion, listed.challenger, listed.model_uri) == (1, None, f"models:/{AGENT}@champion")
    for summary in listed.versions:
        info = registry.get_version(settings, AGENT, summary.version)
        assert info is not None
        assert summary.validation == info.tags["validation"] and summary.run_id == info.run_id
        assert summary.aliases == (["champion"] if summary.version == 1 else [])
        assert summary.metrics["test_sharpe_ratio"] == pytest.approx(float(info.tags["test_sharpe_ratio"]), abs=1e-4)
        assert summary.verdict and summary.model_run_id == run_of(settings, summary.version)
    assert {m.agent_type: m.champion for m in list_models(settings)} == {AGENT: 1, "risk_assessor": None}


def test_current_aliases_read_a_history_written_before_deletions_were_recorded(db_url: str) -> None:
    """Older code deleted the challenger alias of a version it promoted without a row; the later
    promotion of that version is what says it is gone. A challenger set after it still counts."""

    def move(session: Any, alias: str, action: str, version: int, agent: str = AGENT) -> None:
        deployment(session, agent_type=agent, alias=alias, action=action, to_version=version, actor="old")

    with session_scope(db_url) as session:
        assert current_aliases(session, AGENT) == {CHAMPION: None, CHALLENGER: None}
        move(session, CHALLENGER, "challenger", 1)
        move(session, CHAMPION, "promote", 1)
        move(session, CHALLENGER, "challenger", 2, agent="risk_assessor")
        assert current_aliases(session, AGENT) == {CHAMPION: 1, CHALLENGER: None}
        assert current_aliases(session, "risk_assessor") == {CHAMPION: None, CHALLENGER: 2}
        move(session, CHALLENGER, "challenger", 2)  # staged: waits beside the champion
        move(session, CHAMPION, "rollback", 2)  # a rollback onto it leaves the challenger alias in place
        assert current_aliases(session, AGENT) == {CHAMPION: 2, CHALLENGER: 2}
        move(session, CHALLENGER, "retire", 2)
        assert current_aliases(session, AGENT) == {CHAMPION: 2, CHALLENGER: None}
