"""The Controls page's sweep with a grid editor: one row per hyperparameter of the agent, its default, and
the values to try as comma-separated numbers (prefilled with the agent's default grid; empty: not swept,
the default is used). "Validate" shows every problem, or the number of grid points; "Start sweep" is
enabled only after a grid validated and is disabled again by any edit. The server validates once more
when the sweep is submitted (the same `check_grid`, then `submit_sweep`'s own validation)."""

from __future__ import annotations

from typing import Any

from dash import Dash, Input, Output, State, ctx, dcc, html, no_update

from dashboard.auth import actor, require
from dashboard.components import card, notice, table
from dashboard.pages.controls_actions import act_with_ids, agent_dropdown, queued_notice
from dashboard.pages.controls_jobs import remember
from mlops.agents.specs import HYPERPARAMETER_NAMES, get_spec
from mlops.jobs import submit_sweep
from mlops.pipeline.sweeps.grids import DEFAULT_GRIDS, OBJECTIVES, GridCheck, check_grid, parse_grid_text
from mlops.settings import AGENTS, Settings

COLUMNS = [
    {"name": "hyperparameter", "id": "name", "editable": False},
    {"name": "default", "id": "default", "editable": False},
    {"name": "values to try (comma-separated; empty: not swept)", "id": "values", "editable": True},
]


def grid_rows(agent: str) -> list[dict[str, Any]]:
    defaults = get_spec(agent).defaults.model_dump()
    grid = DEFAULT_GRIDS.get(agent, {})
    return [
        {"name": n, "default": str(defaults[n]), "values": ", ".join(str(v) for v in grid.get(n, []))}
        for n in HYPERPARAMETER_NAMES
    ]


def sweep_card() -> Any:
    objectives = [{"label": f"{o} ({d})", "value": o} for o, d in OBJECTIVES.items()]
    return card(
        "Hyperparameter sweep",
        html.Div(
            [
                agent_dropdown("controls-sweep-agent"),
                dcc.Dropdown(
                    id="controls-objective",
                    options=objectives,
                    value="sharpe_ratio",
                    clearable=False,
                    className="filter",
                ),
                dcc.Input(id="controls-sweep-name", placeholder="name (optional)", maxLength=128, className="filter"),
            ],
            className="filters",
        ),
        table("controls-grid", grid_rows(AGENTS[0]), COLUMNS, sortable=False, page_size=20),
        html.Div(
            [
                html.Button("Validate", id="controls-grid-validate", className="button"),
                dcc.ConfirmDialogProvider(
                    html.Button("Start sweep", id="controls-sweep-button", className="button", disabled=True),
                    id="controls-sweep",
                    message="",
                ),
            ],
            className="controls-actions",
        ),
        html.Div(id="controls-grid-check"),
        html.Div(id="controls-sweep-result"),
        id="controls-sweep-card",
    )


def checked_grid(settings: Settings, agent: str, rows: list[dict[str, Any]] | None) -> tuple[GridCheck, dict[str, Any]]:
    """The editor's rows parsed and checked as the sweep will check them; (check, the grid to send)."""
    texts = {str(r.get("name")): str(r.get("values") or "") for r in rows or [] if isinstance(r, dict)}
    grid, problems = parse_grid_text(texts)
    if problems:
        return GridCheck({}, 0, tuple(problems)), grid
    return check_grid(agent, grid, settings.sweep_max_points), grid


def _problems(check: GridCheck) -> Any:
    return notice([html.Div("The grid cannot be swept:"), html.Ul([html.Li(p) for p in check.problems])], "error")


def register(app: Dash, settings: Settings) -> None:
    @app.callback(Output("controls-grid", "data"), Input("controls-sweep-agent", "value"), prevent_initial_call=True)
    def prefill(agent: str) -> list[dict[str, Any]]:
        require("operator")
        return grid_rows(agent)

    @app.callback(
        Output("controls-grid-check", "children"),
        Output("controls-sweep-button", "disabled"),
        Output("controls-sweep", "message"),
        Input("controls-grid-validate", "n_clicks"),
        Input("controls-grid", "data"),
        Input("controls-objective", "value"),
        State("controls-sweep-agent", "value"),
    )
    def validate(_: Any, rows: list[dict[str, Any]] | None, objective: str, agent: str) -> tuple[Any, bool, str]:
        require("operator")
        if ctx.triggered_id != "controls-grid-validate":
            return html.P("Validate the grid to start a sweep.", className="muted"), True, ""
        check, _grid = checked_grid(settings, agent, rows)
        if not check.ok:
            return _problems(check), True, ""
        swept = " × ".join(f"{name} ({len(values)})" for name, values in check.grid.items())
        message = (
            f"Start a sweep of {agent} over {check.points} grid points ({swept}), optimising {objective}? "
            "A worker trains one model per point as nested MLflow runs; no model is deployed by a sweep."
        )
        return notice(f"Valid grid: {check.points} points ({swept}).", "ok"), False, message

    @app.callback(
        Output("controls-sweep-result", "children"),
        Output("controls-sweep-job", "data"),
        Input("controls-sweep", "submit_n_clicks"),
        State("controls-sweep-agent", "value"),
        State("controls-grid", "data"),
        State("controls-objective", "value"),
        State("controls-sweep-name", "value"),
        State("controls-sweep-job", "data"),
        prevent_initial_call=True,
    )
    def start(_: int, agent: str, rows: Any, objective: str, name: str | None, kept: list[int] | None) -> Any:
        who = require("operator")
        check, grid = checked_grid(settings, agent, rows)
        if not check.ok:  # the browser's state is not trusted: nothing is submitted
            return _problems(check), no_update
        return act_with_ids(
            lambda: submit_sweep(
                settings, agent=agent, grid=grid, name=name or None, actor=actor(who), objective=objective
            ),
            lambda job: (
                queued_notice(job, f"Sweep {job.sweep_id} of {agent} ({check.points} points)"),
                remember(kept, [job.id]),
            ),
        )
