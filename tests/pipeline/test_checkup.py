"""The weekly validation on a trained store: the champion is `ok` on bars it never saw when the market goes on
as before, `degraded` when the market turns against it (momentum gives way to mean reversion), `failed` when
its predictions are unusable or its newest bars have gaps, `insufficient` without enough unseen bars; each
complete window of unseen bars is written to `model_performance_history` once. SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import delete, select

from mlops.data.store import as_utc, load_bars, upsert_bars
from mlops.db import session_scope
from mlops.db.models import AuditLog, DriftBaseline, MarketBar, ModelPerformanceHistory
from mlops.pipeline.checkup import SOURCE, WINDOW, validate_champion
from mlops.pipeline.retrain import retrain
from mlops.settings import Settings
from tests.conftest import fresh_postgres_url
from tests.factories import market_store
from tests.pipeline.test_watch import AGENT, make_champion, register_copy

pytestmark = pytest.mark.slow
NEW_BARS = 60


def nan_forward(params: dict[str, np.ndarray], x: np.ndarray) -> np.ndarray:
    """A broken model: no probability at all."""
    return np.full(len(x), np.nan)


def mean_reverting_bars(last: pd.Timestamp, close: float, n: int, seed: int) -> pd.DataFrame:
    """`n` daily bars after `last` whose returns revert (AR(1) coefficient −0.6): a regime in which a model that
    learned the synthetic market's momentum is wrong more often than right."""
    rng = np.random.default_rng(seed)
    returns = np.empty(n)
    previous = 0.0
    for i in range(n):
        previous = -0.6 * previous + 0.011 * rng.standard_normal()
        returns[i] = previous
    closes = close * np.exp(np.cumsum(returns))
    opens = np.concatenate([[close], closes[:-1]]) * np.exp(0.001 * rng.standard_normal(n))
    index = pd.bdate_range(start=last + pd.offsets.BDay(1), periods=n, tz="UTC", name="ts")
    return pd.DataFrame(
        {
            "open": opens,
            "high": np.maximum(opens, closes) * 1.002,
            "low": np.minimum(opens, closes) * 0.998,
            "close": closes,
            "volume": np.full(n, 1e6),
        },
        index=index,
    )


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, empty_mlflow_store: Path
) -> Iterator[dict[str, Any]]:
    """v1 trained on SYNTH (1,500 bars); TURN and GAPPY start as the very same bars. Copies of v1: one that
    learned "on TURN" (same bars), one on GAPPY, one that predicts NaN, one whose data ends 10 bars before
    SYNTH's newest. Then SYNTH goes on as before, TURN turns mean-reverting, GAPPY goes on with a hole."""
    from mlops.data.generate import generate_market

    overrides: dict[str, object] = {}
    if request.param == "postgres":
        overrides["database_url"] = fresh_postgres_url(request.getfixturevalue("postgres_server"))
    home = tmp_path_factory.mktemp(f"checkup-{request.param}")
    settings = market_store(home, mlflow_store=empty_mlflow_store, **overrides)
    for symbol in ("TURN", "GAPPY"):
        generate_market(settings, symbol=symbol, n_bars=1500, seed=3)
    first = retrain(settings, agent=AGENT, actor="test", symbol="SYNTH")
    assert (first.model_version, first.deployment_status) == (1, "promoted"), first.reason
    versions = {
        "turn": register_copy(settings, 1, symbol="TURN"),
        "gappy": register_copy(settings, 1, symbol="GAPPY"),
        "nan": register_copy(settings, 1, predict=nan_forward),
        "no_baseline": register_copy(settings, 1),
    }
    with session_scope(settings.app_db_url) as session:
        session.execute(delete(DriftBaseline).where(DriftBaseline.model_version == versions["no_baseline"]))
    for symbol in ("SYNTH", "GAPPY"):
        generate_market(settings, symbol=symbol, n_bars=NEW_BARS, seed=3, append=True)
    turn = load_bars(settings.app_db_url, "TURN")
    upsert_bars(
        settings.app_db_url,
        "TURN",
        mean_reverting_bars(turn.index[-1], float(turn["close"].iloc[-1]), 150, seed=11),
        source="synthetic:mean-reverting",
    )
    synth = load_bars(settings.app_db_url, "SYNTH")
    versions["recent"] = register_copy(settings, 1, data_end=synth.index[-10].to_pydatetime())
    hole = load_bars(settings.app_db_url, "GAPPY").index[-60:-35]
    with session_scope(settings.app_db_url) as session:
        session.execute(delete(MarketBar).where(MarketBar.symbol == "GAPPY", MarketBar.ts.in_(list(hole))))
    yield {"settings": settings, **versions}


