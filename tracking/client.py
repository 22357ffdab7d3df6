"""The MLflow client and experiments, built from Settings (no global tracking state)."""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Any

from mlops.db.session import ensure_database
from mlops.settings import Settings


@lru_cache(maxsize=4)
def _client(uri: str) -> Any:
    import mlflow
    from mlflow import MlflowClient

    if uri.startswith(("sqlite", "postgresql")):
        ensure_database(uri)
    # Model logging and registration resolve logged models through MLflow's *default* client, so the
    # process-wide tracking URI must point at the same store as our explicit client.
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def get_client(settings: Settings) -> Any:
    """An MlflowClient on the configured store (the SQLite file or Postgres database is created)."""
    # The model's requirements are the explicit pip list we pass, not a copy of whatever uv project
    # the process happens to run in.
    os.environ.setdefault("MLFLOW_UV_AUTO_DETECT", "false")
    return _client(settings.tracking_uri)


def ensure_experiment(settings: Settings, name: str) -> str:
    """The id of experiment `name`, created with its artifacts under SKIPPY_HOME if new."""
    client = get_client(settings)
    experiment = client.get_experiment_by_name(name)
    if experiment is not None:
        return str(experiment.experiment_id)
    location = Path(settings.artifact_root) / name
    location.mkdir(parents=True, exist_ok=True)
    try:
        return str(client.create_experiment(name, artifact_location=location.as_uri()))
    except Exception:
        # Another process created it between our lookup and create.
        experiment = client.get_experiment_by_name(name)
        if experiment is None:
            raise
        return str(experiment.experiment_id)
