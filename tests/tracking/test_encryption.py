"""Model parameters encrypted at rest (SKIPPY_MODEL_KEY): the weights inside the MLflow artifact are
Fernet tokens, loading needs the key and says so, production refuses to start without one."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient

from mlops.auth import create_key
from mlops.data.generate import generate_market
from mlops.errors import ConfigurationError, ModelKeyError
from mlops.pipeline.retrain import retrain
from mlops.settings import Settings
from mlops.stores import init_stores
from tests.conftest import fresh_postgres_url, make_settings
from tracking import registry
from tracking.crypto import decrypt, generate_key

pytestmark = pytest.mark.slow
KEY = generate_key()


def artifact_files(settings: Settings, name: str) -> list[Path]:
    return sorted(settings.artifact_root.rglob(name))


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def encrypted(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    overrides: dict[str, object] = {"model_key": KEY}
    if request.param == "postgres":
        overrides["database_url"] = fresh_postgres_url(request.getfixturevalue("postgres_server"))
    settings = make_settings(tmp_path_factory.mktemp(f"encrypted-{request.param}"), **overrides)
    init_stores(settings)
    generate_market(settings, symbol="SYNTH", n_bars=1200)
    assert retrain(settings, actor="test", agent="market_insight").status == "succeeded"
    return settings


def load_fresh(settings: Settings) -> object:
    registry._loaded.clear()  # versions are cached per process; these tests change the key
    return registry.load_version(settings, "market_insight", 1)


def test_the_weights_in_the_artifact_store_are_encrypted(encrypted: Settings) -> None:
    assert artifact_files(encrypted, "weights.npz") == []
    (token_file,) = artifact_files(encrypted, "weights.npz.enc")
    token = token_file.read_bytes()
    assert not token.startswith(b"PK")  # an .npz is a zip: its magic must not show
    assert decrypt(token, KEY, "weights").startswith(b"PK")


def test_loading_needs_the_key_and_says_so(encrypted: Settings) -> None:
    model = load_fresh(encrypted)
    rows = np.zeros((3, 13))
    import pandas as pd

    from mlops.data.features import FEATURE_NAMES

    frame = pd.DataFrame(rows, columns=list(FEATURE_NAMES))
    p = np.asarray(model.predict(frame))  # type: ignore[attr-defined]
    assert p.shape == (3,) and np.all((p > 0) & (p < 1))

    without = encrypted.model_copy(update={"model_key": None})
    env_key = os.environ.pop("SKIPPY_MODEL_KEY", None)
    try:
        with pytest.raises(ModelKeyError, match="encrypted: set SKIPPY_MODEL_KEY"):
            load_fresh(without)
        wrong = encrypted.model_copy(update={"model_key": type(encrypted.model_key)(generate_key())})  # type: ignore[misc]
        with pytest.raises(ModelKeyError, match="another key"):
            load_fresh(wrong)
        rotated = encrypted.model_copy(update={"model_key": type(encrypted.model_key)(f"{generate_key()},{KEY}")})  # type: ignore[misc]
        assert np.allclose(np.asarray(load_fresh(rotated).predict(frame)), p)  # type: ignore[attr-defined]
    finally:
        if env_key is not None:
            os.environ["SKIPPY_MODEL_KEY"] = env_key
        registry._loaded.clear()


def test_the_api_serves_an_encrypted_model_with_the_key(encrypted: Settings) -> None:
    from app import create_app

    key = create_key(encrypted, name="desk", role="viewer", actor="t").key
    with TestClient(create_app(encrypted, dispatch=False)) as client:
        response = client.post(
            "/api/mlops/predict",
            headers={"Authorization": f"Bearer {key}"},
            json={"agent_type": "market_insight", "symbol": "SYNTH", "n_bars": 2},
        )
    assert response.status_code == 200, response.text
    registry._loaded.clear()
    without = encrypted.model_copy(update={"model_key": None})
    with TestClient(create_app(without, dispatch=False)) as client:
        response = client.post(
            "/api/mlops/predict",
            headers={"Authorization": f"Bearer {key}"},
            json={"agent_type": "market_insight", "symbol": "SYNTH", "n_bars": 2},
        )
    assert response.status_code == 503 and "SKIPPY_MODEL_KEY" in response.json()["message"]
    registry._loaded.clear()


def test_without_a_key_the_weights_are_plain(tmp_path: Path) -> None:
    from tracking.pyfunc import save_weights

    plain = save_weights(tmp_path, {"w": np.ones(2)}, np.zeros(1), np.ones(1), {"features": []})
    assert plain["weights"].endswith("weights.npz") and Path(plain["weights"]).read_bytes().startswith(b"PK")


def test_production_refuses_to_start_without_a_key(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="refuses to start without SKIPPY_MODEL_KEY"):
        init_stores(make_settings(tmp_path, env="production"))
    init_stores(make_settings(tmp_path, env="production", model_key=KEY))
    with pytest.raises(ConfigurationError, match="must be a Fernet key"):
        init_stores(make_settings(tmp_path, model_key="hunter2"))
    env = {k: v for k, v in os.environ.items() if k not in ("SKIPPY_MODEL_KEY", "DATABASE_URL", "MLFLOW_TRACKING_URI")}
    served = subprocess.run(
        [sys.executable, "-m", "mlops.cli", "serve", "--port", "1"],
        env=env | {"SKIPPY_ENV": "production", "SKIPPY_HOME": str(tmp_path / "prod")},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert served.returncode == 2 and "SKIPPY_MODEL_KEY" in served.stderr
