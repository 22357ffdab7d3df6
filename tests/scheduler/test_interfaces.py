"""The scheduled jobs through the API (real ASGI stack, keys and roles) and the CLI (`--json`), and the
scheduler running inside the API's process: routes that do not collide with `/jobs/{id}`, 202 with the
execution record, 404 naming the jobs, 403 for a viewer, no MLflow for `skippy jobs status`/`history`."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from app import create_app
from mlops.auth import create_key
from mlops.db import session_scope
from mlops.flags import set_flag
from mlops.scheduler import list_executions
from mlops.settings import Settings
from tests.factories import deployment


def keys_for(settings: Settings) -> dict[str, str]:
    return {
        role: create_key(settings, name=f"{role}-key", role=role, actor="test").key
        for role in ("viewer", "operator", "admin")
    }


@pytest.fixture
def api(settings: Settings) -> Iterator[tuple[TestClient, dict[str, dict[str, str]], Settings]]:
    keys = keys_for(settings)
    headers = {role: {"Authorization": f"Bearer {key}"} for role, key in keys.items()}
    with TestClient(create_app(settings, dispatch=False, warm=False, schedule_jobs=False)) as client:
        yield client, headers, settings


def test_the_routes_are_declared_and_do_not_collide_with_a_job_id(api: Any) -> None:
    client, headers, _ = api
    paths = client.get("/openapi.json").json()["paths"]
    assert set(paths["/api/mlops/jobs/status"]) == {"get"}
    assert set(paths["/api/mlops/jobs/history"]) == {"get"}
    assert set(paths["/api/mlops/jobs/trigger/{job_type}"]) == {"post"}
    assert "202" in paths["/api/mlops/jobs/trigger/{job_type}"]["post"]["responses"]
    assert client.get("/api/mlops/jobs/status", headers=headers["viewer"]).status_code == 200
    assert client.get("/api/mlops/jobs/history", headers=headers["viewer"]).status_code == 200
    missing = client.get("/api/mlops/jobs/12345", headers=headers["viewer"])  # today's route still answers
    assert missing.status_code == 404 and "no job with id 12345" in missing.json()["message"]


def test_status_says_what_runs_when_and_how_to_turn_it_on(api: Any) -> None:
    client, headers, settings = api
    set_flag(settings, "mlops_auto_retrain", False, actor="test")
    body = client.get("/api/mlops/jobs/status", headers=headers["viewer"]).json()
    assert body["enabled"] is False and body["running_here"] is False
    assert "ENABLE_MLOPS_JOBS=true" in body["configuration"] and "skippy scheduler" in body["how_to_enable"]
    jobs = {j["name"]: j for j in body["jobs"]}
    assert list(jobs) == [
        "retrain_market_insight",
        "retrain_risk_assessor",
        "drift_check",
        "weekly_validation",
        "champion_watch",
    ]
    retrain = jobs["retrain_market_insight"]
    assert retrain["cron"] == "0 2 * * *" and retrain["setting"] == "SKIPPY_SCHEDULE_RETRAIN_MARKET_INSIGHT"
    assert retrain["enabled"] is False and "skippy flags set mlops_auto_retrain on" in retrain["disabled_reason"]
    assert retrain["next_run"].endswith(("02:00:00Z", "02:00:00+00:00")) and retrain["last_execution"] is None
    assert jobs["drift_check"]["enabled"] is True and jobs["drift_check"]["flag"] == "mlops_drift_detection"
    assert jobs["weekly_validation"]["flag"] is None and jobs["weekly_validation"]["enabled"] is True


def test_an_operator_triggers_a_job_and_reads_it_in_status_and_history(api: Any) -> None:
    client, headers, settings = api
    with session_scope(settings.app_db_url) as session:
        deployment(session, agent_type="market_insight", to_version=1)
    response = client.post("/api/mlops/jobs/trigger/drift_check", headers=headers["operator"])
    assert response.status_code == 202, response.text
    execution = response.json()
    assert execution["id"] >= 1 and execution["status"] == "running" and len(execution["job_ids"]) == 1
    assert (execution["trigger"], execution["requested_by"]) == ("manual", "api:operator-key")
    job = client.get(f"/api/mlops/jobs/{execution['job_ids'][0]}", headers=headers["viewer"]).json()
    assert (job["kind"], job["status"], job["requested_by"]) == ("drift", "queued", "api:operator-key")
    status = client.get("/api/mlops/jobs/status", headers=headers["viewer"]).json()
    last = next(j for j in status["jobs"] if j["name"] == "drift_check")["last_execution"]
    assert last["id"] == execution["id"]
    assert last["result"]["summary"] == f"drift check of market_insight queued as job {job['id']}"

    skipped = client.post("/api/mlops/jobs/trigger/weekly_validation", headers=headers["admin"])
    assert skipped.status_code == 202  # nothing to do is a normal answer
    set_flag(settings, "mlops_drift_detection", False, actor="test")
    off = client.post("/api/mlops/jobs/trigger/drift_check", headers=headers["operator"]).json()
    assert off["status"] == "skipped" and "mlops_drift_detection is off" in off["result"]["reason"]

    page = client.get("/api/mlops/jobs/history", headers=headers["viewer"], params={"job_name": "drift_check"}).json()
    assert [e["id"] for e in page["items"]] == [off["id"], execution["id"]] and page["next_offset"] is None
    only = client.get("/api/mlops/jobs/history", headers=headers["viewer"], params={"status": "skipped", "limit": 1})
    assert [e["id"] for e in only.json()["items"]] == [off["id"]] and only.json()["next_offset"] == 1
    bad = client.get("/api/mlops/jobs/history", headers=headers["viewer"], params={"job_name": "nightly"})
    assert bad.status_code == 422


def test_unknown_job_is_404_and_a_viewer_may_not_trigger(api: Any) -> None:
    client, headers, settings = api
    unknown = client.post("/api/mlops/jobs/trigger/nightly", headers=headers["operator"])
    assert unknown.status_code == 404
    assert "unknown scheduled job 'nightly'" in unknown.json()["message"]
    assert "retrain_market_insight" in unknown.json()["message"]
    refused = client.post("/api/mlops/jobs/trigger/drift_check", headers=headers["viewer"])
    assert refused.status_code == 403 and "operator" in refused.json()["message"]
    assert client.post("/api/mlops/jobs/trigger/drift_check").status_code == 401
    assert list_executions(settings) == []


def test_the_scheduler_runs_inside_the_api_process_when_enabled(settings: Settings) -> None:
    """ENABLE_MLOPS_JOBS in the API's lifespan: the real BackgroundScheduler fires every second."""
    fast = settings.model_copy(
        update={"enable_mlops_jobs": True, "schedule_drift_check": "* * * * * *", "scheduler_poll_seconds": 0.5}
    )
    with session_scope(fast.app_db_url) as session:
        deployment(session, agent_type="risk_assessor", to_version=1)
    keys = keys_for(fast)
    with TestClient(create_app(fast, dispatch=False, warm=False)) as client:
        deadline = time.monotonic() + 10
        while len(list_executions(fast, job_name="drift_check")) < 2 and time.monotonic() < deadline:
            time.sleep(0.2)
        body = client.get("/api/mlops/jobs/status", headers={"Authorization": f"Bearer {keys['viewer']}"}).json()
    assert body["running_here"] is True and body["enabled"] is True and "ENABLE_MLOPS_JOBS" in body["configuration"]
    ran = list_executions(fast, job_name="drift_check")
    assert len(ran) >= 2 and {e.requested_by for e in ran} == {"scheduler"}
    assert len({e.scheduled_for for e in ran}) == len(ran) and all(e.scheduled_for.microsecond == 0 for e in ran)
    stopped = len(list_executions(fast, job_name="drift_check"))
    time.sleep(1.5)
    assert len(list_executions(fast, job_name="drift_check")) == stopped  # the lifespan stopped it


