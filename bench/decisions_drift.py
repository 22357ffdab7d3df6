"""Error rates of the drift verdicts, simulated where the truth is known (issue 9, "Done when").

Each replication draws one continuous series from the project's synthetic generator
(`generate_bars(..., regime="normal")`: GARCH volatility clustering in one regime), computes the
project's features on it, builds the baseline with the project's `compute_baseline` on the first
2,000 feature rows, and judges the next 250 rows with the project's `feature_verdicts` — unchanged, and
with the check window's volatility scaled by 1.25, 1.5 and 2 (the close's log returns multiplied after
the split, open/high/low scaled with them relative to the close, volume left as generated).

Prediction drift: the predicted probability of a tail model, logistic in the training-standardised
vol_20 and ret_5 (coefficients 0.8 and −0.3) with its mean set near 0.1 on the training window — a
persistent series like a real risk_assessor's. The check window gets either the same model (no change)
or its logit shifted so the mean probability rises 30 %; judged by `prediction_verdict`. The same on a
weakly persistent probability (logistic in ret_5 and ret_1), reported as extra rows and keys: the
test's power depends on how much 250-bar windows of the probability vary on their own.

    python bench/decisions_drift.py --reps 1000 [--seed 0] [--workers 2]

bench/decisions.py loads this file by path and calls `simulate_drift`.
"""

from __future__ import annotations

import argparse
import functools
import json
import multiprocessing
import os
import sys
import time
import types
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

# Run as a script (or loaded by path from a script in bench/), bench/ is on sys.path and its `drift.py`
# would shadow the `drift` package.
_BENCH = str(Path(__file__).resolve().parent)
sys.path[:] = [p for p in sys.path if p not in ("", _BENCH)]
_ROOT = str(Path(__file__).resolve().parent.parent)
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)
if "drift" in sys.modules and not hasattr(sys.modules["drift"], "__path__"):
    del sys.modules["drift"]  # bench/drift.py imported by mistake: the package is meant

from drift.baseline import compute_baseline  # noqa: E402
from drift.feature_test import feature_verdicts, summary_details  # noqa: E402
from drift.prediction_test import prediction_verdict  # noqa: E402
from drift.registry import FEATURE_DRIFT, PREDICTION_DRIFT  # noqa: E402
from drift.status import worst  # noqa: E402
from mlops.data.features import FEATURE_NAMES, WARMUP_BARS, compute_features  # noqa: E402
from mlops.data.synthetic import generate_bars  # noqa: E402
from mlops.settings import Settings  # noqa: E402

TRAIN_ROWS = 2_000
WINDOW = 250
VOL_SHIFTS = (1.25, 1.5, 2.0)
PREDICTION_RISE = 0.30
PREDICTION_MEAN = 0.10
CALIBRATION_LEVELS = (0.001, 0.002, 0.005, 0.01, 0.02)


def scale_volatility(bars: pd.DataFrame, split: int, factor: float) -> pd.DataFrame:
    """Bars whose log returns from bar `split` on are multiplied by `factor`; open, high and low keep their
    position relative to the close, their log distances scaled by the same factor."""
    if factor == 1.0:
        return bars
    log_close = np.log(bars["close"].to_numpy())
    returns = np.diff(log_close, prepend=log_close[0])
    returns[split:] *= factor
    close = np.exp(log_close[0] + np.cumsum(returns))
    prev = np.concatenate([[close[0]], close[:-1]])
    old_prev = np.concatenate([[bars["close"].iloc[0]], bars["close"].to_numpy()[:-1]])
    scale = np.where(np.arange(len(bars)) >= split, factor, 1.0)
    open_ = prev * np.exp(np.log(bars["open"].to_numpy() / old_prev) * scale)
    top, bottom = np.maximum(bars["open"], bars["close"]).to_numpy(), np.minimum(bars["open"], bars["close"]).to_numpy()
    high = np.maximum(open_, close) * np.exp(np.log(bars["high"].to_numpy() / top) * scale)
    low = np.minimum(open_, close) * np.exp(np.log(bars["low"].to_numpy() / bottom) * scale)
    return bars.assign(open=open_, high=high, low=low, close=close)


def _logistic(x: np.ndarray) -> np.ndarray:
    return np.asarray(1.0 / (1.0 + np.exp(-x)))


def _intercept_for_mean(index: np.ndarray, mean: float) -> float:
    """The intercept c with mean(logistic(c + index)) = mean (bisection; the mean rises with c)."""
    lo, hi = -20.0, 20.0
    for _ in range(60):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if _logistic(mid + index).mean() < mean else (lo, mid)
    return (lo + hi) / 2


