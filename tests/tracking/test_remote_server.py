"""tracking/ against a real `mlflow server` (REST, artifacts proxied to its --artifacts-destination), with
the server's store, the app DB and the Optuna storage on the real PostgreSQL: a team's topology. The
project's own services end to end: retrain and deploy, a sweep with two workers, a drift check, promote,
rollback and a prediction through the serving path.

The server is reached through a reverse proxy that demands a bearer token, as a team's gateway would:
the token is in MLflow's own MLFLOW_TRACKING_TOKEN, which every call must carry, sweep workers included.
(MLflow's own `--app-name basic-auth` needs its `auth` extra, flask-wtf, which the project does not install.)
"""

from __future__ import annotations

import contextlib
import http.client
import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import numpy as np
import pytest

from mlops.data.generate import generate_market
from mlops.db import session_scope
from mlops.db.models import StoreBinding
from mlops.db.session import ensure_database
from mlops.settings import Settings
from mlops.stores import init_stores
from tests.conftest import fresh_postgres_url, make_settings

pytestmark = [pytest.mark.slow, pytest.mark.postgres]
AGENT = "market_insight"
ACTOR = "cli:remote-test"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=2) as answer:
            return bool(answer.status == 200)
    except OSError:
        return False


@dataclass(frozen=True)
class Server:
    url: str  # of the proxy in front of it
    artifacts: Path  # its --artifacts-destination
    token: str  # that the proxy demands
    requests: list[str]  # that the proxy let through: "METHOD path"