# --- CLI -----------------------------------------------------------------------------------------------


def skippy(settings: Settings, *args: str) -> tuple[int, str, str]:
    from mlops.cli import app
    from mlops.settings import get_settings

    get_settings.cache_clear()
    env = {
        "SKIPPY_HOME": str(settings.home),
        "DATABASE_URL": settings.app_db_url,
        "MLFLOW_TRACKING_URI": None,
        "COLUMNS": "200",
    }
    try:
        result = CliRunner().invoke(app, list(args), env=env)
    finally:
        get_settings.cache_clear()
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.stdout, result.stderr


def test_the_cli_triggers_and_lists_with_json(settings: Settings) -> None:
    with session_scope(settings.app_db_url) as session:
        deployment(session, agent_type="market_insight", to_version=1)
    code, out, _ = skippy(settings, "jobs", "trigger", "drift_check", "--json")
    assert code == 0, out
    execution = json.loads(out)
    assert execution["status"] == "running" and execution["trigger"] == "manual"
    assert execution["requested_by"].startswith("cli:") and len(execution["job_ids"]) == 1

    code, out, _ = skippy(settings, "jobs", "trigger", "champion_watch", "--json")
    watched = json.loads(out)
    assert code == 0 and watched["status"] == "skipped" and "no champion is on probation" in watched["result"]["reason"]

    code, out, _ = skippy(settings, "jobs", "trigger", "nightly", "--json")
    assert code == 2 and "unknown scheduled job 'nightly'" in json.loads(out)["message"]

    code, out, _ = skippy(settings, "jobs", "history", "--json", "--job", "drift_check")
    assert code == 0 and [e["id"] for e in json.loads(out)] == [execution["id"]]
    code, out, _ = skippy(settings, "jobs", "history", "--json", "--status", "skipped", "--limit", "5")
    assert [e["job_name"] for e in json.loads(out)] == ["champion_watch"]
    code, out, _ = skippy(settings, "jobs", "history", "--status", "queued", "--json")
    assert code == 2 and "unknown status 'queued'" in json.loads(out)["message"]

    code, out, _ = skippy(settings, "jobs", "status", "--json")
    state = json.loads(out)
    assert code == 0 and state["running_here"] is None
    assert next(j for j in state["jobs"] if j["name"] == "drift_check")["last_execution"]["id"] == execution["id"]
    code, out, _ = skippy(settings, "jobs", "status")
    assert code == 0 and "scheduler: off" in out and "drift_check" in out and "running" in out
    code, out, _ = skippy(settings, "jobs", "history")
    assert code == 0 and "champion_watch" in out and "skipped" in out