def replicate(seed: int, settings: Settings | None = None) -> dict[str, Any]:
    """One replication: the feature summary status unchanged and at each volatility shift, and the
    prediction status unchanged and after the 30 % rise."""
    s = settings or Settings()
    split = WARMUP_BARS + TRAIN_ROWS
    bars = generate_bars(split + WINDOW, seed=seed, regime="normal")
    features = compute_features(bars)
    train = features.iloc[:TRAIN_ROWS]
    mu, sd = train.mean(), train.std()
    index = 0.8 * ((features["vol_20"] - mu["vol_20"]) / sd["vol_20"]) - 0.3 * (
        (features["ret_5"] - mu["ret_5"]) / sd["ret_5"]
    )
    index_values = index.to_numpy()
    c = _intercept_for_mean(index_values[:TRAIN_ROWS], PREDICTION_MEAN)
    p = _logistic(c + index_values)
    baseline = compute_baseline(
        train.to_numpy(),
        list(FEATURE_NAMES),
        p[:TRAIN_ROWS],
        baseline_sharpe=0.0,
        periods_per_year=252.0,
        bins=s.drift_bins,
        seed=seed,
        floor=s.drift_floor,
        windows=(WINDOW,),
        draws=s.drift_null_draws,
        prediction_draws=s.drift_null_prediction_draws,
        block_share=s.drift_null_block_share,
    )
    rule = FEATURE_DRIFT.rule(s)
    out: dict[str, Any] = {}
    for factor in (1.0, *VOL_SHIFTS):
        window = compute_features(scale_volatility(bars, split, factor)).iloc[TRAIN_ROWS:]
        verdicts = feature_verdicts(baseline, {n: window[n].to_numpy() for n in FEATURE_NAMES}, rule)
        out[f"feature_{factor}"] = worst([v.status for v in verdicts])
        out[f"deciding_{factor}"] = summary_details(verdicts)["deciding_feature"]
        # For calibration: the smallest adjusted p among features past the KL floor.
        out[f"min_adjusted_p_{factor}"] = min(
            [v.adjusted_p for v in verdicts if v.adjusted_p is not None and v.kl >= rule.critical], default=1.0
        )
    prule = PREDICTION_DRIFT.rule(s)
    current = p[TRAIN_ROWS:]
    shifted_c = _intercept_for_mean(index_values[:TRAIN_ROWS], PREDICTION_MEAN * (1 + PREDICTION_RISE))
    for key, predictions in (("none", current), ("rise", _logistic(shifted_c + index_values[TRAIN_ROWS:]))):
        verdict = prediction_verdict(baseline, predictions, prule)
        out[f"prediction_{key}"] = verdict.status
        out[f"prediction_p_{key}"] = verdict.p_value if verdict.value > prule.critical else 1.0
    # The same test on a weakly persistent probability (logistic in ret_5 and ret_1: memory of a few bars).
    quick = 0.8 * ((features["ret_5"] - mu["ret_5"]) / sd["ret_5"]) - 0.3 * (
        (features["ret_1"] - mu["ret_1"]) / sd["ret_1"]
    )
    quick_values = quick.to_numpy()
    c2 = _intercept_for_mean(quick_values[:TRAIN_ROWS], PREDICTION_MEAN)
    c2_shifted = _intercept_for_mean(quick_values[:TRAIN_ROWS], PREDICTION_MEAN * (1 + PREDICTION_RISE))
    quick_baseline = compute_baseline(
        train.to_numpy()[:, :1],
        list(FEATURE_NAMES[:1]),
        _logistic(c2 + quick_values[:TRAIN_ROWS]),
        baseline_sharpe=0.0,
        periods_per_year=252.0,
        seed=seed,
        windows=(WINDOW,),
        draws=0,
        prediction_draws=s.drift_null_prediction_draws,
        block_share=s.drift_null_block_share,
    )
    for key, intercept in (("none", c2), ("rise", c2_shifted)):
        verdict = prediction_verdict(quick_baseline, _logistic(intercept + quick_values[TRAIN_ROWS:]), prule)
        out[f"quick_prediction_{key}"] = verdict.status
    return out


@functools.lru_cache(maxsize=1)
def _settings() -> Settings:
    return Settings()


def _replicate_seed(seed: int) -> dict[str, Any]:
    return replicate(seed, _settings())


def _rate(results: list[dict[str, Any]], key: str, statuses: tuple[str, ...] = ("critical",)) -> float:
    return float(np.mean([r[key] in statuses for r in results]))


