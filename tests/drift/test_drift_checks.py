"""The read side of drift by check (`mlops.pipeline.drift_checks`, the Drift page's data): the newest checks
of an agent with their summary rows, and per-feature cells of several checks in one query. SQLite and
PostgreSQL, on rows built by the factories."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy.orm import Session

from mlops.db import session_scope
from mlops.errors import InvalidRequestError, UnknownAgentError
from mlops.pipeline.drift_checks import MAX_CHECKS, feature_cells, recent_checks
from mlops.settings import Settings
from tests import factories
from tests.conftest import make_settings

MI, RA = "market_insight", "risk_assessor"


def _check(session: Session, check_id: str, hours_ago: int, agent: str = MI, feature_status: str = "ok") -> None:
    """One check as a check writes it: per-feature rows, then the three summary rows."""
    factories.drift_check(
        session,
        [
            {"feature": "vol_5", "value": 0.3, "status": feature_status, "details": {"adjusted_p": 0.001}},
            {"feature": "ret_1", "value": 0.02},
            {"feature": None, "value": 0.3, "status": feature_status, "details": {"deciding_feature": "vol_5"}},
            {"drift_type": "prediction", "feature": None, "statistic": "wasserstein", "value": 0.05},
            {"drift_type": "performance", "feature": None, "statistic": "sharpe_degradation", "status": "warning"},
        ],
        check_id=check_id,
        agent_type=agent,
        computed_at=datetime.now(UTC) - timedelta(hours=hours_ago),
    )


@pytest.fixture
def settings(db_url: str, tmp_path: Path) -> Settings:
    s = make_settings(tmp_path, database_url=db_url)
    with session_scope(s.app_db_url) as session:
        _check(session, "first", 12)
        _check(session, "other", 11, agent=RA)
        _check(session, "second", 6, feature_status="critical")
        _check(session, "third", 1)
    return s


def test_recent_checks_are_newest_first_with_one_summary_row_per_kind_and_the_worst_status(settings: Settings) -> None:
    checks = recent_checks(settings, agent=MI)
    assert [c.check_id for c in checks] == ["third", "second", "first"]
    assert [c.status for c in checks] == ["warning", "critical", "warning"]
    assert sorted(checks[0].kinds) == ["feature", "performance", "prediction"]
    assert checks[1].kinds["feature"].deciding_feature == "vol_5"
    assert all(r.feature is None for c in checks for r in c.kinds.values())
    assert [c.check_id for c in recent_checks(settings, agent=MI, limit=2)] == ["third", "second"]
    assert [c.check_id for c in recent_checks(settings, agent=RA)] == ["other"]


def test_feature_cells_of_several_checks_in_one_query(settings: Settings) -> None:
    cells = feature_cells(settings, agent=MI, check_ids=["second", "third", "other"])  # `other` is RA's
    assert sorted((c.check_id, c.feature) for c in cells) == [
        ("second", "ret_1"),
        ("second", "vol_5"),
        ("third", "ret_1"),
        ("third", "vol_5"),
    ]
    vol = next(c for c in cells if c.check_id == "second" and c.feature == "vol_5")
    assert (vol.value, vol.critical, vol.status, vol.adjusted_p) == (0.3, 0.1, "critical", 0.001)
    assert feature_cells(settings, agent=MI, check_ids=[]) == []


def test_bounds_and_unknown_agents_are_refused_with_a_reason(settings: Settings) -> None:
    with pytest.raises(InvalidRequestError, match=f"between 1 and {MAX_CHECKS}"):
        recent_checks(settings, agent=MI, limit=MAX_CHECKS + 1)
    with pytest.raises(InvalidRequestError, match=f"at most {MAX_CHECKS} checks"):
        feature_cells(settings, agent=MI, check_ids=[str(i) for i in range(MAX_CHECKS + 1)])
    with pytest.raises(UnknownAgentError):
        recent_checks(settings, agent="nope")
    with pytest.raises(UnknownAgentError):
        feature_cells(settings, agent="nope", check_ids=["first"])
