"""An app database knows which MLflow store and which Optuna storage it mirrors, and a command pointed at
another one stops before writing, naming both (passwords masked) and the fix."""

from __future__ import annotations

import multiprocessing
import os
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.engine import make_url

from mlops.data.generate import generate_market
from mlops.db import session_scope, upgrade_database
from mlops.db.bindings import masked
from mlops.db.models import ModelRun, StoreBinding
from mlops.errors import ConfigurationError
from mlops.pipeline.retrain import retrain
from mlops.settings import Settings
from mlops.stores import init_stores
from sweeps.storage import ID_ATTR, ID_STUDY, bound_storage, open_storage
from tests.conftest import fresh_postgres_url, make_settings
from tracking.client import get_client
from tracking.identity import STORE_ID_TAG


def _binding(settings: Settings, kind: str) -> tuple[str, str] | None:
    with session_scope(settings.app_db_url) as session:
        row = session.get(StoreBinding, kind)
        return (row.url, row.store_id) if row else None


def _storage_id(storage_url: str) -> str | None:
    storage = open_storage(storage_url)
    try:
        study_id = storage.get_study_id_from_name(ID_STUDY)
    except KeyError:
        return None
    value = storage.get_study_user_attrs(study_id).get(ID_ATTR)
    return str(value) if value is not None else None


def test_a_command_pointed_at_another_mlflow_store_stops_before_writing(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    init_stores(settings)
    client = get_client(settings)  # first use binds the two
    store_id = client.get_experiment("0").tags[STORE_ID_TAG]
    assert _binding(settings, "mlflow") == (settings.tracking_uri, store_id)
    assert get_client(settings) is client  # and later uses pass

    stray = make_settings(tmp_path, mlflow_tracking_uri=f"sqlite:///{tmp_path / 'stray' / 'mlflow.db'}")
    (tmp_path / "stray").mkdir()
    with pytest.raises(ConfigurationError) as refused:
        get_client(stray)
    message = str(refused.value)
    assert f"belongs to the MLflow store {settings.tracking_uri} (id {store_id})" in message
    assert "stray/mlflow.db (a store with no Skippy id)" in message and "point MLFLOW_TRACKING_URI at" in message

    generate_market(settings, symbol="SYNTH", n_bars=300)
    with pytest.raises(ConfigurationError, match="belongs to the MLflow store"):
        retrain(stray, agent="market_insight", actor="cli:test")
    with session_scope(settings.app_db_url) as session:
        assert session.scalar(select(func.count()).select_from(ModelRun)) == 0  # nothing half-written


def test_an_mlflow_store_shared_by_two_app_databases_keeps_its_id(tmp_path: Path) -> None:
    store = f"sqlite:///{tmp_path / 'shared' / 'mlflow.db'}"
    first = make_settings(tmp_path / "a", mlflow_tracking_uri=store)
    second = make_settings(tmp_path / "b", mlflow_tracking_uri=store)
    for settings in (first, second):
        init_stores(settings)
        get_client(settings)
    first_binding, second_binding = _binding(first, "mlflow"), _binding(second, "mlflow")
    assert first_binding is not None and first_binding == second_binding
    assert get_client(first).get_experiment("0").tags[STORE_ID_TAG] == first_binding[1]


def test_store_urls_are_shown_without_passwords() -> None:
    assert masked("postgresql+psycopg2://skippy:s3cret@db:5432/app") == "postgresql+psycopg2://skippy:***@db:5432/app"
    assert masked("http://ops:s3cret@mlflow:5001") == "http://ops:***@mlflow:5001"
    assert masked("https://ops:s3:cr@t@[::1]:5001/prefix") == "https://ops:***@[::1]:5001/prefix"
    assert masked("http://ops@mlflow:5001") == "http://ops@mlflow:5001"
    assert masked("sqlite:////tmp/x/mlflow.db") == "sqlite:////tmp/x/mlflow.db"
    assert masked("/tmp/x/optuna.journal") == "/tmp/x/optuna.journal"


def _with_password(url: str) -> str:
    """`url` with a password the local server ignores (trust auth): what a team's URL looks like."""
    return make_url(url).set(password="s3cret").render_as_string(hide_password=False)


@pytest.fixture(params=["journal", pytest.param("postgres", marks=pytest.mark.postgres)])
def optuna_stores(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[Settings, str]:
    """Settings on a fresh app DB and Optuna storage, and the URL of another, empty storage."""
    if request.param == "journal":
        (tmp_path / "elsewhere").mkdir()
        return make_settings(tmp_path), str(tmp_path / "elsewhere" / "optuna.journal")
    server = request.getfixturevalue("postgres_server")
    settings = make_settings(
        tmp_path,
        database_url=fresh_postgres_url(server),
        optuna_storage_url=_with_password(fresh_postgres_url(server)),
    )
    return settings, _with_password(fresh_postgres_url(server))


def test_a_command_pointed_at_another_optuna_storage_stops_before_writing(optuna_stores: tuple[Settings, str]) -> None:
    settings, elsewhere = optuna_stores
    upgrade_database(settings.app_db_url)
    storage = bound_storage(settings)  # first use binds the two
    store_id = _storage_id(settings.optuna_storage)
    assert store_id is not None
    assert _binding(settings, "optuna") == (masked(settings.optuna_storage), store_id)
    assert bound_storage(settings) is storage  # and later uses pass

    other = settings.model_copy(update={"optuna_storage_url": elsewhere})
    with pytest.raises(ConfigurationError) as refused:
        bound_storage(other)
    message = str(refused.value)
    assert f"the app database {masked(settings.app_db_url)} belongs to the Optuna storage" in message
    assert f"{masked(settings.optuna_storage)} (id {store_id})" in message
    assert f"SKIPPY_OPTUNA_STORAGE is {masked(elsewhere)} (a store with no Skippy id)" in message
    assert f"point SKIPPY_OPTUNA_STORAGE at {masked(settings.optuna_storage)}" in message
    assert "s3cret" not in message
    assert _storage_id(elsewhere) is None  # nothing written into the other storage


def _bind_in_child(settings: Settings, start: object) -> None:
    from mlops.db.session import reset_after_fork

    reset_after_fork()
    start.wait()  # type: ignore[attr-defined]
    try:
        bound_storage(settings)
    except BaseException:
        os._exit(1)
    os._exit(0)


@pytest.mark.parametrize("backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_processes_binding_a_new_storage_at_once_agree_on_its_id(
    backend: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    """Four processes use a new storage for the first time at once (on Postgres they also race to create
    its database and tables): each of them passes, and the storage holds the id the app DB recorded."""
    if backend == "sqlite":
        settings = make_settings(tmp_path)
    else:
        settings = make_settings(tmp_path, database_url=fresh_postgres_url(request.getfixturevalue("postgres_server")))
    upgrade_database(settings.app_db_url)
    context = multiprocessing.get_context("fork")
    start = context.Barrier(4)
    children = [context.Process(target=_bind_in_child, args=(settings, start)) for _ in range(4)]
    for child in children:
        child.start()
    for child in children:
        child.join(60)
    assert [child.exitcode for child in children] == [0, 0, 0, 0]
    binding = _binding(settings, "optuna")
    assert binding is not None and _storage_id(settings.optuna_storage) == binding[1]
    bound_storage(settings)  # this process agrees too
