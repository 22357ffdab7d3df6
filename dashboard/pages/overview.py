"""Overview, the landing page: per agent, champion and challenger with their held-out metrics beside the naive
baselines, the last retrain (when, trigger, outcome, the gate's verdict in words and its insight) and the
newest drift check's status per kind; then the open alerts and the next scheduled jobs."""

from __future__ import annotations

from typing import Any

from dash import Dash, Input, Output, html

from dashboard.components import mlflow_ui_base
from dashboard.pages import PageContext
from dashboard.pages.overview_cards import agent_card, alerts_card, schedule_card
from mlops.insights import insights_for
from mlops.pipeline.queries.overview import open_alerts, overview
from mlops.scheduler import scheduler_status
from mlops.settings import Settings

PATH = "/overview"
TITLE = "Overview"
ROLE = "viewer"
LATEST_ALERTS = 5


def layout(ctx: PageContext) -> Any:
    return html.Div(
        [
            html.H2("Overview"),
            html.Div(id="overview-agents", className="grid"),
            html.Div([html.Div(id="overview-alerts-box"), html.Div(id="overview-schedule-box")], className="grid"),
        ]
    )


def register(app: Dash, settings: Settings) -> None:
    @app.callback(
        Output("overview-agents", "children"),
        Output("overview-alerts-box", "children"),
        Output("overview-schedule-box", "children"),
        Input("refresh", "n_intervals"),
        Input("overview-agents", "id"),  # fires when the page is opened, not only at the next refresh
    )
    def refresh(_: Any, __: Any) -> tuple[Any, Any, Any]:
        base = mlflow_ui_base(settings)
        agents = overview(settings)
        retrains = [o.last_retrain.id for o in agents if o.last_retrain is not None]
        insights = insights_for(settings, "retrain", retrains)
        cards = [agent_card(base, o, insights.get(str(o.last_retrain.id)) if o.last_retrain else None) for o in agents]
        # running_here: not asked (the API's /jobs/status knows its own process; the page does not)
        return (
            cards,
            alerts_card(open_alerts(settings, latest=LATEST_ALERTS)),
            schedule_card(scheduler_status(settings)),
        )
