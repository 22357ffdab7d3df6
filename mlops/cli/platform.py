"""`skippy up` (everything a new user needs in one command) and `skippy serve` (the API alone)."""

from __future__ import annotations

import os
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from mlops.cli.common import cli_actor, ready_settings
from mlops.cli.output import console, print_json, styled, table, user_errors
from mlops.settings import AGENTS

if TYPE_CHECKING:
    from mlops.settings import Settings

ADMIN_KEY_FILE = "admin.key"


def mlflow_server_command(socket_path: str) -> list[str]:
    """A real `mlflow server` on the stores (one worker: it is the UI, not the API), listening on a Unix
    socket only: the UI's port is served by the read-only proxy (tracking/ui_proxy.py). No store URL on
    the command line — anyone can read a command line (`ps`); the URLs go through the environment."""
    return [
        sys.executable,
        "-m",
        "mlflow",
        "server",
        "--workers",
        "1",
        "--uvicorn-opts",
        f"--uds {shlex.quote(socket_path)}",
    ]


def mlflow_server_environment(settings: Settings) -> dict[str, str]:
    """`mlflow server`'s settings as its environment variables (its options' `envvar`s in MLflow 3.17),
    readable only by this user (/proc/<pid>/environ is private)."""
    return {
        "MLFLOW_BACKEND_STORE_URI": settings.tracking_uri,
        "MLFLOW_DEFAULT_ARTIFACT_ROOT": settings.artifact_root.as_uri(),
        "MLFLOW_TRACKING_URI": settings.tracking_uri,
        "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
    }


def start_mlflow_server(settings: Settings, socket_path: str) -> subprocess.Popen[bytes]:
    env = os.environ | mlflow_server_environment(settings)
    # Its own process group: Ctrl-C is ours to handle, and stopping it stops its workers too.
    return subprocess.Popen(mlflow_server_command(socket_path), env=env, start_new_session=True)


def announce_when_ready(url: str, process: subprocess.Popen[bytes], timeout: float = 180.0) -> None:
    """Say when `mlflow server` answers (it takes 20-60 s to come up), from a background thread."""

    def wait() -> None:
        import httpx

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and process.poll() is None:
            try:
                if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                    console.print(f"MLflow UI ready: {url}", highlight=False)
                    return
            except httpx.HTTPError:
                pass
            time.sleep(1)
        if process.poll() is not None:
            console.print(f"[red]the MLflow UI exited with code {process.returncode}[/red]", highlight=False)

    threading.Thread(target=wait, name="mlflow-ui-ready", daemon=True).start()


def stop_process_group(process: subprocess.Popen[bytes], timeout: float = 20.0) -> None:
    if process.poll() is not None:
        return
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=5)
    except ProcessLookupError:
        pass


def ensure_admin_key(settings: Settings) -> tuple[str | None, Path]:
    """On first start (no active admin key) create one and save it under SKIPPY_HOME (mode 600).
    Returns the new key (None when one already existed) and the file."""
    from mlops.auth import create_key, has_admin_key, list_keys

    path = settings.home / ADMIN_KEY_FILE
    if has_admin_key(settings):
        return None, path
    taken = {k.name for k in list_keys(settings, include_revoked=True)}
    name = next(n for n in ("admin", *(f"admin-{i}" for i in range(2, 1000))) if n not in taken)
    created = create_key(settings, name=name, role="admin", actor=cli_actor())
    path.unlink(missing_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)  # never readable by others
    with os.fdopen(descriptor, "w") as handle:
        handle.write(created.key + "\n")
    return created.key, path


def require_free_ports(host: str, ports: list[tuple[int, str]]) -> None:
    """Refuse to start when a port is taken (another `skippy up`?), naming the port and the setting that
    moves it — before any work, rather than uvicorn's bare 'Errno 98' after it."""
    import errno
    import socket

    from mlops.errors import ConflictError

    for port, setting in ports:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            try:
                probe.bind((host, port))
            except OSError as exc:
                if exc.errno != errno.EADDRINUSE:
                    raise
                raise ConflictError(
                    f"port {port} on {host} is in use (another `skippy up` or `skippy serve`?): stop it, "
                    f"or choose another port with {setting}=<port>"
                ) from None


def scheduler_line(settings: Settings) -> str:
    """One line: whether this server runs the scheduler, and how to turn it on. Its schedules are checked
    first: an invalid one stops the start with ConfigurationError naming the setting and the value."""
    from mlops.scheduler import enabled_reason, scheduler_enabled, triggers

    if not scheduler_enabled(settings):
        return f"scheduler: {enabled_reason(settings)}"
    triggers(settings)
    return f"scheduler: {enabled_reason(settings)}; `skippy jobs status` shows its jobs and their next runs"


