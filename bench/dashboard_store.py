"""The big store the dashboard benchmark (bench/dashboard.py) and the screenshots (bench/screenshots.py) run on:
a year of use of both agents — 1,000 model runs, 100 drift checks with their per-feature rows, 20 sweeps with
their trials — built in about two minutes and kept in a folder (`--home`) that later runs reuse.

What is real and what is written directly:

- real (the services users call): the synthetic market (2,000 daily bars); a first retrain of each agent and a
  drift check of each champion (the seed); the 20 sweeps (`mlops.pipeline.sweeps.sweep`, grids of 4-9 points
  over two knobs drawn per sweep, both agents, one worker: Optuna studies, MLflow parent and child runs,
  `sweep_results`); and, last, one more retrain per agent (other hyperparameters than the seed's, so the gate
  judges a different model) and one more drift check per agent with its Evidently report (the newest rows).
- written directly (bench/dashboard_history.py, bench/dashboard_rows.py), derived from the seed's real rows with
  noise (1,000 real retrains would take 15 minutes): the other 996 model runs, each with a real MLflow run
  (params, final metrics, outcome tags) and, when it got that far, the seed run's report artifacts (equity
  curve, validation, ...) and a registered MLflow version whose source is the seed's real model (so every
  version loads, the gate can compare against it and a drift check of it works); their data-quality reports,
  feature importance, held-out performance rows, deployment history (challenger → promote → clear; a few
  rollbacks), and the drift baselines of the versions that were ever checked or are deployed (a copy of the
  seed's: the same model); 96 drift checks (the seed check's 16 rows per check with shifted statistics: most
  ok, some warning, some critical, with the live-performance row a check writes); and what a year of
  automation leaves: jobs, scheduled executions, alerts (most acknowledged), audit rows, served predictions.

The timeline: the seed's rows are moved to a year ago, the written history fills the year in id order, the
sweeps are spread over it, and the final real retrains and checks are today's. Nothing of this runs in the
test suite except a tiny build (tests/dashboard/test_bench_store.py).

    uv run python bench/dashboard_store.py [--home DIR] [--rebuild] [--runs 1000] [--checks 100] [--sweeps 20]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
# Run as a script, this folder is sys.path[0] and bench/drift.py would shadow the `drift` package.
sys.path[:] = [p for p in sys.path if p not in ("", str(HERE))]
if str(HERE.parent) not in sys.path:
    sys.path.insert(0, str(HERE.parent))

from mlops.settings import AGENTS, Settings  # noqa: E402  (after the path fix)

STORE_VERSION = 3
MARKER = "bench-store.json"
KEYS = "bench-keys.json"
ROLES = ("viewer", "operator", "admin")
DEFAULT_HOME = Path(tempfile.gettempdir()) / "skippy-bench-dashboard"
SYMBOL = "SYNTH"
BARS = 2000
HISTORY_DAYS = 365
# Sweep grids: two of these knobs, 2-4 values each (4-9 points), drawn per sweep.
GRID_VALUES: dict[str, list[Any]] = {
    "learning_rate": [0.002, 0.003, 0.005, 0.01, 0.02],
    "hidden_units": [0, 4, 8, 16, 32],
    "l2": [0.0, 0.0001, 0.001, 0.01],
    "batch_size": [32, 64, 128],
}
GRID_SHAPES = ((2, 2), (2, 3), (3, 2), (3, 3), (2, 4))
# The final round's candidates differ from the seed's (default) models, so the gate has something to judge.
FINAL_HYPERPARAMETERS = {"learning_rate": 0.005, "hidden_units": 16}
# Environment that would point the server at other stores than the bench's home.
STORE_ENV = ("DATABASE_URL", "MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")


@dataclass(frozen=True)
class StoreSize:
    runs: int = 1000
    checks: int = 100
    sweeps: int = 20


@dataclass
class BenchStore:
    home: Path
    size: StoreSize
    keys: dict[str, str]
    counts: dict[str, int] = field(default_factory=dict)
    built_seconds: float = 0.0
    reused: bool = False

    @property
    def settings(self) -> Settings:
        return bench_settings(self.home)


def bench_settings(home: Path, **overrides: Any) -> Settings:
    """The store's settings, ignoring the developer's environment and `.env` (explicit store URLs)."""
    values: dict[str, Any] = {
        "home": home,
        "database_url": None,
        "mlflow_tracking_uri": None,
        "optuna_storage_url": None,
        "gate_require_edge": False,  # a 2,000-bar market's first models have no reliable edge over naive ones
    } | overrides
    return Settings(_env_file=None, **values)


# ------------------------------------------------------------------------------------------ open or build


def open_store(
    home: Path = DEFAULT_HOME, size: StoreSize | None = None, *, rebuild: bool = False, report: bool = True
) -> BenchStore:
    """The store in `home`: reused when its marker says it was built with `size`, else (re)built there.
    A folder that is neither empty nor a bench store is refused rather than wiped."""
    size = size or StoreSize()
    home = home.resolve()
    marker = home / MARKER
    if marker.exists() and not rebuild:
        saved = json.loads(marker.read_text())
        if saved.get("version") == STORE_VERSION and saved.get("size") == asdict(size) and "counts" in saved:
            keys = json.loads((home / KEYS).read_text())
            return BenchStore(home, size, keys, saved["counts"], saved["built_seconds"], reused=True)
    if home.exists() and any(home.iterdir()):
        if not marker.exists():
            raise SystemExit(f"{home} is not empty and holds no bench store ({MARKER}): choose another --home")
        shutil.rmtree(home)
    home.mkdir(parents=True, exist_ok=True)
    home.chmod(0o700)  # it holds API keys
    # Written first: a build that fails half-way is still recognised as ours, and built again next time.
    marker.write_text(json.dumps({"version": STORE_VERSION, "size": asdict(size), "building": True}))
    began = time.perf_counter()
    keys = build_store(home, size, report=report)
    store = BenchStore(home, size, keys, count_rows(bench_settings(home)), time.perf_counter() - began)
    saved = {
        "version": STORE_VERSION,
        "size": asdict(size),
        "counts": store.counts,
        "built_seconds": store.built_seconds,
    }
    marker.write_text(json.dumps(saved, indent=1))
    return store


def build_store(home: Path, size: StoreSize, log: Any = print, *, report: bool = True) -> dict[str, str]:
    """Build the store (see the module docstring); returns an API key per role (also saved in bench-keys.json).
    `report=False` leaves the final checks without their Evidently report (seconds saved, for the smoke test)."""
    from mlops.auth import create_key
    from mlops.data.generate import generate_market
    from mlops.logs import configure_logging
    from mlops.stores import init_stores

    configure_logging("WARNING")
    settings = bench_settings(home, drift_report=False)  # reports: only for the final, newest checks
    seed_runs, seed_checks = len(AGENTS), len(AGENTS)
    final_runs, final_checks = len(AGENTS), len(AGENTS)
    written_runs = size.runs - seed_runs - final_runs
    written_checks = size.checks - seed_checks - final_checks
    if written_runs < 0 or written_checks < 0:
        raise SystemExit(
            f"a store needs at least {seed_runs + final_runs} runs and {seed_checks + final_checks} checks"
        )
    step = _stepper(log)
    init_stores(settings)
    generate_market(settings, symbol=SYMBOL, n_bars=BARS)
    keys = {role: create_key(settings, name=f"bench-{role}", role=role, actor="cli:bench").key for role in ROLES}
    key_file = home / KEYS
    key_file.write_text(json.dumps(keys))
    key_file.chmod(0o600)
    step("stores, 2,000 bars, keys")
    now = datetime.now(UTC)
    start = now - timedelta(days=HISTORY_DAYS)
    seed = _real_round(settings, trigger="manual", hyperparameters=None)
    _shift_all(settings, now - start)
    step("seed: a real retrain and drift check per agent")
    from bench.dashboard_history import write_history

    write_history(settings, seed, written_runs, written_checks, start, now - timedelta(days=1))
    step(f"written: {written_runs} model runs, {written_checks} drift checks and a year of automation")
    _real_sweeps(settings, size.sweeps, start, now)
    step(f"real: {size.sweeps} sweeps")
    _real_round(bench_settings(home, drift_report=report), trigger="scheduled", hyperparameters=FINAL_HYPERPARAMETERS)
    step("final: a real retrain and drift check (with its Evidently report) per agent")
    return keys


def _stepper(log: Any) -> Any:
    began = last = time.perf_counter()

    def step(what: str) -> None:
        nonlocal last
        now = time.perf_counter()
        log(f"  {what}: {now - last:.1f} s (total {now - began:.1f} s)")
        last = now

    return step


def _real_round(
    settings: Settings, *, trigger: str, hyperparameters: dict[str, Any] | None
) -> dict[str, tuple[int, int, str]]:
    """A real retrain of each agent, then a real drift check of each champion: (run id, version, check id)."""
    from mlops.pipeline.drift.service import check_drift
    from mlops.pipeline.retrain import retrain

    actor = "scheduler" if trigger == "scheduled" else "cli:bench"
    runs = {
        agent: retrain(settings, actor=actor, agent=agent, trigger=trigger, hyperparameters=hyperparameters)
        for agent in AGENTS
    }
    for agent, result in runs.items():
        if result.model_version is None:
            raise SystemExit(f"the real retrain of {agent} registered no version: {result.status}: {result.reason}")
    checks = {agent: check_drift(settings, actor=actor, agent=agent) for agent in AGENTS}
    return {a: (runs[a].model_run_id, runs[a].model_version or 0, checks[a].check_id) for a in AGENTS}


MOVED = (
    "created_at",
    "started_at",
    "finished_at",
    "updated_at",
    "recorded_at",
    "computed_at",
    "first_seen",
    "last_seen",
    "acknowledged_at",
    "generated_at",
    "sent_at",
    "next_attempt_at",
    "scheduled_for",
)
KEPT = ("api_keys", "dashboard_sessions", "market_bars", "store_bindings", "feature_flags", "agent_locks")


def _shift_all(settings: Settings, delta: timedelta) -> None:
    """Move every timestamp of what the app DB holds so far `delta` into the past (the seed becomes the
    start of the history). Data times (windows, bars) and keys stay as they are."""
    from sqlalchemy import select

    from mlops.db import session_scope
    from mlops.db.models import Base

    with session_scope(settings.app_db_url) as session:
        for mapper in Base.registry.mappers:
            if mapper.class_.__tablename__ in KEPT:
                continue
            names = [a.key for a in mapper.column_attrs if a.key in MOVED]
            for row in session.scalars(select(mapper.class_)):
                for name in names:
                    if getattr(row, name) is not None:
                        setattr(row, name, getattr(row, name) - delta)


def _real_sweeps(settings: Settings, n: int, start: datetime, end: datetime) -> None:
    """`n` real sweeps (one worker each, agents alternating), then spread over the history's year."""
    from sqlalchemy import update

    from mlops.db import session_scope
    from mlops.db.models import HyperparameterSweep, SweepResult
    from mlops.pipeline.sweeps import sweep

    rng = random.Random(7)
    span = (end - start) / max(n, 1)
    for k in range(n):
        agent = AGENTS[k % len(AGENTS)]
        when = start + span * (k + 0.5)
        shape = rng.choice(GRID_SHAPES)
        grid = {
            name: sorted(rng.sample(GRID_VALUES[name], min(size, len(GRID_VALUES[name]))))
            for name, size in zip(rng.sample(sorted(GRID_VALUES), 2), shape, strict=True)
        }
        name = f"{agent}-{when:%Y%m%d-%H%M%S}"
        record = sweep(settings, actor="cli:ana", agent=agent, grid=grid, name=name, workers=1)
        if record.status != "completed":
            raise SystemExit(f"sweep {record.id} ended {record.status}: {record.error}")
        took = (record.finished_at or record.created_at) - record.created_at
        with session_scope(settings.app_db_url) as session:
            session.execute(
                update(HyperparameterSweep)
                .where(HyperparameterSweep.id == record.id)
                .values(created_at=when, started_at=when + timedelta(seconds=1), finished_at=when + took)
            )
            session.execute(
                update(SweepResult).where(SweepResult.sweep_id == record.id).values(created_at=when + took / 2)
            )


