"""What every command needs: settings, logging and initialised stores."""

from __future__ import annotations

import getpass
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

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


@contextmanager
def audited(settings: Settings, action: str, parameters: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """The audit row of a mutating CLI command (the API writes its own in middleware): fill the
    yielded dict with the result; an error is recorded with its message and re-raised."""
    from mlops.audit import record

    result: dict[str, Any] = {}
    try:
        yield result
    except Exception as exc:
        record(
            settings,
            actor=cli_actor(),
            action=f"cli {action}",
            parameters=parameters,
            status_code=None,
            result={"error": str(exc)},
        )
        raise
    record(settings, actor=cli_actor(), action=f"cli {action}", parameters=parameters, status_code=None, result=result)
