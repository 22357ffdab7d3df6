"""The drift check end to end: a champion trained on one regime, checked on its own regime and after
bars of a stormier regime are appended; rows in drift_metrics; the Evidently report; flags; a baseline
stored before the drift tests existed; one audit row per check, the same from a service call, the CLI
and a queued job."""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import delete, func, select

from mlops.data.generate import generate_market
from mlops.db import session_scope
from mlops.db.models import AuditLog, MarketBar
from mlops.errors import FeatureDisabledError, InvalidRequestError, NotFoundError, UnknownAgentError
from mlops.flags import set_flag
from mlops.pipeline.drift import check_all, check_drift
from mlops.pipeline.drift_history import drift_history
from mlops.pipeline.retrain import retrain
from mlops.settings import Settings
from mlops.stores import init_stores
from tests.conftest import make_settings

pytestmark = pytest.mark.slow
VOL_FEATURES = {"vol_5", "vol_20", "vol_60", "hl_range"}


@pytest.fixture(scope="module")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    s = make_settings(
        tmp_path_factory.mktemp("drift"), drift_report=False, sharpe_tolerance=10.0, min_accuracy=0.0
    )  # the champion itself is not under test here
    init_stores(s)
    generate_market(s, symbol="SYNTH", n_bars=2500, regime="normal")
    result = retrain(s, actor="test", agent="market_insight")
    assert result.deployment_status == "promoted", result.reason
    return s


def test_a_check_records_every_statistic(settings: Settings) -> None:
    check = check_drift(settings, actor="test", agent="market_insight")
    assert check.model_version == 1 and check.window_bars == settings.drift_window_bars
    features = [r for r in check.rows if r.feature is not None]
    assert len(features) == 13 and all("psi" in r.details for r in features)
    kinds = {r.drift_type: r for r in check.summary()}
    assert set(kinds) == {"feature", "prediction", "performance"}
    summary = kinds["feature"]
    deciding = next(r for r in features if r.feature == summary.details["deciding_feature"])
    assert summary.value == deciding.value and summary.status == deciding.status  # one feature's numbers
    assert summary.details["max_kl"] == max(r.value or 0.0 for r in features)
    assert all({"p_value", "adjusted_p", "null_percentile"} <= set(r.details) for r in features)
    assert all(r.details["tested"] and r.details["null_window"] == 250 for r in features)
    prediction = kinds["prediction"]
    assert prediction.value is not None and prediction.value >= 0
    assert {"raw_w1", "p_value", "reference_sd"} <= set(prediction.details)
    assert prediction.value == pytest.approx(prediction.details["raw_w1"] / prediction.details["reference_sd"])
    performance = kinds["performance"].details
    assert performance["baseline_n"] and "two-sample" in performance["test"] and 0 <= performance["p_value"] <= 1
    # The training regime, at the default window: no feature drifts beyond its bootstrap null.
    assert summary.status != "critical", summary.details
    slow = next(r for r in features if r.feature == "vol_60")
    assert slow.status != "critical"  # a large KL that is ordinary for a slow feature
    assert check.status in ("ok", "warning", "critical")
    history = drift_history(settings, check_id=check.check_id, include_features=True)
    assert len(history) == 16 and {h.agent_type for h in history} == {"market_insight"}


def test_a_stormier_regime_is_critical_on_the_volatility_features(settings: Settings) -> None:
    before = check_drift(settings, actor="test", agent="market_insight", window_bars=250)
    first_id = last_bar_id(settings)
    generate_market(settings, symbol="SYNTH", n_bars=250, regime="volatile", append=True)
    try:
        after = check_drift(settings, actor="test", agent="market_insight", window_bars=250)
    finally:  # the other tests judge the training regime
        with session_scope(settings.app_db_url) as session:
            session.execute(delete(MarketBar).where(MarketBar.id > first_id))
    feature = next(r for r in after.summary() if r.drift_type == "feature")
    assert feature.status == "critical" and feature.details["deciding_feature"] in VOL_FEATURES
    assert feature.details["deciding_adjusted_p"] < settings.drift_feature_critical_p
    vol = {r.feature: r for r in after.rows if r.feature in ("vol_5", "vol_20")}
    assert set(vol) == {"vol_5", "vol_20"}
    assert all(r.details["adjusted_p"] < settings.drift_feature_critical_p for r in vol.values())
    assert all(r.status == "critical" for r in vol.values())
    before_vol = {r.feature: r.value for r in before.rows if r.feature in ("vol_5", "vol_20")}
    assert all((vol[f].value or 0) > 5 * (before_vol[f] or 0) for f in vol)
    assert after.status == "critical"
    critical = drift_history(settings, agent="market_insight", status="critical")
    assert after.check_id in {h.check_id for h in critical}


