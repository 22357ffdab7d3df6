"""One migrated app database per module and backend (SQLite and the real PostgreSQL), emptied before each
test: migrating a new database per test would cost a second or two each."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import delete

from mlops.db import create_db_engine, session_scope, upgrade_database
from mlops.db.models import (
    AgentLock,
    Alert,
    AlertDelivery,
    ApiKey,
    AuditLog,
    FeatureFlag,
    Job,
    MarketBar,
    ModelDeployment,
    ModelRun,
    ScheduledExecution,
)
from mlops.settings import Settings
from tests.conftest import drop_postgres_databases, fresh_postgres_url, make_settings

# Children before parents.
TABLES = (
    ScheduledExecution,
    AlertDelivery,
    Alert,
    AuditLog,
    Job,
    AgentLock,
    ModelDeployment,
    ModelRun,
    FeatureFlag,
    MarketBar,
    ApiKey,
)


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def module_db(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('scheduler-db') / 'app.db'}"
    else:
        url = fresh_postgres_url(request.getfixturevalue("postgres_server"))
    upgrade_database(url)
    yield url
    create_db_engine(url).dispose()
    if request.param == "postgres":
        from sqlalchemy.engine import make_url

        drop_postgres_databases(str(make_url(url).database))


@pytest.fixture
def settings(module_db: str, tmp_path: Path) -> Settings:
    """Settings on the module's database, emptied of every row a scheduler test writes."""
    with session_scope(module_db) as session:
        for table in TABLES:
            session.execute(delete(table))
    return make_settings(tmp_path, database_url=module_db)