def serve_api(settings: Settings, host: str, port: int, dispatch: bool = True) -> None:
    import uvicorn

    from app import create_app
    from app.middleware import slow_client_protocol

    console.print(scheduler_line(settings), highlight=False)
    console.print(f"dashboard: http://{host}:{port}/mlops (log in with an API key)", highlight=False)
    uvicorn.run(
        create_app(settings, dispatch=dispatch),
        host=host,
        port=port,
        log_level="info",
        access_log=settings.api_access_log,
        timeout_graceful_shutdown=10,
        # Slow clients: request headers within SKIPPY_API_READ_TIMEOUT_SECONDS (the body's deadline is the
        # middleware's), idle keep-alive connections closed after 5 s, a request head at most 16 KB.
        http=slow_client_protocol(settings.api_read_timeout_seconds),
        timeout_keep_alive=5,
        h11_max_incomplete_event_size=16 * 1024,
    )


def run_serve(*, host: str | None, port: int | None, dispatch: bool) -> None:
    with user_errors():
        settings = ready_settings()
        host, port = host or settings.api_host, port or settings.api_port
        require_free_ports(host, [(port, "--port or SKIPPY_API_PORT")])
        scheduler_line(settings)  # an invalid schedule stops here, in one line
    serve_api(settings, host, port, dispatch)


def _bootstrap(settings: Settings, retrain_all: bool, as_json: bool) -> dict[str, Any]:
    from mlops.data.store import count_bars
    from mlops.pipeline.market import generate_bars
    from mlops.pipeline.queries import list_models
    from mlops.pipeline.retrain import retrain

    symbol = settings.symbol
    seeded = None
    if count_bars(settings.app_db_url, symbol) == 0:
        with console.status(f"generating the synthetic market {symbol} ..."):
            seeded = generate_bars(settings, actor=cli_actor(), symbol=symbol)
        if not as_json:
            console.print(f"loaded {seeded.inserted} synthetic bars for {symbol}")
    deployed = {m.agent_type: m.champion for m in list_models(settings)}
    results = []
    for agent in AGENTS:
        if retrain_all or deployed.get(agent) is None:
            with console.status(f"retraining {agent} ..."):
                results.append(retrain(settings, actor=cli_actor(), agent=agent, trigger="manual"))
    return {"seeded": seeded, "retrains": results, "models": list_models(settings)}


def _render(state: dict[str, Any]) -> None:
    results = state["retrains"]
    if results:
        table(
            "Retrains",
            ["agent", "run", "status", "deployment", "version", "test accuracy", "test sharpe", "buy&hold sharpe"],
            [
                [
                    r.agent_type,
                    str(r.model_run_id),
                    styled(r.status),
                    styled(r.deployment_status),
                    str(r.model_version),
                    r.metrics.get("accuracy"),
                    r.metrics.get("sharpe_ratio"),
                    r.metrics.get("buy_hold_sharpe_ratio"),
                ]
                for r in results
            ],
        )
        for r in results:
            console.print(f"  {r.agent_type}: {r.reason}", highlight=False)
    table(
        "Deployed models",
        ["agent", "champion", "challenger", "model URI"],
        [
            [
                m.agent_type,
                f"v{m.champion}" if m.champion else "-",
                f"v{m.challenger}" if m.challenger else "-",
                m.model_uri or "-",
            ]
            for m in state["models"]
        ],
    )


def run_up(*, serve: bool, api_port: int | None, ui_port: int | None, retrain_all: bool, as_json: bool) -> None:
    from mlops.db.bindings import masked

    with user_errors(as_json):
        settings = ready_settings()
        api_port = api_port or settings.api_port
        ui_port = ui_port or settings.mlflow_ui_port
        if serve:
            require_free_ports(settings.api_host, [(api_port, "--port or SKIPPY_API_PORT")])
            require_free_ports("127.0.0.1", [(ui_port, "--ui-port or SKIPPY_MLFLOW_UI_PORT")])
            scheduler_line(settings)  # an invalid schedule stops here, before any work
        state = _bootstrap(settings, retrain_all, as_json)
        new_key, key_file = ensure_admin_key(settings)
    api = f"http://127.0.0.1:{api_port}"
    urls = {
        "api": api,
        "docs": f"{api}/docs",
        "dashboard": f"{api}/mlops",
        "mlflow_ui": f"http://127.0.0.1:{ui_port}",
        "tracking_uri": masked(settings.tracking_uri),
    }
    if as_json:
        print_json(state | {"admin_key": new_key, "admin_key_file": str(key_file), "urls": urls})
    else:
        _render(state)
        if new_key:
            console.print(f"admin API key (shown once here, saved in {key_file}):", highlight=False)
            console.print(f"  {new_key}", highlight=False, soft_wrap=True)
        else:
            console.print(f"admin API key: in {key_file} (if you kept it there)", highlight=False)
        console.print(
            f"API: {api}  (docs: {api}/docs)   MLflow UI: {urls['mlflow_ui']}   tracking URI: {urls['tracking_uri']}\n"
            f'try: curl -H "Authorization: Bearer $(cat {key_file})" {api}/api/mlops/model-runs',
            highlight=False,
        )
    if any(r.status == "failed" for r in state["retrains"]):
        raise typer.Exit(1)
    if not serve:
        return
    serve_everything(settings, api_port, ui_port, urls["mlflow_ui"])