COUNTED = (
    "model_runs",
    "drift_metrics",
    "hyperparameter_sweeps",
    "sweep_results",
    "model_deployments",
    "feature_importance",
    "model_performance_history",
    "drift_baselines",
    "jobs",
    "scheduled_executions",
    "alerts",
    "audit_log",
    "prediction_log",
    "insights",
)


def count_rows(settings: Settings) -> dict[str, int]:
    """Rows per table the pages read, and the number of drift checks (distinct check ids)."""
    from sqlalchemy import text

    from mlops.db import session_scope

    with session_scope(settings.app_db_url) as session:
        counts = {t: int(session.execute(text(f"SELECT count(*) FROM {t}")).scalar_one()) for t in COUNTED}
        counts["drift checks"] = int(
            session.execute(text("SELECT count(DISTINCT check_id) FROM drift_metrics")).scalar_one()
        )
    return counts


# ----------------------------------------------------------------------------------------------- serving


@contextlib.contextmanager
def serve(home: Path, **env: str) -> Iterator[str]:
    """`skippy serve --no-jobs` on the store in `home` (its own process group, on a free port, started in
    `home` so no `.env` of the working tree is read); yields its base URL, stops it at the end."""
    import httpx

    from mlops.cli.platform import stop_process_group

    port = _free_port()
    environment = {k: v for k, v in os.environ.items() if k not in STORE_ENV and not k.startswith("SKIPPY_")}
    environment |= {"SKIPPY_HOME": str(home), "SKIPPY_GATE_REQUIRE_EDGE": "false", "SKIPPY_LOG_LEVEL": "WARNING"}
    environment |= env
    command = [sys.executable, "-c", "from mlops.cli import main; main()", "serve", "--no-jobs"]
    command += ["--host", "127.0.0.1", "--port", str(port)]
    log_path = home / f"server-{port}.log"
    url = f"http://127.0.0.1:{port}"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            command, cwd=home, env=environment, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        try:
            deadline = time.monotonic() + 120
            while True:
                if process.poll() is not None:
                    tail = log_path.read_text(errors="replace")[-3000:]
                    raise SystemExit(f"skippy serve exited with code {process.returncode}:\n{tail}")
                with contextlib.suppress(httpx.HTTPError):
                    if httpx.get(f"{url}/api/health", timeout=2.0, trust_env=False).status_code == 200:
                        break
                if time.monotonic() > deadline:
                    raise SystemExit(f"skippy serve did not answer within 120 s (log {log_path})")
                time.sleep(0.2)
            yield url
        finally:
            stop_process_group(process)


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def login(page: Any, base_url: str, key: str, path: str = "/") -> None:
    """Log in through the login page, as a person does, and land on `path`."""
    page.goto(f"{base_url}/mlops{path}")
    page.fill("#key", key)
    page.click("#login-button")
    page.wait_for_selector("#whoami", timeout=60_000)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", type=Path, default=DEFAULT_HOME, help=f"Store folder (default {DEFAULT_HOME})")
    parser.add_argument("--rebuild", action="store_true", help="Build it again even if the folder holds one")
    parser.add_argument("--runs", type=int, default=StoreSize.runs)
    parser.add_argument("--checks", type=int, default=StoreSize.checks)
    parser.add_argument("--sweeps", type=int, default=StoreSize.sweeps)
    args = parser.parse_args()
    store = open_store(args.home, StoreSize(args.runs, args.checks, args.sweeps), rebuild=args.rebuild)
    print(f"{'reused' if store.reused else 'built'} {store.home} (built in {store.built_seconds:.0f} s)")
    for table, n in store.counts.items():
        print(f"  {table:28}{n:>8}")


if __name__ == "__main__":
    main()
