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
        # (test_validation.py, test_retrain.py) set it back to True.
        "gate_require_edge": False,
    } | overrides
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


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
    """Yields a function-free base URL of the real server; creates and drops test databases."""
    problem = _postgres_available()
    if problem:
        if os.environ.get("CI") == "true":
            pytest.fail(f"PostgreSQL on 127.0.0.1:5432 is required in CI and is not reachable: {problem}")
        pytest.skip(f"PostgreSQL not reachable: {problem}")
    created: list[str] = []
    yield PG_ADMIN_URL
    engine = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        for name in created:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        rows = conn.execute(
            text("SELECT datname FROM pg_database WHERE datname LIKE :p"), {"p": f"skippy_t_{os.getpid()}_%"}
        ).all()
        for (name,) in rows:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    engine.dispose()


def fresh_postgres_url(admin_url: str) -> str:
    """A URL for a database that does not exist yet (created on first use, dropped at session end)."""
    from sqlalchemy.engine import make_url

    name = f"skippy_t_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    return make_url(admin_url).set(database=name).render_as_string(hide_password=False)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty, migrated app database on SQLite and on the real PostgreSQL."""
    from mlops.db import upgrade_database

    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'app.db'}"
    else:
        url = fresh_postgres_url(request.getfixturevalue("postgres_server"))
    upgrade_database(url)
    return url


def bars_frame(n: int = 1500, seed: int = 3, **kwargs: object) -> pd.DataFrame:
    return generate_bars(n, seed=seed, **kwargs)[list(OHLCV)]  # type: ignore[arg-type]


def real_csv(name: str = "GOOG.csv") -> Path:
    """Real market data shipped by the `backtesting` package (GOOG daily 2004–2013, EURUSD hourly)."""
    import backtesting

    return Path(backtesting.__file__).parent / "test" / name
