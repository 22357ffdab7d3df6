"""Benchmark: the auto-rollback rule's error rates, simulated where the truth is known.

The champion watch (mlops/pipeline/watch.py) makes the planned looks of `planned_looks` with `look_test` —
the very functions called here — on a new champion's net returns against the previous champion's, over the
bars of its probation. Each trial draws `max_bars` bars of both (bench/decisions.py's `simulate_pair`: one
GARCH(1,1) volatility path with Student-t(5) shocks, the two strategies' shocks correlated at ρ, the previous
champion's true annualised Sharpe 1.0) and makes the looks in order, stopping at the first that rolls back:

- **as good**: the new champion's true Sharpe equals the previous one's. Share rolled back = the false
  rollback rate, which must stay ≤ auto_rollback_alpha (Bonferroni over the looks guarantees it in theory).
- **0.5 / 1.0 worse**: true Sharpe 0.5 and 1.0 lower (power against a model that is merely worse).
- **inverted**: the new champion's returns are the previous one's negated (a signal flipped: ρ = −1), for a
  previous champion of Sharpe 1 and of Sharpe 3 (a strong signal, as on the synthetic market).

Prints one table per probation length, the rule, and as its last line one JSON object
(`false_rollback_rate` at the default probation and ρ = 0.9 is the headline). A full run (1,000 trials per cell,
60 and 250 bars) takes about 25 minutes on 2 cores, the 250-bar table most of it; `--quick` about a minute.

    uv run --frozen python bench/rollback.py [--quick] [--reps N] [--max-bars 60,250] [--workers 2]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import os
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
# Run as a script, this folder is sys.path[0] and bench/drift.py would shadow the `drift` package.
sys.path[:] = [p for p in sys.path if p not in ("", str(HERE))]
sys.path.insert(0, str(HERE.parent))

PERIODS = 252
CORRELATIONS = (0.9, 0.5, 0.0)
# (label, effect on the new champion's Sharpe or None for an inverted signal, previous champion's Sharpe)
SCENARIOS: tuple[tuple[str, float | None, float], ...] = (
    ("as good", 0.0, 1.0),
    ("0.5 worse", -0.5, 1.0),
    ("1.0 worse", -1.0, 1.0),
    ("inverted (Sharpe 1)", None, 1.0),
    ("inverted (Sharpe 3)", None, 3.0),
)


def _decisions() -> ModuleType:
    """bench/decisions.py, for its return simulator (loaded by path: bench/ is not a package)."""
    spec = importlib.util.spec_from_file_location("skippy_bench_decisions", HERE / "decisions.py")
    if spec is None or spec.loader is None:
        raise SystemExit(f"cannot load {HERE / 'decisions.py'}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _settings(seed: int, max_bars: int, alpha: float) -> Any:
    from mlops.settings import Settings

    return Settings(  # type: ignore[call-arg]
        _env_file=None,
        home=Path(tempfile.gettempdir()) / "skippy-bench-rollback",
        seed=seed,
        auto_rollback_max_bars=max_bars,
        auto_rollback_alpha=alpha,
    )


def _pair(sim: ModuleType, rng: np.random.Generator, effect: float | None, sharpe: float, rho: float, n: int) -> Any:
    """(new, previous) per-bar returns of one trial."""
    if effect is None:
        # simulate_pair's candidate has Sharpe 1.0 + effect: a previous champion of Sharpe `sharpe`, flipped.
        previous, _ = sim.simulate_pair(rng, sharpe - 1.0, 0.0, n)
        return -previous, previous
    new, previous = sim.simulate_pair(rng, effect, rho, n)
    return new, previous


def _cell(args: tuple[str, float | None, float, float, int, float, int, int]) -> dict[str, Any]:
    from mlops.pipeline.watch_rule import look_test, planned_looks

    label, effect, sharpe, rho, max_bars, alpha, replications, seed = args
    sim = _decisions()
    rng = np.random.default_rng(seed)
    looks = planned_looks(max_bars, alpha)
    fired = np.zeros(len(looks), dtype=int)
    for k in range(replications):
        settings = _settings(seed * 100_003 + k, max_bars, alpha)
        new, previous = _pair(sim, rng, effect, sharpe, rho, looks[-1].n_bars)
        for look in looks:
            test = look_test(new[: look.n_bars], previous[: look.n_bars], PERIODS, settings, look)
            if test.p_value < look.alpha:
                fired[look.number - 1] += 1
                break
    row: dict[str, Any] = {
        "max_bars": max_bars,
        "truth": label,
        "correlation": -1.0 if effect is None else rho,
        "rolled_back": float(fired.sum()) / replications,
    }
    for look, count in zip(looks, fired, strict=True):
        row[f"at_look_{look.number}({look.n_bars})"] = count / replications
    row["replications"] = replications
    return row


def simulate(max_bars: int, alpha: float, replications: int, seed: int, workers: int) -> list[dict[str, Any]]:
    cells = []
    for label, effect, sharpe in SCENARIOS:
        for rho in CORRELATIONS if effect is not None else (-1.0,):
            cells.append((label, effect, sharpe, rho, max_bars, alpha, replications, seed + len(cells)))
    with ProcessPoolExecutor(workers) as pool:
        return list(pool.map(_cell, cells))


def main() -> None:
    from mlops.pipeline.watch_rule import SMALL_SAMPLE_SHARE, planned_looks
    from mlops.settings import Settings

    defaults = Settings(_env_file=None)  # type: ignore[call-arg]
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="200 trials, default probation only (~1 min, 2 cores)")
    parser.add_argument("--reps", type=int, default=None, help="trials per cell (default 1000, quick 200)")
    parser.add_argument(
        "--max-bars",
        default=None,
        help=f"probation lengths, comma-separated (default {defaults.auto_rollback_max_bars} and a short one; quick: "
        f"{defaults.auto_rollback_max_bars} only)",
    )
    parser.add_argument("--alpha", type=float, default=defaults.auto_rollback_alpha)
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args()
    reps = args.reps or (200 if args.quick else 1000)
    default = defaults.auto_rollback_max_bars
    chosen = args.max_bars or (f"{default}" if args.quick else f"{default},{60 if default != 60 else 250}")
    lengths = list(dict.fromkeys(int(x) for x in chosen.split(",") if x.strip()))
    summary: dict[str, Any] = {"replications": reps, "alpha": args.alpha}
    for max_bars in lengths:
        looks = planned_looks(max_bars, args.alpha)
        start = time.perf_counter()
        rows = simulate(max_bars, args.alpha, reps, args.seed, args.workers)
        plan = ", ".join(f"{look.n_bars} bars at p < {look.alpha:.4f}" for look in looks)
        print(
            f"\nProbation of {max_bars} daily bars, auto_rollback_alpha {args.alpha:g}: {len(looks)} looks ({plan}); "
            f"previous champion Sharpe 1.0 unless stated ({time.perf_counter() - start:.0f} s)"
        )
        _decisions().print_table(rows)
        at = {(r["truth"], r["correlation"]): r["rolled_back"] for r in rows}
        tag = "" if max_bars == lengths[0] else f"_{max_bars}"
        summary |= {
            f"false_rollback_rate{tag}": at[("as good", 0.9)],
            f"false_rollback_rate_worst{tag}": max(at[("as good", rho)] for rho in CORRELATIONS),
            f"power_1_worse_rho_0_9{tag}": at[("1.0 worse", 0.9)],
            f"power_inverted_sharpe_1{tag}": at[("inverted (Sharpe 1)", -1.0)],
            f"power_inverted_sharpe_3{tag}": at[("inverted (Sharpe 3)", -1.0)],
        }
    print(
        "\nRule: a new champion is rolled back at look k (of K) when the paired block bootstrap of the previous "
        "champion's\nnet returns against the new one's on the first n_k probation bars gives one-sided p < "
        f"alpha / K × {SMALL_SAMPLE_SHARE:g} (H0: the new one is not worse)."
    )
    bound = args.alpha + 2 * math.sqrt(args.alpha * (1 - args.alpha) / reps)  # simulation noise allowed
    worst = summary["false_rollback_rate_worst"]
    verdict = "met" if worst <= bound else "NOT MET"
    print(f"Target: false rollback rate <= {args.alpha:g} (+ 2 simulation SE = {bound:.4f}): {worst:.4f}, {verdict}")
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
