"""The command line's strings checked before any command runs: a control character in an option or
argument is refused with the option's name (`mlops.text`: the API's rule), so it never reaches a store,
a log line or a terminal. Only `--reason` is free text (tabs and line breaks allowed)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from mlops.text import check_text

FREE_TEXT = frozenset({"reason"})


def check_arguments(command: Any, args: list[str]) -> None:
    """InvalidRequestError naming the first option or argument of `args` that holds a control character."""
    for field, value, multiline in _named_values(command, args):
        check_text(value, field=field, multiline=multiline)


def _named_values(command: Any, args: list[str]) -> Iterator[tuple[str, str, bool]]:
    """(name, value, free text?) of every token, named the way the command's help names it. `command`
    is the Click command tree Typer builds (Typer vendors its own Click: duck-typed, not isinstance)."""
    at = 0
    while at < len(args):  # sub-command names
        token = args[at]
        sub = getattr(command, "commands", {}).get(token)
        if sub is None:
            break
        yield "command", token, False
        command, at = sub, at + 1
    params = command.params
    options = {opt: p for p in params if p.param_type_name == "option" for opt in p.opts + p.secondary_opts}
    arguments = [p for p in params if p.param_type_name == "argument"]
    positional = 0
    rest = iter(args[at:])
    for token in rest:
        if token.startswith("--") and "=" in token:
            opt, value = token.split("=", 1)
            param = options.get(opt)
            yield _long(param) if param else opt, value, param is not None and param.name in FREE_TEXT
            continue
        param = options.get(token)
        if param is not None:
            yield _long(param), token, False
            if not (param.is_flag or param.count):
                yield _long(param), next(rest, ""), param.name in FREE_TEXT
            continue
        if token.startswith("-") and token != "-":
            yield "option", token, False
            continue
        name = str(arguments[positional].name).upper() if positional < len(arguments) else "argument"
        positional += 1
        yield name, token, False


def _long(option: Any) -> str:
    """`--agent` for `-a`: the name the help shows first."""
    return str(max(option.opts, key=len))