class _Stop(Exception):
    """SIGTERM, raised in the main thread once uvicorn has handed the signal back."""


def _raise_stop(signum: int, frame: object) -> None:
    raise _Stop(signum)


def serve_everything(settings: Settings, api_port: int, ui_port: int, ui_url: str) -> None:
    """The API in the foreground, `mlflow server` on a private socket and the read-only UI proxy beside it,
    until SIGINT or SIGTERM; then all three stop, and the process exits 0.

    uvicorn handles both signals while it serves, then raises the signal again once it has stopped: SIGINT
    becomes KeyboardInterrupt, and SIGTERM — whose default action ends the process on the spot, before any
    cleanup (seen: the MLflow server outlived `skippy up`) — becomes `_Stop`, so that `finally` runs."""
    from tracking.ui_proxy import ReadOnlyUI

    previous = {
        signal.SIGINT: signal.getsignal(signal.SIGINT),
        signal.SIGTERM: signal.signal(signal.SIGTERM, _raise_stop),
    }
    folder = tempfile.mkdtemp(prefix="skippy-mlflow-")  # 700: only this user reaches the socket
    mlflow_server: subprocess.Popen[bytes] | None = None
    proxy: ReadOnlyUI | None = None
    try:
        mlflow_server = start_mlflow_server(settings, os.path.join(folder, "mlflow.sock"))
        proxy = ReadOnlyUI(os.path.join(folder, "mlflow.sock"), "127.0.0.1", ui_port)
        proxy.start()
        announce_when_ready(ui_url, mlflow_server)
        console.print(
            "serving the API (ready in a few seconds) and the MLflow UI, read-only (its server takes 20-60 s to "
            "start); Ctrl-C stops all of it",
            highlight=False,
        )
        serve_api(settings, settings.api_host, api_port)
    except (KeyboardInterrupt, _Stop):
        pass
    finally:
        # A second signal must not cut the cleanup short (SIGKILL still can).
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        if proxy is not None:
            proxy.stop()
        if mlflow_server is not None:
            stop_process_group(mlflow_server)
        shutil.rmtree(folder, ignore_errors=True)
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def run_scheduler(*, dispatch: bool) -> None:
    """`skippy scheduler`: the scheduler in the foreground — with the job dispatcher (`dispatch`) and alert
    delivery, so that queued work runs and alerts go out with no API server — until SIGINT or SIGTERM."""
    from mlops.alerts import Courier
    from mlops.insights import Narrator
    from mlops.jobs.dispatcher import Dispatcher
    from mlops.scheduler import JOBS, Scheduler

    with user_errors():
        settings = ready_settings()
        scheduler = Scheduler(settings)
        scheduler.start(warm=True)  # ConfigurationError naming an invalid SKIPPY_SCHEDULE_...
    stop = threading.Event()
    previous = {signum: signal.signal(signum, lambda *_: stop.set()) for signum in (signal.SIGINT, signal.SIGTERM)}
    dispatcher = Dispatcher(settings) if dispatch else None
    courier = Courier(settings)
    narrator = Narrator(settings)  # the insights' generated texts
    try:
        if dispatcher is not None:
            dispatcher.start()
        courier.start()
        narrator.start()
        schedules = ", ".join(f"{job.name} '{getattr(settings, job.setting)}'" for job in JOBS)
        console.print(
            f"scheduler running (UTC): {schedules}; queued jobs: {'run here' if dispatch else 'not run here'}; "
            "alerts: sent from here; Ctrl-C stops it",
            highlight=False,
        )
        while not stop.wait(1.0):
            pass
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second signal must not cut the cleanup short
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        scheduler.stop()
        if dispatcher is not None:
            dispatcher.stop()
        courier.stop()
        narrator.stop()
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    console.print("scheduler stopped", highlight=False)
