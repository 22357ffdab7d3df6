"""The alerts API (list with filters and pages, read, acknowledge with roles, 404/409, audited) and the
`skippy alerts` commands (list, ack, test, channels; --json), with every channel configured: no secret
of theirs appears in an answer, an output or a log line."""

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
from sqlalchemy import select
from typer.testing import CliRunner

from app import create_app
from mlops.alerts import flush, raise_alert
from mlops.auth import create_key
from mlops.cli import app as cli
from mlops.db import session_scope, upgrade_database
from mlops.db.models import AuditLog
from mlops.logs import configure_logging
from mlops.settings import Settings
from tests.alerts.loopback import (
    APPRISE_TOKEN,
    PD_KEY,
    SECRETS,
    SLACK_TOKEN,
    SMTP_PASSWORD,
    WEBHOOK_TOKEN,
    HttpRecorder,
    free_port,
    http_recorder,
    smtp_recorder,
)
from tests.conftest import make_settings


@dataclass
class World:
    settings: Settings
    env: dict[str, str]  # the same settings as environment variables, for the CLI
    hook: HttpRecorder
    home: Path


pytestmark = pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    """Every channel configured: Slack, PagerDuty, the webhook and apprise on one loopback HTTP server,
    e-mail on a loopback SMTP server with a login; alerts of each severity raised and delivered."""
    home = tmp_path_factory.mktemp("alerts-api")
    with http_recorder() as hook, smtp_recorder(password=SMTP_PASSWORD) as smtp:
        env = {
            "SKIPPY_ALERT_SLACK_WEBHOOK_URL": hook.url(f"/services/T01/B02/{SLACK_TOKEN}"),
            "SKIPPY_ALERT_SLACK_MIN_SEVERITY": "warning",
            "SKIPPY_ALERT_PAGERDUTY_ROUTING_KEY": PD_KEY,
            "SKIPPY_ALERT_PAGERDUTY_URL": hook.url("/v2/enqueue"),
            "SKIPPY_ALERT_WEBHOOK_URL": hook.url(f"/hooks/{WEBHOOK_TOKEN}"),
            "SKIPPY_ALERT_SMTP_URL": f"smtp://alerts:{SMTP_PASSWORD}@127.0.0.1:{smtp.port}",
            "SKIPPY_ALERT_EMAIL_TO": '["ops@example.com"]',
            "SKIPPY_ALERT_APPRISE_URLS": json.dumps([f"json://127.0.0.1:{hook.port}/a/{APPRISE_TOKEN}"]),
            "SKIPPY_ALERT_RETRY_BASE_SECONDS": "0.05",
            "SKIPPY_ALERT_RETRY_ATTEMPTS": "2",
        }
        settings = make_settings(
            home,
            alert_slack_webhook_url=env["SKIPPY_ALERT_SLACK_WEBHOOK_URL"],
            alert_slack_min_severity="warning",
            alert_pagerduty_routing_key=PD_KEY,
            alert_pagerduty_url=env["SKIPPY_ALERT_PAGERDUTY_URL"],
            alert_webhook_url=env["SKIPPY_ALERT_WEBHOOK_URL"],
            alert_smtp_url=env["SKIPPY_ALERT_SMTP_URL"],
            alert_email_to=["ops@example.com"],
            alert_apprise_urls=json.loads(env["SKIPPY_ALERT_APPRISE_URLS"]),
            alert_retry_base_seconds=0.05,
            alert_retry_attempts=2,
        )
        upgrade_database(settings.app_db_url)
        for severity, kind, agent in (
            ("critical", "drift_critical", "market_insight"),
            ("warning", "performance_degraded", "risk_assessor"),
            ("info", "retrain_rejected", "market_insight"),
        ):
            assert raise_alert(settings, severity=severity, kind=kind, agent=agent, message=f"{kind} happened")
        flush(settings, 20)
        yield World(settings, env, hook, home)


@pytest.fixture(scope="module")
def api(world: World) -> Iterator[tuple[TestClient, dict[str, dict[str, str]]]]:
    keys = {
        role: {"Authorization": f"Bearer {create_key(world.settings, name=role, role=role, actor='test').key}"}
        for role in ("viewer", "operator")
    }
    with TestClient(create_app(world.settings, dispatch=False, warm=False)) as client:
        yield client, keys


def _no_secret(text: str) -> None:
    for secret in SECRETS:
        assert secret not in text, f"a channel secret leaked: ...{secret[-4:]}"


