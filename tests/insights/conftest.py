"""Stores with finished runs and a critical drift check as the app DB holds them (no retrain), and the loopback
OpenAI-compatible server."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mlops.db import session_scope
from mlops.db.models import FeatureImportance
from mlops.settings import Settings
from tests.conftest import make_settings
from tests.factories import drift_check, model_run, validation_record
from tests.insights.loopback import API_KEY, ChatServer, chat_server

FEATURES = ("vol_20", "ret_5", "rsi_14", "macd_hist", "bb_pctb", "gap")


@pytest.fixture
def server() -> Iterator[ChatServer]:
    with chat_server() as running:
        yield running


def keyed(home: Path, db_url: str, server: ChatServer | None, **overrides: Any) -> Settings:
    """Settings on `db_url` with a key and the loopback server (or none: `server=None` → no key)."""
    values: dict[str, Any] = {"database_url": db_url} | overrides
    if server is not None:
        values |= {"openai_api_key": API_KEY, "openai_base_url": server.base_url}
    return make_settings(home, **values)


def importance(session: Any, version: int, order: tuple[str, ...]) -> None:
    for rank, feature in enumerate(order, start=1):
        session.add(
            FeatureImportance(
                agent_type="market_insight",
                model_version=version,
                model_run_id=None,
                feature=feature,
                importance=0.02 / rank,
                importance_std=0.001,
                rank=rank,
            )
        )


def two_runs(settings: Settings) -> tuple[int, int]:
    """v1 champion (succeeded), then v2 rejected against it, each with its feature importance."""
    with session_scope(settings.app_db_url) as session:
        first = model_run(session, status="succeeded")
        second = model_run(
            session,
            status="rejected",
            validation=validation_record(False, champion_version=first.model_version),
            metrics={"test_accuracy": 0.51, "test_sharpe_ratio": 0.2, "test_buy_hold_sharpe_ratio": 0.4},
        )
        importance(session, first.model_version, FEATURES)
        importance(session, second.model_version, ("ret_5", "vol_20", *FEATURES[2:]))
        return first.id, second.id


def critical_check(settings: Settings) -> str:
    """A critical drift check of market_insight v1: vol_20 critical, the predictions moved up."""
    tested = {"tested": True, "p_value": 0.0004, "adjusted_p": 0.003, "null_percentile": 99.9, "psi": 0.41}
    with session_scope(settings.app_db_url) as session:
        rows = drift_check(
            session,
            [
                {"feature": "vol_20", "value": 0.37, "status": "critical", "details": tested},
                {"feature": "ret_1", "value": 0.01, "status": "ok", "details": {"psi": 0.01, "adjusted_p": 0.8}},
                {
                    "feature": None,
                    "value": 0.37,
                    "status": "critical",
                    "details": {"deciding_feature": "vol_20", "critical": ["vol_20"]},
                },
                {
                    "drift_type": "prediction",
                    "statistic": "wasserstein",
                    "feature": None,
                    "value": 0.22,
                    "critical_threshold": 0.15,
                    "status": "critical",
                    "details": {"p_value": 0.001, "reference_mean": 0.48, "current_mean": 0.61},
                },
            ],
        )
        return rows[0].check_id
