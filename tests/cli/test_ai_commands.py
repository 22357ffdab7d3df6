"""`skippy ai ...` over a small trained store: the read-only commands answer from the app DB without
importing MLflow (each in a fresh interpreter, as a user runs them), and `promote`/`rollback` leave the
same one audit row whether they came from the CLI or the API."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from typer.testing import CliRunner

from mlops.auth import create_key
from mlops.cli import app as cli
from mlops.cli.common import cli_actor
from mlops.cli.output import to_jsonable
from mlops.db import session_scope
from mlops.db.models import AuditLog
from mlops.pipeline.deployments import list_deployments
from mlops.pipeline.queries.models import list_models
from mlops.pipeline.retrain import retrain
from mlops.settings import Settings
from tests.factories import market_store

pytestmark = pytest.mark.slow
AGENT = "market_insight"

# Runs the `skippy` command in this interpreter, then reports on stderr which heavy packages it loaded.
RUN_AND_REPORT = """
import json, sys
from mlops.cli import app
try:
    app()
    code = 0
except SystemExit as exc:
    code = exc.code or 0
heavy = sorted({m.split('.')[0] for m in sys.modules} & {'mlflow', 'optuna', 'evidently'})
sys.stderr.write('\\nLOADED ' + json.dumps(heavy) + '\\n')
sys.exit(code)
"""


@dataclass
class Store:
    home: Path
    settings: Settings

    def env(self) -> dict[str, str]:
        import os

        env = {k: v for k, v in os.environ.items() if k not in ("MLFLOW_TRACKING_URI", "DATABASE_URL")}
        return env | {"SKIPPY_HOME": str(self.home), "COLUMNS": "200"}


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory, empty_mlflow_store: Path) -> Store:
    """Both agents trained once; market_insight twice (v2, the same recipe on the same bars, is rejected)."""
    home = tmp_path_factory.mktemp("ai-commands")
    settings = market_store(home, mlflow_store=empty_mlflow_store)
    for agent in (AGENT, "risk_assessor", AGENT):
        result = retrain(settings, agent=agent, actor="test")
        assert result.status in ("succeeded", "rejected"), result.reason
    return Store(home, settings)


def run_cli(store: Store, *args: str) -> tuple[Any, list[str]]:
    """`skippy ARGS --json` in a fresh interpreter: its JSON output and the heavy packages it imported."""
    done = subprocess.run(
        [sys.executable, "-c", RUN_AND_REPORT, *args, "--json"],
        capture_output=True,
        text=True,
        env=store.env(),
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    loaded = json.loads(done.stderr.rsplit("LOADED ", 1)[1])
    return json.loads(done.stdout), loaded


def test_read_only_commands_answer_from_the_app_db_without_mlflow(store: Store) -> None:
    models, loaded = run_cli(store, "ai", "models")
    assert loaded == []
    assert models == json.loads(json.dumps(to_jsonable(list_models(store.settings)), default=str))
    mine = next(m for m in models if m["agent_type"] == AGENT)
    assert mine["champion"] == 1 and mine["challenger"] is None
    assert [(v["version"], v["validation"]) for v in mine["versions"]] == [(2, "rejected"), (1, "passed")]
    assert "test_sharpe_ratio" in mine["versions"][0]["metrics"] and mine["versions"][1]["aliases"] == ["champion"]

    runs, loaded = run_cli(store, "ai", "runs", "--agent", AGENT)
    assert loaded == []
    assert [(r["model_version"], r["status"]) for r in runs] == [(2, "rejected"), (1, "succeeded")]
    assert runs[0]["validation"]["passed"] is False

    deployments, loaded = run_cli(store, "ai", "deployments")
    assert loaded == []
    assert [d["id"] for d in deployments] == [d.id for d in list_deployments(store.settings, limit=20)]

    sweeps, loaded = run_cli(store, "ai", "sweeps")  # no sweep in this store: an empty list, still no MLflow
    assert (sweeps, loaded) == ([], [])


# --- one audit row per alias move, the same from the CLI and from the API ----------------------------


def skippy(store: Store, *args: str) -> Any:
    """`skippy ARGS --json` in this process (as test_cli does), returning the parsed output."""
    from mlops.settings import get_settings

    get_settings.cache_clear()
    env: dict[str, str | None] = {"SKIPPY_HOME": str(store.home), "MLFLOW_TRACKING_URI": None, "DATABASE_URL": None}
    try:
        result = CliRunner().invoke(cli, [*args, "--json"], env=env)
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 0, result.stdout + result.stderr
    return json.loads(result.stdout)


def new_audit_rows(settings: Settings, after: int) -> list[dict[str, Any]]:
    with session_scope(settings.app_db_url) as session:
        rows = session.scalars(select(AuditLog).where(AuditLog.id > after).order_by(AuditLog.id)).all()
        return [
            {
                "actor": r.actor,
                "action": r.action,
                "parameters": r.parameters,
                "result": r.result,
                "code": r.status_code,
            }
            for r in rows
        ]


def newest_audit_id(settings: Settings) -> int:
    with session_scope(settings.app_db_url) as session:
        return session.scalar(select(func.max(AuditLog.id))) or 0


@pytest.fixture(scope="module")
def api(store: Store) -> Iterator[tuple[TestClient, dict[str, str]]]:
    from app import create_app

    key = create_key(store.settings, name="desk", role="operator", actor="test").key
    with TestClient(create_app(store.settings, dispatch=False)) as client:
        yield client, {"Authorization": f"Bearer {key}"}


def test_promote_and_rollback_leave_the_same_audit_row_from_the_cli_and_the_api(
    store: Store, api: tuple[TestClient, dict[str, str]]
) -> None:
    from tracking import registry

    client, headers = api
    settings = store.settings
    if registry.alias_version(settings, AGENT, registry.CHAMPION) != 1:
        skippy(store, "ai", "promote", "--agent", AGENT, "--version", "1", "--force")

    def one_row(call: Any) -> dict[str, Any]:
        mark = newest_audit_id(settings)
        call()
        rows = new_audit_rows(settings, mark)
        assert len(rows) == 1, rows  # the service's row; no second one from a CLI wrapper or API middleware
        return rows[0]

    def api_post(path: str, body: dict[str, Any]) -> None:
        response = client.post(path, json=body, headers=headers)
        assert response.status_code == 200, response.text

    promote = {"agent_type": AGENT, "version": 2, "force": True, "reason": "desk call"}
    from_cli = one_row(
        lambda: skippy(store, "ai", "promote", "-a", AGENT, "-v", "2", "--force", "--reason", "desk call")
    )
    rolled_cli = one_row(lambda: skippy(store, "ai", "rollback", "-a", AGENT, "--reason", "back"))
    from_api = one_row(lambda: api_post("/api/mlops/promote", promote))
    rolled_api = one_row(lambda: api_post("/api/mlops/rollback", {"agent_type": AGENT, "reason": "back"}))

    assert from_cli["actor"] == cli_actor() and from_api["actor"] == "api:desk"
    assert (
        from_cli | {"actor": None}
        == from_api | {"actor": None}
        == {
            "actor": None,
            "action": "promote",
            "parameters": {"agent": AGENT, "version": 2, "force": True, "reason": "desk call"},
            "result": {"from_version": 1, "to_version": 2, "alias": "champion"},
            "code": None,
        }
    )
    assert (
        rolled_cli | {"actor": None}
        == rolled_api | {"actor": None}
        == {
            "actor": None,
            "action": "rollback",
            "parameters": {"agent": AGENT, "to_version": None, "force": False, "reason": "back"},
            "result": {"from_version": 2, "to_version": 1, "alias": "champion"},
            "code": None,
        }
    )
