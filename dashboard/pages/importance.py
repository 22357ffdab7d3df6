"""Feature importance across versions: permutation importance (on each version's held-out split, recorded at
training) as a versions × features heatmap for the chosen agent, and the chosen version's ranking with its
spread over the permutation repeats."""

from __future__ import annotations

from typing import Any

import plotly.graph_objects as go
from dash import Dash, Input, Output, dcc, html

from dashboard.components import GRAPH_CONFIG, card, empty_figure, mlflow_ui_base, styled, version_link
from dashboard.pages import PageContext
from mlops.pipeline.queries import ImportanceRecord
from mlops.pipeline.queries.importance_history import importance_history
from mlops.settings import AGENTS, Settings

PATH = "/importance"
TITLE = "Feature importance"
ROLE = "viewer"
CONFIG = GRAPH_CONFIG
VERSIONS = 30  # newest versions in the heatmap: more rows are unreadable at any screen size


def layout(ctx: PageContext) -> Any:
    agent = ctx.query.get("agent", "")
    agent = agent if agent in AGENTS else AGENTS[0]
    return html.Div(
        [
            html.H2("Feature importance"),
            html.Div(
                [
                    dcc.Dropdown(
                        id="importance-agent",
                        options=[{"label": a, "value": a} for a in AGENTS],
                        value=agent,
                        clearable=False,
                        className="filter",
                    )
                ],
                className="filters",
            ),
            card(
                "Permutation importance per version (held-out split; loss increase when a feature is shuffled)",
                dcc.Graph(id="importance-heatmap", config=CONFIG, figure=empty_figure("loading…")),
                html.Div(id="importance-versions", className="muted"),
                id="importance-heatmap-card",
            ),
            card(
                "Ranking of the champion (without one: of the newest version)",
                dcc.Graph(id="importance-ranking", config=CONFIG, figure=empty_figure("loading…")),
                id="importance-ranking-card",
            ),
        ]
    )


def _feature_order(rows: list[ImportanceRecord], reference: int) -> list[str]:
    """Features by their rank in the reference version (the champion), then any others by name."""
    ranked = sorted((r for r in rows if r.model_version == reference), key=lambda r: r.rank)
    order = [r.feature for r in ranked]
    return order + sorted({r.feature for r in rows} - set(order))


def heatmap(agent: str, rows: list[ImportanceRecord], reference: int) -> go.Figure:
    versions = sorted({r.model_version for r in rows})
    features = _feature_order(rows, reference)
    value: dict[tuple[int, str], float] = {(r.model_version, r.feature): r.importance for r in rows}
    z = [[value.get((v, f)) for f in features] for v in versions]
    figure = go.Figure(
        go.Heatmap(
            z=z,
            x=features,
            y=[f"v{v}" for v in versions],
            colorscale="RdBu",
            zmid=0,  # below 0: shuffling the feature helped (noise the model learned)
            colorbar={"title": "importance"},
            hovertemplate="%{y} %{x}: %{z:.4f}<extra></extra>",
        )
    )
    figure.update_layout(xaxis_title="feature (ordered by the champion's rank)", yaxis_title=f"{agent} version")
    figure.update_yaxes(type="category")
    figure.update_layout(uirevision=agent)  # a refresh keeps the user's zoom
    return styled(figure, height=max(260, 80 + 28 * len(versions)))


def ranking(rows: list[ImportanceRecord], version: int) -> go.Figure:
    mine = sorted((r for r in rows if r.model_version == version), key=lambda r: r.rank, reverse=True)
    figure = go.Figure(
        go.Bar(
            x=[r.importance for r in mine],
            y=[r.feature for r in mine],
            orientation="h",
            error_x={"type": "data", "array": [r.importance_std for r in mine]},
            name=f"v{version}",
        )
    )
    figure.update_layout(xaxis_title=f"importance of v{version} (± std over repeats)")
    return styled(figure, height=max(260, 60 + 22 * len(mine)))


def register(app: Dash, settings: Settings) -> None:
    @app.callback(
        Output("importance-heatmap", "figure"),
        Output("importance-ranking", "figure"),
        Output("importance-versions", "children"),
        Input("refresh", "n_intervals"),
        Input("importance-agent", "value"),
    )
    def refresh(_: Any, agent: str) -> tuple[Any, Any, Any]:
        rows, champion = importance_history(settings, agent=agent, versions=VERSIONS)
        if not rows:
            why = f"No feature importance of {agent} yet: each retrain records its version's."
            return empty_figure(why), empty_figure(why), ""
        reference = champion if champion is not None else max(r.model_version for r in rows)
        base = mlflow_ui_base(settings)
        shown = sorted({r.model_version for r in rows})
        links: list[Any] = [f"Versions shown (the {VERSIONS} newest at most, and the champion): "]
        for v in reversed(shown):
            links += [version_link(base, agent, v), " "]
        return heatmap(agent, rows, reference), ranking(rows, reference), links
