"""Shared fixtures: settings on temporary stores, a real PostgreSQL database per test session, and
synthetic or real market data. Postgres tests never skip silently in CI (CI=true)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy import create_engine, text

from mlops.data.synthetic import generate_bars
from mlops.data.validation import OHLCV
from mlops.settings import Settings

PG_ADMIN_URL = os.environ.get("SKIPPY_TEST_PG_URL", "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres")


def make_settings(home: Path, **overrides: object) -> Settings:
    """Settings that ignore the developer's environment and `.env` (MLflow itself exports
    MLFLOW_TRACKING_URI once a tracking URI is set in the process, so store URLs are explicit)."""
    values: dict[str, object] = {
        "home": home,
        "log_json": True,
        "database_url": None,
        "mlflow_tracking_uri": None,
        "optuna_storage_url": None,
        # Small synthetic markets give short held-out windows on which a first model's edge over naive
        # baselines is a coin flip; tests about other things must not depend on it. The gate's own tests
        # (tests/pipeline/test_validation_rules.py, test_retrain.py) set it back to True.
        "gate_require_edge": False,
    } | overrides
    return Settings(_env_file=None, **values)  # type: ignore[arg-type]


def _postgres_available() -> str | None:
    try:
        engine = create_engine(PG_ADMIN_URL)
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        engine.dispose()
        return None
    except Exception as exc:
        return str(exc)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    """Yields the admin URL of the real server. The databases this process's tests created (named by
    `fresh_postgres_url`, with sibling MLflow/Optuna databases derived from those names) are dropped at
    the end of the session."""
    problem = _postgres_available()
    if problem:
        if os.environ.get("CI") == "true":
            pytest.fail(f"PostgreSQL on 127.0.0.1:5432 is required in CI and is not reachable: {problem}")
        pytest.skip(f"PostgreSQL not reachable: {problem}")
    yield PG_ADMIN_URL
    drop_postgres_databases(_test_database_prefix())


def drop_postgres_databases(prefix: str) -> None:
    """Drop every database whose name starts with `prefix`, whoever is still connected to it."""
    engine = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            # `_` is a LIKE wildcard: escape it, so that only the databases named so match.
            pattern = prefix.replace("_", r"\_") + "%"
            rows = conn.execute(
                text(r"SELECT datname FROM pg_database WHERE datname LIKE :p ESCAPE '\'"), {"p": pattern}
            ).all()
            for (name,) in rows:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        engine.dispose()


def _test_database_prefix() -> str:
    return f"skippy_t_{os.getpid()}_"


def fresh_postgres_url(admin_url: str) -> str:
    """A URL for a database that does not exist yet (created on first use, dropped at session end)."""
    from sqlalchemy.engine import make_url

    name = f"{_test_database_prefix()}{uuid.uuid4().hex[:8]}"
    return make_url(admin_url).set(database=name).render_as_string(hide_password=False)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty, migrated app database on SQLite and on the real PostgreSQL. A Postgres one is dropped
    when the test ends, with the MLflow/Optuna databases derived from its name: the server's connection
    slots are shared by every test process, and this process's pools would otherwise keep some busy."""
    from mlops.db import create_db_engine, upgrade_database

    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'app.db'}"
    else:
        url = fresh_postgres_url(request.getfixturevalue("postgres_server"))
    upgrade_database(url)
    yield url
    if request.param == "postgres":
        from sqlalchemy.engine import make_url

        create_db_engine(url).dispose()
        drop_postgres_databases(str(make_url(url).database))


@pytest.fixture(scope="session")
def empty_mlflow_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated, empty MLflow SQLite store to copy into a fresh SKIPPY_HOME (`tests.factories.store`):
    MLflow migrates every new store from scratch, which takes seconds. Never bound to an app DB, so each
    copy gets its own store id on first use."""
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

    folder = tmp_path_factory.mktemp("mlflow-template")
    uri = f"sqlite:///{folder / 'mlflow.db'}"
    SqlAlchemyStore(uri, str(folder / "artifacts")).engine.dispose()  # creating the store migrates it
    return folder / "mlflow.db"


def bars_frame(n: int = 1500, seed: int = 3, **kwargs: object) -> pd.DataFrame:
    return generate_bars(n, seed=seed, **kwargs)[list(OHLCV)]  # type: ignore[arg-type]


def real_csv(name: str = "GOOG.csv") -> Path:
    """Real market data shipped by the `backtesting` package (GOOG daily 2004–2013, EURUSD hourly)."""
    import backtesting

    return Path(backtesting.__file__).parent / "test" / name