def live_rows(settings: Settings, version: int) -> list[ModelPerformanceHistory]:
    with session_scope(settings.app_db_url) as session:
        rows = session.scalars(
            select(ModelPerformanceHistory)
            .where(ModelPerformanceHistory.model_version == version, ModelPerformanceHistory.window == WINDOW)
            .order_by(ModelPerformanceHistory.window_start)
        ).all()
        session.expunge_all()
        return list(rows)


def test_the_champion_is_ok_on_unseen_bars_and_each_window_is_written_once(store: dict[str, Any]) -> None:
    settings = store["settings"]
    make_champion(settings, 1)

    checkup = validate_champion(settings, agent=AGENT, actor="scheduler")

    assert (checkup.status, checkup.model_version, checkup.degraded) == ("ok", 1, False), checkup.reason
    size = settings.drift_min_window_bars
    assert checkup.unseen_bars >= NEW_BARS - 5 and checkup.rows_written == checkup.unseen_bars // size
    rows = live_rows(settings, 1)
    assert len(rows) == checkup.rows_written
    assert all(r.metrics["source"] == SOURCE and r.n_samples == size for r in rows)
    assert all(r.sharpe_ratio is not None and r.accuracy is not None for r in rows)
    assert [r.window_start < r.window_end for r in rows] == [True] * len(rows)
    assert as_utc(rows[0].window_start) > pd.Timestamp(checkup.details["trained_through"])
    assert checkup.details["degradation"]["p_value"] >= settings.drift_significance
    assert checkup.details["prediction"]["problems"] == [] and checkup.details["data_quality"]["problems"] == []

    again = validate_champion(settings, agent=AGENT, actor="scheduler")
    assert (again.status, again.rows_written) == ("ok", 0) and len(live_rows(settings, 1)) == len(rows)
    with session_scope(settings.app_db_url) as session:
        audit = session.scalars(
            select(AuditLog).where(AuditLog.action == "weekly validation").order_by(AuditLog.id.desc())
        ).first()
        assert audit is not None and (audit.actor, audit.result["status"]) == ("scheduler", "ok")


def test_a_market_that_turns_against_the_champion_degrades_it(store: dict[str, Any]) -> None:
    settings, version = store["settings"], store["turn"]
    make_champion(settings, version)

    checkup = validate_champion(settings, agent=AGENT, actor="scheduler")

    assert (checkup.status, checkup.degraded) == ("degraded", True), checkup.reason
    degradation = checkup.details["degradation"]
    assert degradation["p_value"] < settings.drift_significance and degradation["significant"]
    assert degradation["current_sharpe"] < degradation["baseline_sharpe"]
    assert "degraded significantly" in checkup.reason and "TURN" in checkup.reason
    assert len(live_rows(settings, version)) == checkup.rows_written > 0


def test_unusable_predictions_fail(store: dict[str, Any]) -> None:
    settings, version = store["settings"], store["nan"]
    make_champion(settings, version)

    checkup = validate_champion(settings, agent=AGENT, actor="scheduler")

    assert (checkup.status, checkup.model_version) == ("failed", version), checkup.reason
    assert "NaN or infinite" in checkup.reason and live_rows(settings, version) == []


def test_recent_bars_with_gaps_fail(store: dict[str, Any]) -> None:
    settings, version = store["settings"], store["gappy"]
    make_champion(settings, version)

    checkup = validate_champion(settings, agent=AGENT, actor="scheduler")

    assert checkup.status == "failed", checkup.reason
    assert "recent GAPPY data unusable" in checkup.reason and "missing" in checkup.reason
    assert checkup.details["data_quality"]["calendar"]["missing_bars"] >= 25


def test_a_champion_without_a_held_out_baseline_fails(store: dict[str, Any]) -> None:
    settings, version = store["settings"], store["no_baseline"]
    make_champion(settings, version)

    checkup = validate_champion(settings, agent=AGENT, actor="scheduler")

    assert checkup.status == "failed" and "has no drift baseline" in checkup.reason, checkup.reason
    assert live_rows(settings, version) == []


def test_too_few_unseen_bars_are_insufficient(store: dict[str, Any]) -> None:
    settings, version = store["settings"], store["recent"]
    make_champion(settings, version)

    checkup = validate_champion(settings, agent=AGENT, actor="scheduler")

    assert (checkup.status, checkup.required_bars) == ("insufficient", settings.drift_min_window_bars), checkup.reason
    assert (
        checkup.unseen_bars < settings.drift_min_window_bars and f"{checkup.unseen_bars} SYNTH bars" in checkup.reason
    )
    assert live_rows(settings, version) == []


def test_no_champion(tmp_path: Path, empty_mlflow_store: Path) -> None:
    from tests.factories import store as empty_store

    settings = empty_store(tmp_path, mlflow_store=empty_mlflow_store)
    checkup = validate_champion(settings, agent=AGENT, actor="test")
    assert (checkup.status, checkup.model_version) == ("no_champion", None)