def simulate_drift(replications: int, seed: int = 0) -> tuple[list[dict[str, object]], dict[str, float]]:
    """(table rows, summary) of the drift verdicts' error rates over `replications` simulated series.
    Runs in min(2, cores) worker processes (SKIPPY_BENCH_WORKERS overrides)."""
    if replications < 1:
        raise ValueError(f"replications must be >= 1, got {replications}")
    seeds = [seed * 1_000_003 + i for i in range(replications)]
    workers = int(os.environ.get("SKIPPY_BENCH_WORKERS", min(2, os.cpu_count() or 1)))
    if workers > 1:
        # Loaded by path, this module may be missing from sys.modules: register it so the forked workers
        # can unpickle the function by name.
        if __name__ not in sys.modules:
            module = types.ModuleType(__name__)
            module._replicate_seed = _replicate_seed  # type: ignore[attr-defined]
            sys.modules[__name__] = module
        with multiprocessing.get_context("fork").Pool(workers) as pool:
            results = pool.map(_replicate_seed, seeds, chunksize=max(1, replications // (8 * workers)))
    else:
        results = [_replicate_seed(s) for s in seeds]
    rows: list[dict[str, object]] = []
    for factor in (1.0, *VOL_SHIFTS):
        key = f"feature_{factor}"
        deciding = pd.Series([r[f"deciding_{factor}"] for r in results if r[key] == "critical"])
        rows.append(
            {
                "decision": "feature drift",
                "scenario": "no change" if factor == 1.0 else f"volatility x{factor:g}",
                "critical_rate": _rate(results, key),
                "warning_or_critical_rate": _rate(results, key, ("warning", "critical")),
                "top_deciding_features": ", ".join(deciding.value_counts().index[:3]) if len(deciding) else "-",
                "replications": replications,
            }
        )
    for key, scenario in (
        ("prediction_none", "no change"),
        ("prediction_rise", f"mean +{PREDICTION_RISE:.0%}"),
        ("quick_prediction_none", "no change, weakly persistent"),
        ("quick_prediction_rise", f"mean +{PREDICTION_RISE:.0%}, weakly persistent"),
    ):
        rows.append(
            {
                "decision": "prediction drift",
                "scenario": scenario,
                "critical_rate": _rate(results, key),
                "warning_or_critical_rate": _rate(results, key, ("warning", "critical")),
                "top_deciding_features": "-",
                "replications": replications,
            }
        )
    summary = {
        "drift_false_alarm_rate": _rate(results, "feature_1.0"),
        "drift_power_2x": _rate(results, "feature_2.0"),
        "drift_power_1_25x": _rate(results, "feature_1.25"),
        "drift_power_1_5x": _rate(results, "feature_1.5"),
        "prediction_false_alarm_rate": _rate(results, "prediction_none"),
        "prediction_power_30pct": _rate(results, "prediction_rise"),
        "prediction_false_alarm_rate_weakly_persistent": _rate(results, "quick_prediction_none"),
        "prediction_power_30pct_weakly_persistent": _rate(results, "quick_prediction_rise"),
    }
    for level in CALIBRATION_LEVELS:  # private keys (leading _), for main's calibration table
        for factor in (1.0, *VOL_SHIFTS):
            summary[f"_feature_{factor}_at_{level}"] = float(
                np.mean([r[f"min_adjusted_p_{factor}"] < level for r in results])
            )
        for key in ("none", "rise"):
            summary[f"_prediction_{key}_at_{level}"] = float(
                np.mean([r[f"prediction_p_{key}"] < level for r in results])
            )
    return rows, summary


def main() -> None:
    parser = argparse.ArgumentParser(description="Error rates of the drift verdicts by simulation")
    parser.add_argument("--reps", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, default=None)
    args = parser.parse_args()
    if args.workers:
        os.environ["SKIPPY_BENCH_WORKERS"] = str(args.workers)
    start = time.perf_counter()
    rows, summary = simulate_drift(args.reps, args.seed)
    print(f"{'decision':<17} {'scenario':<36} {'critical':>9} {'warn|crit':>10}  deciding (most often)")
    for r in rows:
        print(
            f"{r['decision']!s:<17} {r['scenario']!s:<36} {r['critical_rate']:>9.3f} "
            f"{r['warning_or_critical_rate']:>10.3f}  {r['top_deciding_features']}"
        )
    print(f"{args.reps} replications in {time.perf_counter() - start:.0f} s")
    print("calibration: critical rate if the critical level were ...")
    for level in CALIBRATION_LEVELS:
        feature = "  ".join(
            f"{'none' if f == 1.0 else f'x{f:g}'} {summary[f'_feature_{f}_at_{level}']:.3f}" for f in (1.0, *VOL_SHIFTS)
        )
        prediction = (
            f"none {summary[f'_prediction_none_at_{level}']:.3f}  +30% {summary[f'_prediction_rise_at_{level}']:.3f}"
        )
        print(f"  {level:<6} features: {feature} | predictions: {prediction}")
    summary = {k: v for k, v in summary.items() if not k.startswith("_")}
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
