"""Building blocks every page uses: links to the MLflow UI, tables, cards, notices, figures with no data,
number and time formats, and `act` — how a control calls a service and shows what happened."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import plotly.graph_objects as go
from dash import dash_table, html
from dash.dash_table.Format import Format, Scheme
from flask import has_request_context, request

from mlops.errors import AuthenticationError, PermissionDeniedError, SkippyError
from mlops.insights import InsightRecord
from mlops.settings import Settings

# Typed Any: Dash types `dcc.Graph(config=...)` as its own TypedDict.
GRAPH_CONFIG: Any = {"displaylogo": False, "responsive": True}
COLORS = {"ok": "#2e7d32", "warning": "#ed6c02", "critical": "#c62828", "info": "#0277bd", "muted": "#78909c"}


# Links to the MLflow UI -------------------------------------------------------------------------------------


def mlflow_ui_base(settings: Settings) -> str:
    """SKIPPY_MLFLOW_UI_URL, else the host the browser reached the dashboard on, at SKIPPY_MLFLOW_UI_PORT."""
    if settings.mlflow_ui_url:
        return settings.mlflow_ui_url.rstrip("/")
    host = request.host.rsplit(":", 1)[0] if has_request_context() else "127.0.0.1"
    if host.startswith("[") is False and ":" in host:  # a bare IPv6 address
        host = f"[{host}]"
    scheme = request.scheme if has_request_context() else "http"
    return f"{scheme}://{host}:{settings.mlflow_ui_port}"


def run_url(base: str, run_id: str) -> str:
    return f"{base}/#/runs/{quote(run_id)}"


def version_url(base: str, agent: str, version: int) -> str:
    return f"{base}/#/models/{quote(agent)}/versions/{version}"


def run_link(base: str, run_id: str | None, text: str | None = None) -> Any:
    """A link to an MLflow run (opens in a new tab), or a dash when there is none."""
    if not run_id:
        return "—"
    return html.A(text or run_id[:8], href=run_url(base, run_id), target="_blank", rel="noopener", className="mlflow")


def version_link(base: str, agent: str, version: int | None, text: str | None = None) -> Any:
    if version is None:
        return "—"
    return html.A(
        text or f"v{version}",
        href=version_url(base, agent, version),
        target="_blank",
        rel="noopener",
        className="mlflow",
    )


def markdown_run_link(base: str, run_id: str | None, text: str | None = None) -> str:
    """The same link as Markdown, for DataTable cells (columns with `presentation: markdown`)."""
    if not run_id:
        return ""
    return f"[{text or run_id[:8]}]({run_url(base, run_id)})"


def markdown_version_link(base: str, agent: str, version: int | None) -> str:
    return f"[v{version}]({version_url(base, agent, version)})" if version is not None else ""


# Formats ----------------------------------------------------------------------------------------------------


def fmt(value: Any, digits: int = 3) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        if value != value:  # NaN
            return "—"
        return f"{value:.{digits}f}"
    return str(value)


def pct(value: float | None, digits: int = 1) -> str:
    return "—" if value is None else f"{100 * value:.{digits}f} %"


def when(moment: datetime | None) -> str:
    """`2026-11-30 02:00 UTC (3 h ago)`."""
    if moment is None:
        return "—"
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    seconds = (datetime.now(UTC) - moment).total_seconds()
    future = seconds < 0
    seconds = abs(seconds)
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            span = f"{seconds / size:.0f} {unit}"
            break
    else:
        span = f"{seconds:.0f} s"
    return f"{moment:%Y-%m-%d %H:%M} UTC ({'in ' + span if future else span + ' ago'})"


# Layout pieces ----------------------------------------------------------------------------------------------


def card(title: str, *children: Any, id: str | None = None, className: str = "") -> html.Section:
    kwargs: dict[str, Any] = {"className": f"card {className}".strip()}
    if id is not None:
        kwargs["id"] = id
    return html.Section([html.H3(title), *children], **kwargs)


def notice(text: Any, kind: str = "info", id: str | None = None) -> html.Div:
    """A message box: kind info | ok | warning | error."""
    kwargs: dict[str, Any] = {"className": f"notice notice-{kind}", "role": "status"}
    if id is not None:
        kwargs["id"] = id
    return html.Div(text, **kwargs)


def badge(status: str | None) -> html.Span:
    """A status word in its colour (ok/succeeded/passed green, warning amber, critical/failed red)."""
    status = status or "—"
    return html.Span(status, className=f"badge badge-{status.lower()}")


def table(
    id: str,
    rows: Sequence[dict[str, Any]],
    columns: Sequence[tuple[str, str]] | Sequence[dict[str, Any]],
    *,
    page_size: int = 20,
    sortable: bool = True,
    filterable: bool = False,
    markdown: Sequence[str] = (),
    row_selectable: str | bool = False,
) -> Any:
    """A DataTable: `columns` are (header, field) pairs (or DataTable column dicts); fields named in
    `markdown` render links. Sorting and paging happen in the browser."""
    specs = [
        c
        if isinstance(c, dict)
        else {"name": c[0], "id": c[1]} | ({"presentation": "markdown"} if c[1] in markdown else {})
        for c in columns
    ]
    return dash_table.DataTable(  # type: ignore[attr-defined]
        id=id,
        data=list(rows),
        columns=specs,
        page_size=page_size,
        sort_action="native" if sortable else "none",
        filter_action="native" if filterable else "none",
        row_selectable=row_selectable,
        markdown_options={"link_target": "_blank"},
        style_table={"overflowX": "auto"},
        style_cell={"textAlign": "left", "fontFamily": "inherit", "fontSize": "13px", "padding": "4px 8px"},
        style_header={"fontWeight": "600", "backgroundColor": "#eceff1"},
        style_data_conditional=[
            {"if": {"filter_query": f'{{status}} = "{s}"'}, "color": COLORS[c]}
            for s, c in (
                ("critical", "critical"),
                ("failed", "critical"),
                ("warning", "warning"),
                ("rejected", "warning"),
            )
        ],
    )


def empty_figure(message: str) -> go.Figure:
    """A figure that says why it is empty, instead of blank axes."""
    figure = go.Figure()
    figure.add_annotation(text=message, showarrow=False, font={"size": 14, "color": COLORS["muted"]})
    figure.update_layout(xaxis={"visible": False}, yaxis={"visible": False}, height=260, template="plotly_white")
    return figure


def styled(figure: go.Figure, height: int = 340, title: str | None = None) -> go.Figure:
    figure.update_layout(
        template="plotly_white",
        height=height,
        margin={"l": 50, "r": 20, "t": 40 if title else 20, "b": 40},
        title=title,
        legend={"orientation": "h", "y": -0.2},
    )
    return figure


# Actions ----------------------------------------------------------------------------------------------------


def act(action: Callable[[], Any], done: Callable[[Any], Any]) -> Any:
    """Run one control's service call: its result through `done`, or the user's error as an error notice.
    A missing role or session is not shown but re-raised, so the server answers 403/401 (the guard and the
    error handler in dashboard/server.py)."""
    try:
        result = action()
    except (PermissionDeniedError, AuthenticationError):
        raise
    except SkippyError as exc:
        return notice(str(exc), "error")
    return done(result)


# Shared by several pages ------------------------------------------------------------------------------------


def number_column(name: str, field: str, digits: int = 3) -> dict[str, Any]:
    """A DataTable column of numbers shown with `digits` decimals (sorting stays numeric)."""
    return {"name": name, "id": field, "type": "numeric", "format": Format(precision=digits, scheme=Scheme.fixed)}


def insight_box(record: InsightRecord, id: str | None = None) -> html.Div:
    """A plain-language explanation : its text, where it came from, and
    whether the generated one is still on its way (the template text shows until it arrives)."""
    pending = " (the generated explanation is on its way)" if record.status == "pending" else ""
    kwargs: dict[str, Any] = {"className": "insight-box"}
    if id is not None:
        kwargs["id"] = id
    parts: list[Any] = [
        html.Div(record.text, className="insight"),
        html.Div(record.source + pending, className="insight-source"),
    ]
    if record.generated:  # the facts it was written from stay one click away
        parts.append(
            html.Details([html.Summary("the facts (template text)"), html.Div(record.template)], className="muted")
        )
    return html.Div(parts, **kwargs)
