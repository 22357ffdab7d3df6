"""Benchmark: one retrain on 5,000 daily bars, and `skippy --help`.

Prints the retrain's wall time split by phase (training vs MLflow logging/registration), against a
baseline measured in the same process: the same training with no tracking at all. Targets on the
project machine: a retrain under 10 s with MLflow at most half of it; `skippy --help` under 0.5 s.

    uv run python bench/retrain.py [--bars 5000]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# Run as a script, this folder is sys.path[0], and bench/drift.py would shadow the `drift` package.
sys.path[:] = [p for p in sys.path if p not in ("", str(Path(__file__).resolve().parent))]

MLFLOW_PHASES = ("mlflow_logging", "mlflow_model", "registration")


def wall(cmd: list[str], repeats: int = 5, env: dict[str, str] | None = None) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run(cmd, check=True, capture_output=True, env=env)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bars", type=int, default=5000)
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
    train_agent(
        spec,
        spec.defaults,
        data,
        seed=settings.seed,
        patience=settings.early_stopping_patience,
        cost_bps=settings.transaction_cost_bps,
    )
    baseline = time.perf_counter() - start

    rows = []
    for label in ("first retrain (no champion)", "second retrain (vs champion)"):
        start = time.perf_counter()
        result = retrain(settings, agent="market_insight", requested_by="bench")
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

    python_start = wall([sys.executable, "-c", "pass"])
    help_time = wall([sys.executable, "-m", "mlops.cli", "--help"])
    print(
        f"skippy --help: {help_time:.3f} s (bare python start-up {python_start:.3f} s, "
        f"ratio {help_time / python_start:.1f}x)"
    )
    # Read-only commands a user runs all day, end to end on this store (targets: under 1 s).
    env = os.environ | {"SKIPPY_HOME": str(home)}
    env.pop("MLFLOW_TRACKING_URI", None)
    env.pop("DATABASE_URL", None)
    for args_ in (["ai", "runs", "--json"], ["ai", "models", "--json"]):
        took = wall([sys.executable, "-m", "mlops.cli", *args_], env=env)
        print(f"skippy {' '.join(args_)}: {took:.3f} s (ratio {took / python_start:.1f}x bare python start-up)")


if __name__ == "__main__":
    main()