def test_alerts_are_listed_with_filters_pages_and_masked_deliveries(api: Any) -> None:
    client, keys = api
    body = client.get("/api/mlops/alerts", headers=keys["viewer"]).json()
    assert [a["kind"] for a in body["items"]] == ["retrain_rejected", "performance_degraded", "drift_critical"]
    critical = body["items"][2]
    channels = {d["channel"].split(":")[0]: d for d in critical["deliveries"]}
    assert set(channels) == {"slack", "pagerduty", "webhook", "email", "apprise"}
    assert all(d["status"] == "sent" for d in channels.values())
    assert channels["slack"]["target"].endswith("/***") and channels["pagerduty"]["target"].endswith("key ***)")
    info = body["items"][0]
    assert [d["channel"] for d in info["deliveries"]] == ["webhook"]  # info reaches the webhook only
    by = client.get("/api/mlops/alerts", headers=keys["viewer"], params={"severity": "warning"}).json()
    assert [a["kind"] for a in by["items"]] == ["performance_degraded"]
    agent = client.get("/api/mlops/alerts", headers=keys["viewer"], params={"agent_type": "market_insight"}).json()
    assert {a["kind"] for a in agent["items"]} == {"drift_critical", "retrain_rejected"}
    paged = client.get("/api/mlops/alerts", headers=keys["viewer"], params={"limit": 2}).json()
    assert len(paged["items"]) == 2 and paged["next_offset"] == 2
    one = client.get(f"/api/mlops/alerts/{critical['id']}", headers=keys["viewer"]).json()
    assert one["id"] == critical["id"] and one["message"] == "drift_critical happened"
    _no_secret(json.dumps(body) + json.dumps(one))


def test_bad_input_is_a_4xx_never_a_500(api: Any) -> None:
    client, keys = api
    for params in ({"severity": "fatal"}, {"limit": 0}, {"offset": -1}, {"acknowledged": "maybe"}, {"kind": "a\x00"}):
        response = client.get("/api/mlops/alerts", headers=keys["viewer"], params=params)
        assert response.status_code == 422, (params, response.text)
    assert client.get("/api/mlops/alerts/0", headers=keys["viewer"]).status_code == 422
    assert client.get("/api/mlops/alerts/abc", headers=keys["viewer"]).status_code == 422
    assert client.get("/api/mlops/alerts/99999", headers=keys["viewer"]).status_code == 404
    assert client.get("/api/mlops/alerts").status_code == 401


def test_acknowledging_needs_an_operator_and_happens_once(api: Any, world: World) -> None:
    client, keys = api
    alert = raise_alert(world.settings, severity="info", kind="auto_retrain_skipped", agent=None, message="m")
    assert alert is not None
    path = f"/api/mlops/alerts/{alert.id}/ack"
    denied = client.post(path, headers=keys["viewer"])
    assert denied.status_code == 403 and "operator" in denied.json()["message"]
    done = client.post(path, headers=keys["operator"])
    assert done.status_code == 200, done.text
    assert done.json()["acknowledged_by"] == "api:operator" and done.json()["acknowledged_at"]
    again = client.post(path, headers=keys["operator"])
    assert again.status_code == 409 and "already acknowledged by api:operator at" in again.json()["message"]
    assert client.post("/api/mlops/alerts/99999/ack", headers=keys["operator"]).status_code == 404
    listed = client.get("/api/mlops/alerts", headers=keys["viewer"], params={"acknowledged": True}).json()
    assert alert.id in [a["id"] for a in listed["items"]]
    open_ = client.get("/api/mlops/alerts", headers=keys["viewer"], params={"acknowledged": False}).json()
    assert alert.id not in [a["id"] for a in open_["items"]]
    with session_scope(world.settings.app_db_url) as session:
        rows = session.scalars(select(AuditLog).where(AuditLog.action == "alert ack")).all()
        outcomes = [(r.actor, r.parameters["alert_id"], "error" in r.result) for r in rows]
    assert (("api:operator", alert.id, False)) in outcomes and ("api:operator", alert.id, True) in outcomes


# --- the CLI ------------------------------------------------------------------------------------------


def skippy(world: World, *args: str, **env: str) -> tuple[int, str]:
    """`skippy ARGS` in this process with the world's settings in the environment; (exit code, output)."""
    from mlops.settings import get_settings

    get_settings.cache_clear()
    values: dict[str, str | None] = {
        "SKIPPY_HOME": str(world.home),
        "COLUMNS": "200",
        "DATABASE_URL": None,
        "MLFLOW_TRACKING_URI": None,
    }
    try:
        result = CliRunner().invoke(cli, list(args), env=values | world.env | env)
    finally:
        get_settings.cache_clear()
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    # --json output is stdout alone: a background thread's log line on stderr (the courier delivering an
    # earlier alert) may land in the middle of the invocation.
    return result.exit_code, result.stdout if "--json" in args else result.stdout + result.stderr


