"""The API as it runs for users: `skippy serve` as a real HTTP server, jobs in real worker processes
(killed, timed out, cancelled), a restart that reaps, Ctrl-C, and two replicas on one PostgreSQL."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from mlops.auth import create_key
from mlops.data.generate import generate_market
from mlops.pipeline.locks import process_alive
from mlops.pipeline.retrain import retrain
from mlops.settings import Settings
from mlops.stores import init_stores
from tests.conftest import fresh_postgres_url, make_settings
from tests.live import Server, free_port

pytestmark = pytest.mark.slow
TERMINAL = ("succeeded", "rejected", "failed", "cancelled")


def trained_store(settings: Settings) -> str:
    init_stores(settings)
    generate_market(settings, symbol="SYNTH", n_bars=1200)
    assert retrain(settings, actor="test", agent="market_insight").status == "succeeded"
    return create_key(settings, name="ops", role="operator", actor="test").key


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> tuple[Settings, str]:
    settings = make_settings(tmp_path_factory.mktemp("served"))
    return settings, trained_store(settings)


@pytest.fixture(scope="module")
def server(store: tuple[Settings, str]) -> Iterator[Server]:
    running = Server(*store)
    yield running
    running.stop()


def test_a_retrain_runs_in_a_worker_process_and_a_second_one_gets_409(server: Server) -> None:
    accepted = server.client.post("/api/mlops/retrain", json={"agent_type": "market_insight"})
    assert accepted.status_code == 202, accepted.text
    job_id, run_id = accepted.json()["job_id"], accepted.json()["model_run_id"]
    second = server.client.post("/api/mlops/retrain", json={"agent_type": "market_insight"})
    assert second.status_code == 409 and "already" in second.json()["message"]
    job = server.wait_for(job_id, lambda j: j["status"] in TERMINAL)
    # The fixture's v1 is the same recipe on the same bars: the candidate is trained, registered and judged
    # no better by the gate (rejected is a finished job, not a failure).
    assert job["status"] == "rejected", job
    assert job["pid"] != server.process.pid and job["result"]["model_version"] == 2
    run = server.client.get(f"/api/mlops/model-runs/{run_id}").json()
    assert run["status"] == "rejected" and run["model_version"] == 2 and run["requested_by"] == "api:ops"
    assert run["validation"]["comparison"] == "champion_scored" and "gate_p_value" in run["validation"]["metrics"]


def test_a_killed_worker_fails_its_job_and_frees_the_agent(server: Server) -> None:
    job_id = server.client.post("/api/mlops/retrain", json={"agent_type": "risk_assessor"}).json()["job_id"]
    job = server.wait_for(job_id, lambda j: j["pid"] is not None and j["status"] == "running")
    run_id = job["model_run_id"]
    deadline = time.monotonic() + 60
    while server.client.get(f"/api/mlops/model-runs/{run_id}").json()["status"] != "running":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    os.kill(job["pid"], signal.SIGKILL)
    job = server.wait_for(job_id, lambda j: j["status"] in TERMINAL, timeout=30)
    assert job["status"] == "failed" and "exited with code -9" in job["error"]
    run = server.client.get(f"/api/mlops/model-runs/{run_id}").json()
    assert run["status"] == "failed" and "died" in run["error"]
    again = server.client.post("/api/mlops/retrain", json={"agent_type": "risk_assessor"})
    assert again.status_code == 202  # the lock of the killed run was released
    done = server.wait_for(again.json()["job_id"], lambda j: j["status"] in TERMINAL)
    assert done["status"] in ("succeeded", "rejected"), done


def test_a_running_sweep_is_cancelled_and_stays_resumable(server: Server) -> None:
    grid = {"learning_rate": [0.001, 0.003, 0.01, 0.03], "batch_size": [16, 32, 64, 128], "hidden_units": [0, 4, 8]}
    accepted = server.client.post(
        "/api/mlops/sweep",
        json={"agent_type": "market_insight", "parameter_grid": grid, "name": "cancel-me", "workers": 1},
    )
    assert accepted.status_code == 202, accepted.text
    sweep_id, job_id = accepted.json()["sweep_id"], accepted.json()["job_id"]
    deadline = time.monotonic() + 120
    while not server.client.get("/api/mlops/sweep-results", params={"sweep_id": sweep_id}).json()[0]["trials"]:
        assert time.monotonic() < deadline, server.output()
        time.sleep(0.2)
    live = server.client.get("/api/mlops/sweep-results", params={"sweep_id": sweep_id}).json()[0]
    assert live["sweep"]["status"] == "running"
    assert live["sweep"]["n_complete"] + live["sweep"]["n_failed"] >= 1  # counted per trial, not only at the end
    cancelled = server.client.post(f"/api/mlops/jobs/{job_id}/cancel")
    assert cancelled.status_code == 200
    job = server.wait_for(job_id, lambda j: j["status"] in TERMINAL, timeout=60)
    assert job["status"] == "cancelled", job
    sweep = server.client.get("/api/mlops/sweep-results", params={"sweep_id": sweep_id}).json()[0]["sweep"]
    assert sweep["status"] == "stopped" and "resumes" in sweep["error"]
    assert 0 < sweep["n_complete"] < 48


def test_a_drift_check_job_records_its_rows(server: Server) -> None:
    accepted = server.client.post("/api/mlops/drift/calculate", json={"agent_type": "market_insight"})
    job = server.wait_for(accepted.json()["job_id"], lambda j: j["status"] in TERMINAL)
    assert job["status"] == "succeeded", job
    check_id = job["result"]["checks"][0]["check_id"]
    rows = server.client.get("/api/mlops/drift-metrics", params={"check_id": check_id}).json()["items"]
    assert {r["drift_type"] for r in rows} == {"feature", "prediction", "performance"}


def test_a_job_past_its_timeout_fails_and_releases_its_lock(store: tuple[Settings, str]) -> None:
    slow = Server(*store, SKIPPY_JOB_TIMEOUT_SECONDS="1")
    try:
        job_id = slow.client.post("/api/mlops/retrain", json={"agent_type": "market_insight"}).json()["job_id"]
        job = slow.wait_for(job_id, lambda j: j["status"] in TERMINAL, timeout=60)
        assert job["status"] == "failed" and "timed out after 1 s" in job["error"], job
        run = slow.client.get(f"/api/mlops/model-runs/{job['model_run_id']}").json()
        assert run["status"] == "failed"
        assert slow.client.post("/api/mlops/retrain", json={"agent_type": "market_insight"}).status_code == 202
    finally:
        assert slow.stop(signal.SIGINT) == 0  # Ctrl-C: clean stop, the queued/running job is cancelled


def test_a_job_whose_process_died_with_the_server_is_failed_on_the_next_start(store: tuple[Settings, str]) -> None:
    first = Server(*store)
    job_id = first.client.post("/api/mlops/retrain", json={"agent_type": "market_insight"}).json()["job_id"]
    job = first.wait_for(job_id, lambda j: j["pid"] is not None)
    first.stop(signal.SIGKILL)  # the server dies: nobody is left to watch the worker
    os.kill(job["pid"], signal.SIGKILL)
    deadline = time.monotonic() + 10  # SIGKILL is delivered asynchronously: wait until the worker is gone
    while process_alive(job["pid"]) and time.monotonic() < deadline:
        time.sleep(0.05)
    second = Server(*store)
    try:
        job = second.job(job_id)
        # The module's own server shares this store and may be the replica that claimed the job: then its
        # dispatcher sees the worker's exit (-9) first; otherwise the next start's reaper finds it dead.
        assert job["status"] == "failed" and ("died" in job["error"] or "code -9" in job["error"]), job
        assert second.client.post("/api/mlops/retrain", json={"agent_type": "market_insight"}).status_code == 202
    finally:
        second.stop()


@pytest.mark.postgres
def test_two_replicas_on_one_postgres_run_a_retrain_exactly_once(
    postgres_server: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    settings = make_settings(tmp_path_factory.mktemp("replicas"), database_url=fresh_postgres_url(postgres_server))
    key = trained_store(settings)
    replicas = [Server(settings, key), Server(settings, key)]
    try:
        with ThreadPoolExecutor(2) as pool:
            answers = list(
                pool.map(lambda s: s.client.post("/api/mlops/retrain", json={"agent_type": "market_insight"}), replicas)
            )
        assert sorted(a.status_code for a in answers) == [202, 409], [a.text for a in answers]
        job_id = next(a for a in answers if a.status_code == 202).json()["job_id"]
        job = replicas[1].wait_for(job_id, lambda j: j["status"] in TERMINAL)
        assert job["status"] == "rejected", job  # ran once, to the end: the gate keeps the fixture's champion
        jobs = replicas[0].client.get("/api/mlops/jobs", params={"kind": "retrain"}).json()["items"]
        assert [j["id"] for j in jobs] == [job_id]
        runs = replicas[0].client.get("/api/mlops/model-runs", params={"agent_type": "market_insight"}).json()
        assert [r["status"] for r in runs["items"]] == ["rejected", "succeeded"]  # the job's + the fixture's

        # A killed worker on Postgres: its job and run fail, and the agent is free again on every replica.
        killed = replicas[0].client.post("/api/mlops/retrain", json={"agent_type": "market_insight"}).json()
        running = replicas[0].wait_for(killed["job_id"], lambda j: j["pid"] is not None and j["status"] == "running")
        os.kill(running["pid"], signal.SIGKILL)
        failed = replicas[1].wait_for(killed["job_id"], lambda j: j["status"] in TERMINAL, timeout=30)
        # Whichever replica notices first says it: its dispatcher ("exited with code -9") or the other's reaper.
        assert failed["status"] == "failed" and ("code -9" in failed["error"] or "died" in failed["error"]), failed
        retry = replicas[1].client.post("/api/mlops/retrain", json={"agent_type": "market_insight"})
        assert retry.status_code == 202, retry.text
        replicas[1].client.post(f"/api/mlops/jobs/{retry.json()['job_id']}/cancel")
    finally:
        for replica in replicas:
            replica.stop()


def test_up_serves_the_api_and_a_real_mlflow_server_and_ctrl_c_stops_both(tmp_path: Path) -> None:
    """`make run` as a new user runs it: first start trains, prints a key, serves :API and the MLflow UI."""
    api_port, ui_port = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("MLFLOW_TRACKING_URI", "DATABASE_URL")}
    log = open(tmp_path / "up.log", "wb")  # noqa: SIM115
    up = subprocess.Popen(
        [sys.executable, "-m", "mlops.cli", "up", "--port", str(api_port), "--ui-port", str(ui_port)],
        env=env | {"SKIPPY_HOME": str(tmp_path / "home"), "SKIPPY_LOG_JSON": "true"},
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        key_file = tmp_path / "home" / "admin.key"
        deadline = time.monotonic() + 240
        api = httpx.Client(base_url=f"http://127.0.0.1:{api_port}", timeout=30)
        ui = httpx.Client(base_url=f"http://127.0.0.1:{ui_port}", timeout=30)
        while True:
            assert up.poll() is None and time.monotonic() < deadline, (tmp_path / "up.log").read_text()[-3000:]
            try:
                if api.get("/api/health").status_code == 200 and ui.get("/health").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.5)
        key = key_file.read_text().strip()
        assert key in (tmp_path / "up.log").read_text()  # printed once, on first start
        runs = api.get("/api/mlops/model-runs", headers={"Authorization": f"Bearer {key}"}).json()["items"]
        assert {r["agent_type"] for r in runs} == {"market_insight", "risk_assessor"}
        experiment = ui.get("/api/2.0/mlflow/experiments/get-by-name", params={"experiment_name": "market_insight"})
        found = ui.post(
            "/api/2.0/mlflow/runs/search",
            json={"experiment_ids": [experiment.json()["experiment"]["experiment_id"]], "max_results": 50},
        ).json()["runs"]
        mine = next(r for r in runs if r["agent_type"] == "market_insight")
        assert mine["mlflow_run_id"] in {r["info"]["run_id"] for r in found}  # the UI shows what the API reports
        up.send_signal(signal.SIGINT)
        assert up.wait(timeout=60) == 0
        with pytest.raises(httpx.TransportError):
            ui.get("/health", timeout=2)
        with pytest.raises(httpx.TransportError):
            api.get("/api/health", timeout=2)
    finally:
        if up.poll() is None:
            up.kill()
        log.close()
