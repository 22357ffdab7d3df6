"""The drift check: for an agent's champion, compare the current window of bars with the stored
baseline of its training window — feature drift (KL per feature, tested against its bootstrap null,
Benjamini–Hochberg across features), prediction drift (Wasserstein-1 / sd of predicted probabilities,
with a bootstrap p-value), performance drift (relative Sharpe degradation, two-sample Sharpe test) —
each status a test with the DESIGN §8 thresholds as effect-size floors; record everything in
`drift_metrics`. The statistics and rules live in drift/; this module loads, computes and records."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import select

from drift.feature_test import FeatureRule, feature_verdicts, summary_details
from drift.prediction_test import PredictionRule, prediction_verdict
from drift.registry import worst
from drift.sharpe import SharpeMoments, performance_status, sharpe_degradation
from mlops.agents.metrics import net_returns, risk_free_per_bar
from mlops.agents.specs import get_spec
from mlops.data.features import FEATURE_NAMES, compute_features, next_bar_returns
from mlops.data.store import load_bars
from mlops.db import session_scope
from mlops.db.models import DriftBaseline, DriftMetric, ModelPerformanceHistory
from mlops.errors import NotFoundError
from mlops.flags import require
from mlops.logs import get_logger
from mlops.pipeline.scoring import version_probabilities, version_recipe
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


def feature_rule(settings: Settings) -> FeatureRule:
    return FeatureRule(
        settings.drift_kl_warning,
        settings.drift_kl_critical,
        settings.drift_feature_warning_p,
        settings.drift_feature_critical_p,
        settings.drift_floor,
    )


def prediction_rule(settings: Settings) -> PredictionRule:
    return PredictionRule(
        settings.drift_wasserstein_warning,
        settings.drift_wasserstein_critical,
        settings.drift_prediction_warning_p,
        settings.drift_prediction_critical_p,
    )


def _feature_rows(settings: Settings, baseline: dict[str, Any], current: pd.DataFrame) -> list[DriftRow]:
    """One row per feature (KL, p, BH-adjusted p, null percentile, status) and the summary row, whose
    value and status are those of the feature that decides it (drift.feature_test.deciding_feature)."""
    features = {name: baseline["features"][name] for name in FEATURE_NAMES}
    verdicts = feature_verdicts(
        baseline | {"features": features}, {n: current[n].to_numpy() for n in FEATURE_NAMES}, feature_rule(settings)
    )
    warning, critical = settings.drift_kl_warning, settings.drift_kl_critical
    rows = [
        DriftRow("feature", "kl_divergence", v.feature, v.kl, warning, critical, v.status, v.details())
        for v in verdicts
    ]
    summary = summary_details(verdicts)
    status = worst([v.status for v in verdicts])
    rows.append(DriftRow("feature", "kl_divergence", None, summary["deciding_kl"], warning, critical, status, summary))
    return rows


def check_drift(settings: Settings, *, agent: str, window_bars: int | None = None) -> DriftCheck:
    """Run all three drift kinds for `agent`'s champion on the newest `window_bars` bars."""
    from tracking import registry

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

    p = version_probabilities(settings, spec, version, current)
    pred = prediction_verdict(baseline, p, prediction_rule(settings))
    rows.append(
        DriftRow(
            "prediction",
            "wasserstein",
            None,
            pred.value,
            settings.drift_wasserstein_warning,
            settings.drift_wasserstein_critical,
            pred.status,
            pred.details(),
        )
    )

    recipe = version_recipe(settings, spec, version)
    # What a position decided at bar t earns, with the configured fill and the symbol's cost.
    nxt = next_bar_returns(bars, fill=settings.execution_fill).reindex(current.index).to_numpy()
    usable = np.isfinite(nxt)  # the newest bars have no realised return yet
    positions = spec.positions(p, recipe.hyperparameters, recipe.base_rate)[usable]
    ppy = float(baseline["periods_per_year"])
    returns = net_returns(positions, nxt[usable], settings.cost_bps_for(stored.symbol))
    returns = returns - risk_free_per_bar(settings.risk_free_rate, ppy)  # excess, as every Sharpe here
    moments = baseline.get("baseline_returns")
    perf = sharpe_degradation(
        returns,
        float(baseline["baseline_sharpe"]),
        ppy,
        settings.drift_significance,
        SharpeMoments(**moments) if moments else None,
    )
    rows.append(
        DriftRow(
            "performance",
            "sharpe_degradation",
            None,
            perf.degradation,
            settings.drift_sharpe_warning,
            settings.drift_sharpe_critical,
            performance_status(
                perf,
                warning=settings.drift_sharpe_warning,
                critical=settings.drift_sharpe_critical,
                warning_p=settings.drift_sharpe_warning_p,
                critical_p=settings.drift_significance,
            ),
            {
                "baseline_sharpe": perf.baseline_sharpe,
                "current_sharpe": perf.current_sharpe,
                "relative": perf.relative,
                "p_value": perf.p_value,
                "z": perf.z,
                "test": "two-sample Sharpe z-test (Mertens/Opdyke variances)"
                if perf.two_sample
                else "one-sample PSR, baseline taken as known (baseline predates the two-sample test)",
                "baseline_n": perf.baseline_n,
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
                    "p_value": perf.p_value,
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
