"""`skippy db ...`: app database migrations."""

from __future__ import annotations

import typer

from mlops.cli.common import JSON_OPTION
from mlops.cli.output import console, emit, user_errors

app = typer.Typer(help="App database: migrations and status.", no_args_is_help=True, rich_markup_mode=None)


@app.command("upgrade")
def upgrade(
    revision: str = typer.Option("head", help="Alembic revision to migrate to"), as_json: bool = JSON_OPTION
) -> None:
    """Apply the app database's Alembic migrations (creates the database if needed)."""
    from mlops.db import upgrade_database
    from mlops.db.bindings import masked
    from mlops.settings import get_settings
    from mlops.stores import make_home_private

    with user_errors(as_json):
        settings = get_settings()
        make_home_private(settings)
        rev = upgrade_database(settings.app_db_url, revision)
    database = masked(settings.app_db_url)  # printed: never with its password
    emit(
        as_json,
        {"database": database, "revision": rev},
        lambda: console.print(f"app database at revision [bold]{rev}[/bold] ({database})"),
    )


@app.command("status")
def status(as_json: bool = JSON_OPTION) -> None:
    """Show where the stores are and the app database's revision."""
    from mlops.db.bindings import masked
    from mlops.db.session import current_revision
    from mlops.settings import get_settings

    with user_errors(as_json):
        s = get_settings()
        info = {
            "skippy_home": str(s.home),
            "database": masked(s.app_db_url),
            "revision": current_revision(s.app_db_url),
            "mlflow_tracking_uri": masked(s.tracking_uri),
            "optuna_storage": masked(s.optuna_storage),
        }

    def render() -> None:
        for key, value in info.items():
            console.print(f"{key:>20}: {value}")

    emit(as_json, info, render)
