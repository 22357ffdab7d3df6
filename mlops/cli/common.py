"""What every command needs: settings, logging, initialised stores, and who is acting (`cli:<user>`:
the services write the audit rows)."""

from __future__ import annotations

import getpass
from typing import TYPE_CHECKING

import typer

if TYPE_CHECKING:
    from mlops.settings import Settings

JSON_OPTION = typer.Option(False, "--json", help="Print machine-readable JSON instead of tables")


def ready_settings() -> Settings:
    """Settings with logging configured and the stores migrated (and dead runs reaped)."""
    from mlops.logs import configure_logging
    from mlops.settings import get_settings
    from mlops.stores import init_stores

    settings = get_settings()
    configure_logging(settings.log_level, settings.log_json)
    init_stores(settings)
    return settings


def current_user() -> str:
    try:
        return getpass.getuser()
    except Exception:
        return "cli"


def cli_actor() -> str:
    return f"cli:{current_user()}"
