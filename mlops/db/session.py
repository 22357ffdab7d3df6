"""Engines, sessions and migrations of the app database. Nothing is created at import time."""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker

from mlops.settings import is_postgres

MIGRATIONS = Path(__file__).parent / "migrations"


def ensure_database(url: str) -> None:
    """Create the SQLite folder or the Postgres database named by `url` if it does not exist."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        return
    if not is_postgres(url):
        return
    admin = create_engine(parsed.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            exists = conn.execute(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": parsed.database}).first()
            if not exists:
                conn.execute(text(f'CREATE DATABASE "{parsed.database}"'))
    finally:
        admin.dispose()


def _sqlite_pragmas(dbapi_conn: Any, _: Any) -> None:
    cursor = dbapi_conn.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


_ENGINES: dict[str, Engine] = {}


def create_db_engine(url: str) -> Engine:
    """One engine per URL and process (kept: engines hold connection pools)."""
    if url not in _ENGINES:
        ensure_database(url)
        if make_url(url).get_backend_name() == "sqlite":
            engine = create_engine(url, connect_args={"timeout": 30})
            event.listen(engine, "connect", _sqlite_pragmas)
        else:
            engine = create_engine(url, pool_pre_ping=True)
        _ENGINES[url] = engine
    return _ENGINES[url]


def reset_after_fork() -> None:
    """In a forked child: drop the parent's pooled connections without closing them under its feet."""
    for engine in _ENGINES.values():
        engine.dispose(close=False)


@lru_cache(maxsize=8)
def _session_factory(url: str) -> sessionmaker[Session]:
    return sessionmaker(create_db_engine(url), expire_on_commit=False)


@contextmanager
def session_scope(url: str) -> Iterator[Session]:
    """A session that commits on success and rolls back on any error."""
    session = _session_factory(url)()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def alembic_config(url: str) -> Any:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


_REVISION = re.compile(r"^(down_revision|revision)\s*(?::[^=\n]*)?=\s*(.+?)\s*$", re.MULTILINE)


def head_revision() -> str | None:
    """The newest migration's revision, read from the migration files without importing Alembic (whose
    import every CLI command would otherwise pay); None when the history is not one plain chain (a merge,
    a branch, a file it cannot read): then Alembic decides."""
    revisions: dict[str, str | None] = {}
    for path in (MIGRATIONS / "versions").glob("*.py"):
        found = dict(_REVISION.findall(path.read_text()))
        if set(found) != {"revision", "down_revision"}:
            return None
        try:
            own, down = ast.literal_eval(found["revision"]), ast.literal_eval(found["down_revision"])
        except (ValueError, SyntaxError):
            return None
        if not isinstance(own, str) or not (down is None or isinstance(down, str)) or own in revisions:
            return None
        revisions[own] = down
    heads = set(revisions) - set(revisions.values())
    return heads.pop() if len(heads) == 1 else None


def _stored_revision(engine: Engine) -> str | None:
    """The revision in the database's alembic_version table; None when there is no single one (or no table)."""
    try:
        with engine.connect() as conn:
            rows = conn.execute(text("SELECT version_num FROM alembic_version")).scalars().all()
    except DBAPIError:
        return None
    return rows[0] if len(rows) == 1 else None


def upgrade_database(url: str, revision: str = "head") -> str | None:
    """Apply Alembic migrations up to `revision`; returns the revision now in place. A database already at
    the head revision is left as it is without loading Alembic."""
    engine = create_db_engine(url)
    if revision == "head":
        head = head_revision()
        if head is not None and _stored_revision(engine) == head:
            return head
    from alembic import command
    from alembic.runtime.migration import MigrationContext

    with engine.begin() as conn:
        config = alembic_config(url)
        config.attributes["connection"] = conn
        command.upgrade(config, revision)
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def current_revision(url: str) -> str | None:
    from alembic.runtime.migration import MigrationContext

    with create_db_engine(url).connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()
