"""The Controls page's feature flags, for admins only: rendered only for an admin key, and every callback
asks for the admin role first, the reads too (the API keeps flag state admin-only): an operator's forged
request gets 403. A flag name or state the page never offers is refused naming the problem."""

from __future__ import annotations

from typing import Any

from dash import Dash, Input, Output, State, dcc, html

from dashboard.auth import actor, require
from dashboard.components import act, card, notice, table
from dashboard.pages.controls_actions import confirmed
from mlops.errors import InvalidRequestError
from mlops.flags import FLAGS, FlagState, list_flags, set_flag
from mlops.settings import Settings

COLUMNS = [("flag", "name"), ("state", "state"), ("set by", "source"), ("what it gates", "description")]


def flags_card() -> Any:
    options = [{"label": name, "value": name} for name in FLAGS]
    switch = [{"label": " on", "value": "on"}, {"label": " off", "value": "off"}]
    return card(
        "Feature flags (admin)",
        table("controls-flags-table", [], COLUMNS, sortable=False),
        html.Div(
            [
                dcc.RadioItems(id="controls-flag-name", options=options, value=next(iter(FLAGS))),
                dcc.RadioItems(id="controls-flag-state", options=switch, value="off", inline=True),
            ],
            className="filters",
        ),
        confirmed("controls-flag", "Set flag", ""),
        html.Div(id="controls-flag-result"),
        dcc.Store(id="controls-flag-set"),
        id="controls-flags-card",
    )


def _row(flag: FlagState) -> dict[str, Any]:
    return {
        "name": flag.name,
        "state": "on" if flag.enabled else "off",
        "source": flag.source,
        "description": flag.description,
    }


def register(app: Dash, settings: Settings) -> None:
    @app.callback(
        Output("controls-flags-table", "data"),
        Input("refresh", "n_intervals"),
        Input("controls-flag-set", "data"),
    )
    def rows(_: Any, __: Any) -> list[dict[str, Any]]:
        require("admin")
        return [_row(f) for f in list_flags(settings)]

    @app.callback(
        Output("controls-flag", "message"),
        Output("controls-flag-button", "children"),
        Input("controls-flag-name", "value"),
        Input("controls-flag-state", "value"),
    )
    def message(name: str, state: str) -> tuple[str, str]:
        require("admin")
        _check(name, state)
        current = next(f for f in list_flags(settings) if f.name == name)
        override = (
            f" Note: SKIPPY_FLAG_{name.upper()} is set in the environment and still wins until it is unset."
            if current.source == "environment"
            else ""
        )
        now = "on" if current.enabled else "off"
        return (
            f"Turn the feature flag {name} {state} ({FLAGS[name]}; it is {now} now)?{override}",
            f"Turn {name} {state}",
        )

    @app.callback(
        Output("controls-flag-result", "children"),
        Output("controls-flag-set", "data"),
        Input("controls-flag", "submit_n_clicks"),
        State("controls-flag-name", "value"),
        State("controls-flag-state", "value"),
        prevent_initial_call=True,
    )
    def switch(_: int, name: str, state: str) -> tuple[Any, Any]:
        who = require("admin")
        try:
            _check(name, state)
        except InvalidRequestError as exc:
            return notice(str(exc), "error"), None
        result = act(
            lambda: set_flag(settings, name, state == "on", actor=actor(who)),
            lambda flag: notice(f"{flag.name} is {'on' if flag.enabled else 'off'} now{_overridden(flag)}.", "ok"),
        )
        return result, name


def _check(name: Any, state: Any) -> None:
    """What the radio buttons offer, and nothing else (a forged request may send anything)."""
    if name not in FLAGS:
        raise InvalidRequestError(f"unknown feature flag {name!r}; known: {', '.join(FLAGS)}")
    if state not in ("on", "off"):
        raise InvalidRequestError(f"a flag is set on or off, not {state!r}")


def _overridden(flag: FlagState) -> str:
    return f" (SKIPPY_FLAG_{flag.name.upper()} in the environment decides it)" if flag.source == "environment" else ""
