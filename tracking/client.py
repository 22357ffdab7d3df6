"""The MLflow client and experiments, built from Settings (no global tracking state)."""

from __future__ import annotations

import logging
import os
from functools import lru_cache
from pathlib import Path
from typing import Any

from mlops.db.session import ensure_database
from mlops.settings import Settings
from tracking.identity import check_store_binding


@lru_cache(maxsize=4)
def _client(uri: str) -> Any:
    from mlflow import MlflowClient

    if uri.startswith(("sqlite", "postgresql")):
        ensure_database(uri)
    if uri.startswith("sqlite:///"):
        _use_wal(uri.removeprefix("sqlite:///"))
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def _use_wal(path: str) -> None:
    """Write-ahead logging on the embedded MLflow store (a property of the file, kept across
    connections): sweep workers write child runs at the same time, and in SQLite's default mode every
    writer blocks the others and backs off in sleeps of up to 100 ms."""
    import sqlite3

    with sqlite3.connect(path, timeout=30) as conn:
        conn.execute("PRAGMA journal_mode=WAL")


def reset_after_fork() -> None:
    """In a forked child: MLflow's stores keep class-level engines; drop their pooled connections."""
    from mlflow.store.model_registry.sqlalchemy_store import SqlAlchemyStore as RegistryStore
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore as TrackingStore

    for store in (TrackingStore, RegistryStore):
        for engine in store._engine_map.values():
            engine.dispose(close=False)


def _quiet_mlflow() -> None:
    """MLflow warns on every log_model that a Python-object model is cloudpickled (ours is our own
    class, loaded from our own code) and that it cannot find pip's version in a uv environment:
    neither is actionable for a Skippy user, and both drown the CLI's output."""
    for name in ("mlflow.pyfunc", "mlflow.utils.environment", "mlflow.store.db.utils"):
        logging.getLogger(name).setLevel(logging.ERROR)


def get_client(settings: Settings) -> Any:
    """An MlflowClient on the configured store (the SQLite file or Postgres database is created).

    Model logging and registration resolve logged models through MLflow's *default* client, so the
    process-wide tracking URI is pointed at the same store every time (cheap; a process may switch)."""
    import mlflow

    # The model's requirements are the explicit pip list we pass, not a copy of whatever uv project
    # the process happens to run in.
    os.environ.setdefault("MLFLOW_UV_AUTO_DETECT", "false")
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    _quiet_mlflow()
    uri = settings.tracking_uri
    client = _client(uri)
    check_store_binding(settings, client)  # never write into a store this app DB does not mirror
    if mlflow.get_tracking_uri() != uri:
        mlflow.set_tracking_uri(uri)
        mlflow.set_registry_uri(uri)
    return client


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
