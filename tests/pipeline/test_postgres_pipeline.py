"""The whole pipeline with the app DB and the MLflow store on the real PostgreSQL server."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from mlops.data.features import compute_features
from mlops.data.generate import generate_market
from mlops.data.store import load_bars
from mlops.pipeline.deployments import rollback
from mlops.pipeline.queries import list_runs
from mlops.pipeline.retrain import retrain
from mlops.stores import init_stores
from tests.conftest import fresh_postgres_url, make_settings

pytestmark = [pytest.mark.slow, pytest.mark.postgres]


def test_retrain_deploy_and_rollback_on_postgres(postgres_server: str, tmp_path: Path) -> None:
    import mlflow

    settings = make_settings(tmp_path, database_url=fresh_postgres_url(postgres_server))
    assert settings.tracking_uri.startswith("postgresql+psycopg2://") and settings.tracking_uri.endswith("_mlflow")
    init_stores(settings)
    generate_market(settings, symbol="SYNTH", n_bars=1200)
    first = retrain(settings, actor="test", agent="market_insight")
    assert first.deployment_status == "promoted", first.reason
    second = retrain(settings, actor="test", agent="market_insight")
    assert second.model_version == 2 and "champion v1" in second.reason
    model = mlflow.pyfunc.load_model("models:/market_insight@champion")
    p = np.asarray(model.predict(compute_features(load_bars(settings.app_db_url, "SYNTH")).tail(10)))
    assert ((p > 0) & (p < 1)).all()
    if second.deployment_status == "promoted":
        assert rollback(settings, agent="market_insight", actor="pg").to_version == 1
    assert [r.model_version for r in list_runs(settings, agent="market_insight")] == [2, 1]
