"""Benchmark: the error rates of the platform's two decisions, simulated where the truth is known.

1. The promotion gate (mlops/pipeline/validation.py, `champion_sharpe_test` — the very call the gate makes):
   750 daily bars of a champion with annualised Sharpe 1.0 and a candidate whose true Sharpe is 0.5 lower,
   equal, or 0.5 higher; both share one GARCH(1,1) volatility path with Student-t(5) shocks (volatility
   clustering and fat tails, as on real data) and their shocks correlate at ρ = 0.9, 0.8 and 0.
   false promotion = share promoted when the candidate is 0.5 worse; power = share promoted when 0.5 better.
2. The drift check's feature verdict (drift/, via bench/decisions_drift.py): false alarms with no change and
   power after 1.25×, 1.5× and 2× volatility shifts, on the project's synthetic generator; and the prediction
   drift test's power for a 30 % rise of a probability centred near 0.1.

Prints a table, then as its last line one JSON object (drift_false_alarm_rate, drift_power_2x,
gate_false_promotion_rate, gate_power, ...). Full runs use 1,000 replications per cell; `--quick` fewer.

    uv run python bench/decisions.py [--quick] [--reps N] [--only gate|drift]
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
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
# Run as a script, this folder is sys.path[0] and bench/drift.py would shadow the `drift` package.
sys.path[:] = [p for p in sys.path if p not in ("", str(HERE))]
sys.path.insert(0, str(HERE.parent))

BARS = 750
PERIODS = 252
CHAMPION_SHARPE = 1.0
EFFECTS = (-0.5, 0.0, 0.5)
CORRELATIONS = (0.9, 0.8, 0.0)
GARCH = (0.02, 0.08, 0.90)  # ω, α, β of the shared variance path (unconditional variance 1)
T_DF = 5


def _settings(seed: int) -> Any:
    from mlops.settings import Settings

    return Settings(_env_file=None, home=Path(tempfile.gettempdir()) / "skippy-bench-decisions", seed=seed)  # type: ignore[call-arg]


def simulate_pair(rng: np.random.Generator, effect: float, rho: float, n: int = BARS) -> tuple[np.ndarray, np.ndarray]:
    """Champion and candidate per-bar returns with known annualised Sharpe ratios 1.0 and 1.0 + effect."""
    omega, alpha, beta = GARCH
    shocks = rng.standard_t(T_DF, size=(2, n)) / math.sqrt(T_DF / (T_DF - 2))  # unit variance
    z1 = shocks[0]
    z2 = rho * z1 + math.sqrt(1 - rho**2) * shocks[1]
    variance = np.empty(n)
    h, previous = 1.0, 0.0
    for t in range(n):
        h = omega + alpha * previous**2 + beta * h
        variance[t] = h
        previous = math.sqrt(h) * z1[t]
    sigma = np.sqrt(variance)
    scale = 0.01  # 1 % daily volatility
    # E[σ_t z_t] = 0 and E[(σ_t z_t)²] = E[h] = 1, so mean / sd = μ / scale: the true Sharpe is exact.
    mu_h = CHAMPION_SHARPE / math.sqrt(PERIODS) * scale
    mu_c = (CHAMPION_SHARPE + effect) / math.sqrt(PERIODS) * scale
    return mu_c + scale * sigma * z2, mu_h + scale * sigma * z1


def _gate_cell(args: tuple[float, float, int, int]) -> dict[str, Any]:
    from mlops.pipeline.validation import champion_sharpe_test

    effect, rho, replications, seed = args
    rng = np.random.default_rng(seed)
    promoted, diffs, ses = 0, [], []
    for k in range(replications):
        settings = _settings(seed * 100_003 + k)
        candidate, champion = simulate_pair(rng, effect, rho)
        test = champion_sharpe_test(candidate, champion, PERIODS, settings)
        promoted += test.p_value < settings.gate_alpha
        diffs.append(test.difference)
        ses.append((test.ci_high - test.ci_low) / (2 * 1.6449))
    return {
        "decision": "gate",
        "truth": f"Sharpe {effect:+.1f}",
        "correlation": rho,
        "promoted": promoted / replications,
        "mean_estimate": float(np.mean(diffs)),
        "bootstrap_se": float(np.mean(ses)),
        "replications": replications,
    }


def simulate_gate(replications: int, seed: int, workers: int) -> tuple[list[dict[str, Any]], dict[str, float]]:
    cells = [(e, r, replications, seed + i) for i, (r, e) in enumerate((r, e) for r in CORRELATIONS for e in EFFECTS)]
    with ProcessPoolExecutor(workers) as pool:
        rows = list(pool.map(_gate_cell, cells))
    at = {(row["correlation"], row["truth"]): row["promoted"] for row in rows}
    summary = {
        "gate_false_promotion_rate": at[(0.9, "Sharpe -0.5")],
        "gate_power": at[(0.9, "Sharpe +0.5")],
        "gate_size_at_equal_sharpe": at[(0.9, "Sharpe +0.0")],
        "gate_power_rho_0_8": at[(0.8, "Sharpe +0.5")],
        "gate_power_rho_0": at[(0.0, "Sharpe +0.5")],
    }
    return rows, summary


def simulate_drift(replications: int, seed: int) -> tuple[list[dict[str, Any]], dict[str, float]]:
    path = HERE / "decisions_drift.py"
    spec = importlib.util.spec_from_file_location("skippy_bench_decisions_drift", path)
    if spec is None or spec.loader is None:
        raise SystemExit(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    rows, summary = module.simulate_drift(replications, seed)
    return list(rows), dict(summary)


def print_table(rows: list[dict[str, Any]]) -> None:
    columns: list[str] = []
    for row in rows:
        columns += [c for c in row if c not in columns]
    widths = {c: max(len(c), *(len(_fmt(r.get(c))) for r in rows)) for c in columns}
    print("  ".join(c.ljust(widths[c]) for c in columns))
    for row in rows:
        print("  ".join(_fmt(row.get(c)).ljust(widths[c]) for c in columns))


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.3f}"
    return "" if value is None else str(value)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer replications (under two minutes)")
    parser.add_argument("--reps", type=int, default=None, help="replications per cell (default 1000, quick 100)")
    parser.add_argument("--only", choices=("gate", "drift"), default=None)
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args()
    reps = args.reps or (100 if args.quick else 1000)
    summary: dict[str, float] = {"replications": reps}
    if args.only in (None, "gate"):
        start = time.perf_counter()
        rows, gate = simulate_gate(reps, args.seed, args.workers)
        print(
            f"\nPromotion gate: {BARS} daily bars, champion Sharpe {CHAMPION_SHARPE}, α = 0.05 one-sided, "
            f"({time.perf_counter() - start:.0f} s)"
        )
        print_table(rows)
        summary |= gate
    if args.only in (None, "drift"):
        start = time.perf_counter()
        drift_reps = max(reps // 2, 50) if args.quick else reps
        rows, drift = simulate_drift(drift_reps, args.seed)
        print(f"\nDrift check: 2,000 training bars, 250-bar windows ({time.perf_counter() - start:.0f} s)")
        print_table(rows)
        summary |= drift
    targets = {
        "drift_false_alarm_rate": ("<=", 0.05),
        "drift_power_2x": (">=", 0.9),
        "gate_false_promotion_rate": ("<=", 0.05),
        "gate_power": (">=", 0.5),
    }
    print("\nTargets:")
    for key, (op, bound) in targets.items():
        if key in summary:
            ok = summary[key] <= bound if op == "<=" else summary[key] >= bound
            print(f"  {key} = {summary[key]:.3f} (target {op} {bound}): {'met' if ok else 'NOT MET'}")
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
