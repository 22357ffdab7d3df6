"""Issue 11, item 3: inputs and outages. Each finding of the security probe is replayed as it was found,
through the real ASGI stack on SQLite and on the real PostgreSQL (where NUL used to be a 500), and the
database outage for real: a PostgreSQL app database that refuses connections under concurrent GETs
served by a real uvicorn server (503 with Retry-After on a kept connection, then 200 again without a
restart), and a SQLite file that cannot be opened."""

from __future__ import annotations

import http.client
import json
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, func, select, text
from sqlalchemy.engine import make_url

from app import create_app
from app.errors import unavailable
from mlops.auth import create_key, list_keys
from mlops.data.generate import generate_market
from mlops.db import create_db_engine, session_scope
from mlops.db.models import ModelDeployment
from mlops.errors import InvalidRequestError
from mlops.pipeline.queries.models import list_models
from mlops.pipeline.retrain import retrain
from mlops.settings import Settings
from mlops.stores import init_stores
from mlops.text import check_text
from tests.app.test_api import Api
from tests.conftest import PG_ADMIN_URL, fresh_postgres_url, make_settings

pytestmark = pytest.mark.slow
NUL = "\x00"


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def api(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    """Two registered versions of market_insight (one champion), and a key of each role."""
    overrides: dict[str, object] = {"drift_report": False}
    if request.param == "postgres":
        overrides["database_url"] = fresh_postgres_url(request.getfixturevalue("postgres_server"))
    settings = make_settings(tmp_path_factory.mktemp(f"inputs-{request.param}"), **overrides)
    init_stores(settings)
    generate_market(settings, symbol="SYNTH", n_bars=900)
    retrain(settings, actor="fixture", agent="market_insight")
    retrain(settings, actor="fixture", agent="market_insight", hyperparameters={"learning_rate": 0.02})
    keys = {r: create_key(settings, name=f"{r}-key", role=r, actor="test").key for r in ("viewer", "operator", "admin")}
    with TestClient(create_app(settings, dispatch=False, warm=False)) as client:
        yield Api(client, settings, keys, request.param)


def refused(response: Any, field: str) -> dict[str, Any]:
    """A 422 whose message names the field and the character."""
    assert response.status_code == 422, response.text
    body: dict[str, Any] = response.json()
    assert body["error"] == "validation_error"
    assert f"{field}: control characters are not accepted" in body["message"], body["message"]
    assert " found U+" in body["message"], body["message"]
    return body


# --- the findings: NUL in query and path parameters gave 500 on PostgreSQL ---------------------------


def test_nul_in_drift_metrics_check_id_is_refused(api: Api) -> None:
    response = api.client.get("/api/mlops/drift-metrics", params={"check_id": f"a{NUL}b"}, headers=api.as_("viewer"))
    refused(response, "query.check_id")


def test_nul_in_model_runs_trigger_is_refused(api: Api) -> None:
    response = api.client.get("/api/mlops/model-runs", params={"trigger": f"manual{NUL}"}, headers=api.as_("viewer"))
    refused(response, "query.trigger")


def test_nul_in_audit_actor_is_refused(api: Api) -> None:
    response = api.client.get("/api/admin/audit", params={"actor": f"api:{NUL}"}, headers=api.as_("admin"))
    refused(response, "query.actor")


def test_nul_in_predict_symbol_is_refused(api: Api) -> None:
    body = {"agent_type": "market_insight", "symbol": f"SYN{NUL}TH"}
    response = api.client.post("/api/mlops/predict", json=body, headers=api.as_("viewer"))
    refused(response, "body.symbol")


def test_nul_in_a_key_name_to_revoke_is_refused_and_no_key_changes(api: Api) -> None:
    create_key(api.settings, name="a", role="viewer", actor="test")
    before = {k.name: k.revoked_at for k in list_keys(api.settings, True)}
    response = api.client.delete("/api/admin/keys/a%00b", headers=api.as_("admin"))
    refused(response, "path.name")
    assert {k.name: k.revoked_at for k in list_keys(api.settings, True)} == before


def test_nul_in_a_promotion_reason_is_refused_before_anything_moves(api: Api) -> None:
    """The finding: 500 *after* the MLflow alias moved, with no deployment row. Now: 422 first."""
    from tracking.registry import alias_version

    (models,) = list_models(api.settings, "market_insight")
    champion = alias_version(api.settings, "market_insight", "champion")
    assert champion is not None and champion == models.champion
    other = next(v.version for v in models.versions if v.version != champion)
    with session_scope(api.settings.app_db_url) as session:
        deployments = session.scalar(select(func.count()).select_from(ModelDeployment))
    body = {"agent_type": "market_insight", "version": other, "reason": f"x{NUL}", "force": True}
    refused(api.client.post("/api/mlops/promote", json=body, headers=api.as_("operator")), "body.reason")
    assert alias_version(api.settings, "market_insight", "champion") == champion
    with session_scope(api.settings.app_db_url) as session:
        assert session.scalar(select(func.count()).select_from(ModelDeployment)) == deployments
    answer = api.client.get("/api/mlops/models", params={"agent_type": "market_insight"}, headers=api.as_("viewer"))
    assert answer.json()[0]["champion"] == champion


# --- the rule, everywhere ---------------------------------------------------------------------------


@pytest.mark.parametrize("char", ["\x01", "\x1b", "\x7f", "\x85", "\n"])
def test_other_control_characters_are_refused_in_identifiers(api: Api, char: str) -> None:
    response = api.client.get("/api/admin/audit", params={"action": f"retrain{char}"}, headers=api.as_("admin"))
    refused(response, "query.action")


def test_free_text_keeps_tabs_and_line_breaks_and_refuses_the_rest(api: Api) -> None:
    (models,) = list_models(api.settings, "market_insight")
    other = next(v.version for v in models.versions if v.version != models.champion)
    base = {"agent_type": "market_insight", "version": other, "force": True}
    refused(
        api.client.post("/api/mlops/promote", json=base | {"reason": "a\x07b"}, headers=api.as_("operator")),
        "body.reason",
    )
    response = api.client.post(
        "/api/mlops/promote", json=base | {"reason": "line one\n\tline two\r\n"}, headers=api.as_("operator")
    )
    assert response.status_code == 200, response.text
    assert response.json()["reason"] == "line one\n\tline two\r\n"


def test_strings_inside_bodies_are_checked_keys_included(api: Api) -> None:
    sweep = {"agent_type": "market_insight", "parameter_grid": {"learning_rate": [0.01, f"x{NUL}"]}}
    refused(
        api.client.post("/api/mlops/sweep", json=sweep, headers=api.as_("operator")),
        "body.parameter_grid.learning_rate.1",
    )
    retrain_body = {"agent_type": "market_insight", "hyperparameters": {f"learning{NUL}rate": 0.01}}
    response = api.client.post("/api/mlops/retrain", json=retrain_body, headers=api.as_("operator"))
    body = refused(response, "body.hyperparameters.learning\\x00rate.[key]")
    assert NUL not in json.dumps(body, ensure_ascii=False), "the refused key is echoed escaped, not raw"
    rollback = b'{"agent_type": "market_insight", "reason": "\\ud800"}'  # a lone surrogate: no store can encode it
    headers = api.as_("operator") | {"content-type": "application/json"}
    response = api.client.post("/api/mlops/rollback", content=rollback, headers=headers)
    assert response.status_code == 422 and response.json()["message"].startswith("body.reason: "), response.text


def test_every_string_the_api_accepts_is_constrained_in_its_schema(api: Api) -> None:
    """A new parameter or field of type str with no pattern (or enum) would let control characters
    through: the schema is where the rule shows, so check it there."""
    schema = api.client.get("/openapi.json").json()
    components = schema["components"]["schemas"]

    def strings(node: Any, where: str) -> Iterator[tuple[str, dict[str, Any]]]:
        if isinstance(node, dict):
            if "$ref" in node:
                yield from strings(components[node["$ref"].rsplit("/", 1)[-1]], where)
                return
            if node.get("type") == "string":
                yield where, node
            for key in ("anyOf", "oneOf", "allOf"):
                for option in node.get(key, []):
                    yield from strings(option | {k: v for k, v in node.items() if k == "pattern"}, where)
            for name, prop in node.get("properties", {}).items():
                yield from strings(prop, f"{where}.{name}")
            if "items" in node:
                yield from strings(node["items"], f"{where}[]")

    unconstrained = []
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            found = [(f"{p['in']}.{p['name']}", p["schema"]) for p in operation.get("parameters", []) if "schema" in p]
            found = [s for label, node in found for s in strings(node, label)]
            body = operation.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema")
            found += list(strings(body, "body")) if body else []
            for label, node in found:
                if not ({"pattern", "enum", "const", "format"} & set(node)):
                    unconstrained.append(f"{method.upper()} {path} {label}")
    assert not unconstrained, "strings with no pattern: " + ", ".join(unconstrained)


def test_the_cli_refuses_control_characters_naming_the_option(tmp_path: Path) -> None:
    """argv cannot carry NUL, but any other control character reaches the command line."""
    env = {"SKIPPY_HOME": str(tmp_path), "PATH": "/usr/bin:/bin"}
    for args, named in [
        (["auth", "audit", "--actor", "api:\x1bx"], "--actor"),
        (["ai", "runs", "-a", "market\x01insight"], "--agent"),
        (["auth", "revoke", "a\x7fb"], "NAME"),
        (["ai", "promote", "--agent", "market_insight", "--version", "1", "--reason=a\x07b"], "--reason"),
    ]:
        done = subprocess.run(
            [sys.executable, "-m", "mlops.cli", *args, "--json"], capture_output=True, text=True, env=env, timeout=60
        )
        assert done.returncode == 2, (args, done.stdout, done.stderr)
        answer = json.loads(done.stdout)
        assert answer["message"].startswith(f"{named}: control characters are not accepted"), answer
    assert not (tmp_path / "skippy.db").exists(), "refused before any store was opened"


def test_check_text_allows_tabs_and_line_breaks_only_in_free_text() -> None:
    assert check_text("a\tb\nc\r", field="--reason", multiline=True) == "a\tb\nc\r"
    with pytest.raises(InvalidRequestError, match=r"--name: control characters .* U\+0009 at position 1"):
        check_text("a\tb", field="--name")
    with pytest.raises(InvalidRequestError, match=r"U\+0000 at position 0"):
        check_text(NUL, field="--reason", multiline=True)


# --- database outages -------------------------------------------------------------------------------


def test_connection_errors_are_told_apart_from_other_database_errors(tmp_path: Path) -> None:
    """Real driver errors: the ones that mean "cannot reach the store now" and one that is a bug."""
    from sqlalchemy.exc import DBAPIError

    def error_of(url: str, statement: str = "select 1", **connect_args: Any) -> DBAPIError:
        engine = create_engine(url, connect_args=connect_args)
        try:
            with engine.connect() as conn:
                conn.execute(text(statement))
        except DBAPIError as exc:
            return exc
        finally:
            engine.dispose()
        raise AssertionError(f"{url} {statement} did not fail")

    assert unavailable(error_of(f"sqlite:///{tmp_path}/missing/dir/x.db")) == "unable to open"
    locked = tmp_path / "locked.db"
    holder = sqlite3.connect(locked)
    holder.execute("create table t (x)")
    holder.commit()
    holder.execute("begin exclusive")
    try:
        assert unavailable(error_of(f"sqlite:///{locked}", "select * from t", timeout=0.05)) == "database is locked"
    finally:
        holder.close()
    assert unavailable(error_of(f"sqlite:///{tmp_path}/ok.db", "select * from no_such_table")) is None
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    refused_pg = error_of(f"postgresql+psycopg2://postgres@127.0.0.1:{port}/x")
    assert unavailable(refused_pg) == "database connection refused or lost"


def _serve(settings: Settings) -> tuple[uvicorn.Server, threading.Thread, int]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    config = uvicorn.Config(
        create_app(settings, dispatch=False, warm=False), host="127.0.0.1", port=port, log_level="warning"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="uvicorn", daemon=True)
    thread.start()
    for _ in range(200):
        if server.started:
            break
        time.sleep(0.05)
    assert server.started, "uvicorn did not start"
    return server, thread, port


@pytest.mark.postgres
def test_postgres_refusing_connections_under_load_gives_503_on_kept_connections_then_recovers(
    postgres_server: str, tmp_path: Path
) -> None:
    url = fresh_postgres_url(postgres_server)
    database = str(make_url(url).database)
    settings = make_settings(tmp_path, database_url=url)
    init_stores(settings)
    key = create_key(settings, name="outage", role="viewer", actor="test").key
    headers = {"Authorization": f"Bearer {key}"}
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    server, thread, port = _serve(settings)
    paths = ["/api/mlops/model-runs", "/api/mlops/jobs", "/api/mlops/deployments", "/api/mlops/sweeps"]
    results: list[tuple[int, str | None, str]] = []
    failures: list[str] = []
    lock = threading.Lock()

    def client(n: int, stop: threading.Event) -> None:
        """One keep-alive connection per client: http.client drops its socket when the server closes the
        connection (and would open a new one for the next request): that is recorded as a failure."""
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        try:
            while not stop.is_set():
                conn.request("GET", paths[n % len(paths)], headers=headers)
                response = conn.getresponse()
                payload = response.read()
                with lock:
                    error = json.loads(payload).get("error") if response.status != 200 else None
                    results.append((response.status, response.getheader("Retry-After"), str(error)))
                    if conn.sock is None:
                        failures.append(f"connection closed after a {response.status}")
        except Exception as exc:
            with lock:
                failures.append(repr(exc))
        finally:
            conn.close()

    def load(seconds: float) -> list[tuple[int, str | None, str]]:
        results.clear()
        failures.clear()
        stop = threading.Event()
        workers = [threading.Thread(target=client, args=(n, stop)) for n in range(4)]
        for w in workers:
            w.start()
        time.sleep(seconds)
        stop.set()
        for w in workers:
            w.join(timeout=30)
        return list(results)

    try:
        baseline = load(0.5)
        assert baseline and {status for status, _, _ in baseline} == {200} and not failures
        with admin.connect() as conn:
            conn.execute(text(f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS false'))
            conn.execute(
                text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :d"), {"d": database}
            )
        during = load(1.5)
        assert not failures, failures[:5]
        statuses = {status for status, _, _ in during}
        assert statuses <= {200, 503}, f"answers during the outage: {sorted(statuses)}"
        outage = [r for r in during if r[0] == 503]
        assert outage, "no request noticed the outage"
        assert all(retry == "5" and error == "unavailable" for _, retry, error in outage), outage[:3]
        health = json.loads(_get(port, "/api/health", {})[1])
        assert health["down"] == ["app_db"] and health["status"] == "degraded"
        with admin.connect() as conn:
            conn.execute(text(f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS true'))
        after = load(0.5)
        assert after and {status for status, _, _ in after} == {200}, "the server did not recover"
        assert not failures, failures[:5]
        assert _get(port, "/api/health", {})[0] == 200
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS true'))
        admin.dispose()
        server.should_exit = True
        thread.join(timeout=10)


def _get(port: int, path: str, headers: dict[str, str]) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request("GET", path, headers=headers)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def test_sqlite_file_that_cannot_be_opened_gives_503_then_recovers(tmp_path: Path) -> None:
    """A store on a volume that went away: new connections fail with "unable to open database file"."""
    folder = tmp_path / "volume"
    settings = make_settings(tmp_path, database_url=f"sqlite:///{folder / 'app.db'}")
    init_stores(settings)
    key = create_key(settings, name="outage", role="viewer", actor="test").key
    headers = {"Authorization": f"Bearer {key}"}
    with TestClient(create_app(settings, dispatch=False, warm=False)) as client:
        assert client.get("/api/mlops/jobs", headers=headers).status_code == 200
        create_db_engine(settings.app_db_url).dispose()  # pooled connections would keep the old file open
        folder.rename(tmp_path / "gone")
        try:
            response = client.get("/api/mlops/jobs", headers=headers)
            assert response.status_code == 503, response.text
            assert response.headers["retry-after"] == "5"
            assert response.json()["error"] == "unavailable"
            assert "unable to open" in response.json()["message"]
            health = client.get("/api/health")
            assert health.status_code == 503 and health.json()["down"] == ["app_db"]
            assert "unable to open" in health.json()["checks"]["app_db"]["detail"]
        finally:
            create_db_engine(settings.app_db_url).dispose()
            (tmp_path / "gone").rename(folder)
        assert client.get("/api/mlops/jobs", headers=headers).status_code == 200
