"""The read side of drift: stored rows with the test behind each status, filters, reports — and
`skippy ai drift-history` answering from the app DB without importing MLflow (in a fresh interpreter,
as a user runs it)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from mlops.db import session_scope
from mlops.errors import InvalidRequestError, NotFoundError, UnknownAgentError
from mlops.pipeline.drift_history import drift_history, report_path
from mlops.settings import Settings
from mlops.stores import init_stores
from tests import factories
from tests.conftest import make_settings

# Runs `skippy ARGS` in this interpreter, then reports on stderr which heavy packages it loaded.
RUN_AND_REPORT = """
import json, sys
from mlops.cli import app
try:
    app()
    code = 0
except SystemExit as exc:
    code = exc.code or 0
heavy = sorted({m.split('.')[0] for m in sys.modules} & {'mlflow', 'optuna', 'evidently', 'torch', 'sklearn'})
sys.stderr.write('\\nLOADED ' + json.dumps(heavy) + '\\n')
sys.exit(code)
"""


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """A store holding two checks of market_insight: an older `ok` one and a newer `critical` one."""
    s = make_settings(tmp_path)
    init_stores(s)
    with session_scope(s.app_db_url) as session:
        factories.drift_check(
            session,
            [{}, {"feature": None, "details": {"deciding_feature": "ret_1", "deciding_p_value": 0.4}}],
            check_id="old",
        )
        factories.drift_check(
            session,
            [
                {"feature": "vol_5", "status": "critical", "value": 0.4, "details": {"p_value": 0.001}},
                {
                    "feature": None,
                    "status": "critical",
                    "value": 0.4,
                    "details": {"deciding_feature": "vol_5", "deciding_p_value": 0.001, "deciding_adjusted_p": 0.002},
                },
                {"drift_type": "prediction", "feature": None, "statistic": "wasserstein", "value": 0.05},
            ],
            check_id="new",
        )
    return s


def test_history_is_newest_first_with_the_test_behind_each_status(settings: Settings) -> None:
    rows = drift_history(settings, agent="market_insight")
    assert [(r.check_id, r.drift_type, r.feature) for r in rows] == [
        ("new", "prediction", None),
        ("new", "feature", None),
        ("old", "feature", None),
    ]
    summary = rows[1]
    assert (summary.deciding_feature, summary.p_value, summary.adjusted_p) == ("vol_5", 0.001, 0.002)
    assert [r.feature for r in drift_history(settings, include_features=True, check_id="new")] == [
        None,
        None,
        "vol_5",
    ]
    assert [r.check_id for r in drift_history(settings, status="critical")] == ["new"]
    assert drift_history(settings, agent="risk_assessor") == []
    with pytest.raises(UnknownAgentError, match="unknown agent 'alpha'"):
        drift_history(settings, agent="alpha")


def test_a_report_is_found_only_for_a_stored_check(settings: Settings) -> None:
    with pytest.raises(NotFoundError, match="no drift check 'nope'"):
        report_path(settings, "nope", "html")
    with pytest.raises(NotFoundError, match="drift check new has no html report"):
        report_path(settings, "new", "html")
    folder = settings.home / "reports" / "drift" / "new"
    folder.mkdir(parents=True)
    (folder / "report.json").write_text("{}")
    assert report_path(settings, "new", "json") == folder / "report.json"
    with pytest.raises(InvalidRequestError, match="html or json"):
        report_path(settings, "new", "pdf")


@pytest.mark.slow
def test_drift_history_reads_the_app_db_without_importing_mlflow(settings: Settings) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("MLFLOW_TRACKING_URI", "DATABASE_URL")}
    done = subprocess.run(
        [sys.executable, "-c", RUN_AND_REPORT, "ai", "drift-history", "--features", "--json"],
        capture_output=True,
        text=True,
        env=env | {"SKIPPY_HOME": str(settings.home)},
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stderr.rsplit("LOADED ", 1)[1]) == []
    shown = json.loads(done.stdout)
    assert [(r["check_id"], r["feature"]) for r in shown] == [
        (r.check_id, r.feature) for r in drift_history(settings, include_features=True, limit=50)
    ]
    assert len(shown) == 5
