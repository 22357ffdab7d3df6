"""Benchmark: `GET /api/mlops/model-runs?limit=50` under load, against MLflow's own `mlflow server` answering
`runs/search` (max_results 50) on the same store.

The store holds 1,000 runs: 1,000 real MLflow runs in experiment "market_insight", each created with the tags,
params and final metrics a retrain logs (one `log_batch` per run, no per-epoch curves, no model artifacts), and
the 1,000 mirroring `model_runs` rows in the app DB carrying their MLflow run ids, metrics and hyperparameters,
as the retrain pipeline writes them. They are written directly: 1,000 real retrains would take an hour, and
neither endpoint reads what the shortcut leaves out.

Both servers run as users run them, one after the other on loopback: `skippy serve --no-jobs` (uvicorn, one
process) and `mlflow server` with its default settings (4 uvicorn workers) except one: its job execution is off
(MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false, as `skippy up` runs it): on, it also starts 7 Huey consumers (some
50 threads) whose idle polling alone keeps over a core of a 2-core machine busy, and its search throughput falls
several-fold; `--mlflow-jobs` measures it that way. Each server is loaded by the same generator in this process:
C threads (default 8), each with its own keep-alive `httpx.Client`, sending requests back to back for a fixed
duration after a warm-up, timing every request. The generator shares the machine's cores with the server.
Targets: at least 20x MLflow's requests/s, and a p99 under 100 ms.

    uv run python bench/api.py [--runs 1000] [--clients 8] [--duration 15] [--mlflow-duration 30] [--keep]
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, Any

import httpx

# Run as a script, this folder is sys.path[0], and bench/drift.py would shadow the `drift` package.
sys.path[:] = [p for p in sys.path if p not in ("", str(Path(__file__).resolve().parent))]

from mlops.cli.platform import stop_process_group as stop  # noqa: E402  (after the path fix)

EXPERIMENT = "market_insight"
PAGE = 50
TARGET_RATIO = 20.0
TARGET_P99_MS = 100.0
# Environment that would point a server at other stores than the bench's SKIPPY_HOME.
STORE_ENV = ("DATABASE_URL", "MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")


# ---------------------------------------------------------------------------------------------- the store


def fake_retrain(rng: random.Random) -> tuple[dict[str, Any], dict[str, Any], dict[str, float]]:
    """Hyperparameters, other params and final metrics shaped like one retrain's."""
    hp = {
        "learning_rate": rng.choice([0.002, 0.005, 0.01, 0.02, 0.05]),
        "batch_size": rng.choice([16, 32, 64, 128]),
        "epochs": rng.choice([30, 60, 100]),
        "risk_threshold": rng.choice([0.01, 0.02, 0.05]),
        "l2": rng.choice([0.0, 0.0001, 0.001, 0.01]),
        "hidden_units": rng.choice([0, 8, 16, 32]),
    }
    params = {"horizon": 1, "seed": 7, "n_features": 12, "label_cut": 0.0, "n_train": 3480, "n_val": 745}
    accuracy = rng.uniform(0.48, 0.58)
    sharpe = rng.gauss(0.4, 0.5)
    metrics = {
        "accuracy": accuracy,
        "precision": rng.uniform(0.45, 0.6),
        "recall": rng.uniform(0.4, 0.7),
        "f1": rng.uniform(0.4, 0.6),
        "roc_auc": rng.uniform(0.48, 0.6),
        "log_loss": rng.uniform(0.66, 0.72),
        "sharpe_ratio": sharpe,
        "max_drawdown": -rng.uniform(0.05, 0.4),
        "total_return": rng.gauss(0.05, 0.2),
        "buy_hold_sharpe_ratio": rng.gauss(0.3, 0.3),
        "test_accuracy": accuracy + rng.gauss(0, 0.01),
        "test_sharpe_ratio": sharpe + rng.gauss(0, 0.2),
        "best_epoch": float(rng.randint(5, 60)),
        "epochs_run": float(hp["epochs"]),
    }
    return hp, params, metrics


