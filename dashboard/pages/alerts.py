"""Alerts: everything raised, most recently seen first, with its deliveries and (when it arrived) the
generated explanation; an operator acknowledges the selected alert."""

from __future__ import annotations

from typing import Any

from dash import Dash, Input, Output, State, dcc, html

from dashboard.auth import actor, require
from dashboard.components import act, card, notice, table, when
from dashboard.pages import PageContext
from mlops.alerts import acknowledge_alert, list_alerts
from mlops.alerts.records import SEVERITIES, AlertRecord
from mlops.settings import AGENTS, Settings

PATH = "/alerts"
TITLE = "Alerts"
ROLE = "viewer"
LIMIT = 200

COLUMNS = [
    ("#", "id"),
    ("severity", "status"),
    ("kind", "kind"),
    ("agent", "agent"),
    ("message", "message"),
    ("explanation", "insight"),
    ("count", "count"),
    ("last seen", "last_seen"),
    ("deliveries", "deliveries"),
    ("acknowledged", "acknowledged"),
]


def _row(a: AlertRecord) -> dict[str, Any]:
    return {
        "id": a.id,
        "status": a.severity,
        "kind": a.kind,
        "agent": a.agent_type or "",
        "message": a.message,
        "insight": getattr(a, "insight", None) or "",
        "count": a.count,
        "last_seen": when(a.last_seen),
        "deliveries": ", ".join(f"{d.channel}: {d.status}" for d in a.deliveries) or "none configured",
        "acknowledged": f"{a.acknowledged_by} {when(a.acknowledged_at)}" if a.acknowledged_by else "",
    }


def layout(ctx: PageContext) -> Any:
    filters = html.Div(
        [
            dcc.Dropdown(
                id="alerts-severity",
                options=[{"label": s, "value": s} for s in SEVERITIES],
                placeholder="any severity",
                className="filter",
            ),
            dcc.Dropdown(
                id="alerts-agent",
                options=[{"label": a, "value": a} for a in AGENTS],
                placeholder="any agent",
                className="filter",
            ),
            dcc.Dropdown(
                id="alerts-state",
                options=[{"label": "open", "value": "open"}, {"label": "acknowledged", "value": "acknowledged"}],
                value="open" if ctx.query.get("state") != "all" else None,
                placeholder="open and acknowledged",
                className="filter",
            ),
        ],
        className="filters",
    )
    controls: list[Any] = []
    if ctx.who.can("operator"):
        controls = [
            dcc.ConfirmDialogProvider(
                html.Button("Acknowledge selected", id="alerts-ack-button", className="button"),
                id="alerts-ack",
                message="Acknowledge the selected alert? It stops counting repeats and a new one will notify again.",
            ),
            html.Div(id="alerts-ack-result"),
        ]
    return html.Div(
        [
            html.H2("Alerts"),
            filters,
            card(
                "Alerts",
                table("alerts-table", [], COLUMNS, row_selectable="single" if controls else False, page_size=25),
                *controls,
                id="alerts-card",
            ),
            dcc.Store(id="alerts-acked"),
        ]
    )


def register(app: Dash, settings: Settings) -> None:
    @app.callback(
        Output("alerts-table", "data"),
        Input("refresh", "n_intervals"),
        Input("alerts-severity", "value"),
        Input("alerts-agent", "value"),
        Input("alerts-state", "value"),
        Input("alerts-acked", "data"),
    )
    def rows(_: Any, severity: str | None, agent: str | None, state: str | None, __: Any) -> list[dict[str, Any]]:
        acknowledged = None if state is None else state == "acknowledged"
        found = list_alerts(settings, severity=severity, agent=agent, acknowledged=acknowledged, limit=LIMIT)
        return [_row(a) for a in found]

    @app.callback(
        Output("alerts-ack-result", "children"),
        Output("alerts-acked", "data"),
        Input("alerts-ack", "submit_n_clicks"),
        State("alerts-table", "selected_rows"),
        State("alerts-table", "data"),
        prevent_initial_call=True,
    )
    def acknowledge(_: int, selected: list[int] | None, data: list[dict[str, Any]] | None) -> tuple[Any, Any]:
        who = require("operator")
        if not selected or not data or selected[0] >= len(data):
            return notice("Select an alert first (the round button at the start of its row).", "warning"), None
        alert_id = int(data[selected[0]]["id"])
        result = act(
            lambda: acknowledge_alert(settings, alert_id, actor=actor(who)),
            lambda a: notice(f"Alert #{a.id} acknowledged by {a.acknowledged_by}.", "ok"),
        )
        return result, alert_id
