"""Alerts: everything raised, most recently seen first, with its deliveries and (when it arrived) the
generated explanation; an operator acknowledges the selected alert.

The selection is an alert id (`selected_row_ids`; each row's `id` is its alert's), never a row index: a
refresh, a filter or an acknowledgement rewrites the rows, and the refresh re-selects the same alert by id
(or nothing, once it left the list), so "Acknowledge" always acts on the alert its dialog names."""

from __future__ import annotations

from typing import Any

from dash import Dash, Input, Output, State, dcc, html

from dashboard.auth import actor, require
from dashboard.components import act, card, notice, table, when
from dashboard.pages import PageContext
from mlops.alerts import acknowledge_alert, list_alerts
from mlops.alerts.records import SEVERITIES, AlertRecord
from mlops.errors import InvalidRequestError
from mlops.settings import AGENTS, Settings

PATH = "/alerts"
TITLE = "Alerts"
ROLE = "viewer"
LIMIT = 200
STATES = ("open", "acknowledged")
NOTHING_SELECTED = "Select an alert first (the round button at the start of its row)."

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
                message=NOTHING_SELECTED,
            ),
            html.Div(id="alerts-ack-result"),
        ]
    return html.Div(
        [
            html.H2("Alerts"),
            filters,
            html.Div(id="alerts-problem"),
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
        Output("alerts-table", "selected_rows"),
        Output("alerts-table", "selected_row_ids"),
        Output("alerts-problem", "children"),
        Input("refresh", "n_intervals"),
        Input("alerts-severity", "value"),
        Input("alerts-agent", "value"),
        Input("alerts-state", "value"),
        Input("alerts-acked", "data"),
        State("alerts-table", "selected_row_ids"),
    )
    def rows(
        _: Any, severity: Any, agent: Any, state: Any, __: Any, selected: Any
    ) -> tuple[list[dict[str, Any]], list[int], list[int], Any]:
        """The rows, and the selection re-made from the selected alert's id: the table keeps row indexes, and
        sets the ids only on a click (so both are set here; none once the alert left the list)."""
        try:
            _check_filters(severity, agent, state)
        except InvalidRequestError as exc:
            return [], [], [], notice(str(exc), "error")
        acknowledged = None if state is None else state == "acknowledged"
        found = [
            _row(a)
            for a in list_alerts(settings, severity=severity, agent=agent, acknowledged=acknowledged, limit=LIMIT)
        ]
        chosen = _selected_id(selected)
        indexes = [i for i, r in enumerate(found) if r["id"] == chosen]
        return found, indexes, [chosen] if indexes and chosen is not None else [], None

    @app.callback(
        Output("alerts-ack", "message"),
        Output("alerts-ack-button", "children"),
        Input("alerts-table", "selected_row_ids"),
        State("alerts-table", "data"),
    )
    def confirm_text(selected: Any, data: list[dict[str, Any]] | None) -> tuple[str, str]:
        """The dialog names the alert it will acknowledge (it changes with the selection)."""
        chosen = _selected_id(selected)
        if chosen is None:
            return NOTHING_SELECTED, "Acknowledge selected"
        row = next((r for r in data or [] if r.get("id") == chosen), None)
        what = f"alert #{chosen}" + (f" ({row['status']} {row['kind']}: {row['message']})" if row else "")
        return (
            f"Acknowledge {what}? It stops counting repeats and a new one will notify again.",
            f"Acknowledge #{chosen}",
        )

    @app.callback(
        Output("alerts-ack-result", "children"),
        Output("alerts-acked", "data"),
        Input("alerts-ack", "submit_n_clicks"),
        State("alerts-table", "selected_row_ids"),
        prevent_initial_call=True,
    )
    def acknowledge(_: int, selected: Any) -> tuple[Any, Any]:
        who = require("operator")
        alert_id = _selected_id(selected)
        if alert_id is None:
            return notice(NOTHING_SELECTED, "warning"), None
        result = act(
            lambda: acknowledge_alert(settings, alert_id, actor=actor(who)),
            lambda a: notice(f"Alert #{a.id} ({a.kind}) acknowledged by {a.acknowledged_by}.", "ok"),
        )
        return result, alert_id


def _selected_id(selected: Any) -> int | None:
    """The selected alert's id from the table's `selected_row_ids` (what the browser sends: anything else, none)."""
    if isinstance(selected, list) and selected and isinstance(selected[0], int) and not isinstance(selected[0], bool):
        return selected[0]
    return None


def _check_filters(severity: Any, agent: Any, state: Any) -> None:
    """The dropdowns offer these values only; a forged request may send anything."""
    for name, value, known in (("severity", severity, SEVERITIES), ("agent", agent, AGENTS), ("state", state, STATES)):
        if value is not None and value not in known:
            raise InvalidRequestError(f"unknown {name} {value!r}; known: {', '.join(known)}")
