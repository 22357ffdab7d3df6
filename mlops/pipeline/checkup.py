"""The weekly validation of a champion: does it still load and predict, are its newest bars usable, and
has its performance degraded, significantly, on bars it has never seen? One audited "weekly validation".

1. **Loads and predicts**: the deployed version as the API serves it (the registry's champion with its
   recipe, loaded through the model registry) gives a finite probability in [0, 1] on each of the newest
   `drift_window_bars` feature rows of its symbol. Otherwise `failed`.
2. **Recent data quality**: on those newest bars, no duplicate timestamps, no NaN or infinite price or
   volume, no NaN or infinite feature after the warm-up, and at most `missing_bars_warning_share` of the
   series' own calendar slots without a bar (mlops/data/bar_quality.py infers the calendar). Otherwise
   `failed`: a model judged on broken bars says nothing.
3. **Walk-forward re-score on unseen bars**: the bars after the newest bar of the champion's training data
   (`model_runs.data_end`; the held-out window's end for runs that predate it, and after any paper trading
   that promoted it). Not after the held-out test window's end: the gate chose the champion on that window,
   so its score there is biased upwards, and the bars between it and `data_end` are ones the run loaded.
   Each complete window of `drift_min_window_bars` consecutive unseen bars gets one
   `model_performance_history` row (window `live`, as the drift check's live Sharpe, with every metric of
   `score()` since these bars' outcomes are known; `metrics.source` = "weekly validation"), written once.
   Fewer unseen bars than `drift_min_window_bars` (the shortest window a drift check judges): `insufficient`.
4. **Significant degradation**, the performance-drift test (drift/sharpe.py): the champion's annualised
   Sharpe on all its unseen bars against the Sharpe of its held-out window, stored with its moments in the
   drift baseline — a two-sample z-test with Mertens/Opdyke variances, one-sided, H0 "no degradation".
   The champion is `degraded` when p < `drift_significance` and the relative degradation passes
   `drift_sharpe_critical` (5 %), the effect-size floor of the drift check's performance rule; otherwise
   `ok`. A champion without a drift baseline (trained before baselines existed) cannot be judged: `failed`,
   with "retrain it".

The Loop turns `degraded` and `failed` into alerts and retrains; this service only reports.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import select

from drift.sharpe import SharpeMoments, sharpe_degradation
from mlops.agents.metrics import risk_free_per_bar
from mlops.agents.specs import get_spec
from mlops.agents.training import Dataset, build_dataset, score
from mlops.audit import audited
from mlops.data.bar_quality import bar_checks
from mlops.data.features import FEATURE_NAMES, compute_features
from mlops.data.store import as_utc, load_bars
from mlops.data.validation import OHLCV
from mlops.db import session_scope
from mlops.db.models import ModelPerformanceHistory
from mlops.errors import NotFoundError
from mlops.logs import get_logger
from mlops.pipeline.champion import scored
from mlops.pipeline.drift.window import load_baseline
from mlops.pipeline.scoring import VersionRecipe
from mlops.pipeline.serving import ServedModel, deployed_model
from mlops.pipeline.watch import p_text, trained_through
from mlops.settings import Settings

log = get_logger(__name__)
ACTION = "weekly validation"
STATUSES = ("ok", "degraded", "failed", "insufficient", "no_champion")
WINDOW = "live"
SOURCE = "weekly validation"


@dataclass(frozen=True)
class Checkup:
    agent_type: str
    model_version: int | None
    status: str  # one of STATUSES
    degraded: bool
    reason: str
    details: dict[str, Any] = field(default_factory=dict)
    unseen_bars: int = 0
    required_bars: int | None = None  # insufficient: unseen bars needed
    rows_written: int = 0  # model_performance_history rows this checkup added


def validate_champion(settings: Settings, *, agent: str, actor: str) -> Checkup:
    """Validate `agent`'s champion (the rule is this module's docstring); audited as "weekly validation"."""
    get_spec(agent)
    with audited(settings, actor=actor, action=ACTION, parameters={"agent": agent}) as audit:
        checkup = _validate(settings, agent)
        audit.update(
            status=checkup.status,
            model_version=checkup.model_version,
            unseen_bars=checkup.unseen_bars,
            rows_written=checkup.rows_written,
            reason=checkup.reason,
        )
    log.info(
        "weekly validation",
        agent_type=agent,
        model_version=checkup.model_version,
        validation_status=checkup.status,
        unseen_bars=checkup.unseen_bars,
    )
    return checkup


def _validate(settings: Settings, agent: str) -> Checkup:
    try:
        served = deployed_model(settings, agent)
    except NotFoundError:
        return Checkup(agent, None, "no_champion", False, f"{agent} has no champion to validate")
    version = served.version

    def failed(reason: str, **details: Any) -> Checkup:
        return Checkup(agent, version, "failed", False, f"{agent} v{version}: {reason}", details)

    with session_scope(settings.app_db_url) as session:
        symbol, through = trained_through(session, agent, version)
    if symbol is None or through is None:
        return failed("no record of its training data in the app database: its unseen bars are unknown")
    bars = load_bars(settings.app_db_url, symbol)
    details: dict[str, Any] = {"symbol": symbol, "trained_through": through.isoformat()}
    quality = recent_quality(settings, bars)
    details["data_quality"] = quality
    if quality["problems"]:
        return failed(f"recent {symbol} data unusable: " + "; ".join(quality["problems"]), **details)
    features = compute_features(bars).tail(settings.drift_window_bars)
    try:
        prediction = _predicts(settings, served, features)
    except Exception as exc:  # whatever breaks loading or predicting, the deployed model is unusable
        return failed(f"the deployed model does not load or predict: {type(exc).__name__}: {exc}"[:2000], **details)
    details["prediction"] = prediction
    if prediction["problems"]:
        return failed("the deployed model's predictions are unusable: " + "; ".join(prediction["problems"]), **details)
    spec = get_spec(agent)
    recipe = VersionRecipe(served.hyperparameters, served.base_rate)
    data = build_dataset(bars, spec, recipe.hyperparameters, fill=settings.execution_fill)
    rows = np.flatnonzero(data.features.index > through)
    need = settings.drift_min_window_bars
    details["unseen_bars"] = len(rows)
    if len(rows) < need:
        reason = (
            f"{agent} v{version}: {len(rows)} {symbol} bars with a known outcome after its data "
            f"(through {through:%Y-%m-%d %H:%M}); the re-score needs at least {need} (SKIPPY_DRIFT_MIN_WINDOW_BARS)"
        )
        return Checkup(agent, version, "insufficient", False, reason, details, len(rows), need)
    try:
        baseline = load_baseline(settings, agent, version).payload
    except NotFoundError as exc:  # no held-out Sharpe to compare with: a retrain gives the model one
        return failed(str(exc), **details)
    return _rescore(settings, served, recipe, baseline, data, rows, symbol, details)


def recent_quality(settings: Settings, bars: pd.DataFrame) -> dict[str, Any]:
    """Checks of the newest `drift_window_bars` bars: problems (each one makes them unusable) and the numbers."""
    recent = bars.tail(settings.drift_window_bars)
    problems: list[str] = []
    if len(recent) == 0:
        return {"bars": 0, "problems": ["no bars in the store"]}
    duplicates = int(pd.Index(recent.index).duplicated().sum())
    if duplicates:
        problems.append(f"{duplicates} duplicate timestamps")
    prices = recent[list(OHLCV)].to_numpy(dtype=float)
    bad_prices = int((~np.isfinite(prices)).any(axis=1).sum())
    if bad_prices:
        problems.append(f"{bad_prices} bars with a NaN or infinite price or volume")
    unique = recent[~pd.Index(recent.index).duplicated(keep="last")]
    features = compute_features(bars[~pd.Index(bars.index).duplicated(keep="last")]).reindex(unique.index)
    bad_features = int((~np.isfinite(features.to_numpy(dtype=float))).any(axis=1).sum())
    if bad_features:
        problems.append(f"{bad_features} of the newest bars have a NaN or infinite feature (too little history?)")
    checks = bar_checks(unique)
    calendar = checks.get("calendar", {})
    share = float(calendar.get("missing_bar_share", 0.0))
    if share > settings.missing_bars_warning_share:
        problems.append(
            f"{calendar.get('missing_bars', 0)} bars ({share:.1%}) of the series' calendar missing "
            f"(gaps; at most {settings.missing_bars_warning_share:.0%} allowed, SKIPPY_MISSING_BARS_WARNING_SHARE)"
        )
    return {
        "bars": len(recent),
        "first": str(recent.index[0]),
        "last": str(recent.index[-1]),
        "duplicate_timestamps": duplicates,
        "non_finite_bars": bad_prices,
        "non_finite_feature_rows": bad_features,
        "calendar": calendar,
        "problems": problems,
    }


def _predicts(settings: Settings, served: ServedModel, features: pd.DataFrame) -> dict[str, Any]:
    """The deployed version, loaded as the API loads it, on recent feature rows: every probability finite
    and in [0, 1], one per row."""
    from tracking import registry

    model = registry.load_version(settings, served.agent_type, served.version)
    p = np.asarray(model.predict(features[list(FEATURE_NAMES)]), dtype=float).reshape(-1)
    problems = []
    if len(p) != len(features):
        problems.append(f"{len(p)} probabilities for {len(features)} rows")
    finite = np.isfinite(p)
    if not finite.all():
        problems.append(f"{int((~finite).sum())} of {len(p)} probabilities are NaN or infinite")
    outside = int(((p[finite] < 0) | (p[finite] > 1)).sum())
    if outside:
        problems.append(f"{outside} probabilities outside [0, 1]")
    shown = p[finite]
    return {
        "model_uri": served.model_uri,
        "rows": len(features),
        "min": float(shown.min()) if shown.size else None,
        "max": float(shown.max()) if shown.size else None,
        "mean": float(shown.mean()) if shown.size else None,
        "problems": problems,
    }


def _rescore(
    settings: Settings,
    served: ServedModel,
    recipe: VersionRecipe,
    baseline: dict[str, Any],
    data: Dataset,
    rows: np.ndarray,
    symbol: str,
    details: dict[str, Any],
) -> Checkup:
    from mlops.pipeline.scoring import version_probabilities

    agent, version = served.agent_type, served.version
    spec = get_spec(agent)
    cost = settings.cost_bps_for(symbol)
    p = version_probabilities(settings, spec, version, data.features.iloc[rows])
    output = scored(spec, recipe.hyperparameters, p, data, rows, cost, recipe.base_rate)
    ppy = float(baseline.get("periods_per_year", data.periods_per_year))
    excess = output.returns - risk_free_per_bar(settings.risk_free_rate, ppy)
    moments = baseline.get("baseline_returns")
    result = sharpe_degradation(
        excess,
        float(baseline["baseline_sharpe"]),
        ppy,
        settings.drift_significance,
        SharpeMoments(**moments) if moments else None,
    )
    details["degradation"] = result.details() | {"alpha": settings.drift_significance}
    written, windows = _record_windows(settings, agent, version, recipe, p, data, rows, cost, result.p_value)
    details["windows"] = windows
    first, last = data.features.index[rows[0]], data.features.index[rows[-1]]
    span = f"{len(rows)} unseen {symbol} bars ({first:%Y-%m-%d} to {last:%Y-%m-%d})"
    numbers = (
        f"Sharpe {result.current_sharpe:+.2f} against {result.baseline_sharpe:+.2f} on its held-out window, "
        f"one-sided p {p_text(result.p_value)} ({'two-sample' if result.two_sample else 'one-sample PSR'} test)"
    )
    alpha = f"{settings.drift_significance:g}"
    floor = settings.drift_sharpe_critical
    degraded = result.significant and result.degradation > floor
    details["degradation"]["floor"] = floor
    if degraded:
        status, reason = "degraded", f"{agent} v{version} degraded significantly on {span}: {numbers} < {alpha}"
    elif result.significant:
        status, reason = "ok", (
            f"{agent} v{version} ok on {span}: {numbers} < {alpha}, but a degradation of "
            f"{result.degradation:.1%} is within the {floor:.0%} floor (SKIPPY_DRIFT_SHARPE_CRITICAL)"
        )
    else:
        status, reason = "ok", f"{agent} v{version} ok on {span}: {numbers}, not below {alpha}"
    return Checkup(agent, version, status, degraded, reason, details, len(rows), None, written)


def _record_windows(
    settings: Settings,
    agent: str,
    version: int,
    recipe: VersionRecipe,
    p: np.ndarray,
    data: Dataset,
    rows: np.ndarray,
    cost: float,
    p_value: float,
) -> tuple[int, list[dict[str, Any]]]:
    """One `model_performance_history` row per complete window of unseen bars not recorded before."""
    spec = get_spec(agent)
    size = settings.drift_min_window_bars
    index = data.features.index
    with session_scope(settings.app_db_url) as session:
        recorded = {
            (as_utc(r.window_start), as_utc(r.window_end))
            for r in session.scalars(
                select(ModelPerformanceHistory).where(
                    ModelPerformanceHistory.agent_type == agent,
                    ModelPerformanceHistory.model_version == version,
                    ModelPerformanceHistory.window == WINDOW,
                )
            )
            if (r.metrics or {}).get("source") == SOURCE and r.window_start and r.window_end
        }
        windows, written = [], 0
        for k in range(len(rows) // size):
            part = np.arange(k * size, (k + 1) * size)
            take = rows[part]
            start: datetime = index[take[0]].to_pydatetime()
            end: datetime = index[take[-1]].to_pydatetime()
            m = score(
                spec,
                recipe.hyperparameters,
                p[part],
                data.y[take],
                data.next_returns[take],
                data.periods_per_year,
                cost,
                base_rate=recipe.base_rate,
                risk_free_rate=settings.risk_free_rate,
            )
            windows.append({"start": start.isoformat(), "end": end.isoformat(), "sharpe_ratio": m["sharpe_ratio"]})
            if (as_utc(start), as_utc(end)) in recorded:
                continue
            row = ModelPerformanceHistory.from_metrics(
                m, agent_type=agent, model_version=version, window=WINDOW, window_start=start, window_end=end
            )
            # JSON columns refuse NaN (PostgreSQL): a metric undefined on this window is stored as null.
            row.metrics = {name: float(v) if np.isfinite(v) else None for name, v in m.items()} | {
                "source": SOURCE,
                "window_index": k,
                "span_p_value": p_value,
            }
            session.add(row)
            written += 1
    return written, windows
