"""Secrets outside the stores, private files, the MLflow UI and clean shutdown (issue 11, items 4-5), each
finding replayed as the probe found it: a real `skippy up` on Postgres with a password in its URL, the
MLflow UI it serves, the files it writes, and SIGINT/SIGTERM to it."""

from __future__ import annotations

import json
import os
import re
import signal
import stat
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from sqlalchemy.engine import make_url

from mlops.data.generate import generate_market
from mlops.pipeline.retrain import retrain
from mlops.processes import process_alive
from mlops.stores import init_stores
from tests.app.test_server import free_port
from tests.conftest import fresh_postgres_url, make_settings
from tracking.ui_proxy import is_read

CLEAN_ENV = {k: v for k, v in os.environ.items() if k not in ("MLFLOW_TRACKING_URI", "DATABASE_URL")}


def with_password(url: str) -> tuple[str, str]:
    """`url` with a password no test could guess (the server trusts local connections: it is ignored)."""
    password = f"pw-{uuid.uuid4().hex}"
    return make_url(url).set(password=password).render_as_string(hide_password=False), password


def descendants(pid: int) -> list[int]:
    """Every live process below `pid` (from /proc: children, grandchildren, ...)."""
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            parents.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        children = parents.get(todo.pop(), [])
        found += children
        todo += children
    return found


def proc_text(pid: int, name: str) -> str:
    try:
        return (Path("/proc") / str(pid) / name).read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:  # gone meanwhile
        return ""


@dataclass
class Up:
    process: subprocess.Popen[bytes]
    log: Path
    home: Path
    api: httpx.Client
    ui: httpx.Client

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self, sig: int = signal.SIGTERM) -> int:
        if self.process.poll() is None:
            self.process.send_signal(sig)
        try:
            return self.process.wait(timeout=60)
        finally:
            self.api.close()
            self.ui.close()


def start_up(home: Path, log: Path, **env: str) -> Up:
    """`skippy up` on free ports, returned once the API and the MLflow UI (through its proxy) answer."""
    api_port, ui_port = free_port(), free_port()
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "mlops.cli", "up", "--port", str(api_port), "--ui-port", str(ui_port)],
            env=CLEAN_ENV
            | {"SKIPPY_HOME": str(home), "SKIPPY_LOG_JSON": "true", "SKIPPY_GATE_REQUIRE_EDGE": "false"}
            | env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    up = Up(
        process,
        log,
        home,
        httpx.Client(base_url=f"http://127.0.0.1:{api_port}", timeout=30),
        httpx.Client(base_url=f"http://127.0.0.1:{ui_port}", timeout=30),
    )
    deadline = time.monotonic() + 180
    while True:
        assert process.poll() is None and time.monotonic() < deadline, up.output()[-4000:]
        try:
            if up.api.get("/api/health").status_code == 200 and up.ui.get("/health").status_code == 200:
                return up
        except httpx.TransportError:
            pass
        time.sleep(0.3)


@dataclass
class PostgresUp:
    up: Up
    password: str


