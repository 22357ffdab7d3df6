"""The drift check's pieces on their own, without a trained model: validating a request, loading the
baseline and the window, running the registered statistics with Settings' thresholds, classifying,
and writing `drift_metrics` and the live performance row — on SQLite and on PostgreSQL."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sqlalchemy import select

from drift.baseline import compute_baseline
from drift.registry import Window
from mlops.data.features import FEATURE_NAMES, WARMUP_BARS
from mlops.data.store import upsert_bars
from mlops.db import session_scope
from mlops.db.models import DriftBaseline, DriftMetric, ModelPerformanceHistory
from mlops.errors import FeatureDisabledError, InvalidRequestError, NotFoundError, UnknownAgentError
from mlops.flags import set_flag
from mlops.pipeline.drift import DriftCheck, DriftCheckParams, prepare_drift_check
from mlops.pipeline.drift.records import record_check
from mlops.pipeline.drift.statistics import check_status, insufficient, measure
from mlops.pipeline.drift.window import StoredBaseline, load_baseline, load_window
from mlops.settings import Settings
from tests.conftest import bars_frame, make_settings

NAMES = ["a", "b"]


@pytest.fixture
def settings(tmp_path: Path, db_url: str) -> Settings:
    return make_settings(tmp_path, database_url=db_url)


@pytest.fixture(scope="module")
def payload() -> dict[str, Any]:
    rng = np.random.default_rng(0)
    return compute_baseline(
        rng.normal(size=(1000, 2)),
        NAMES,
        rng.beta(2, 8, 1000),
        baseline_sharpe=1.0,
        periods_per_year=252,
        baseline_returns=rng.normal(0.0005, 0.01, 300),
        windows=(150,),
        draws=400,
        prediction_draws=200,
    )


def stormy_window(n: int = 150) -> Window:
    rng = np.random.default_rng(1)
    return Window({"a": rng.normal(0.0, 3.0, n), "b": rng.normal(size=n)}, rng.beta(2, 8, n), rng.normal(0, 0.01, n))


# --- the request ---------------------------------------------------------------------------------------


def test_prepare_resolves_the_default_window_and_refuses_what_cannot_run(settings: Settings) -> None:
    assert prepare_drift_check(settings, agent=None, window_bars=None) == DriftCheckParams(
        None, settings.drift_window_bars
    )
    assert prepare_drift_check(settings, agent="risk_assessor", window_bars=60) == DriftCheckParams("risk_assessor", 60)
    with pytest.raises(UnknownAgentError, match="unknown agent 'alpha'; known agents: market_insight, risk_assessor"):
        prepare_drift_check(settings, agent="alpha", window_bars=None)
    with pytest.raises(InvalidRequestError, match="window_bars must be >= 1, got -5"):
        prepare_drift_check(settings, agent=None, window_bars=-5)
    with pytest.raises(InvalidRequestError, match="SKIPPY_DRIFT_WINDOW_BARS must be >= 1, got 0"):
        prepare_drift_check(settings.model_copy(update={"drift_window_bars": 0}), agent=None, window_bars=None)
    set_flag(settings, "mlops_drift_detection", False, "test")
    with pytest.raises(FeatureDisabledError, match="feature flag mlops_drift_detection is off"):
        prepare_drift_check(settings, agent="market_insight", window_bars=100)


# --- loading -------------------------------------------------------------------------------------------


def test_the_baseline_and_the_newest_window_are_loaded(settings: Settings, payload: dict[str, Any]) -> None:
    with pytest.raises(NotFoundError, match=r"market_insight v3 has no drift baseline .*: retrain it"):
        load_baseline(settings, "market_insight", 3)
    bars = bars_frame(400)
    with session_scope(settings.app_db_url) as session:
        session.add(
            DriftBaseline(
                agent_type="market_insight",
                model_version=3,
                symbol="SPX",
                reference_start=bars.index[0].to_pydatetime(),
                reference_end=bars.index[199].to_pydatetime(),
                payload=payload,
            )
        )
    stored = load_baseline(settings, "market_insight", 3)
    assert (stored.symbol, stored.payload) == ("SPX", payload)
    upsert_bars(settings.app_db_url, "SPX", bars, "test")
    current = load_window(settings, "SPX", 120)
    assert list(current.features.columns) == list(FEATURE_NAMES) and len(current.features) == 120
    assert current.end is not None and current.end.replace(tzinfo=None) == bars.index[-1].to_pydatetime().replace(
        tzinfo=None
    )
    assert len(current.bars) == 400
    longer = load_window(settings, "SPX", 10_000)  # fewer bars than asked: all there are
    assert len(longer.features) == 400 - WARMUP_BARS


# --- statistics and status -----------------------------------------------------------------------------


def test_every_registered_statistic_runs_with_the_configured_thresholds(
    tmp_path: Path, payload: dict[str, Any]
) -> None:
    settings = make_settings(tmp_path, drift_wasserstein_warning=0.3, drift_wasserstein_critical=0.4)
    rows = measure(settings, payload, stormy_window())
    assert [(r.drift_type, r.statistic, r.feature) for r in rows] == [
        ("feature", "kl_divergence", "a"),
        ("feature", "kl_divergence", "b"),
        ("feature", "kl_divergence", None),
        ("prediction", "wasserstein", None),
        ("performance", "sharpe_degradation", None),
    ]
    assert [(r.warning, r.critical) for r in rows] == [(0.05, 0.1)] * 3 + [(0.3, 0.4), (0.02, 0.05)]
    by_feature = {r.feature: r for r in rows if r.drift_type == "feature"}
    assert by_feature["a"].status == "critical" and by_feature[None].details["deciding_feature"] == "a"
    assert check_status(rows) == "critical"
    summaries_ok = [dataclasses.replace(r, status="ok") if r.feature is None else r for r in rows]
    assert check_status(summaries_ok) == "ok"  # a feature's status counts through its summary only


def test_a_short_window_is_insufficient_on_every_statistic(tmp_path: Path) -> None:
    rows = insufficient(make_settings(tmp_path, drift_min_window_bars=40), 12)
    assert [(r.statistic, r.feature, r.value, r.status) for r in rows] == [
        ("kl_divergence", None, None, "insufficient"),
        ("wasserstein", None, None, "insufficient"),
        ("sharpe_degradation", None, None, "insufficient"),
    ]
    assert {r.details["reason"] for r in rows} == {"12 bars in the window; at least 40 needed"}
    assert check_status(rows) == "insufficient"


# --- records -------------------------------------------------------------------------------------------


def test_a_check_writes_every_row_and_the_live_sharpe(settings: Settings, payload: dict[str, Any]) -> None:
    stored = StoredBaseline("SPX", payload, None, None)
    rows = measure(settings, payload, stormy_window())
    report = {"html": "/tmp/r.html"}
    check = DriftCheck("c1", "market_insight", 2, "SPX", check_status(rows), 150, None, None, rows, report)
    short = DriftCheck("c2", "market_insight", 2, "SPX", "insufficient", 9, None, None, insufficient(settings, 9))
    record_check(settings, check, stored)
    record_check(settings, short, stored)
    with session_scope(settings.app_db_url) as session:
        metrics = session.scalars(select(DriftMetric).order_by(DriftMetric.id)).all()
        live = session.scalars(select(ModelPerformanceHistory)).all()
        written = [(m.check_id, m.feature, m.status, "report" in m.details) for m in metrics]
        performance = [(p.window, p.n_samples, p.sharpe_ratio, p.metrics) for p in live]
    assert written == [
        ("c1", "a", rows[0].status, False),
        ("c1", "b", rows[1].status, False),
        ("c1", None, rows[2].status, True),
        ("c1", None, rows[3].status, True),
        ("c1", None, rows[4].status, True),
        ("c2", None, "insufficient", False),
        ("c2", None, "insufficient", False),
        ("c2", None, "insufficient", False),
    ]
    sharpe = rows[4].details
    assert performance == [
        (
            "live",
            150,
            sharpe["current_sharpe"],
            {
                "sharpe_ratio": sharpe["current_sharpe"],
                "sharpe_degradation": rows[4].value,
                "probability_not_worse": sharpe["probability_not_worse"],
                "p_value": sharpe["p_value"],
                "check_id": "c1",
            },
        )
    ]
