"""The MLflow client and experiments, built from Settings (no global tracking state).

The store is a local database (SQLite, Postgres) or a tracking server over REST (`http(s)://`, artifacts
proxied by the server; credentials from MLflow's own MLFLOW_TRACKING_USERNAME / MLFLOW_TRACKING_PASSWORD /
MLFLOW_TRACKING_TOKEN, read by MLflow itself): everything in tracking/ works the same on each."""

from __future__ import annotations

import logging
import os
import sys
from functools import lru_cache
from pathlib import Path
from typing import Any

from mlops.db.session import ensure_database
from mlops.settings import Settings
from tracking.identity import check_store_binding


def is_server(uri: str) -> bool:
    """Whether `uri` names a tracking server (REST) rather than a database the process opens itself."""
    return uri.startswith(("http://", "https://"))


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
    """In a forked child: MLflow's database stores keep class-level engines; drop their pooled connections.
    (A process on a tracking server has none: its HTTP sessions are per process id already, and importing
    the database stores just to find them empty would cost each worker almost a second.)"""
    for name in ("mlflow.store.tracking.sqlalchemy_store", "mlflow.store.model_registry.sqlalchemy_store"):
        module = sys.modules.get(name)
        if module is None:
            continue
        for engine in module.SqlAlchemyStore._engine_map.values():
            engine.dispose(close=False)


def _quiet_mlflow() -> None:
    """MLflow warns on every log_model that a Python-object model is cloudpickled (ours is our own
    class, loaded from our own code) and that it cannot find pip's version in a uv environment:
    neither is actionable for a Skippy user, and both drown the CLI's output. Against a server, each new
    version also logs that it waits for the version's creation (it is ready at once without a Databricks
    backend)."""
    for name in (
        "mlflow.pyfunc",
        "mlflow.utils.environment",
        "mlflow.store.db.utils",
        "mlflow.store.model_registry.abstract_store",
    ):
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
    # Against a server MLflow prints "View run ... at: <url>" on stdout at every run's end: the CLI's
    # stdout is its answer (JSON under --json), and the run's URL is in the app DB's records anyway.
    os.environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")
    _quiet_mlflow()
    uri = settings.tracking_uri
    client = _client(uri)
    check_store_binding(settings, client)  # never write into a store this app DB does not mirror
    if mlflow.get_tracking_uri() != uri:
        mlflow.set_tracking_uri(uri)
        mlflow.set_registry_uri(uri)
    return client


def ensure_experiment(settings: Settings, name: str) -> str:
    """The id of experiment `name`, created if new: with its artifacts under SKIPPY_HOME on a local store;
    on a tracking server where the server puts them (proxied to its --artifacts-destination), since
    a folder of this machine is not where the server's other clients can read them."""
    client = get_client(settings)
    experiment = client.get_experiment_by_name(name)
    if experiment is not None:
        return str(experiment.experiment_id)
    location: str | None = None
    if not is_server(settings.tracking_uri):
        folder = Path(settings.artifact_root) / name
        folder.mkdir(parents=True, exist_ok=True)
        location = folder.as_uri()
    try:
        return str(client.create_experiment(name, artifact_location=location))
    except Exception:
        # Another process created it between our lookup and create.
        experiment = client.get_experiment_by_name(name)
        if experiment is None:
            raise
        return str(experiment.experiment_id)