class _TokenProxy(BaseHTTPRequestHandler):
    """Forwards requests carrying `Authorization: Bearer <token>` to the server; 401 for anything else."""

    upstream: ClassVar[int]  # the server's port
    token: ClassVar[str]
    seen: ClassVar[list[str]]

    def _forward(self) -> None:
        if self.headers.get("Authorization") != f"Bearer {self.token}":
            self.send_error(401, "a bearer token is required")
            return
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "connection")}
        upstream = http.client.HTTPConnection("127.0.0.1", self.upstream, timeout=60)
        try:
            upstream.request(self.command, self.path, body=body, headers=headers)
            answer = upstream.getresponse()
            payload = answer.read()
        finally:
            upstream.close()
        self.seen.append(f"{self.command} {self.path.split('?')[0]}")
        self.send_response(answer.status)
        for key, value in answer.getheaders():
            if key.lower() not in ("transfer-encoding", "connection", "content-length"):
                self.send_header(key, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _forward

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def tracking_server(postgres_server: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A tracking server on loopback. Kept light: one web worker and no job-execution runner (MLflow 3
    starts huey consumers for its server-side jobs otherwise)."""
    backend = fresh_postgres_url(postgres_server)
    ensure_database(backend)
    folder = tmp_path_factory.mktemp("mlflow-server")
    artifacts = folder / "artifacts"
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    env["MLFLOW_SERVER_ENABLE_JOB_EXECUTION"] = "false"
    command = [
        *(sys.executable, "-m", "mlflow", "server"),
        *("--backend-store-uri", backend, "--artifacts-destination", str(artifacts)),
        *("--host", "127.0.0.1", "--port", str(port), "--workers", "1"),
    ]
    log = folder / "server.log"
    with log.open("wb") as out:
        # A session of its own: the server forks its web workers, and teardown stops the whole group.
        server = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    try:
        deadline = time.monotonic() + 90
        while not _healthy(url):
            if server.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"mlflow server did not come up on {url}:\n{log.read_text()[-3000:]}")
            time.sleep(0.25)
        token = secrets.token_urlsafe(16)
        handler = type("Proxy", (_TokenProxy,), {"upstream": port, "token": token, "seen": []})
        proxy = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=proxy.serve_forever, daemon=True).start()
        try:
            yield Server(f"http://127.0.0.1:{proxy.server_address[1]}", artifacts, token, handler.seen)
        finally:
            proxy.shutdown()
            proxy.server_close()
    finally:
        _stop(server)


def _stop(server: subprocess.Popen[bytes]) -> None:
    """Stop the server's process group (its web workers too), hard if it does not stop within 15 s."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        with contextlib.suppress(ProcessLookupError):  # already gone
            os.killpg(server.pid, sig)
        try:
            server.wait(timeout=15)
            return
        except subprocess.TimeoutExpired:
            continue


@pytest.fixture
def settings(
    tracking_server: Server, postgres_server: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Settings:
    monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", tracking_server.token)
    s = make_settings(
        tmp_path,
        database_url=fresh_postgres_url(postgres_server),  # the Optuna storage is its sibling database
        mlflow_tracking_uri=tracking_server.url,
        drift_report=False,  # the Evidently report is a local file, not what this test is about
    )
    init_stores(s)
    generate_market(s, symbol="SYNTH", n_bars=900)
    return s


def test_services_end_to_end_against_a_tracking_server(settings: Settings, tracking_server: Server) -> None:
    import mlflow

    from mlops.pipeline.deployments import promote, rollback
    from mlops.pipeline.drift import check_drift
    from mlops.pipeline.retrain import retrain
    from mlops.pipeline.serving import predict
    from mlops.pipeline.sweeps import sweep
    from tracking import registry
    from tracking.client import get_client
    from tracking.identity import STORE_ID_TAG

    with pytest.raises(urllib.error.HTTPError) as anonymous:  # the gateway does demand the token
        urllib.request.urlopen(f"{tracking_server.url}/api/2.0/mlflow/experiments/get?experiment_id=0", timeout=5)
    assert anonymous.value.code == 401

    first = retrain(settings, agent=AGENT, actor=ACTOR)
    assert (first.status, first.deployment_status) == ("succeeded", "promoted"), first.reason
    client = get_client(settings)
    with session_scope(settings.app_db_url) as session:
        bound = session.get_one(StoreBinding, "mlflow")
        assert (bound.url, bound.store_id) == (tracking_server.url, client.get_experiment("0").tags[STORE_ID_TAG])

    record = sweep(settings, actor=ACTOR, agent=AGENT, grid={"learning_rate": [0.01, 0.03]}, workers=2)
    assert record.status == "completed" and (record.n_complete, record.n_failed) == (2, 0)
    parent = client.get_run(record.parent_run_id)
    children = client.search_runs(
        [parent.info.experiment_id], filter_string=f"tags.mlflow.parentRunId = '{record.parent_run_id}'"
    )
    assert sorted(float(run.data.params["learning_rate"]) for run in children) == [0.01, 0.03]

    # Deployed or rejected by the gate, the candidate is registered: promote it by hand (force), roll back.
    second = retrain(settings, agent=AGENT, actor=ACTOR, hyperparameters={"learning_rate": 0.03})
    assert second.status in ("succeeded", "rejected") and second.model_version == 2, second.reason
    promoted = promote(settings, agent=AGENT, version=2, actor=ACTOR, reason="remote test", force=True)
    assert (promoted.from_version, promoted.to_version) == (1, 2)
    assert registry.alias_version(settings, AGENT, registry.CHAMPION) == 2
    rolled = rollback(settings, agent=AGENT, actor=ACTOR)
    assert (rolled.from_version, rolled.to_version) == (2, 1)
    assert registry.alias_version(settings, AGENT, registry.CHAMPION) == 1

    check = check_drift(settings, actor=ACTOR, agent=AGENT)
    assert check.model_version == 1 and {row.drift_type for row in check.summary()} >= {"feature", "prediction"}

    answer = predict(settings, agent=AGENT, requested_by=ACTOR, symbol="SYNTH", n_bars=3)
    assert answer.model_version == 1 and len(answer.predictions) == 3
    assert all(0 < row.probability < 1 for row in answer.predictions)
    fresh = mlflow.pyfunc.load_model(f"models:/{AGENT}@champion")  # downloaded anew through the server
    assert np.isclose(
        answer.predictions[-1].probability, float(np.asarray(fresh.predict(_latest_features(settings)))[-1])
    )

    # Every model went through the server into its artifacts destination; nothing was written locally.
    for version in registry.list_versions(settings, AGENT):
        model_id = registry.logged_model_id(version.source)
        assert model_id is not None and len(list(tracking_server.artifacts.rglob(f"{model_id}/artifacts/MLmodel"))) == 1
    assert list(settings.home.rglob("MLmodel")) == []
    # Everything above went through the gateway with the token: runs, registry, artifacts both ways.
    assert {"POST /api/2.0/mlflow/runs/create", "POST /api/2.0/mlflow/model-versions/create"} <= set(
        tracking_server.requests
    )
    assert any(r.startswith("PUT /api/2.0/mlflow-artifacts/artifacts/") for r in tracking_server.requests)
    assert any(r.startswith("GET /api/2.0/mlflow-artifacts/artifacts/") for r in tracking_server.requests)


def _latest_features(settings: Settings) -> object:
    from mlops.data.features import FEATURE_NAMES, compute_features
    from mlops.data.store import load_bars

    return compute_features(load_bars(settings.app_db_url, "SYNTH")).dropna().tail(3)[list(FEATURE_NAMES)]
