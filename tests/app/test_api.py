"""The REST API through its real ASGI stack (FastAPI + middleware + services), on SQLite and on the
real PostgreSQL, over a store with two trained agents. Jobs stay queued here (the dispatcher is off);
tests/app/test_server.py runs them in worker processes behind a real HTTP server."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from app import create_app
from mlops.auth import create_key
from mlops.data.generate import generate_market
from mlops.db import session_scope
from mlops.db.models import AuditLog, ModelRun, PredictionLog
from mlops.pipeline.drift import check_drift
from mlops.pipeline.retrain import retrain
from mlops.settings import Settings
from mlops.stores import init_stores
from tests.conftest import fresh_postgres_url, make_settings

pytestmark = pytest.mark.slow
GRID = {"learning_rate": [0.001, 0.01], "batch_size": [32, 64], "epochs": [20]}


@dataclass
class Api:
    client: TestClient
    settings: Settings
    keys: dict[str, str]
    backend: str

    def as_(self, role: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.keys[role]}"}

    def get(self, path: str, role: str = "viewer", **params: Any) -> Any:
        return self.client.get(path, headers=self.as_(role), params=params)

    def post(self, path: str, body: Any, role: str = "operator") -> Any:
        return self.client.post(path, headers=self.as_(role), json=body)


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def api(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    home = tmp_path_factory.mktemp(f"api-{request.param}")
    overrides: dict[str, object] = {"drift_report": request.param == "sqlite"}
    if request.param == "postgres":
        overrides["database_url"] = fresh_postgres_url(request.getfixturevalue("postgres_server"))
    settings = make_settings(home, **overrides)
    init_stores(settings)
    generate_market(settings, symbol="SYNTH", n_bars=1500)
    for agent in ("market_insight", "risk_assessor"):
        assert retrain(settings, actor="fixture", agent=agent).status == "succeeded"
    check_drift(settings, actor="fixture", agent="market_insight")
    keys = {
        role: create_key(settings, name=f"{role}-key", role=role, actor="test").key
        for role in ("viewer", "operator", "admin")
    }
    with TestClient(create_app(settings, dispatch=False)) as client:
        yield Api(client, settings, keys, request.param)


def error_of(response: Any, status: int) -> dict[str, Any]:
    """Every error is JSON with a code and a message that says what was wrong."""
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    assert body["error"] and body["message"]
    return body


# --- health and authentication ---------------------------------------------------------------


def test_health_is_open_and_checks_every_store(api: Api) -> None:
    response = api.client.get("/api/health")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert set(body["checks"]) == {"app_db", "mlflow_store", "optuna_storage"}
    assert all(c["ok"] for c in body["checks"].values())


def test_every_other_endpoint_needs_a_key(api: Api) -> None:
    schema = api.client.get("/openapi.json").json()
    for path, operations in schema["paths"].items():
        for method in operations:
            if path == "/api/health":
                continue
            url = path.replace("{run_id}", "1").replace("{job_id}", "1").replace("{check_id}", "abc")
            url = url.replace("{name}", "x")
            response = api.client.request(method.upper(), url)
            assert response.status_code == 401, f"{method} {path} answered {response.status_code} without a key"
            assert response.headers["www-authenticate"] == "Bearer"
    body = error_of(api.client.get("/api/mlops/model-runs", headers={"Authorization": "Bearer sk_wrong"}), 401)
    assert "invalid or revoked" in body["message"]
    assert "sk_wrong" not in body["message"]


def test_roles_are_ordered_viewer_operator_admin(api: Api) -> None:
    assert api.get("/api/mlops/model-runs", "viewer").status_code == 200
    body = error_of(api.post("/api/mlops/retrain", {"agent_type": "market_insight"}, role="viewer"), 403)
    assert "operator" in body["message"] and "viewer" in body["message"]
    error_of(api.get("/api/admin/keys", "operator"), 403)
    error_of(api.get("/api/mlops/flags", "operator"), 403)
    error_of(api.get("/api/admin/audit", "operator"), 403)
    assert api.get("/api/admin/keys", "admin").status_code == 200


def test_keys_are_created_listed_and_revoked_by_admins(api: Api) -> None:
    created = api.post("/api/admin/keys", {"name": "trading-desk", "role": "viewer"}, role="admin")
    assert created.status_code == 201
    key = created.json()["key"]
    assert key.startswith("sk_") and len(key) > 40
    listed = api.get("/api/admin/keys", "admin").json()
    entry = next(k for k in listed if k["name"] == "trading-desk")
    assert entry["role"] == "viewer" and "key" not in entry and "key_hash" not in entry
    assert api.client.get("/api/mlops/deployments", headers={"Authorization": f"Bearer {key}"}).status_code == 200
    error_of(api.post("/api/admin/keys", {"name": "trading-desk", "role": "viewer"}, role="admin"), 409)
    assert api.client.delete("/api/admin/keys/trading-desk", headers=api.as_("admin")).status_code == 200
    error_of(api.client.get("/api/mlops/deployments", headers={"Authorization": f"Bearer {key}"}), 401)
    error_of(api.client.delete("/api/admin/keys/nobody", headers=api.as_("admin")), 404)
    error_of(api.post("/api/admin/keys", {"name": "x", "role": "root"}, role="admin"), 422)


# --- runs, retrain, jobs -----------------------------------------------------------------------


def test_model_runs_filter_and_paginate_from_the_app_db(api: Api) -> None:
    body = api.get("/api/mlops/model-runs", agent_type="risk_assessor").json()
    assert [r["agent_type"] for r in body["items"]] == ["risk_assessor"]
    run = body["items"][0]
    assert run["status"] == "succeeded" and run["model_version"] == 1 and run["mlflow_run_id"]
    assert api.get("/api/mlops/model-runs", status="failed").json()["items"] == []
    first = api.get("/api/mlops/model-runs", limit=1).json()
    assert len(first["items"]) == 1 and first["next_offset"] == 1
    second = api.get("/api/mlops/model-runs", limit=1, offset=1).json()
    assert second["items"][0]["id"] != first["items"][0]["id"]
    one = api.get(f"/api/mlops/model-runs/{run['id']}").json()
    assert one["metrics"]["accuracy"] == run["metrics"]["accuracy"]
    assert "no model run with id 999999" in error_of(api.get("/api/mlops/model-runs/999999"), 404)["message"]
    body = error_of(api.get("/api/mlops/model-runs", agent_type="nobody"), 422)
    assert "agent_type" in body["message"]
    assert "limit" in error_of(api.get("/api/mlops/model-runs", limit=0), 422)["message"]


def test_retrain_is_accepted_once_per_agent_and_cancellable(api: Api) -> None:
    accepted = api.post("/api/mlops/retrain", {"agent_type": "market_insight"})
    assert accepted.status_code == 202, accepted.text
    job = accepted.json()
    assert job["status"] == "queued" and job["model_run_id"] and job["poll"] == f"/api/mlops/jobs/{job['job_id']}"
    run = api.get(f"/api/mlops/model-runs/{job['model_run_id']}").json()
    assert run["status"] == "queued" and run["trigger"] == "api" and run["requested_by"] == "api:operator-key"

    conflict = error_of(api.post("/api/mlops/retrain", {"agent_type": "market_insight"}), 409)
    assert f"job {job['job_id']}" in conflict["message"]
    other = api.post("/api/mlops/retrain", {"agent_type": "risk_assessor"})
    assert other.status_code == 202  # the lock is per agent

    for accepted_job in (job, other.json()):
        cancelled = api.post(f"/api/mlops/jobs/{accepted_job['job_id']}/cancel", None)
        assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    run = api.get(f"/api/mlops/model-runs/{job['model_run_id']}").json()
    assert run["status"] == "failed" and "cancelled by api:operator-key" in run["error"]
    error_of(api.post(f"/api/mlops/jobs/{job['job_id']}/cancel", None), 409)
    error_of(api.post("/api/mlops/jobs/999999/cancel", None), 404)
    again = api.post("/api/mlops/retrain", {"agent_type": "market_insight"})
    assert again.status_code == 202  # the cancelled job released the agent
    api.post(f"/api/mlops/jobs/{again.json()['job_id']}/cancel", None)
    jobs = api.get("/api/mlops/jobs", kind="retrain", status="cancelled").json()["items"]
    assert len(jobs) >= 3


def test_retrain_rejects_bad_input_naming_it(api: Api) -> None:
    body = error_of(api.post("/api/mlops/retrain", {"agent_type": "market_insight", "hyperparameters": {"lr": 1}}), 422)
    assert "lr" in body["message"]
    error_of(api.post("/api/mlops/retrain", {"agent_type": "market_insight", "symbol": "NOPE"}), 404)
    assert "agent_type" in error_of(api.post("/api/mlops/retrain", {}), 422)["message"]
    assert (
        "body"
        in error_of(
            api.client.post(
                "/api/mlops/retrain",
                headers=api.as_("operator"),
                content=b"{not json",
            ),
            422,
        )["message"]
    )
    with session_scope(api.settings.app_db_url) as session:
        assert not session.scalars(select(ModelRun).where(ModelRun.symbol == "NOPE")).all()


# --- deployments ------------------------------------------------------------------------------


def test_promote_and_rollback_move_the_champion(api: Api) -> None:
    agent = "risk_assessor"
    first = retrain(api.settings, actor="test", agent=agent, hyperparameters={"hidden_units": 4})
    assert first.model_version == 2
    if first.deployment_status != "promoted":
        forced = api.post("/api/mlops/promote", {"agent_type": agent, "version": 2, "force": True})
        assert forced.status_code == 200, forced.text
    back = api.post("/api/mlops/rollback", {"agent_type": agent, "reason": "desk asked"})
    assert back.status_code == 200, back.text
    assert back.json()["to_version"] == 1 and back.json()["actor"] == "api:operator-key"
    models = api.get("/api/mlops/models", agent_type=agent).json()
    assert models[0]["champion"] == 1  # the cached metadata followed the alias move
    promoted = api.post("/api/mlops/promote", {"agent_type": agent, "version": 2, "force": True})
    assert promoted.status_code == 200 and promoted.json()["from_version"] == 1
    assert api.get("/api/mlops/models", agent_type=agent).json()[0]["champion"] == 2
    history = api.get("/api/mlops/deployments", agent_type=agent).json()
    assert [d["action"] for d in history[:2]] == ["promote", "rollback"]
    error_of(api.post("/api/mlops/promote", {"agent_type": agent, "version": 99}), 404)
    error_of(api.post("/api/mlops/promote", {"agent_type": agent, "version": 2}), 409)  # already champion
    assert "version" in error_of(api.post("/api/mlops/promote", {"agent_type": agent, "version": 0}), 422)["message"]


# --- sweeps and drift --------------------------------------------------------------------------


def test_sweep_is_accepted_with_the_spec_body(api: Api) -> None:
    accepted = api.post(
        "/api/mlops/sweep", {"agent_type": "market_insight", "parameter_grid": GRID, "name": "lr_sweep_v1"}
    )
    assert accepted.status_code == 202, accepted.text
    sweep_id = accepted.json()["sweep_id"]
    results = api.get("/api/mlops/sweep-results", sweep_id=sweep_id).json()
    assert results[0]["sweep"]["name"] == "lr_sweep_v1" and results[0]["sweep"]["n_trials"] == 4
    assert results[0]["trials"] == []  # queued: no trial has run
    assert any(s["id"] == sweep_id for s in api.get("/api/mlops/sweeps").json())
    bad = error_of(
        api.post("/api/mlops/sweep", {"agent_type": "market_insight", "parameter_grid": {"learning_rat": [0.1]}}), 422
    )
    assert "learning_rat" in bad["message"]
    error_of(api.get("/api/mlops/sweep-results", sweep_id=999999), 404)
    cancelled = api.post(f"/api/mlops/jobs/{accepted.json()['job_id']}/cancel", None).json()
    assert cancelled["status"] == "cancelled"
    assert api.get("/api/mlops/sweep-results", sweep_id=sweep_id).json()[0]["sweep"]["status"] == "stopped"


def test_a_switched_off_feature_answers_409_with_how_to_switch_it_on(api: Api) -> None:
    off = api.client.put(
        "/api/mlops/flags/mlops_hyperparameter_sweeps", headers=api.as_("admin"), json={"enabled": False}
    )
    assert off.status_code == 200 and off.json()["enabled"] is False
    try:
        body = error_of(api.post("/api/mlops/sweep", {"agent_type": "market_insight", "parameter_grid": GRID}), 409)
        assert body["error"] == "feature_disabled" and "mlops_hyperparameter_sweeps" in body["message"]
    finally:
        api.client.put("/api/mlops/flags/mlops_hyperparameter_sweeps", headers=api.as_("admin"), json={"enabled": True})
    flags = api.get("/api/mlops/flags", "admin").json()
    assert {f["name"] for f in flags} >= {"mlops_auto_retrain", "mlops_drift_detection"}
    error_of(api.client.put("/api/mlops/flags/nope", headers=api.as_("admin"), json={"enabled": True}), 404)


def test_drift_metrics_filter_by_status_agent_and_time(api: Api) -> None:
    rows = api.get("/api/mlops/drift-metrics", agent_type="market_insight").json()["items"]
    assert {r["drift_type"] for r in rows} == {"feature", "prediction", "performance"}
    check_id = rows[0]["check_id"]
    every = api.get("/api/mlops/drift-metrics", check_id=check_id, include_features=True).json()["items"]
    assert len(every) == 3 + 13
    for status in ("ok", "warning", "critical"):
        got = api.get("/api/mlops/drift-metrics", status=status, include_features=True).json()["items"]
        assert all(r["status"] == status for r in got)
    assert api.get("/api/mlops/drift-metrics", since="2999-01-01T00:00:00Z").json()["items"] == []
    assert api.get("/api/mlops/drift-metrics", agent_type="risk_assessor").json()["items"] == []
    error_of(api.get("/api/mlops/drift-metrics", status="bad"), 422)
    assert "since" in error_of(api.get("/api/mlops/drift-metrics", since="9999-12-31T23:59:59-01:00"), 422)["message"]
    accepted = api.post("/api/mlops/drift/calculate", {"agent_type": "market_insight", "window_bars": 100})
    assert accepted.status_code == 202 and accepted.json()["kind"] == "drift"
    api.post(f"/api/mlops/jobs/{accepted.json()['job_id']}/cancel", None)


def test_drift_reports_are_served(api: Api) -> None:
    check_id = api.get("/api/mlops/drift-metrics").json()["items"][0]["check_id"]
    html = api.get(f"/api/mlops/drift/{check_id}/report")
    if api.backend == "sqlite":  # the fixture writes Evidently reports on SQLite only (they take ~20 s)
        assert html.status_code == 200 and html.headers["content-type"].startswith("text/html")
        as_json = api.get(f"/api/mlops/drift/{check_id}/report", format="json")
        assert as_json.status_code == 200 and as_json.json()
    else:
        assert "no html report" in error_of(html, 404)["message"]
    error_of(api.get("/api/mlops/drift/0123abcd/report"), 404)
    error_of(api.get(f"/api/mlops/drift/{check_id}/report", format="pdf"), 422)


# --- insights, market data, predictions --------------------------------------------------------


def test_feature_importance_and_performance_history(api: Api) -> None:
    ranked = api.get("/api/mlops/feature-importance", agent_type="market_insight").json()
    assert len(ranked) == 13 and [r["rank"] for r in ranked] == list(range(1, 14))
    champion = api.get("/api/mlops/models", agent_type="market_insight").json()[0]["champion"]
    assert {r["model_version"] for r in ranked} == {champion}  # what is trading, not the newest version
    assert ranked[0]["importance"] >= ranked[-1]["importance"]
    error_of(api.get("/api/mlops/feature-importance", agent_type="market_insight", version=99), 404)
    history = api.get("/api/mlops/performance-history", agent_type="market_insight").json()["items"]
    assert {"validation", "test", "live"} <= {h["window"] for h in history}
    test_rows = api.get("/api/mlops/performance-history", agent_type="market_insight", window="test").json()["items"]
    assert test_rows and all(r["window"] == "test" and r["sharpe_ratio"] is not None for r in test_rows)
    assert api.get("/api/mlops/features").json()[0] == "ret_1"


def test_market_bars_are_ingested_all_or_nothing(api: Api) -> None:
    bars = [
        {"timestamp": f"2030-01-0{d}T00:00:00Z", "open": 10, "high": 11, "low": 9.5, "close": 10.5, "volume": 1000}
        for d in range(1, 6)
    ]
    stored = api.post("/api/mlops/market-bars", {"symbol": "DESK", "bars": bars})
    assert stored.status_code == 200 and stored.json()["inserted"] == 5
    assert api.post("/api/mlops/market-bars", {"symbol": "DESK", "bars": bars}).json()["unchanged"] == 5
    broken = [*bars, {"timestamp": "2030-01-07T00:00:00Z", "open": 10, "high": 9, "low": 9.5, "close": 9, "volume": 1}]
    body = error_of(api.post("/api/mlops/market-bars", {"symbol": "DESK2", "bars": broken}), 422)
    assert "row 5" in body["message"]
    status = {s["symbol"]: s for s in api.get("/api/mlops/market-bars").json()}
    assert status["DESK"]["bars"] == 5 and "DESK2" not in status
    huge = {"symbol": "BIG", "bars": [bars[0]] * 200_000}
    assert error_of(api.post("/api/mlops/market-bars", huge), 413)["error"] == "too_large"
    refused = api.get("/api/admin/audit", "admin", limit=1).json()["items"][0]
    assert (refused["action"], refused["status_code"]) == ("POST /api/mlops/market-bars", 413)


def test_the_champions_are_loaded_ahead_of_the_first_request(api: Api) -> None:
    """What the server's start-up thread runs: MLflow, each champion's metadata and model, the registry
    listing, so that the first predict/promote after a start does not pay for them."""
    from mlops.pipeline.serving import warm_up
    from tracking import registry

    loaded = warm_up(api.settings)
    champions = {m["agent_type"]: m["champion"] for m in api.get("/api/mlops/models").json()}
    assert loaded == [f"{agent} v{version}" for agent, version in champions.items() if version is not None]
    assert all((api.settings.tracking_uri, a, v) in registry._loaded for a, v in champions.items() if v)


def test_predictions_from_the_champion_are_logged_with_their_version(api: Api) -> None:
    latest = api.post("/api/mlops/predict", {"agent_type": "market_insight", "symbol": "SYNTH", "n_bars": 5}, "viewer")
    assert latest.status_code == 200, latest.text
    body = latest.json()
    assert body["model_version"] >= 1 and len(body["predictions"]) == 5
    assert all(0 <= p["probability"] <= 1 and p["position"] in (-1, 0, 1) for p in body["predictions"])
    features = api.get("/api/mlops/features").json()
    row = {f: 0.0 for f in features} | {"rsi_14": 50.0, "bb_pctb": 0.5}
    rows = api.post("/api/mlops/predict", {"agent_type": "risk_assessor", "features": [row, row]}, "viewer").json()
    assert len(rows["predictions"]) == 2 and 0 <= rows["predictions"][0]["position"] <= 1
    missing = error_of(
        api.post("/api/mlops/predict", {"agent_type": "market_insight", "features": [{"ret_1": 0.1}]}, "viewer"), 422
    )
    assert "row 0: missing" in missing["message"] and "vol_20" in missing["message"]
    error_of(api.post("/api/mlops/predict", {"agent_type": "market_insight"}, "viewer"), 422)
    extreme = {f: 1e308 for f in features}
    assert (
        "finite"
        in error_of(
            api.post("/api/mlops/predict", {"agent_type": "market_insight", "features": [extreme]}, "viewer"), 422
        )["message"]
    )
    error_of(api.post("/api/mlops/predict", {"agent_type": "market_insight", "symbol": "NONE"}, "viewer"), 404)
    error_of(
        api.post(
            "/api/mlops/predict", {"agent_type": "market_insight", "alias": "challenger", "symbol": "SYNTH"}, "viewer"
        ),
        404,
    )
    with session_scope(api.settings.app_db_url) as session:
        logged = session.scalars(select(PredictionLog).order_by(PredictionLog.id)).all()
    assert [(p.agent_type, p.n_rows) for p in logged[-2:]] == [("market_insight", 5), ("risk_assessor", 2)]
    assert logged[-2].model_version == body["model_version"] and logged[-2].requested_by == "api:viewer-key"


# --- audit and errors --------------------------------------------------------------------------


def test_every_mutating_call_is_audited_and_readable_by_admins(api: Api) -> None:
    api.post("/api/mlops/retrain", {"agent_type": "market_insight", "hyperparameters": {"bad": 1}})
    api.post("/api/mlops/rollback", {"agent_type": "market_insight"}, role="viewer")
    api.client.post("/api/mlops/retrain", json={"agent_type": "market_insight"})
    rows = api.get("/api/admin/audit", "admin", limit=3).json()["items"]
    anonymous, forbidden, invalid = rows
    assert anonymous["actor"] == "anonymous" and anonymous["status_code"] == 401
    assert forbidden["actor"] == "api:viewer-key" and forbidden["status_code"] == 403
    assert forbidden["action"] == "POST /api/mlops/rollback"
    assert invalid["actor"] == "api:operator-key" and invalid["status_code"] == 422
    assert invalid["parameters"]["body"] == {"agent_type": "market_insight", "hyperparameters": {"bad": 1}}
    assert "bad" in invalid["result"]["message"]
    keys = api.get("/api/admin/audit", "admin", action="key create").json()["items"]  # written by the service
    assert {"viewer-key", "operator-key", "admin-key"} <= {r["parameters"]["name"] for r in keys}
    assert all(set(r["result"]) <= {"prefix", "error", "error_type"} for r in keys)  # never the key itself
    assert api.get("/api/admin/audit", "admin", actor="api:viewer-key").json()["items"][0]["status_code"] == 403
    with session_scope(api.settings.app_db_url) as session:
        reads = session.scalars(select(AuditLog).where(AuditLog.action.like("GET %"))).all()
    assert reads == []  # reads are not audited


def test_unknown_paths_and_methods_answer_json(api: Api) -> None:
    assert "no endpoint" in error_of(api.get("/api/mlops/nothing-here"), 404)["message"]
    error_of(api.client.delete("/api/mlops/model-runs", headers=api.as_("admin")), 405)


def test_docs_document_every_endpoint(api: Api) -> None:
    import re

    docs = api.client.get("/docs")
    assert docs.status_code == 200
    assets = re.findall(r'(?:src|href)="([^"]+)"', docs.text)
    assert assets and all(a.startswith("/") for a in assets)  # served by us: /docs works without internet
    assert all(api.client.get(a).status_code == 200 for a in assets)
    paths = api.client.get("/openapi.json").json()["paths"]
    for path in (
        "/api/health",
        "/api/mlops/model-runs",
        "/api/mlops/model-runs/{run_id}",
        "/api/mlops/retrain",
        "/api/mlops/deployments",
        "/api/mlops/sweep",
        "/api/mlops/sweep-results",
        "/api/mlops/drift/calculate",
        "/api/mlops/drift-metrics",
        "/api/mlops/feature-importance",
        "/api/mlops/performance-history",
        "/api/mlops/promote",
        "/api/mlops/rollback",
        "/api/mlops/jobs/{job_id}/cancel",
        "/api/mlops/predict",
        "/api/mlops/market-bars",
        "/api/mlops/flags/{name}",
        "/api/admin/keys",
        "/api/admin/audit",
        "/api/mlops/drift/{check_id}/report",
    ):
        assert path in paths, path
        assert all(op.get("summary") for op in paths[path].values())


def test_home_is_per_test(tmp_path: Path) -> None:
    """create_app over fresh stores works without trained models: lists are empty, not errors."""
    settings = make_settings(tmp_path)
    init_stores(settings)
    key = create_key(settings, name="a", role="viewer", actor="t").key
    with TestClient(create_app(settings, dispatch=False)) as client:
        headers = {"Authorization": f"Bearer {key}"}
        assert client.get("/api/mlops/model-runs", headers=headers).json()["items"] == []
        assert client.get("/api/mlops/models", headers=headers).status_code == 200
        no_model = client.post(
            "/api/mlops/predict", headers=headers, json={"agent_type": "market_insight", "features": [{}]}
        )
        assert no_model.status_code == 404 and "retrain it first" in no_model.json()["message"]
