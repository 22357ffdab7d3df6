"""Bring the stores up: app DB migrated, dead runs reaped. Called once at every entry point."""

from __future__ import annotations

from dataclasses import dataclass

from mlops.db import upgrade_database
from mlops.pipeline.locks import reap_dead_runs
from mlops.settings import Settings


@dataclass(frozen=True)
class StoresStatus:
    app_db_url: str
    revision: str | None
    tracking_uri: str
    reaped_runs: list[int]


def init_stores(settings: Settings) -> StoresStatus:
    settings.home.mkdir(parents=True, exist_ok=True)
    revision = upgrade_database(settings.app_db_url)
    reaped = reap_dead_runs(settings)
    return StoresStatus(settings.app_db_url, revision, settings.tracking_uri, reaped)