def last_bar_id(settings: Settings) -> int:
    with session_scope(settings.app_db_url) as session:
        return session.scalar(select(func.max(MarketBar.id))) or 0


def test_short_windows_are_insufficient_not_wrong(settings: Settings) -> None:
    check = check_drift(settings, actor="test", agent="market_insight", window_bars=10)
    assert check.status == "insufficient" and check.window_bars == 10
    assert [(r.drift_type, r.feature) for r in check.rows] == [
        ("feature", None),
        ("prediction", None),
        ("performance", None),
    ]
    assert all(r.status == "insufficient" and "at least 30" in r.details["reason"] for r in check.rows)


def test_flag_and_missing_champion(settings: Settings) -> None:
    with pytest.raises(NotFoundError, match="risk_assessor has no champion"):
        check_drift(settings, actor="test", agent="risk_assessor")
    set_flag(settings, "mlops_drift_detection", False, "test")
    try:
        with pytest.raises(FeatureDisabledError, match="feature flag mlops_drift_detection is off"):
            check_drift(settings, actor="test", agent="market_insight")
    finally:
        set_flag(settings, "mlops_drift_detection", True, "test")


def test_the_evidently_report_is_written_for_people(settings: Settings, tmp_path: Path) -> None:
    with_report = settings.model_copy(update={"drift_report": True, "drift_report_rows": 500})
    check = check_drift(with_report, actor="test", agent="market_insight", window_bars=300)
    assert Path(check.report["html"]).stat().st_size > 10_000
    assert '"metrics"' in Path(check.report["json"]).read_text()
    row = next(h for h in drift_history(settings, agent="market_insight") if h.check_id == check.check_id)
    assert row.details["report"]["html"] == check.report["html"]


def test_cli_reports_drift_with_exit_code_zero(settings: Settings) -> None:
    import json

    from typer.testing import CliRunner

    from mlops.cli import app
    from mlops.settings import get_settings

    env: dict[str, str | None] = {
        "SKIPPY_HOME": str(settings.home),
        "SKIPPY_DRIFT_REPORT": "false",
        "MLFLOW_TRACKING_URI": None,
        "DATABASE_URL": None,
        "COLUMNS": "200",
    }
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(app, ["ai", "drift", "--json"], env=env)
        assert result.exit_code == 0, result.stderr
        checks = json.loads(result.stdout)
        assert [c["agent_type"] for c in checks] == ["market_insight"]  # the only agent with a champion
        table = CliRunner().invoke(app, ["ai", "drift", "--agent", "market_insight"], env=env)
        assert table.exit_code == 0 and "kl_divergence" in table.stdout and "sharpe_degradation" in table.stdout
        history = CliRunner().invoke(app, ["ai", "drift-history", "--agent", "market_insight", "--json"], env=env)
        assert history.exit_code == 0 and json.loads(history.stdout)[0]["check_id"]
        bad = CliRunner().invoke(app, ["ai", "drift", "--agent", "alpha"], env=env)
        assert bad.exit_code == 2 and "unknown agent 'alpha'" in bad.stderr
    finally:
        get_settings.cache_clear()


def test_a_baseline_from_before_the_tests_gives_untested_verdicts(settings: Settings) -> None:
    from sqlalchemy import select

    from mlops.db import session_scope
    from mlops.db.models import DriftBaseline

    with session_scope(settings.app_db_url) as session:
        row = session.scalars(select(DriftBaseline).where(DriftBaseline.agent_type == "market_insight")).one()
        saved = dict(row.payload)
        row.payload = {k: v for k, v in saved.items() if k not in ("null", "baseline_returns", "version")} | {
            "features": {n: f | {"kl_noise_floor": {"250": 0.5}} for n, f in saved["features"].items()}
        }
    try:
        check = check_drift(settings, actor="test", agent="market_insight")
    finally:
        with session_scope(settings.app_db_url) as session:
            session.scalars(
                select(DriftBaseline).where(DriftBaseline.agent_type == "market_insight")
            ).one().payload = saved
    kinds = {r.drift_type: r for r in check.summary()}
    assert "thresholds only" in kinds["feature"].details["note"] and not kinds["feature"].details["tested"]
    features = [r for r in check.rows if r.feature is not None]
    assert len(features) == 13 and all(r.details["tested"] is False for r in features)
    assert "thresholds only" in kinds["prediction"].details["note"]
    assert "baseline taken as known" in kinds["performance"].details["test"]


