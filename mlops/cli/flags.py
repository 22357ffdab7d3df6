"""`skippy flags ...`: list and switch feature flags."""

from __future__ import annotations

import typer

from mlops.cli.common import JSON_OPTION, cli_actor, ready_settings
from mlops.cli.output import console, emit, table, user_errors

app = typer.Typer(help="Feature flags: list and switch.", no_args_is_help=True, rich_markup_mode=None)


@app.command("list")
def list_command(as_json: bool = JSON_OPTION) -> None:
    """Every flag, whether it is on, and where that comes from (default, database, environment)."""
    from mlops.flags import list_flags

    with user_errors(as_json):
        rows = list_flags(ready_settings())
    emit(
        as_json,
        rows,
        lambda: table(
            "Feature flags",
            ["flag", "enabled", "source", "what it controls"],
            [[f.name, "on" if f.enabled else "off", f.source, f.description] for f in rows],
        ),
    )


@app.command("set")
def set_command(
    name: str = typer.Argument(..., help="Flag name"),
    state: str = typer.Argument(..., help="on or off"),
    as_json: bool = JSON_OPTION,
) -> None:
    """Switch a flag on or off in the app database (an environment override still wins)."""
    from mlops.errors import InvalidRequestError
    from mlops.flags import set_flag

    with user_errors(as_json):
        if state.lower() not in ("on", "off"):
            raise InvalidRequestError(f"state must be on or off, got {state!r}")
        settings = ready_settings()
        flag = set_flag(settings, name, state.lower() == "on", cli_actor())
    emit(as_json, flag, lambda: console.print(f"{flag.name}: {'on' if flag.enabled else 'off'} ({flag.source})"))
