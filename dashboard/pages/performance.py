"""Performance: each model version's scores over time for the chosen agent and window (one trace per version),
with the champion's promotions, rollbacks and auto-rollbacks marked on the time axis; below, the champion's
equity on its held-out test window against buy-and-hold (read from its MLflow run once, then cached)."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import plotly.graph_objects as go
from dash import Dash, Input, Output, dcc, html

from dashboard.components import (
    COLORS,
    GRAPH_CONFIG,
    card,
    empty_figure,
    mlflow_ui_base,
    notice,
    run_link,
    styled,
    version_link,
)
from dashboard.pages import PageContext
from mlops.errors import SkippyError
from mlops.pipeline.queries import PerformanceRecord, performance_history
from mlops.pipeline.queries.equity import EquityCurve, champion_equity
from mlops.pipeline.queries.timeline import ChampionEvent, champion_events
from mlops.settings import AGENTS, Settings

PATH = "/performance"
TITLE = "Performance"
ROLE = "viewer"
CONFIG = GRAPH_CONFIG
MAX_LABELS = 12  # champion moves labelled in text; more would overlap (markers and hover still show them all)
MAX_LEGEND = 12  # versions named in the legend
LIMIT = 500  # newest scores drawn (a version's held-out scores, every drift check's live score)

WINDOWS = {
    "live": "live (each drift check scores the champion on recent bars)",
    "test": "test (held-out, at training)",
    "validation": "validation (at training)",
    "paper": "paper trading (staged rollout)",
}
METRICS = {
    "sharpe_ratio": "Sharpe (annualised, net)",
    "accuracy": "accuracy",
    "f1": "F1",
    "precision": "precision",
    "recall": "recall",
    "log_loss": "log loss",
    "max_drawdown": "max drawdown",
}
EVENT_STYLE = {
    "promotion": (COLORS["ok"], "solid"),
    "rollback": (COLORS["warning"], "dash"),
    "auto-rollback": (COLORS["critical"], "dot"),
}


def _dropdown(id: str, options: dict[str, str], value: str) -> Any:
    return dcc.Dropdown(
        id=id,
        options=[{"label": label, "value": v} for v, label in options.items()],
        value=value,
        clearable=False,
        className="filter",
    )


def layout(ctx: PageContext) -> Any:
    agent = ctx.query.get("agent", "")
    agent = agent if agent in AGENTS else AGENTS[0]
    filters = html.Div(
        [
            _dropdown("performance-agent", {a: a for a in AGENTS}, agent),
            _dropdown("performance-window", WINDOWS, "live"),
            _dropdown("performance-metric", METRICS, "sharpe_ratio"),
        ],
        className="filters",
    )
    return html.Div(
        [
            html.H2("Performance"),
            filters,
            card(
                "Scores over time, per model version",
                dcc.Graph(id="performance-history", config=CONFIG, figure=empty_figure("loading…")),
                html.Div(id="performance-versions", className="muted"),
                id="performance-history-card",
            ),
            card(
                "Champion equity against buy-and-hold (held-out test window)",
                dcc.Graph(id="performance-equity", config=CONFIG, figure=empty_figure("loading…")),
                html.Div(id="performance-equity-links", className="muted"),
                id="performance-equity-card",
            ),
        ]
    )


def _moved(e: ChampionEvent) -> str:
    return f"v{e.from_version} → v{e.to_version}" if e.from_version is not None else f"v{e.to_version}"


def _event_marks(figure: go.Figure, events: list[ChampionEvent]) -> None:
    """A vertical line per champion move and a marker at its top (hover: versions, actor, reason), one legend
    entry per kind; a few moves are also labelled in text. Shapes and labels are set in one layout update:
    plotly's add_shape/add_annotation copy every earlier one (quadratic in the number of moves)."""
    shapes = []
    faint = 0.35 if len(events) > MAX_LABELS else 0.8  # many moves: lines behind the scores, not over them
    for e in events:
        color, dash = EVENT_STYLE[e.kind]
        line = {"color": color, "dash": dash, "width": 1}
        shapes.append(
            {
                "type": "line",
                "xref": "x",
                "yref": "paper",
                "x0": e.at,
                "x1": e.at,
                "y0": 0,
                "y1": 1,
                "line": line,
                "opacity": faint,
                "layer": "below",
            }
        )
    for kind, (color, _) in EVENT_STYLE.items():
        mine = [e for e in events if e.kind == kind]
        if mine:
            figure.add_trace(
                go.Scatter(
                    x=[e.at for e in mine],
                    y=[1.0] * len(mine),
                    yaxis="y2",
                    mode="markers",
                    marker={"symbol": "triangle-down", "size": 9, "color": color},
                    name=kind,
                    hovertext=[f"{kind} {_moved(e)} by {e.actor}: {e.reason[:200]}" for e in mine],
                    hoverinfo="text+x",
                )
            )
    labels = [
        {
            "x": e.at,
            "xref": "x",
            "y": 1,
            "yref": "paper",
            "yanchor": "bottom",
            "text": f"{e.kind} {_moved(e)}",
            "showarrow": False,
            "font": {"size": 10, "color": EVENT_STYLE[e.kind][0]},
        }
        for e in events
    ]
    figure.update_layout(
        shapes=shapes,
        annotations=labels if len(labels) <= MAX_LABELS else [],
        yaxis2={"overlaying": "y", "range": [0, 1.02], "visible": False, "fixedrange": True},
    )


