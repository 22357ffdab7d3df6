"""Feature flags (`mlops.flags`): on by default, switched in the app DB, overridden by the environment
(SKIPPY_FLAG_<NAME>), and `require` refusing with an error that says how to turn a flag on. SQLite and
PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select

from mlops.db import session_scope
from mlops.db.models import AuditLog, FeatureFlag
from mlops.errors import FeatureDisabledError, NotFoundError
from mlops.flags import FLAGS, is_enabled, list_flags, require, set_flag
from mlops.settings import Settings
from tests.conftest import make_settings

DRIFT = "mlops_drift_detection"
ENV = f"SKIPPY_FLAG_{DRIFT.upper()}"


@pytest.fixture
def settings(db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    for name in FLAGS:  # the developer's own overrides must not leak in
        monkeypatch.delenv(f"SKIPPY_FLAG_{name.upper()}", raising=False)
    return make_settings(tmp_path, database_url=db_url)


def state(settings: Settings, name: str = DRIFT) -> tuple[bool, str]:
    flag = next(f for f in list_flags(settings) if f.name == name)
    return flag.enabled, flag.source


def test_every_flag_is_on_by_default(settings: Settings) -> None:
    flags = list_flags(settings)
    assert [f.name for f in flags] == list(FLAGS)
    assert all(f.enabled and f.source == "default" for f in flags)
    assert [f.description for f in flags] == list(FLAGS.values())
    for name in FLAGS:
        assert is_enabled(settings, name)
        require(settings, name)  # does not raise


def test_a_flag_switched_in_the_database_stays_switched(settings: Settings) -> None:
    off = set_flag(settings, DRIFT, False, "cli:alice")
    assert (off.enabled, off.source) == (False, "database")
    assert not is_enabled(settings, DRIFT)
    assert all(is_enabled(settings, name) for name in FLAGS if name != DRIFT)  # only that one
    on = set_flag(settings, DRIFT, True, "cli:bob")
    assert (on.enabled, on.source) == (True, "database")  # an explicit "on" is recorded, not the default
    with session_scope(settings.app_db_url) as session:
        rows = session.scalars(select(FeatureFlag)).all()
        assert [(r.name, r.enabled, r.updated_by) for r in rows] == [(DRIFT, True, "cli:bob")]
        audit = session.scalars(select(AuditLog).order_by(AuditLog.id)).all()
        assert [(a.actor, a.action, a.parameters, a.result) for a in audit] == [
            ("cli:alice", "flag set", {"name": DRIFT, "enabled": False}, {"enabled": False, "source": "database"}),
            ("cli:bob", "flag set", {"name": DRIFT, "enabled": True}, {"enabled": True, "source": "database"}),
        ]


def test_the_environment_overrides_the_database_both_ways(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    set_flag(settings, DRIFT, True, "cli:alice")
    for raw in ("false", "0", "no", "OFF", " off "):
        monkeypatch.setenv(ENV, raw)
        assert state(settings) == (False, "environment"), raw
        with pytest.raises(FeatureDisabledError):
            require(settings, DRIFT)
    set_flag(settings, DRIFT, False, "cli:alice")
    for raw in ("true", "1", "yes", "On"):
        monkeypatch.setenv(ENV, raw)
        assert state(settings) == (True, "environment"), raw
        require(settings, DRIFT)
    monkeypatch.delenv(ENV)
    assert state(settings) == (False, "database")  # the stored value is back in charge


def test_require_names_the_flag_what_it_guards_and_how_to_turn_it_on(settings: Settings) -> None:
    set_flag(settings, DRIFT, False, "cli:alice")
    with pytest.raises(FeatureDisabledError) as refused:
        require(settings, DRIFT)
    message = str(refused.value)
    assert message.startswith(f"feature flag {DRIFT} is off ({FLAGS[DRIFT]})")
    assert f"`skippy flags set {DRIFT} on`" in message and f"{ENV}=true" in message


def test_an_unknown_flag_is_refused_with_the_known_ones(settings: Settings) -> None:
    known = ", ".join(FLAGS)
    for call in (
        lambda: is_enabled(settings, "mlops_telepathy"),
        lambda: require(settings, "mlops_telepathy"),
        lambda: set_flag(settings, "mlops_telepathy", True, "cli:alice"),
    ):
        with pytest.raises(NotFoundError, match=f"unknown feature flag 'mlops_telepathy'; known flags: {known}"):
            call()
    with session_scope(settings.app_db_url) as session:
        assert session.scalars(select(FeatureFlag)).all() == []
        refused = session.scalars(select(AuditLog)).one()  # the refused switch is audited too
        assert (refused.actor, refused.result["error_type"]) == ("cli:alice", "NotFoundError")