def last_audit_id(settings: Settings) -> int:
    with session_scope(settings.app_db_url) as session:
        return session.scalar(select(func.max(AuditLog.id))) or 0


def drift_audit_rows(settings: Settings, after: int) -> list[dict[str, Any]]:
    with session_scope(settings.app_db_url) as session:
        rows = session.scalars(
            select(AuditLog).where(AuditLog.id > after, AuditLog.action == "drift check").order_by(AuditLog.id)
        ).all()
        return [{"actor": r.actor, "parameters": r.parameters, "result": r.result} for r in rows]


def test_each_check_writes_one_audit_row_refusals_included(settings: Settings) -> None:
    start = last_audit_id(settings)
    one = check_drift(settings, actor="scheduler", agent="market_insight", window_bars=120)
    every = check_all(settings, actor="scheduler")
    assert [c.agent_type for c in every] == ["market_insight"]  # the only agent with a champion
    with pytest.raises(UnknownAgentError, match="unknown agent 'alpha'"):
        check_drift(settings, actor="scheduler", agent="alpha")
    with pytest.raises(InvalidRequestError, match="window_bars must be >= 1, got 0"):
        check_all(settings, actor="scheduler", window_bars=0)
    with pytest.raises(NotFoundError, match="risk_assessor has no champion"):
        check_drift(settings, actor="scheduler", agent="risk_assessor")
    rows = drift_audit_rows(settings, start)
    assert [(r["actor"], r["parameters"]) for r in rows] == [
        ("scheduler", {"agent": "market_insight", "window_bars": 120}),
        ("scheduler", {"agent": None, "window_bars": settings.drift_window_bars}),  # the default, resolved
        ("scheduler", {"agent": "alpha", "window_bars": settings.drift_window_bars}),
        ("scheduler", {"agent": None, "window_bars": 0}),
        ("scheduler", {"agent": "risk_assessor", "window_bars": settings.drift_window_bars}),
    ]
    assert rows[0]["result"] == {"check_ids": [one.check_id], "status": {"market_insight": one.status}}
    assert rows[1]["result"] == {"check_ids": [every[0].check_id], "status": {"market_insight": every[0].status}}
    assert [r["result"]["error_type"] for r in rows[2:]] == [
        "UnknownAgentError",
        "InvalidRequestError",
        "NotFoundError",
    ]


def test_the_cli_and_a_queued_job_write_the_same_row_as_a_service_call(settings: Settings) -> None:
    from typer.testing import CliRunner

    from mlops.cli import app
    from mlops.cli.common import cli_actor
    from mlops.jobs.service import get_job, submit_drift
    from mlops.jobs.worker import run_job
    from mlops.settings import get_settings

    start = last_audit_id(settings)
    env: dict[str, str | None] = {
        "SKIPPY_HOME": str(settings.home),
        "SKIPPY_DRIFT_REPORT": "false",
        "MLFLOW_TRACKING_URI": None,
        "DATABASE_URL": None,
    }
    get_settings.cache_clear()
    try:
        cli = CliRunner().invoke(app, ["ai", "drift", "--agent", "market_insight", "--json"], env=env)
    finally:
        get_settings.cache_clear()
    assert cli.exit_code == 0, cli.stderr
    job = submit_drift(settings, agent="market_insight", actor="api:test-key", window_bars=None)
    handlers = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT, signal.SIGALRM)}
    try:
        assert run_job(settings, job.id) == 0, get_job(settings, job.id).error
    finally:
        for number, handler in handlers.items():
            signal.signal(number, handler)
    rows = drift_audit_rows(settings, start)
    assert [r["actor"] for r in rows] == [cli_actor(), "api:test-key"]
    expected = {"agent": "market_insight", "window_bars": settings.drift_window_bars}
    assert [r["parameters"] for r in rows] == [expected, expected]
    checks = [r["result"]["check_ids"] for r in rows]
    assert all(len(ids) == 1 for ids in checks) and checks[0] != checks[1]
    assert [r["result"]["status"].keys() for r in rows] == [{"market_insight"}, {"market_insight"}]