@pytest.fixture(scope="module")
def up_on_postgres(postgres_server: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[PostgresUp]:
    """The probe's setup: `skippy up` on a Postgres URL with a password, first start (seeds, trains, keys)."""
    url, password = with_password(fresh_postgres_url(postgres_server))
    folder = tmp_path_factory.mktemp("up-postgres")
    up = start_up(folder / "home", folder / "up.log", DATABASE_URL=url)
    yield PostgresUp(up, password)
    up.stop()


def mlflow_server_of(up: Up) -> int:
    """The pid of the `mlflow server` that `skippy up` started."""
    servers = [pid for pid in descendants(up.process.pid) if "mlflow server" in proc_text(pid, "cmdline")]
    assert len(servers) == 1, [proc_text(pid, "cmdline") for pid in descendants(up.process.pid)]
    return servers[0]


# --- Secrets outside the stores -------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.postgres
def test_up_passes_the_store_url_to_mlflow_server_through_its_environment_not_its_command_line(
    up_on_postgres: PostgresUp,
) -> None:
    up, password = up_on_postgres.up, up_on_postgres.password
    server = mlflow_server_of(up)
    environment = (Path("/proc") / str(server) / "environ").read_bytes().split(b"\0")
    backend = next(v for v in environment if v.startswith(b"MLFLOW_BACKEND_STORE_URI="))
    assert password.encode() in backend  # it does reach the server ...
    assert stat.S_IMODE((Path("/proc") / str(server) / "environ").stat().st_mode) == 0o400  # ... privately
    processes = [up.process.pid, *descendants(up.process.pid)]
    assert len(processes) >= 3  # skippy up, mlflow server, its uvicorn worker
    for pid in processes:
        assert password not in proc_text(pid, "cmdline"), proc_text(pid, "cmdline")  # what `ps` shows


@pytest.mark.slow
@pytest.mark.postgres
def test_up_prints_the_store_urls_with_the_password_masked(up_on_postgres: PostgresUp) -> None:
    output = up_on_postgres.up.output()
    assert re.search(r"tracking URI: postgresql\+psycopg2://[^:@/]+:\*\*\*@127\.0\.0\.1", output), output[-3000:]
    assert up_on_postgres.password not in output  # nor does anything it started (MLflow's own logs included)


@pytest.mark.postgres
@pytest.mark.parametrize("command", [["db", "status", "--json"], ["db", "upgrade", "--json"], ["db", "upgrade"]])
def test_db_commands_print_every_url_with_the_password_masked(
    command: list[str], postgres_server: str, tmp_path: Path
) -> None:
    url, password = with_password(fresh_postgres_url(postgres_server))
    result = subprocess.run(
        [sys.executable, "-m", "mlops.cli", *command],
        env=CLEAN_ENV | {"SKIPPY_HOME": str(tmp_path / "home"), "DATABASE_URL": url},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert password not in result.stdout + result.stderr
    if "--json" in command:
        urls = [v for v in json.loads(result.stdout).values() if isinstance(v, str) and "://" in v]
        assert urls and all(":***@" in u for u in urls), urls  # status: all three stores; upgrade: the app DB
    else:
        assert ":***@127.0.0.1" in result.stdout


# --- The MLflow UI ------------------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.postgres
def test_the_mlflow_ui_refuses_alias_moves_without_a_key(up_on_postgres: PostgresUp) -> None:
    ui = up_on_postgres.up.ui
    before = ui.get("/api/2.0/mlflow/registered-models/get", params={"name": "market_insight"}).json()
    champion = next(a for a in before["registered_model"]["aliases"] if a["alias"] == "champion")["version"]
    moves = [
        ui.post(
            "/api/2.0/mlflow/registered-models/alias",
            json={"name": "market_insight", "alias": "champion", "version": "1"},
        ),
        ui.post(
            "/ajax-api/2.0/mlflow/registered-models/alias",
            json={"name": "market_insight", "alias": "challenger", "version": champion},
        ),
        ui.delete("/api/2.0/mlflow/registered-models/alias", params={"name": "market_insight", "alias": "champion"}),
        ui.post("/graphql", json={"query": 'mutation { testMutation(inputString: "x") { output } }'}),
    ]
    for refused in moves:
        assert refused.status_code == 403, refused.text
        assert refused.json()["error_code"] == "PERMISSION_DENIED"
        assert "skippy ai promote" in refused.json()["message"]
    after = ui.get("/api/2.0/mlflow/registered-models/get", params={"name": "market_insight"}).json()
    assert after["registered_model"]["aliases"] == before["registered_model"]["aliases"]


@pytest.mark.slow
@pytest.mark.postgres
def test_the_mlflow_ui_refuses_tracking_writes(up_on_postgres: PostgresUp) -> None:
    ui = up_on_postgres.up.ui
    experiment = ui.get("/api/2.0/mlflow/experiments/get-by-name", params={"experiment_name": "market_insight"})
    experiment_id = experiment.json()["experiment"]["experiment_id"]
    for path, body in [
        ("/api/2.0/mlflow/runs/create", {"experiment_id": experiment_id}),
        ("/api/2.0/mlflow/experiments/create", {"name": "intruder"}),
        ("/api/2.0/mlflow/registered-models/create", {"name": "intruder"}),
        ("/api/2.0/mlflow/model-versions/create", {"name": "market_insight", "source": "/tmp/x"}),
    ]:
        assert ui.post(path, json=body).status_code == 403, path
    assert ui.patch("/api/2.0/mlflow/registered-models/update", json={"name": "market_insight"}).status_code == 403
    assert ui.put("/api/2.0/mlflow-artifacts/artifacts/1/x.txt", content=b"x").status_code == 403
    names = ui.get("/api/2.0/mlflow/experiments/get-by-name", params={"experiment_name": "intruder"})
    assert names.status_code == 404


@pytest.mark.slow
@pytest.mark.postgres
def test_the_mlflow_ui_still_reads_and_searches(up_on_postgres: PostgresUp) -> None:
    up = up_on_postgres.up
    key = (up.home / "admin.key").read_text().strip()
    runs = up.api.get("/api/mlops/model-runs", headers={"Authorization": f"Bearer {key}"}).json()["items"]
    mine = next(r for r in runs if r["agent_type"] == "market_insight")
    assert up.ui.get("/").status_code == 200 and "<html" in up.ui.get("/").text.lower()
    experiment = up.ui.get("/ajax-api/2.0/mlflow/experiments/get-by-name", params={"experiment_name": "market_insight"})
    experiment_id = experiment.json()["experiment"]["experiment_id"]
    found = up.ui.post("/ajax-api/2.0/mlflow/runs/search", json={"experiment_ids": [experiment_id]})
    assert found.status_code == 200 and mine["mlflow_run_id"] in {r["info"]["run_id"] for r in found.json()["runs"]}
    run_id = mine["mlflow_run_id"]
    query = {"query": f'query {{ mlflowGetRun(input: {{runId: "{run_id}"}}) {{ run {{ info {{ status }} }} }} }}'}
    graphql = up.ui.post("/graphql", json=query)
    assert graphql.status_code == 200 and graphql.json()["data"]["mlflowGetRun"]["run"]["info"]["status"] == "FINISHED"
    assert up.ui.get("/ajax-api/2.0/mlflow/registered-models/search").status_code == 200
    assert up.ui.post("/ajax-api/2.0/mlflow/experiments/search", json={"max_results": 10}).status_code == 200


@pytest.mark.slow
@pytest.mark.postgres
def test_the_mlflow_server_itself_listens_only_on_a_private_socket(up_on_postgres: PostgresUp) -> None:
    """Behind the proxy, not beside it: no TCP port of the MLflow server to write through."""
    server = mlflow_server_of(up_on_postgres.up)
    worker_commands = [proc_text(pid, "cmdline") for pid in descendants(server)]
    assert worker_commands and all("--uds" in c for c in worker_commands), worker_commands
    socket_path = Path(worker_commands[0].split("--uds ", 1)[1].split()[0])
    assert socket_path.is_socket() and stat.S_IMODE(socket_path.parent.stat().st_mode) == 0o700
    listening = listening_tcp_inodes()
    assert socket_inodes(up_on_postgres.up.process.pid) & listening  # sanity: the API's and the proxy's ports
    for pid in [server, *descendants(server)]:
        assert not socket_inodes(pid) & listening, proc_text(pid, "cmdline")


def listening_tcp_inodes() -> set[str]:
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == "0A":  # LISTEN
                inodes.add(fields[9])
    return inodes


def socket_inodes(pid: int) -> set[str]:
    inodes = set()
    for fd in (Path("/proc") / str(pid) / "fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[len("socket:[") : -1])
    return inodes


@pytest.mark.parametrize(
    ("method", "path", "body", "allowed"),
    [
        ("GET", "/ajax-api/2.0/mlflow/registered-models/get", b"", True),
        ("HEAD", "/static-files/index.html", b"", True),
        ("POST", "/ajax-api/2.0/mlflow/runs/search", b"{}", True),
        ("POST", "/api/2.0/mlflow/logged-models/search", b"{}", True),
        ("POST", "/ajax-api/3.0/mlflow/traces/search", b"{}", True),
        ("POST", "/ajax-api/2.0/mlflow/registered-models/get-latest-versions", b"{}", True),
        ("POST", "/graphql", b'{"query": "query { x }"}', True),
        ("POST", "/ajax-api/2.0/mlflow/registered-models/alias", b"{}", False),
        ("DELETE", "/ajax-api/2.0/mlflow/registered-models/alias", b"", False),
        ("POST", "/api/2.0/mlflow/runs/log-batch", b"{}", False),
        ("POST", "/api/2.0/mlflow/runs/log-metric/../search", b"{}", False),
        ("POST", "/api/2.0/mlflow/runs/search/", b"{}", False),
        ("PATCH", "/api/2.0/mlflow/model-versions/update", b"{}", False),
        ("PUT", "/api/2.0/mlflow-artifacts/artifacts/x", b"x", False),
        ("POST", "/gateway/openai/v1/chat/completions", b"{}", False),
        ("POST", "/graphql", b'{"query": "MUTATION { testMutation }"}', False),
    ],
)
def test_the_ui_proxy_lets_reads_through_and_nothing_else(method: str, path: str, body: bytes, allowed: bool) -> None:
    assert is_read(method, path, body, b"") is allowed


# --- Files ----------------------------------------------------------------------------------------------------


def assert_private(home: Path) -> list[str]:
    """Every folder under `home` is 700 and every file 600; returns the files' names."""
    assert stat.S_IMODE(home.stat().st_mode) == 0o700
    names = []
    for folder, subfolders, files in os.walk(home):
        for name in subfolders:
            assert stat.S_IMODE((Path(folder) / name).stat().st_mode) == 0o700, Path(folder) / name
        for name in files:
            path = Path(folder) / name
            if not path.is_socket():
                assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
                names.append(name)
    return names


def test_the_home_and_embedded_stores_are_created_private(tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "not-yet" / "home")
    init_stores(settings)
    generate_market(settings, symbol="SYNTH", n_bars=1200)
    assert retrain(settings, actor="test", agent="market_insight").status == "succeeded"
    names = assert_private(tmp_path / "not-yet")
    assert {"skippy.db", "mlflow.db", "MLmodel"} <= set(names)  # the stores and the model's artifacts


@pytest.mark.slow
@pytest.mark.postgres
def test_up_creates_its_home_artifacts_and_key_private(up_on_postgres: PostgresUp) -> None:
    names = assert_private(up_on_postgres.up.home)
    assert "admin.key" in names and "MLmodel" in names


# --- Clean shutdown -------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def trained_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A home whose agents are deployed, so that `skippy up` only starts its servers."""
    settings = make_settings(tmp_path_factory.mktemp("shutdown") / "home")
    init_stores(settings)
    generate_market(settings, symbol="SYNTH", n_bars=1200)
    for agent in ("market_insight", "risk_assessor"):
        assert retrain(settings, actor="test", agent=agent).status == "succeeded"
    return settings.home


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signal_to_up_stops_the_api_the_ui_proxy_and_the_mlflow_server(
    sig: signal.Signals, trained_home: Path, tmp_path: Path
) -> None:
    up = start_up(trained_home, tmp_path / "up.log")
    started = descendants(up.process.pid)
    server = mlflow_server_of(up)
    socket_folder = Path(proc_text(descendants(server)[0], "cmdline").split("--uds ", 1)[1].split()[0]).parent
    api, ui = str(up.api.base_url).rstrip("/"), str(up.ui.base_url).rstrip("/")
    assert up.stop(sig) == 0, up.output()[-3000:]
    deadline = time.monotonic() + 10  # the group was waited for; its grandchildren's exits are asynchronous
    while any(process_alive(pid) for pid in started) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not [pid for pid in started if process_alive(pid)], [proc_text(p, "cmdline") for p in started]
    for url in (f"{api}/api/health", f"{ui}/health"):
        with pytest.raises(httpx.TransportError):
            httpx.get(url, timeout=2)
    assert not socket_folder.exists()