def test_an_invalid_schedule_stops_skippy_scheduler_and_serve_in_one_line(settings: Settings) -> None:
    from mlops.cli import app
    from mlops.settings import get_settings

    env = {
        "SKIPPY_HOME": str(settings.home),
        "DATABASE_URL": settings.app_db_url,
        "MLFLOW_TRACKING_URI": None,
        "SKIPPY_SCHEDULE_WEEKLY_VALIDATION": "0 4 * * sunday",
        "ENABLE_MLOPS_JOBS": "true",
    }
    for args in (["scheduler", "--no-jobs"], ["serve", "--port", "59317"]):
        get_settings.cache_clear()
        try:
            result = CliRunner().invoke(app, args, env=env)
        finally:
            get_settings.cache_clear()
        assert result.exit_code == 2, result.output
        assert "SKIPPY_SCHEDULE_WEEKLY_VALIDATION='0 4 * * sunday'" in result.stderr
        assert "weekday 'sunday'" in result.stderr


@pytest.mark.slow
def test_jobs_status_and_history_do_not_import_mlflow(settings: Settings) -> None:
    code = (
        "import sys\n"
        "from typer.testing import CliRunner\n"
        "from mlops.cli import app\n"
        "for args in (['jobs', 'status', '--json'], ['jobs', 'history', '--json']):\n"
        "    assert CliRunner().invoke(app, args).exit_code == 0\n"
        "print('mlflow' in sys.modules)\n"
    )
    env = {"SKIPPY_HOME": str(settings.home), "DATABASE_URL": settings.app_db_url, "PATH": "/usr/bin:/bin"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    assert out.stdout.strip() == "False"