def seed_store(settings: Any, n_runs: int) -> str:
    """`n_runs` finished MLflow runs in EXPERIMENT and their `model_runs` mirror rows; returns the experiment id."""
    from mlflow.entities import Metric, Param, RunTag

    from mlops.db import session_scope
    from mlops.db.models import ModelRun
    from tracking.client import ensure_experiment, get_client

    client = get_client(settings)
    experiment_id = ensure_experiment(settings, EXPERIMENT)
    rng = random.Random(7)
    start = datetime.now(UTC) - timedelta(days=n_runs)
    rows = []
    for i in range(1, n_runs + 1):
        hp, params, metrics = fake_retrain(rng)
        trigger = rng.choice(["manual", "scheduled", "drift", "sweep"])
        created = start + timedelta(days=i)
        deployed = metrics["sharpe_ratio"] > 0.6
        tags = {
            "skippy.agent": EXPERIMENT,
            "skippy.model_run_id": str(i),
            "skippy.trigger": trigger,
            "skippy.symbol": "SYNTH",
            "mlflow.user": "bench",
        }
        run = client.create_run(
            experiment_id, start_time=int(created.timestamp() * 1000), run_name=f"{EXPERIMENT}-retrain-{i}", tags=tags
        )
        run_id = run.info.run_id
        now = int(created.timestamp() * 1000)
        client.log_batch(
            run_id,
            metrics=[Metric(k, float(v), now, 0) for k, v in metrics.items()],
            params=[Param(k, str(v)) for k, v in (hp | params).items()],
            tags=[
                RunTag("skippy.validation", "passed" if deployed else "rejected"),
                RunTag("skippy.status", "succeeded"),
                RunTag("skippy.deployment_status", "deployed" if deployed else "rejected"),
            ],
        )
        client.set_terminated(run_id, "FINISHED", end_time=now + 8000)
        rows.append(
            ModelRun(
                agent_type=EXPERIMENT,
                status="succeeded",
                trigger=trigger,
                requested_by="bench",
                symbol="SYNTH",
                mlflow_run_id=run_id,
                mlflow_experiment_id=experiment_id,
                model_version=i if deployed else None,
                deployment_status="deployed" if deployed else "rejected",
                hyperparameters=hp,
                metrics=metrics,
                pid=os.getpid(),
                hostname=socket.gethostname(),
                created_at=created.replace(tzinfo=None),
                started_at=created.replace(tzinfo=None),
                finished_at=(created + timedelta(seconds=8)).replace(tzinfo=None),
            )
        )
    with session_scope(settings.app_db_url) as session:
        session.add_all(rows)
    return experiment_id


# --------------------------------------------------------------------------------------------- the servers


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start(cmd: list[str], home: Path, log: IO[bytes], env_extra: dict[str, str]) -> subprocess.Popen[bytes]:
    """`cmd` in its own process group (so stopping it stops its workers), on the bench's stores only."""
    env = {k: v for k, v in os.environ.items() if k not in STORE_ENV and not k.startswith("SKIPPY_")}
    env |= env_extra | {"SKIPPY_HOME": str(home)}
    # cwd=home: no `.env` of the working tree is read.
    return subprocess.Popen(cmd, cwd=home, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)


def wait_ready(process: subprocess.Popen[bytes], url: str, name: str, timeout: float, log: Path) -> float:
    """Seconds until `url` answers 200; a clear error if the process dies or `timeout` passes."""
    began = time.perf_counter()
    while time.perf_counter() - began < timeout:
        if process.poll() is not None:
            tail = log.read_text(errors="replace")[-3000:]
            raise SystemExit(f"{name} exited with code {process.returncode} before answering {url}:\n{tail}")
        try:
            if httpx.get(url, timeout=2.0, trust_env=False).status_code == 200:
                return time.perf_counter() - began
        except httpx.HTTPError:
            pass
        time.sleep(0.25)
    stop(process)
    tail = log.read_text(errors="replace")[-3000:]
    raise SystemExit(f"{name} did not answer {url} within {timeout:.0f} s (log {log}):\n{tail}")


def group_cpu_seconds(pgid: int) -> float:
    """CPU seconds (user + system) used so far by the live processes of process group `pgid`."""
    total = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rpartition(")")[2].split()
        except OSError:  # the process ended meanwhile
            continue
        if int(fields[2]) == pgid:
            total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


# ------------------------------------------------------------------------------------------------- the load


@dataclass
class Load:
    name: str
    elapsed: float = 0.0
    latencies: list[float] = field(default_factory=list)  # seconds, successful requests only
    errors: Counter[str] = field(default_factory=Counter)
    server_cpu: float = 0.0  # cores busy on average in the recorded window: the server's process group
    client_cpu: float = 0.0  # ... and this process (the load generator)
    load_average: float = 0.0  # the machine's 1-minute load average at the end: other work competing for the cores

    @property
    def rps(self) -> float:
        return len(self.latencies) / self.elapsed if self.elapsed else 0.0

    def percentile_ms(self, q: float) -> float:
        """Nearest-rank percentile, in milliseconds."""
        if not self.latencies:
            return float("nan")
        ordered = sorted(self.latencies)
        return 1000 * ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))]


