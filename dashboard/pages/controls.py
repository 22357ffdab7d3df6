"""Controls (operator): retrain, drift check, a sweep with a grid editor, promote, roll back, run a
scheduled job now, and, for admins, the feature flags. Every action asks for confirmation with a message
that says what will happen, runs with the logged-in key's role (the callbacks ask for it first: a forged
request from a lower role gets 403) and is audited by the service it calls as `dashboard:<key name>`;
queued work shows its progress in the jobs panel. The pieces live in `controls_*.py`."""

from __future__ import annotations

from typing import Any

from dash import Dash, html

from dashboard.pages import (
    PageContext,
    controls_actions,
    controls_flags,
    controls_jobs,
    controls_schedule,
    controls_sweep,
)
from mlops.settings import Settings

PATH = "/controls"
TITLE = "Controls"
ROLE = "operator"


def layout(ctx: PageContext) -> Any:
    if not ctx.who.can("operator"):  # the shell shows this page to operators only; a second line
        return html.Div()
    admin = [controls_flags.flags_card()] if ctx.who.can("admin") else []
    return html.Div(
        [
            html.H2("Controls"),
            html.P(
                f"Actions run as {ctx.who.name} ({ctx.who.role}) and are audited. Each asks for confirmation first.",
                className="muted",
            ),
            html.Div([controls_actions.training_card(ctx.settings), controls_actions.deploy_card()], className="grid"),
            controls_jobs.panel(),
            controls_sweep.sweep_card(),
            html.Div([controls_schedule.schedule_card(), *admin], className="grid"),
        ]
    )


def register(app: Dash, settings: Settings) -> None:
    controls_actions.register(app, settings)
    controls_sweep.register(app, settings)
    controls_schedule.register(app, settings)
    controls_flags.register(app, settings)
    controls_jobs.register(app, settings)