def history_figure(
    records: list[PerformanceRecord], events: list[ChampionEvent], metric: str, why_empty: str
) -> go.Figure:
    by_version: dict[int, list[PerformanceRecord]] = defaultdict(list)
    for r in records:
        if getattr(r, metric) is not None:
            by_version[r.model_version].append(r)
    if not by_version:
        return empty_figure(why_empty)
    figure = go.Figure()
    legend = len(by_version) <= MAX_LEGEND  # beyond, the linked list of versions under the chart names them
    for version in sorted(by_version):
        points = sorted(by_version[version], key=lambda r: r.recorded_at)
        figure.add_trace(
            go.Scatter(
                x=[r.recorded_at for r in points],
                y=[getattr(r, metric) for r in points],
                mode="lines+markers",
                name=f"v{version}",
                showlegend=legend,
                customdata=[
                    [
                        f"{r.window_start:%Y-%m-%d %H:%M}" if r.window_start else "?",
                        f"{r.window_end:%Y-%m-%d %H:%M}" if r.window_end else "?",
                        r.n_samples,
                    ]
                    for r in points
                ],
                hovertemplate=f"v{version} %{{y:.3f}}<br>"
                "bars %{customdata[0]} to %{customdata[1]} (%{customdata[2]})<extra>%{x}</extra>",
            )
        )
    _event_marks(figure, events)
    # uirevision: a refresh with the same choices keeps the user's zoom and hidden traces
    figure.update_layout(xaxis_title="recorded at (UTC)", yaxis_title=METRICS[metric], uirevision=metric)
    return styled(figure, height=380)


def equity_figure(curve: EquityCurve) -> go.Figure:
    if curve.dates is not None:
        x: list[Any] = list(curve.dates)
        axis = f"{curve.symbol} test bars (UTC)"
    else:
        x = list(range(len(curve.strategy)))
        axis = "bar of the test window (dates not recoverable: bars were imported into it afterwards)"
    figure = go.Figure()
    figure.add_trace(go.Scatter(x=x, y=curve.strategy, mode="lines", name=f"{curve.agent_type} v{curve.version}"))
    figure.add_trace(
        go.Scatter(x=x, y=curve.buy_hold, mode="lines", name="buy & hold", line={"color": COLORS["muted"]})
    )
    figure.update_layout(
        xaxis_title=axis,
        yaxis_title="equity (start = 1), net of costs",
        uirevision=f"{curve.agent_type}{curve.version}",
    )
    return styled(figure, height=340)


def register(app: Dash, settings: Settings) -> None:
    @app.callback(
        Output("performance-history", "figure"),
        Output("performance-versions", "children"),
        Input("refresh", "n_intervals"),
        Input("performance-agent", "value"),
        Input("performance-window", "value"),
        Input("performance-metric", "value"),
    )
    def history(_: Any, agent: str, window: str, metric: str) -> tuple[Any, Any]:
        if metric not in METRICS or window not in WINDOWS:
            return empty_figure(f"unknown metric {metric!r} or window {window!r}"), ""
        records = performance_history(settings, agent=agent, window=window, limit=LIMIT)
        since = min((r.recorded_at for r in records), default=None)
        events = champion_events(settings, agent=agent, since=since) if records else []
        why = f"No {window} scores of {agent} with {METRICS[metric]} yet." + (
            " Each drift check records one; the test window has every version's held-out score."
            if window == "live"
            else ""
        )
        base = mlflow_ui_base(settings)
        versions = sorted({r.model_version for r in records})
        links: list[Any] = ["Versions shown: "] if versions else []
        for v in versions:
            links += [version_link(base, agent, v), " "]
        return history_figure(records, events, metric, why), links

    @app.callback(
        Output("performance-equity", "figure"),
        Output("performance-equity-links", "children"),
        Input("refresh", "n_intervals"),
        Input("performance-agent", "value"),
    )
    def equity(_: Any, agent: str) -> tuple[Any, Any]:
        try:
            curve = champion_equity(settings, agent)
        except SkippyError as exc:
            return empty_figure(f"No equity curve for {agent}'s champion (why: below)."), notice(str(exc), "warning")
        if curve is None:
            return empty_figure(f"{agent} has no champion yet."), ""
        base = mlflow_ui_base(settings)
        links = [
            "Champion ",
            version_link(base, agent, curve.version),
            ", from MLflow run ",
            run_link(base, curve.mlflow_run_id),
            " (artifact test_equity.csv)",
        ]
        return equity_figure(curve), links
