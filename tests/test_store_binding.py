"""An app database knows which MLflow store it mirrors, and a command pointed at another one stops."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import func, select

from mlops.data.generate import generate_market
from mlops.db import session_scope
from mlops.db.models import ModelRun, StoreBinding
from mlops.errors import ConfigurationError
from mlops.pipeline.retrain import retrain
from mlops.stores import init_stores
from tests.conftest import make_settings
from tracking.client import get_client
from tracking.identity import STORE_ID_TAG, masked


def test_a_command_pointed_at_another_mlflow_store_stops_before_writing(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    init_stores(settings)
    client = get_client(settings)  # first use binds the two
    store_id = client.get_experiment("0").tags[STORE_ID_TAG]
    with session_scope(settings.app_db_url) as session:
        bound = session.get_one(StoreBinding, "mlflow")
        assert (bound.store_id, bound.url) == (store_id, settings.tracking_uri)
    assert get_client(settings) is client  # and later uses pass

    stray = make_settings(tmp_path, mlflow_tracking_uri=f"sqlite:///{tmp_path / 'stray' / 'mlflow.db'}")
    (tmp_path / "stray").mkdir()
    with pytest.raises(ConfigurationError) as refused:
        get_client(stray)
    message = str(refused.value)
    assert f"belongs to the MLflow store {settings.tracking_uri}" in message
    assert "stray/mlflow.db (a store with no Skippy id)" in message and "point MLFLOW_TRACKING_URI at" in message

    generate_market(settings, symbol="SYNTH", n_bars=300)
    with pytest.raises(ConfigurationError, match="belongs to the MLflow store"):
        retrain(stray, agent="market_insight")
    with session_scope(settings.app_db_url) as session:
        assert session.scalar(select(func.count()).select_from(ModelRun)) == 0  # nothing half-written


def test_store_urls_are_shown_without_passwords() -> None:
    assert masked("postgresql+psycopg2://skippy:s3cret@db:5432/app") == "postgresql+psycopg2://skippy:***@db:5432/app"
    assert masked("http://ops:s3cret@mlflow:5001") == "http://ops:***@mlflow:5001"
    assert masked("sqlite:////tmp/x/mlflow.db") == "sqlite:////tmp/x/mlflow.db"