Request = Callable[[httpx.Client], httpx.Response]


def load(name: str, pgid: int, base_url: str, request: Request, clients: int, duration: float, warmup: float) -> Load:
    """`clients` threads, each with its own client, sending `request` back to back: `warmup` seconds
    unrecorded, then `duration` seconds recorded (a request is recorded if it started inside the window)."""
    result = Load(name)
    lock = threading.Lock()
    barrier = threading.Barrier(clients + 1)
    window: dict[str, float] = {}

    def worker() -> None:
        latencies: list[float] = []
        errors: Counter[str] = Counter()
        with httpx.Client(base_url=base_url, timeout=60.0, trust_env=False) as client:
            barrier.wait()
            warm_end, end = window["warm_end"], window["end"]
            while (began := time.perf_counter()) < end:
                try:
                    response = request(client)
                    ok, what = response.is_success, f"HTTP {response.status_code}"
                except httpx.HTTPError as exc:
                    ok, what = False, type(exc).__name__
                took = time.perf_counter() - began
                if began < warm_end:
                    continue
                if ok:
                    latencies.append(took)
                else:
                    errors[what] += 1
        with lock:
            result.latencies.extend(latencies)
            result.errors.update(errors)

    threads = [threading.Thread(target=worker, name=f"{name}-{i}") for i in range(clients)]
    for thread in threads:
        thread.start()
    now = time.perf_counter()
    window["warm_end"] = now + warmup
    window["end"] = now + warmup + duration
    barrier.wait()
    time.sleep(max(0.0, window["warm_end"] - time.perf_counter()))
    cpu = group_cpu_seconds(pgid), time.process_time()
    for thread in threads:
        thread.join()
    # Requests started before `end` finish after it: the window is measured to the last one's end.
    result.elapsed = time.perf_counter() - window["warm_end"]
    result.server_cpu = (group_cpu_seconds(pgid) - cpu[0]) / result.elapsed
    result.client_cpu = (time.process_time() - cpu[1]) / result.elapsed
    result.load_average = os.getloadavg()[0]
    return result


