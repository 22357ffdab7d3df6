"""Benchmark: a 27-point grid sweep against what a user would write instead, on the same grid and data.

(a) bare loop: the 27 configurations trained in a plain loop, no tracking at all;
(b) canonical Optuna + MLflow, in one process: one parent MLflow run, `study.optimize` with a
    `GridSampler` (in-memory study), a nested MLflow run per trial logging its params and metrics
    (MLflow's fluent API, as its docs and Optuna's examples show it);
(c) our sweep with 1 worker process (`mlops.pipeline.sweeps.sweep`: validation, app-DB rows, a
    journal-file Optuna study every point of which is claimed once, parent + nested runs with the
    per-epoch curves too, the winner's Deflated Sharpe Ratio, the audit row);
(d) our sweep with 2 worker processes.
All train with one BLAS thread (as a sweep worker does) on the same MLflow store. Rounds run a, b, c, d
back to back; ratios are medians of the per-round ratios (this machine's speed drifts between rounds).
Targets: c/b <= 1.0 (our 1-worker sweep costs no more than the canonical pattern) and b/d >= 1.7
(2 workers at least 1.7x faster than it).

    uv run python bench/sweep.py [--bars 5000] [--repeats 5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

# Run as a script, this folder is sys.path[0], and bench/drift.py would shadow the `drift` package.
sys.path[:] = [p for p in sys.path if p not in ("", str(Path(__file__).resolve().parent))]

GRID = {"learning_rate": [0.002, 0.01, 0.05], "batch_size": [16, 32, 64], "hidden_units": [0, 8, 16]}
AGENT, SYMBOL = "market_insight", "SYNTH"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bars", type=int, default=5000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    import mlflow
    import optuna
    from threadpoolctl import threadpool_limits

    from mlops.agents.specs import get_spec
    from mlops.agents.training import build_dataset, train_agent, training_options
    from mlops.data.generate import generate_market
    from mlops.data.store import load_bars
    from mlops.logs import configure_logging
    from mlops.pipeline.sweeps import sweep
    from mlops.pipeline.sweeps.training import trial_metrics
    from mlops.settings import Settings
    from mlops.stores import init_stores
    from sweeps.grid import grid_points
    from tracking.client import ensure_experiment

    configure_logging("WARNING")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    home = Path(tempfile.mkdtemp(prefix="skippy-bench-sweep-"))
    settings = Settings(
        _env_file=None,
        home=home,
        database_url=None,
        mlflow_tracking_uri=None,  # type: ignore[call-arg]
        optuna_storage_url=None,
    )
    init_stores(settings)
    generate_market(settings, symbol=SYMBOL, n_bars=args.bars)
    experiment_id = ensure_experiment(settings, AGENT)  # one-off: MLflow's tables, as in a long-lived store
    mlflow.set_tracking_uri(settings.tracking_uri)

    spec = get_spec(AGENT)
    bars = load_bars(settings.app_db_url, SYMBOL)
    options = training_options(settings, SYMBOL)

    def train(params: dict[str, object]) -> tuple[dict[str, object], dict[str, float]]:
        """What a user's objective does: build the dataset for the point and train on it."""
        hp = spec.hyperparameters(params)
        data = build_dataset(bars, spec, hp, fill=settings.execution_fill)
        trained = train_agent(spec, hp, data, **options, importance=False)
        return hp.model_dump(), trial_metrics(trained, data)

    def bare_loop() -> float:
        start = time.perf_counter()
        with threadpool_limits(limits=1):
            for point in grid_points(GRID):
                train(point)
        return time.perf_counter() - start

    def canonical(round_: int) -> float:
        start = time.perf_counter()

        def objective(trial: optuna.Trial) -> float:
            params = {name: trial.suggest_categorical(name, values) for name, values in GRID.items()}
            with mlflow.start_run(run_name=f"trial-{trial.number}", nested=True):
                hp, metrics = train(params)
                mlflow.log_params(hp)
                mlflow.log_metrics(metrics)
            return metrics["sharpe_ratio"]

        with threadpool_limits(limits=1), mlflow.start_run(experiment_id=experiment_id, run_name=f"canonical-{round_}"):
            study = optuna.create_study(direction="maximize", sampler=optuna.samplers.GridSampler(GRID))
            study.optimize(objective)  # the GridSampler stops the study once every point is evaluated
        assert len(study.trials) == 27, len(study.trials)
        return time.perf_counter() - start

    def ours(workers: int, round_: int) -> float:
        start = time.perf_counter()
        record = sweep(
            settings, actor="bench", agent=AGENT, grid=GRID, name=f"bench-{round_}-{workers}", workers=workers
        )
        assert (record.status, record.n_complete) == ("completed", 27), record
        return time.perf_counter() - start

    runs: dict[str, list[float]] = {"a": [], "b": [], "c": [], "d": []}
    cpu: dict[str, list[float]] = {"a": [], "b": [], "c": [], "d": []}

    def measured(key: str, run: Callable[[], float]) -> None:
        before = _cpu_seconds()
        runs[key].append(run())
        cpu[key].append(_cpu_seconds() - before)

    for round_ in range(args.repeats):
        measured("a", bare_loop)
        measured("b", partial(canonical, round_))
        measured("c", partial(ours, 1, round_))
        measured("d", partial(ours, 2, round_))

    def median_ratio(top: str, bottom: str) -> float:
        return statistics.median(t / b for t, b in zip(runs[top], runs[bottom], strict=True))

    a, b, c, d = (min(runs[k]) for k in "abcd")
    print(f"27-point grid, {AGENT}, {args.bars} daily bars (SKIPPY_HOME={home})")
    print(
        f"  {args.repeats} rounds of a, b, c, d back to back; all runs: "
        + ", ".join(f"{k}=" + "/".join(f"{v:.2f}" for v in vs) for k, vs in runs.items())
    )
    print(f"  (a) bare loop, no tracking:            {a:6.2f} s (best)")
    print(f"  (b) canonical Optuna + MLflow:         {b:6.2f} s")
    print(f"  (c) our sweep, 1 worker:               {c:6.2f} s")
    print(f"  (d) our sweep, 2 workers:              {d:6.2f} s")
    print("  ratios, median of rounds (of best runs):")
    print(f"    b/a canonical overhead over a bare loop:  {median_ratio('b', 'a'):.2f} ({b / a:.2f})")
    print(f"    c/a our overhead over a bare loop:        {median_ratio('c', 'a'):.2f} ({c / a:.2f})")
    print(f"    c/b our 1 worker against canonical:       {median_ratio('c', 'b'):.2f} ({c / b:.2f})  target <= 1.0")
    print(f"    b/d canonical against our 2 workers:      {median_ratio('b', 'd'):.2f} ({b / d:.2f})  target >= 1.7")
    print(f"    c/d our parallel speed-up:                {median_ratio('c', 'd'):.2f} ({c / d:.2f})")
    # CPU seconds (this process and its reaped workers) depend less on what else runs on the machine.
    print("  CPU seconds, median of rounds: " + ", ".join(f"{k}={statistics.median(v):.2f}" for k, v in cpu.items()))
    print(
        f"    CPU c/b: {statistics.median(cpu['c']) / statistics.median(cpu['b']):.2f}, "
        f"CPU b/a: {statistics.median(cpu['b']) / statistics.median(cpu['a']):.2f}, "
        f"CPU c/a: {statistics.median(cpu['c']) / statistics.median(cpu['a']):.2f}"
    )
    print(f"  machine load average at the end: {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")


def _cpu_seconds() -> float:
    times = os.times()
    return times.user + times.system + times.children_user + times.children_system


if __name__ == "__main__":
    main()