def test_cli_lists_open_alerts_and_acknowledges(world: World, capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("INFO", json=True)
    code, out = skippy(world, "alerts", "--json")
    assert code == 0, out
    listed = json.loads(out)
    assert {a["kind"] for a in listed} >= {"drift_critical", "performance_degraded", "retrain_rejected"}
    assert all(a["acknowledged_by"] is None for a in listed)
    critical = next(a for a in listed if a["kind"] == "drift_critical")
    code, table_out = skippy(world, "alerts", "--severity", "critical")
    assert code == 0 and "drift_critical" in table_out and "retrain_rejected" not in table_out
    assert "webhook sent" in table_out
    code, out = skippy(world, "alerts", "ack", str(critical["id"]), "--json")
    assert code == 0 and json.loads(out)["acknowledged_by"].startswith("cli:")
    code, out = skippy(world, "alerts", "ack", str(critical["id"]), "--json")
    assert code == 3 and json.loads(out)["error"] == "conflict" and "already acknowledged" in out
    for unknown in ("99999", "99999999999"):  # the second is beyond PostgreSQL's integer ids
        code, out = skippy(world, "alerts", "ack", unknown)
        assert code == 2 and f"no alert {unknown}" in out
    code, out = skippy(world, "alerts", "--json")
    assert critical["id"] not in [a["id"] for a in json.loads(out)]
    code, out = skippy(world, "alerts", "--all", "--json")
    assert critical["id"] in [a["id"] for a in json.loads(out)]
    code, out = skippy(world, "alerts", "--severity", "fatal")
    assert code == 2 and "unknown severity 'fatal'" in out
    _no_secret(table_out + out + capsys.readouterr().err)


def test_cli_channels_and_test_show_masked_targets(world: World, capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("INFO", json=True)
    sent_before = len(world.hook.requests)
    code, out = skippy(world, "alerts", "channels", "--json")
    assert code == 0, out
    channels = {c["kind"]: c for c in json.loads(out)}
    assert set(channels) == {"slack", "pagerduty", "email", "webhook", "apprise"}
    assert channels["slack"]["min_severity"] == "warning" and channels["pagerduty"]["min_severity"] == "critical"
    assert channels["apprise"]["target"] == "json://***" and all(c["problem"] is None for c in channels.values())
    code, table_out = skippy(world, "alerts", "channels")
    assert code == 0 and "hooks/***" not in table_out and "127.0.0.1" in table_out
    code, out = skippy(world, "alerts", "test", "--json")
    assert code == 0, out
    report = json.loads(out)
    assert report["ok"] and len(report["results"]) == 5 and all(r["ok"] for r in report["results"])
    assert len(world.hook.wait_for(sent_before + 4)) >= sent_before + 4  # slack, pagerduty, webhook, apprise
    # A channel that is down: the test says which, masked, and exits 1.
    down = {"SKIPPY_ALERT_WEBHOOK_URL": f"http://127.0.0.1:{free_port()}/hooks/{WEBHOOK_TOKEN}"}
    code, failed_out = skippy(world, "alerts", "test", **down)
    assert code == 1 and "failed" in failed_out and "ConnectError" in failed_out
    none = {name: "" for name in world.env if name.endswith(("URL", "KEY"))} | {"SKIPPY_ALERT_APPRISE_URLS": "[]"}
    code, hint = skippy(world, "alerts", "test", **none)
    assert code == 1 and "SKIPPY_ALERT_SLACK_WEBHOOK_URL" in hint
    _no_secret(out + table_out + failed_out + hint + capsys.readouterr().err)


RUN_AND_REPORT = """
import json, sys
from mlops.cli import app
for args in (["alerts", "--json"], ["alerts", "channels", "--json"]):
    try:
        app(args)
    except SystemExit as exc:
        assert not exc.code, exc.code
sys.stderr.write('LOADED ' + json.dumps(sorted({m.split('.')[0] for m in sys.modules} & {'mlflow', 'optuna'})))
"""


def test_read_only_commands_do_not_import_mlflow(world: World) -> None:
    import os

    env = {k: v for k, v in os.environ.items() if k not in ("MLFLOW_TRACKING_URI", "DATABASE_URL")}
    done = subprocess.run(
        [sys.executable, "-c", RUN_AND_REPORT],
        env=env | world.env | {"SKIPPY_HOME": str(world.home)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr.strip().endswith("LOADED []"), done.stderr[-500:]


def test_the_api_server_runs_a_courier(tmp_path: Path) -> None:
    """An outbox row a worker left (its process exited before the retry) is sent by the API server."""
    from mlops.db.models import Alert, AlertDelivery

    with http_recorder() as hook:
        settings = make_settings(tmp_path, alert_webhook_url=hook.url(f"/hooks/{WEBHOOK_TOKEN}"))
        upgrade_database(settings.app_db_url)
        with session_scope(settings.app_db_url) as session:
            alert = Alert(
                severity="warning",
                kind="retrain_failed",
                agent_type=None,
                message="m",
                details={},
                dedup_key="retrain_failed:-",
            )
            session.add(alert)
            session.flush()
            session.add(AlertDelivery(alert_id=alert.id, channel="webhook", attempts=1, last_error="HTTP 502"))
        with TestClient(create_app(settings, dispatch=True, warm=False)):
            assert len(hook.wait_for(1)) == 1
        with session_scope(settings.app_db_url) as session:
            row = session.scalars(select(AlertDelivery)).one()
            assert row.status == "sent" and row.attempts == 2
