"""Reading a run's small artifact back (cached by run), and the champion's equity curve built on it: the curve
from MLflow, its dates from the app DB's bars of the test window — or bar indices when they do not match."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from mlops.db import session_scope
from mlops.db.models import MarketBar, ModelPerformanceHistory
from mlops.errors import NotFoundError
from mlops.pipeline.queries.equity import champion_equity, parse_equity_csv
from mlops.settings import Settings
from tests import factories
from tracking import artifacts
from tracking.artifacts import artifact_text
from tracking.client import ensure_experiment
from tracking.runs import log_artifacts, start_run

CSV = "agent,buy_hold\n1.01,0.99\n1.03,1.00\n1.02,1.04\n"
START = datetime(2024, 1, 1, tzinfo=UTC)


@pytest.fixture
def settings(tmp_path: Path, empty_mlflow_store: Path) -> Settings:
    artifacts.clear_cache()
    return factories.store(tmp_path, mlflow_store=empty_mlflow_store)


def logged_run(settings: Settings, tmp_path: Path) -> str:
    run_id = start_run(settings, ensure_experiment(settings, "market_insight"), "retrain", {})
    folder = tmp_path / "report"
    folder.mkdir()
    (folder / "test_equity.csv").write_text(CSV)
    log_artifacts(settings, run_id, folder)
    return run_id


def test_an_artifact_is_read_once_per_run(settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    run_id = logged_run(settings, tmp_path)
    assert artifact_text(settings, run_id, "test_equity.csv") == CSV
    with pytest.raises(NotFoundError, match=f"MLflow run {run_id} has no artifact 'missing.csv'"):
        artifact_text(settings, run_id, "missing.csv")
    monkeypatch.setattr(artifacts, "_download", lambda *a: pytest.fail("read from MLflow again"))
    assert artifact_text(settings, run_id, "test_equity.csv") == CSV
    with pytest.raises(NotFoundError, match=r"has no artifact 'missing\.csv'"):  # remembered for RETRY_AFTER
        artifact_text(settings, run_id, "missing.csv")
    monkeypatch.setattr(artifacts, "RETRY_AFTER", 0.0)
    with pytest.raises(pytest.fail.Exception, match="read from MLflow again"):  # then asked again
        artifact_text(settings, run_id, "missing.csv")


def test_parse_equity_csv_names_the_bad_line() -> None:
    assert parse_equity_csv(CSV) == ([1.01, 1.03, 1.02], [0.99, 1.0, 1.04])
    with pytest.raises(NotFoundError, match=r"header \['a', 'b'\]"):
        parse_equity_csv("a,b\n1,2\n")
    with pytest.raises(NotFoundError, match="line 3 is not two numbers"):
        parse_equity_csv("agent,buy_hold\n1,2\nx,3\n")


def test_the_champions_equity_curve_with_the_test_bars_dates(settings: Settings, tmp_path: Path) -> None:
    assert champion_equity(settings, "market_insight") is None  # no champion yet
    run_id = logged_run(settings, tmp_path)
    with session_scope(settings.app_db_url) as session:
        run = factories.model_run(session, mlflow_run_id=run_id)
        factories.deployment(session, to_version=run.model_version, model_run_id=run.id)
        session.add(
            ModelPerformanceHistory(
                agent_type="market_insight",
                model_version=run.model_version,
                model_run_id=run.id,
                window="test",
                window_start=START,
                window_end=START + timedelta(days=2),
                n_samples=3,
            )
        )
        for day in range(-1, 4):  # a bar before and after the test window
            price = 100.0 + day
            session.add(
                MarketBar(
                    symbol="SYNTH",
                    ts=START + timedelta(days=day),
                    open=price,
                    high=price,
                    low=price,
                    close=price,
                    volume=1.0,
                )
            )
    curve = champion_equity(settings, "market_insight")
    assert curve is not None and (curve.version, curve.mlflow_run_id, curve.symbol) == (1, run_id, "SYNTH")
    assert (curve.strategy, curve.buy_hold) == ([1.01, 1.03, 1.02], [0.99, 1.0, 1.04])
    assert curve.dates == [START, START + timedelta(days=1), START + timedelta(days=2)]

    with session_scope(settings.app_db_url) as session:  # a bar imported into the window later
        session.add(MarketBar(symbol="SYNTH", ts=START + timedelta(hours=12), open=1, high=1, low=1, close=1, volume=1))
    curve = champion_equity(settings, "market_insight")
    assert curve is not None and curve.dates is None and len(curve.strategy) == 3
