"""Benchmark: one retrain on 5,000 daily bars, `skippy --help`, and the CLI end to end.

Prints the retrain's wall time split by phase (training vs MLflow logging/registration), against a
baseline measured in the same process: the same training with no tracking at all; and the time of its
statistics (the drift baseline's bootstrap nulls, one of the gate's paired bootstrap tests). Then the
commands as a user runs them, each in a fresh interpreter over the same store, with the project's bytecode compiled
(`make` compiles the installed packages' at `uv sync`): `skippy ai models`, `ai runs`, `ai deployments`
(ratios against bare `python -c pass` start-up; one figure without any bytecode, which is what
PYTHONDONTWRITEBYTECODE=1 over an uncompiled install pays on every run), and `skippy ai retrain` end to end
with where its time goes (the pipeline's phases, the quality/validation gate and the drift null
included, versus start-up and imports). Targets on the project machine: a retrain under 10 s with
MLflow at most half of it; `skippy --help` under 0.5 s; `ai models` and `ai runs` under 1 s;
`skippy ai retrain` under 5 s end to end.

    uv run python bench/retrain.py [--bars 5000] [--cli-repeats 3]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

# Run as a script, this folder is sys.path[0], and bench/drift.py would shadow the `drift` package.
sys.path[:] = [p for p in sys.path if p not in ("", str(Path(__file__).resolve().parent))]

MLFLOW_PHASES = ("mlflow_logging", "mlflow_model", "registration")
ROOT = Path(__file__).resolve().parent.parent
PROJECT_PACKAGES = ("mlops", "tracking", "sweeps", "drift", "app")
READ_COMMANDS = (["ai", "models", "--json"], ["ai", "runs", "--json"], ["ai", "deployments", "--json"])
READ_TARGET_S, RETRAIN_TARGET_S = 1.0, 5.0


def wall(cmd: list[str], repeats: int = 5, env: dict[str, str] | None = None) -> float:
    return timed(cmd, repeats, env)[0]


def timed(cmd: list[str], repeats: int = 5, env: dict[str, str] | None = None) -> tuple[float, float]:
    """Median wall time and median CPU time (user + system) of the command. On a busy machine the wall
    time grows with the load; the CPU time is close to what an idle machine's wall time would be."""
    walls, cpus = [], []
    for _ in range(repeats):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        subprocess.run(cmd, check=True, capture_output=True, env=env)
        walls.append(time.perf_counter() - start)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpus.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
    return statistics.median(walls), statistics.median(cpus)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bars", type=int, default=5000)
    parser.add_argument("--cli-repeats", type=int, default=3, help="runs of `skippy ai retrain` (median shown)")
    args = parser.parse_args()

    from mlops.agents.specs import get_spec
    from mlops.agents.training import build_dataset, train_agent
    from mlops.data.generate import generate_market
    from mlops.data.store import load_bars
    from mlops.logs import configure_logging
    from mlops.pipeline.retrain import retrain
    from mlops.settings import Settings
    from mlops.stores import init_stores

    configure_logging("WARNING")
    home = Path(tempfile.mkdtemp(prefix="skippy-bench-"))
    settings = Settings(_env_file=None, home=home, database_url=None, mlflow_tracking_uri=None)  # type: ignore[call-arg]
    init_stores(settings)
    generate_market(settings, symbol="SYNTH", n_bars=args.bars)
    # One-off costs a long-lived store has already paid: importing MLflow and creating its tables.
    from tracking.client import ensure_experiment

    ensure_experiment(settings, "market_insight")

    spec = get_spec("market_insight")
    start = time.perf_counter()
    data = build_dataset(load_bars(settings.app_db_url, "SYNTH"), spec, spec.defaults)
    trained = train_agent(
        spec,
        spec.defaults,
        data,
        seed=settings.seed,
        patience=settings.early_stopping_patience,
        cost_bps=settings.transaction_cost_bps,
    )
    baseline = time.perf_counter() - start
    statistics_line = statistics_figures(settings, trained, data)

    rows = []
    for label in ("first retrain (no champion)", "second retrain (vs champion)"):
        start = time.perf_counter()
        result = retrain(settings, agent="market_insight", actor="bench")
        total = time.perf_counter() - start
        # The second is the same recipe on the same bars: the gate judges it no better (rejected), after the
        # same logging and registration, which is what is timed here.
        assert result.status in ("succeeded", "rejected") and result.model_version is not None, result.reason
        rows.append((label, total, result.timings))

    print(f"retrain of market_insight on {args.bars} daily bars (SKIPPY_HOME={home})")
    print(f"  baseline, same data, training only, no tracking: {baseline:6.2f} s")
    for label, total, timings in rows:
        mlflow_s = sum(timings.get(p, 0.0) for p in MLFLOW_PHASES)
        train_s = timings.get("training", 0.0)
        print(f"  {label}: {total:6.2f} s total = {total / baseline:4.1f}x baseline")
        print(
            f"    training {train_s:5.2f} s ({train_s / total:5.1%})   "
            f"MLflow logging + model + registration {mlflow_s:5.2f} s ({mlflow_s / total:5.1%})"
        )
        print("    phases: " + ", ".join(f"{k} {v:.2f}s" for k, v in timings.items()))

    print(statistics_line)
    python_start = wall([sys.executable, "-c", "pass"])
    help_time = wall([sys.executable, "-m", "mlops.cli", "--help"])
    print(
        f"skippy --help: {help_time:.3f} s (bare python start-up {python_start:.3f} s, "
        f"ratio {help_time / python_start:.1f}x)"
    )
    env = os.environ | {"SKIPPY_HOME": str(home)}
    env.pop("MLFLOW_TRACKING_URI", None)
    env.pop("DATABASE_URL", None)
    cli_end_to_end(env, python_start, args.bars, args.cli_repeats)


