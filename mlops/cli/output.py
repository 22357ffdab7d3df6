"""Rendering for the CLI: rich tables for people, `--json` for scripts, one error format."""

from __future__ import annotations

import dataclasses
import json
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any, NoReturn

import typer
from rich.console import Console
from rich.table import Table

# Piped output (not a terminal) would default to 80 columns and wrap every table cell; scripts that
# want structure use --json, people piping into less or a file want whole lines.
console = Console(width=None if sys.stdout.isatty() else 200)
err_console = Console(stderr=True)

STATUS_STYLE = {
    "succeeded": "green",
    "promoted": "green",
    "champion": "green",
    "passed": "green",
    "challenger": "cyan",
    "running": "yellow",
    "queued": "yellow",
    "rejected": "magenta",
    "failed": "red",
}


def to_jsonable(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if hasattr(value, "model_dump"):
        return to_jsonable(value.model_dump())
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_jsonable(v) for v in value]
    if isinstance(value, datetime):
        return value.isoformat()
    return value


def print_json(value: Any) -> None:
    sys.stdout.write(json.dumps(to_jsonable(value), indent=2, default=str) + "\n")


def styled(status: str | None) -> str:
    if not status:
        return "-"
    style = STATUS_STYLE.get(status)
    return f"[{style}]{status}[/{style}]" if style else status


def fmt(value: Any, digits: int = 4) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M")
    return str(value)


def table(title: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    t = Table(title=title, title_justify="left")
    for c in columns:
        t.add_column(c)
    for r in rows:
        t.add_row(*(v if isinstance(v, str) else fmt(v) for v in r))
    console.print(t)


def fail(message: str, code: int = 1, *, as_json: bool = False, kind: str = "error") -> NoReturn:
    """One line on stderr (or, under --json, one JSON object on stdout) and exit `code`."""
    from mlops.errors import brief

    message = brief(message)  # a driver's SQL dump is cut where it is shown
    if as_json:
        print(json.dumps({"error": kind, "message": message, "exit_code": code}))
    else:
        label = "[yellow]refused:[/yellow]" if kind == "feature_disabled" else "[red]error:[/red]"
        err_console.print(f"{label} {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


@contextmanager
def user_errors(as_json: bool = False) -> Iterator[None]:
    """Turn the project's errors into one line and a non-zero exit code (no traceback); under --json the
    line is a JSON object on stdout, so a script reading stdout is never left with nothing."""
    from mlops.errors import ConflictError, FeatureDisabledError, SkippyError

    try:
        yield
    except FeatureDisabledError as exc:
        # Refused, as the API's 409: the message says which flag and how to turn it on.
        fail(str(exc), code=3, as_json=as_json, kind="feature_disabled")
    except ConflictError as exc:
        fail(str(exc), code=3, as_json=as_json, kind="conflict")
    except SkippyError as exc:
        fail(str(exc), code=2, as_json=as_json)


def emit(as_json: bool, value: Any, render: Callable[[], None]) -> None:
    if as_json:
        print_json(value)
    else:
        render()
