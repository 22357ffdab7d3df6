"""Drift: each kind's statistic over the checks against its warning and critical floors, a feature × check
heatmap, one check's rows with the test behind each status (the newest check unless another is chosen, or
`?check=<id>`), the explanation of a critical check, and its Evidently report (dashboard/pages/drift_report.py)."""

from __future__ import annotations

from typing import Any

from dash import Dash, Input, Output, State, callback_context, dcc, html, no_update
from dash.exceptions import PreventUpdate

from dashboard.components import (
    GRAPH_CONFIG,
    badge,
    card,
    empty_figure,
    insight_box,
    mlflow_ui_base,
    notice,
    number_column,
    table,
    version_link,
    when,
)
from dashboard.pages import PageContext
from dashboard.pages.drift_figures import heatmap_figure, kind_figure
from dashboard.pages.drift_report import CHECK_ID, register_report_route, report_frame, report_links
from mlops.insights import InsightRecord, get_insight
from mlops.pipeline.drift_checks import KINDS, DriftCheckSummary, feature_cells, recent_checks
from mlops.pipeline.drift_history import DriftHistoryRow, drift_history
from mlops.settings import AGENTS, Settings

PATH = "/drift"
TITLE = "Drift"
ROLE = "viewer"
CHECKS = 100  # checks on the time series
HEATMAP_CHECKS = 30  # checks on the heatmap
KIND_HEIGHT = 300
CONFIG = GRAPH_CONFIG
LOADING = empty_figure("loading…")


COLUMNS = [
    {"name": "kind", "id": "kind"},
    {"name": "feature", "id": "feature"},
    {"name": "statistic", "id": "statistic"},
    number_column("value", "value"),
    number_column("warning floor", "warning"),
    number_column("critical floor", "critical"),
    number_column("null percentile", "null_percentile", 1),
    number_column("p", "p_value", 4),
    number_column("adjusted p", "adjusted_p", 4),
    {"name": "status", "id": "status"},
]


def _initial(ctx: PageContext) -> tuple[str, str | None, Any]:
    """Agent and check from the URL (?agent=, ?check=; a check picks its own agent); bad input says why.
    No check: the newest, once `overview` has listed them."""
    agent = ctx.query.get("agent") or AGENTS[0]
    check = ctx.query.get("check")
    problem = None
    if agent not in AGENTS:
        agent, problem = AGENTS[0], notice(f"Unknown agent {agent!r}; agents: {', '.join(AGENTS)}.", "error")
    if check is not None:
        found = drift_history(ctx.settings, check_id=check, limit=1) if CHECK_ID.fullmatch(check) else []
        if found:
            return found[0].agent_type, check, problem
        problem = notice(f"No drift check {check!r}: showing the newest check instead.", "error")
    return agent, None, problem


def layout(ctx: PageContext) -> Any:
    agent, check, problem = _initial(ctx)
    filters = html.Div(
        [
            dcc.Dropdown(
                id="drift-agent",
                options=[{"label": a, "value": a} for a in AGENTS],
                value=agent,
                clearable=False,
                className="filter",
            ),
            dcc.Dropdown(
                id="drift-check",
                # the dropdown clears a value missing from its options: the full list follows with the figures
                options=[{"label": check, "value": check}] if check else [],
                value=check,
                clearable=False,
                className="filter wide",
            ),
        ],
        className="filters",
    )
    return html.Div(
        [
            html.H2("Drift"),
            problem or "",
            filters,
            html.P(
                "Every status is a test: the dashed lines are effect-size floors, and a value above one is "
                "warning or critical only when its p-value (features: Benjamini–Hochberg adjusted) is small too.",
                className="muted",
            ),
            html.Div(
                [
                    card(
                        kind.capitalize(),
                        dcc.Graph(
                            id=f"drift-{kind}", config=CONFIG, figure=LOADING, style={"height": f"{KIND_HEIGHT}px"}
                        ),
                        id=f"drift-{kind}-card",
                    )
                    for kind in KINDS
                ],
                className="grid",
            ),
            card(
                "Features × checks",
                dcc.Graph(id="drift-heatmap", config=CONFIG, figure=LOADING, style={"height": "340px"}),
                id="drift-heatmap-card",
            ),
            card(
                "Check",
                html.Div(id="drift-check-info"),
                html.Div(id="drift-insight"),
                table("drift-table", [], COLUMNS, page_size=25),
                id="drift-check-card",
            ),
            card(
                "Evidently report",
                html.Div(id="drift-report"),
                html.Div(id="drift-report-frame"),
                id="drift-report-card",
            ),
            dcc.Store(id="drift-shown"),
            dcc.Store(id="drift-insight-state"),
        ]
    )


def _label(c: DriftCheckSummary) -> str:
    return f"{c.computed_at:%Y-%m-%d %H:%M} · {c.status} · v{c.model_version} · {c.check_id}"


