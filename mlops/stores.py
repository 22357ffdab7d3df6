"""Bring the stores up: app DB migrated, dead runs reaped. Called once at every entry point."""

from __future__ import annotations

from dataclasses import dataclass

from mlops.db import upgrade_database
from mlops.errors import ConfigurationError
from mlops.jobs import reap_dead_jobs
from mlops.pipeline.locks import reap_dead_runs
from mlops.settings import Settings


@dataclass(frozen=True)
class StoresStatus:
    app_db_url: str
    revision: str | None
    tracking_uri: str
    reaped_runs: list[int]


def check_security(settings: Settings) -> None:
    """Production refuses to run without a model key; a key that is set must be a valid one."""
    from tracking.crypto import check_key

    if settings.model_key is None:
        if settings.env == "production":
            raise ConfigurationError(
                "SKIPPY_ENV=production refuses to start without SKIPPY_MODEL_KEY (model weights must be encrypted "
                "at rest); `skippy auth model-key` prints a new key"
            )
        return
    check_key(settings.model_key.get_secret_value())


def init_stores(settings: Settings) -> StoresStatus:
    check_security(settings)
    settings.home.mkdir(parents=True, exist_ok=True)
    revision = upgrade_database(settings.app_db_url)
    reaped = reap_dead_runs(settings)
    reap_dead_jobs(settings)
    return StoresStatus(settings.app_db_url, revision, settings.tracking_uri, reaped)
