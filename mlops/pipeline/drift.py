"""The drift check: for an agent's champion, compare the current window of bars with the stored
baseline of its training window — feature drift (KL per feature), prediction drift (Wasserstein-1
of predicted probabilities), performance drift (relative Sharpe degradation, with significance) —
classify each against its thresholds, and record everything in `drift_metrics`."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import select

from drift.baseline import noise_floor_for
from drift.psi import kl_and_psi
from drift.registry import classify, worst
from drift.sharpe import sharpe_degradation
from drift.wasserstein import wasserstein_1
from mlops.agents.metrics import net_returns
from mlops.agents.specs import get_spec
from mlops.data.features import FEATURE_NAMES, compute_features, next_bar_returns
from mlops.data.store import load_bars
from mlops.db import session_scope
from mlops.db.models import DriftBaseline, DriftMetric, ModelPerformanceHistory
from mlops.errors import NotFoundError
from mlops.flags import require
from mlops.logs import get_logger
from mlops.settings import AGENTS, Settings

log = get_logger(__name__)


@dataclass(frozen=True)
class DriftRow:
    drift_type: str
    statistic: str
    feature: str | None
    value: float | None
    warning: float
    critical: float
    status: str
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class DriftCheck:
    check_id: str
    agent_type: str
    model_version: int
    symbol: str
    status: str  # worst of the three kinds
    window_bars: int
    current_start: datetime | None
    current_end: datetime | None
    rows: list[DriftRow]
    report: dict[str, str] = field(default_factory=dict)

    def summary(self) -> list[DriftRow]:
        """One row per kind: the aggregate feature row, prediction and performance."""
        return [r for r in self.rows if r.feature is None]


def _load_baseline(settings: Settings, agent: str, version: int) -> DriftBaseline:
    with session_scope(settings.app_db_url) as session:
        row = session.scalars(
            select(DriftBaseline).where(DriftBaseline.agent_type == agent, DriftBaseline.model_version == version)
        ).first()
        if row is None:
            raise NotFoundError(
                f"{agent} v{version} has no drift baseline (trained before baselines existed): retrain it"
            )
        session.expunge(row)
        return row


def _feature_rows(settings: Settings, baseline: dict[str, Any], current: pd.DataFrame) -> list[DriftRow]:
    """KL (and PSI) per feature. With `drift_noise_floor`, the status judges the KL in excess of the
    feature's no-drift noise floor at this window length (see drift.baseline.kl_noise_floor)."""
    rows = []
    warning, critical = settings.drift_kl_warning, settings.drift_kl_critical
    for name in FEATURE_NAMES:
        ref = baseline["features"][name]
        shares, edges = np.asarray(ref["shares"]), np.asarray(ref["edges"])
        values = current[name].to_numpy()
        value, psi = kl_and_psi(shares, edges, values, settings.drift_floor)
        floor = noise_floor_for(ref.get("kl_noise_floor", {}), len(current)) if settings.drift_noise_floor else 0.0
        excess = value - floor
        rows.append(
            DriftRow(
                "feature",
                "kl_divergence",
                name,
                value,
                warning,
                critical,
                classify(excess, warning, critical),
                {"psi": psi, "noise_floor": floor, "excess": excess, "non_finite": int((~np.isfinite(values)).sum())},
            )
        )
    top = max(rows, key=lambda r: r.details["excess"])
    rows.append(
        DriftRow(
            "feature",
            "kl_divergence",
            None,
            max(r.value or 0.0 for r in rows),
            warning,
            critical,
            top.status,
            {
                "worst_feature": top.feature,
                "worst_value": top.value,
                "worst_excess": top.details["excess"],
                "worst_noise_floor": top.details["noise_floor"],
                "drifted": [r.feature for r in rows if r.status in ("warning", "critical")],
            },
        )
    )
    return rows