def register(app: Dash, settings: Settings) -> None:
    register_report_route(app, settings)

    @app.callback(
        *[Output(f"drift-{kind}", "figure") for kind in KINDS],
        Output("drift-heatmap", "figure"),
        Output("drift-heatmap", "style"),
        Output("drift-check", "options"),
        Output("drift-check", "value"),
        Output("drift-shown", "data"),
        Input("refresh", "n_intervals"),
        Input("drift-agent", "value"),
        State("drift-check", "value"),
        State("drift-shown", "data"),
    )
    def overview(_: Any, agent: str, chosen: str | None, shown: dict[str, Any] | None) -> tuple[Any, ...]:
        checks = recent_checks(settings, agent=agent, limit=CHECKS)
        newest = checks[0].check_id if checks else None
        if callback_context.triggered_id == "refresh" and shown == {"agent": agent, "newest": newest}:
            raise PreventUpdate  # no new check: keep the figures (and the user's zoom) as they are
        recent = checks[:HEATMAP_CHECKS]
        cells = feature_cells(settings, agent=agent, check_ids=[c.check_id for c in recent])
        options = [{"label": _label(c), "value": c.check_id} for c in checks]
        value: Any = _choose(settings, agent, checks, chosen, shown, options)
        if callback_context.triggered_id == "refresh" and value == chosen:
            value = no_update  # the same check: its table is not redrawn (nor its report closed)
        figures = [kind_figure(kind, checks, KIND_HEIGHT) for kind in KINDS]
        heatmap = heatmap_figure(recent, cells)
        style = {"height": f"{heatmap.layout.height}px"}  # a responsive graph takes its box's height: fix it
        return *figures, heatmap, style, options, value, {"agent": agent, "newest": newest}

    @app.callback(
        Output("drift-check-info", "children"),
        Output("drift-table", "data"),
        Output("drift-report", "children"),
        Output("drift-report-frame", "children"),
        Input("drift-check", "value"),
        State("drift-agent", "value"),
        prevent_initial_call=True,  # `overview` sets the check once it has listed them (and whenever it changes)
    )
    def check(check_id: str | None, agent: str) -> tuple[Any, ...]:
        if not check_id:
            empty = notice(
                f"No drift checks of {agent} yet: run one from the Controls page, or skippy ai drift --agent {agent}."
            )
            return empty, [], "", ""
        rows = drift_history(settings, check_id=check_id, include_features=True, limit=1000)
        if not rows:
            return notice(f"No drift check {check_id!r}.", "error"), [], "", ""
        return _info(settings, rows), _table_rows(rows), report_links(settings, check_id), ""

    @app.callback(
        Output("drift-insight", "children"),
        Output("drift-insight-state", "data"),
        Input("drift-check", "value"),
        Input("refresh", "n_intervals"),
        State("drift-insight-state", "data"),
    )
    def insight(check_id: str | None, _: Any, shown: Any) -> tuple[Any, Any]:
        """Apart from the table, and refreshed: a generated explanation can arrive after the check."""
        if not check_id:
            return "", None
        found = get_insight(settings, "drift", check_id)
        state = [check_id, found.status if found else None]
        if state == shown:
            raise PreventUpdate
        summary = drift_history(settings, check_id=check_id, limit=len(KINDS))
        return _insight(found, summary), state

    @app.callback(
        Output("drift-report-frame", "children", allow_duplicate=True),
        Input("drift-report-show", "n_clicks"),
        State("drift-check", "value"),
        prevent_initial_call=True,
    )
    def show_report(clicks: int | None, check_id: str | None) -> Any:
        if not clicks or not check_id:
            raise PreventUpdate
        return report_frame(check_id)


def _choose(
    settings: Settings,
    agent: str,
    checks: list[DriftCheckSummary],
    chosen: str | None,
    shown: dict[str, Any] | None,
    options: list[dict[str, str]],
) -> str | None:
    """The check to show: the newest, unless the user chose another of this agent's (from the list, or an
    older one by ?check=: then it joins the options)."""
    newest = checks[0].check_id if checks else None
    if chosen is None or chosen == (shown or {}).get("newest"):
        return newest
    if any(c.check_id == chosen for c in checks):
        return chosen
    older = drift_history(settings, agent=agent, check_id=chosen, limit=1)
    if not older:  # another agent's check (the agent changed): this agent's newest
        return newest
    options.append({"label": f"{older[0].computed_at:%Y-%m-%d %H:%M} · {chosen}", "value": chosen})
    return chosen


def _info(settings: Settings, rows: list[DriftHistoryRow]) -> Any:
    summary = [r for r in rows if r.feature is None]
    first = summary[0] if summary else rows[0]
    kinds = [html.Span([f"{r.drift_type} ", badge(r.status)], className="kind-status") for r in summary]
    return html.P(
        [
            f"Check {first.check_id} of {first.agent_type} model ",
            version_link(mlflow_ui_base(settings), first.agent_type, first.model_version),
            f", {when(first.computed_at)}: ",
            *kinds,
        ]
    )


def _table_rows(rows: list[DriftHistoryRow]) -> list[dict[str, Any]]:
    """The summary rows first (the feature summary names its deciding feature), then features by value."""
    summary = [r for r in rows if r.feature is None]
    features = sorted((r for r in rows if r.feature is not None), key=lambda r: -(r.value or 0.0))
    return [
        {
            "kind": r.drift_type if r.feature is None else "feature",
            "feature": r.feature or (f"all (deciding: {r.deciding_feature})" if r.deciding_feature else "—"),
            "statistic": r.statistic,
            "value": r.value,
            "warning": r.warning,
            "critical": r.critical,
            "null_percentile": r.null_percentile,
            "p_value": r.p_value,
            "adjusted_p": r.adjusted_p,
            "status": r.status,
        }
        for r in [*summary, *features]
    ]


def _insight(found: InsightRecord | None, summary: list[DriftHistoryRow]) -> Any:
    if found is not None:
        return insight_box(found)
    if any(r.status == "critical" for r in summary):
        return notice("This check is critical; no explanation was written for it.", "warning")
    return html.P("Explanations are written for critical checks; this one is not critical.", className="muted")