# ------------------------------------------------------------------------------------------------- the bench


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1000, help="MLflow runs and model_runs rows in the store")
    parser.add_argument("--clients", type=int, default=8, help="Concurrent clients")
    parser.add_argument("--duration", type=float, default=15.0, help="Seconds of recorded load on our API")
    parser.add_argument("--mlflow-duration", type=float, default=30.0, help="Seconds of recorded load on MLflow")
    parser.add_argument("--warmup", type=float, default=3.0, help="Unrecorded seconds of load on our API")
    parser.add_argument(
        "--mlflow-warmup", type=float, default=10.0, help="Unrecorded seconds of load on MLflow (4 workers to warm)"
    )
    parser.add_argument(
        "--mlflow-jobs", action="store_true", help="Leave MLflow's job execution on (its Huey consumers)"
    )
    parser.add_argument("--startup-timeout", type=float, default=300.0, help="Seconds a server may take to start")
    parser.add_argument("--keep", action="store_true", help="Keep the temporary SKIPPY_HOME")
    args = parser.parse_args()

    from mlops.auth import create_key
    from mlops.logs import configure_logging
    from mlops.settings import Settings
    from mlops.stores import init_stores

    configure_logging("WARNING")
    home = Path(tempfile.mkdtemp(prefix="skippy-bench-api-"))
    processes: list[subprocess.Popen[bytes]] = []
    try:
        settings = Settings(_env_file=None, home=home, database_url=None, mlflow_tracking_uri=None)
        init_stores(settings)
        began = time.perf_counter()
        experiment_id = seed_store(settings, args.runs)
        seeded = time.perf_counter() - began
        key = create_key(settings, name="bench", role="viewer", actor="bench").key
        print(f"store: {args.runs} MLflow runs + {args.runs} model_runs rows, written in {seeded:.1f} s")
        print(f"SKIPPY_HOME={home}")

        port = free_port()
        ours_cmd = [sys.executable, "-c", "from mlops.cli import main; main()", "serve", "--no-jobs"]
        ours_cmd += ["--host", "127.0.0.1", "--port", str(port)]
        ours_url = f"http://127.0.0.1:{port}"
        headers = {"Authorization": f"Bearer {key}"}

        def ours(client: httpx.Client) -> httpx.Response:
            return client.get("/api/mlops/model-runs", params={"limit": PAGE}, headers=headers)

        mlflow_port = free_port()
        mlflow_cmd = [sys.executable, "-m", "mlflow", "server", "--backend-store-uri", settings.tracking_uri]
        mlflow_cmd += ["--default-artifact-root", str(settings.artifact_root), "--host", "127.0.0.1"]
        mlflow_cmd += ["--port", str(mlflow_port)]
        mlflow_url = f"http://127.0.0.1:{mlflow_port}"
        mlflow_env = {} if args.mlflow_jobs else {"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
        search = {"experiment_ids": [experiment_id], "max_results": PAGE}

        def theirs(client: httpx.Client) -> httpx.Response:
            return client.post("/api/2.0/mlflow/runs/search", json=search)

        def count(name: str, response: httpx.Response, items: str) -> None:
            if not response.is_success:
                raise SystemExit(f"{name}: HTTP {response.status_code}: {response.text[:500]}")
            n = len(response.json().get(items, []))
            if n != PAGE:
                raise SystemExit(f"{name}: expected {PAGE} {items}, got {n}")

        loads = []
        for name, cmd, env, url, health, request, items, duration, warmup in (
            ("skippy API", ours_cmd, {}, ours_url, "/api/health", ours, "items", args.duration, args.warmup),
            (
                "mlflow server",
                mlflow_cmd,
                mlflow_env,
                mlflow_url,
                "/health",
                theirs,
                "runs",
                args.mlflow_duration,
                args.mlflow_warmup,
            ),
        ):
            log_path = home / f"{name.replace(' ', '-')}.log"
            with log_path.open("wb") as log:
                process = start(cmd, home, log, env)
                processes.append(process)
                up = wait_ready(process, url + health, name, args.startup_timeout, log_path)
                with httpx.Client(base_url=url, timeout=60.0, trust_env=False) as client:
                    count(name, request(client), items)
                print(f"{name}: up in {up:.1f} s on {url}; loading it for {warmup:.0f} + {duration:.0f} s ...")
                loads.append(load(name, process.pid, url, request, args.clients, duration, warmup))
                stop(process)
    finally:
        for process in processes:
            stop(process)
        if args.keep:
            print(f"kept {home}")
        else:
            shutil.rmtree(home, ignore_errors=True)

    ours_load, mlflow_load = loads
    print()
    print(
        f"{args.clients} concurrent clients (threads of httpx.Client, keep-alive, in this process) on loopback, "
        f"{os.cpu_count()} cores shared with the server"
    )
    print(f"  skippy API:    GET /api/mlops/model-runs?limit={PAGE}  (skippy serve --no-jobs, uvicorn, 1 process)")
    jobs = "default settings" if args.mlflow_jobs else "default settings but MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false"
    print(f"  mlflow server: POST /api/2.0/mlflow/runs/search max_results={PAGE}  (mlflow server, {jobs})")
    print()
    print(
        f"  {'':16}{'requests':>9}{'seconds':>8}{'req/s':>9}{'p50 ms':>9}{'p99 ms':>9}{'errors':>7}"
        f"{'server CPU':>12}{'client CPU':>12}{'load avg':>10}"
    )
    for result in loads:
        print(
            f"  {result.name:16}{len(result.latencies):>9}{result.elapsed:>8.1f}{result.rps:>9.1f}"
            f"{result.percentile_ms(50):>9.1f}{result.percentile_ms(99):>9.1f}{sum(result.errors.values()):>7}"
            f"{result.server_cpu:>12.2f}{result.client_cpu:>12.2f}{result.load_average:>10.1f}"
        )
        for what, n in result.errors.most_common():
            print(f"      {result.name} error: {what} x{n}")
    ratio = ours_load.rps / mlflow_load.rps if mlflow_load.rps else float("inf")
    p99 = ours_load.percentile_ms(99)
    errors = sum(sum(r.errors.values()) for r in loads)
    print("  (CPU in cores busy on average; load avg: the machine's 1-minute load average after the run)")
    print()
    verdict = "PASS" if ratio >= TARGET_RATIO else "FAIL"
    print(f"  throughput skippy/mlflow: {ratio:6.1f}x   (target >= {TARGET_RATIO:.0f}x)   {verdict}")
    verdict = "PASS" if p99 < TARGET_P99_MS and not ours_load.errors else "FAIL"
    print(f"  skippy p99:               {p99:6.1f} ms (target < {TARGET_P99_MS:.0f} ms, no errors)   {verdict}")
    if errors:
        print(f"  {errors} failed requests in all (listed above)")


if __name__ == "__main__":
    main()