def statistics_figures(settings: Any, trained: Any, data: Any) -> str:
    """In-process times of the retrain's statistics: the drift baseline with its bootstrap nulls (computed
    in a thread while the retrain logs, so no phase shows it) and one of the gate's paired bootstrap tests."""
    from mlops.pipeline.retrain.records import drift_baseline_job
    from mlops.stats import paired_sharpe_test

    job = drift_baseline_job(settings, trained, data)
    start = time.perf_counter()
    job()
    drift_s = time.perf_counter() - start
    market = data.next_returns[data.splits.test]
    start = time.perf_counter()
    paired_sharpe_test(
        trained.test_returns,
        market,
        data.periods_per_year,
        replications=settings.gate_bootstrap_replications,
        seed=settings.seed,
    )
    gate_s = time.perf_counter() - start
    return (
        f"  statistics: drift baseline with its bootstrap nulls {drift_s:.2f} s (beside logging, in a thread); "
        f"one gate test, {settings.gate_bootstrap_replications:,} paired bootstrap draws of {market.size} bars, "
        f"{gate_s:.3f} s"
    )


def verdict(seconds: float, target: float) -> str:
    return f"target < {target:g} s: {'ok' if seconds < target else 'OVER'}"


def cli_end_to_end(env: dict[str, str], python_start: float, bars: int, repeats: int) -> None:
    """The commands in fresh interpreters over the bench's store, as a user runs them."""
    cli = [sys.executable, "-m", "mlops.cli"]
    mlflow = importlib.util.find_spec("mlflow")
    origin = mlflow.origin if mlflow is not None else None
    compiled = origin is not None and Path(importlib.util.cache_from_source(origin)).exists()
    subprocess.run([sys.executable, "-m", "compileall", "-q", *PROJECT_PACKAGES], cwd=ROOT, check=True)
    print(
        "CLI end to end, fresh processes (installed packages' bytecode: "
        f"{'compiled' if compiled else 'NOT compiled: run `make env`'}; project's: compiled now; "
        f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores: wall times grow with it, CPU times less)"
    )
    for command in READ_COMMANDS:
        took, cpu = timed([*cli, *command], env=env)
        print(
            f"  skippy {' '.join(command)}: {took:.3f} s (CPU {cpu:.3f} s) = {took / python_start:.0f}x bare python "
            f"start-up ({verdict(took, READ_TARGET_S) if command[1] != 'deployments' else 'no target'})"
        )
    # No bytecode anywhere: an empty pycache prefix hides every .pyc, and nothing is written.
    with tempfile.TemporaryDirectory() as empty:
        bare = env | {"PYTHONDONTWRITEBYTECODE": "1", "PYTHONPYCACHEPREFIX": empty}
        took = wall([*cli, *READ_COMMANDS[0]], repeats=1, env=bare)
    print(f"  skippy ai models --json without any bytecode: {took:.2f} s (every module compiled on import)")

    command = [*cli, "ai", "retrain", "--agent", "market_insight", "--rejection-ok", "--json"]
    runs = []
    for _ in range(repeats):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        done = subprocess.run(command, check=True, capture_output=True, text=True, env=env)
        took = time.perf_counter() - start
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
        runs.append((took, cpu, json.loads(done.stdout)))
    total, cpu, payload = sorted(runs, key=lambda r: r[0])[len(runs) // 2]
    timings: dict[str, float] = payload["timings"]
    work = sum(timings.values())
    print(
        f"  skippy ai retrain --agent market_insight ({bars} bars, {payload['status']}, median of {repeats}): "
        f"{total:.2f} s end to end, CPU {cpu:.2f} s ({verdict(total, RETRAIN_TARGET_S)})"
    )
    print(
        f"    pipeline phases {work:.2f} s ({work / total:.0%}): "
        + ", ".join(f"{k} {v:.2f}s" for k, v in sorted(timings.items(), key=lambda kv: -kv[1]))
    )
    print(f"    start-up, imports, stores and exit: {total - work:.2f} s ({(total - work) / total:.0%})")
    print("    largest imports: " + ", ".join(f"{name} {s:.2f}s" for name, s in largest_imports(command, env)))


def largest_imports(command: list[str], env: dict[str, str], top: int = 6) -> list[tuple[str, float]]:
    """The third-party packages the project's code imports, by cumulative import time in one run
    (`python -X importtime`): each entered from project code (or at top level), with what it pulls in."""
    done = subprocess.run([command[0], "-X", "importtime", *command[1:]], capture_output=True, text=True, env=env)
    lines = []
    for line in done.stderr.splitlines():
        parts = line.split("|")
        if line.startswith("import time:") and len(parts) == 3 and parts[1].strip().isdigit():
            name = parts[2][1:]
            lines.append((len(name) - len(name.lstrip()), name.strip().split(".")[0], int(parts[1]) / 1e6))
    totals: dict[str, float] = {}
    parents: list[tuple[int, str]] = []  # importtime prints a module after its imports: read it backwards
    for depth, package, cumulative in reversed(lines):
        while parents and parents[-1][0] >= depth:
            parents.pop()
        parent = parents[-1][1] if parents else None
        if package not in PROJECT_PACKAGES and (parent is None or parent in PROJECT_PACKAGES):
            totals[package] = totals.get(package, 0.0) + cumulative
        parents.append((depth, package))
    return sorted(totals.items(), key=lambda kv: -kv[1])[:top]


if __name__ == "__main__":
    main()
