"""Bring the stores up: app DB migrated, dead runs reaped. Called once at every entry point."""

from __future__ import annotations

import logging
import os
import stat
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from mlops.db import upgrade_database
from mlops.errors import ConfigurationError
from mlops.jobs import reap_dead_jobs
from mlops.pipeline.locks import reap_dead_runs
from mlops.settings import Settings

log = logging.getLogger(__name__)
PRIVATE_UMASK = 0o077  # files 600, folders 700


@dataclass(frozen=True)
class StoresStatus:
    app_db_url: str
    revision: str | None
    tracking_uri: str
    reaped_runs: list[int]


def check_security(settings: Settings) -> None:
    """Production refuses to run without a model key; a key that is set must be a valid one."""
    from tracking.crypto import check_key

    key = settings.model_key_value
    if key is None:
        if settings.env == "production":
            raise ConfigurationError(
                "SKIPPY_ENV=production refuses to start without SKIPPY_MODEL_KEY (model weights must be encrypted "
                "at rest); `skippy auth model-key` prints a new key"
            )
        return
    check_key(key)


def make_home_private(settings: Settings) -> None:
    """Create SKIPPY_HOME readable by this user only (700), and make every file this process writes from
    now on private (umask 077: stores 600, artifacts and reports 600, folders 700) — SQLite files, MLflow
    artifacts (model weights in plaintext without SKIPPY_MODEL_KEY) and the Optuna journal alike, whoever
    writes them (SQLite, MLflow, Optuna, the worker processes and `mlflow server`, which inherit it).

    A home that already exists keeps its mode (it may be shared on purpose); one that others can read is
    reported in the log with the command that makes it private."""
    os.umask(PRIVATE_UMASK)
    home = settings.home
    if not home.exists():
        home.mkdir(mode=0o700, parents=True, exist_ok=True)
        return
    mode = stat.S_IMODE(home.stat().st_mode)
    if mode & 0o077:
        log.warning(
            "SKIPPY_HOME %s is readable by other users (mode %o): `chmod -R go-rwx %s` makes it private",
            home,
            mode,
            home,
        )


def init_stores(settings: Settings) -> StoresStatus:
    check_security(settings)
    make_home_private(settings)
    revision = upgrade_database(settings.app_db_url)
    reaped = reap_dead_runs(settings)
    reap_dead_jobs(settings)
    return StoresStatus(settings.app_db_url, revision, settings.tracking_uri, reaped)


def _sql(url: str) -> None:
    from sqlalchemy import text

    from mlops.db.session import create_db_engine

    with create_db_engine(url).connect() as conn:
        conn.execute(text("select 1"))


def _tracking_reachable(settings: Settings) -> None:
    uri = settings.tracking_uri
    if uri.startswith(("http://", "https://")):
        import httpx

        httpx.get(uri.rstrip("/") + "/health", timeout=2.0).raise_for_status()
    else:
        _sql(uri)


def _optuna_reachable(settings: Settings) -> None:
    from sweeps.storage import is_journal

    storage = settings.optuna_storage
    if not is_journal(storage):
        _sql(storage)
    elif not Path(storage).parent.is_dir():
        raise RuntimeError(f"journal folder {Path(storage).parent} does not exist")


# Each raises when its store cannot be reached (GET /api/health times them).
STORE_CHECKS: dict[str, Callable[[Settings], None]] = {
    "app_db": lambda settings: _sql(settings.app_db_url),
    "mlflow_store": _tracking_reachable,
    "optuna_storage": _optuna_reachable,
}