def check_drift(settings: Settings, *, agent: str, window_bars: int | None = None) -> DriftCheck:
    """Run all three drift kinds for `agent`'s champion on the newest `window_bars` bars."""
    from tracking import registry
    from tracking.runs import run_params

    require(settings, "mlops_drift_detection")
    spec = get_spec(agent)
    version = registry.alias_version(settings, agent, registry.CHAMPION)
    if version is None:
        raise NotFoundError(f"{agent} has no champion to check for drift")
    stored = _load_baseline(settings, agent, version)
    baseline = stored.payload
    window = window_bars or settings.drift_window_bars
    bars = load_bars(settings.app_db_url, stored.symbol)
    features = compute_features(bars)
    current = features.tail(window)
    check_id = uuid.uuid4().hex[:16]
    start = current.index[0].to_pydatetime() if len(current) else None
    end = current.index[-1].to_pydatetime() if len(current) else None
    if len(current) < settings.drift_min_window_bars:
        rows = [
            DriftRow(
                kind,
                stat,
                None,
                None,
                w,
                c,
                "insufficient",
                {"reason": f"{len(current)} bars in the window; at least {settings.drift_min_window_bars} needed"},
            )
            for kind, stat, w, c in (
                ("feature", "kl_divergence", settings.drift_kl_warning, settings.drift_kl_critical),
                ("prediction", "wasserstein", settings.drift_wasserstein_warning, settings.drift_wasserstein_critical),
                ("performance", "sharpe_degradation", settings.drift_sharpe_warning, settings.drift_sharpe_critical),
            )
        ]
        return _record(
            settings,
            DriftCheck(check_id, agent, version, stored.symbol, "insufficient", len(current), start, end, rows),
            stored,
        )

    rows = _feature_rows(settings, baseline, current)

    model = registry.load_version(settings, agent, version)
    p = np.asarray(model.predict(current), dtype=float)
    w1 = wasserstein_1(np.asarray(baseline["predictions_sorted"]), p)
    rows.append(
        DriftRow(
            "prediction",
            "wasserstein",
            None,
            w1,
            settings.drift_wasserstein_warning,
            settings.drift_wasserstein_critical,
            classify(w1, settings.drift_wasserstein_warning, settings.drift_wasserstein_critical),
            {"current_mean": float(p.mean()), "reference_mean": float(np.mean(baseline["predictions_sorted"]))},
        )
    )

    info = registry.get_version(settings, agent, version)
    hp = spec.hyperparameters_from_params(run_params(settings, info.run_id) if info and info.run_id else {})
    nxt = next_bar_returns(bars).reindex(current.index).to_numpy()
    usable = np.isfinite(nxt)  # the newest bar has no next return yet
    positions = spec.positions(p, hp)[usable]
    returns = net_returns(positions, nxt[usable], settings.transaction_cost_bps)
    perf = sharpe_degradation(
        returns, float(baseline["baseline_sharpe"]), float(baseline["periods_per_year"]), settings.drift_significance
    )
    rows.append(
        DriftRow(
            "performance",
            "sharpe_degradation",
            None,
            perf.degradation,
            settings.drift_sharpe_warning,
            settings.drift_sharpe_critical,
            classify(perf.degradation, settings.drift_sharpe_warning, settings.drift_sharpe_critical),
            {
                "baseline_sharpe": perf.baseline_sharpe,
                "current_sharpe": perf.current_sharpe,
                "relative": perf.relative,
                "probability_not_worse": perf.probability_not_worse,
                "significant": perf.significant,
                "n": perf.n,
                "note": "degradation significant at this window length"
                if perf.significant
                else "not statistically significant at this window length",
            },
        )
    )
    status = worst([r.status for r in rows if r.feature is None])
    report: dict[str, str] = {}
    if settings.drift_report:
        report = _report(settings, baseline, current, check_id)
    result = DriftCheck(check_id, agent, version, stored.symbol, status, len(current), start, end, rows, report)
    with session_scope(settings.app_db_url) as session:
        session.add(
            ModelPerformanceHistory(
                agent_type=agent,
                model_version=version,
                window="live",
                window_start=start,
                window_end=end,
                n_samples=perf.n,
                sharpe_ratio=perf.current_sharpe,  # no labels for the newest bars: Sharpe only
                metrics={
                    "sharpe_ratio": perf.current_sharpe,
                    "sharpe_degradation": perf.degradation,
                    "probability_not_worse": perf.probability_not_worse,
                    "check_id": check_id,
                },
            )
        )
    return _record(settings, result, stored)


def _report(settings: Settings, baseline: dict[str, Any], current: pd.DataFrame, check_id: str) -> dict[str, str]:
    from drift.report import write_report

    try:
        reference = pd.DataFrame(baseline["sample"])[list(FEATURE_NAMES)]
        folder = settings.home / "reports" / "drift" / check_id
        return write_report(reference, current[list(FEATURE_NAMES)], folder, settings.drift_report_rows, settings.seed)
    except Exception as exc:  # the report is for people; our numbers stand without it
        log.warning("drift report failed", check_id=check_id, error=str(exc))
        return {"error": str(exc)}


def _record(settings: Settings, check: DriftCheck, stored: DriftBaseline) -> DriftCheck:
    with session_scope(settings.app_db_url) as session:
        for row in check.rows:
            session.add(
                DriftMetric(
                    check_id=check.check_id,
                    agent_type=check.agent_type,
                    model_version=check.model_version,
                    symbol=check.symbol,
                    drift_type=row.drift_type,
                    feature=row.feature,
                    statistic=row.statistic,
                    value=row.value,
                    warning_threshold=row.warning,
                    critical_threshold=row.critical,
                    status=row.status,
                    details=row.details | ({"report": check.report} if row.feature is None and check.report else {}),
                    reference_start=stored.reference_start,
                    reference_end=stored.reference_end,
                    current_start=check.current_start,
                    current_end=check.current_end,
                )
            )
    log.info(
        "drift check",
        agent_type=check.agent_type,
        model_version=check.model_version,
        drift_status=check.status,
        check_id=check.check_id,
        metrics={r.drift_type: r.value for r in check.summary()},
    )
    return check


def check_all(settings: Settings, window_bars: int | None = None) -> list[DriftCheck]:
    """Every agent that has a champion."""
    from tracking import registry

    return [
        check_drift(settings, agent=a, window_bars=window_bars)
        for a in AGENTS
        if registry.alias_version(settings, a, registry.CHAMPION) is not None
    ]
