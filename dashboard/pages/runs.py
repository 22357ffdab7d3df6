"""Runs & jobs: the model runs (filter by agent, status, trigger) and, for the one selected (a click, or
`?run=<id>` from another page), its gate verdict, metrics, hyperparameters, error and explanation; below,
the background jobs (filter by kind, status) and the scheduler's executions. Every list is bounded."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from typing import Any

from dash import Dash, Input, Output, State, callback_context, dcc, html, no_update
from dash.exceptions import PreventUpdate

from dashboard.components import (
    card,
    markdown_run_link,
    markdown_version_link,
    mlflow_ui_base,
    notice,
    number_column,
    table,
)
from dashboard.pages import PageContext
from dashboard.pages.run_detail import run_detail, took
from mlops.errors import NotFoundError
from mlops.jobs import JobRecord, list_jobs
from mlops.jobs.service import KINDS as JOB_KINDS
from mlops.pipeline.queries import RunRecord, get_run_detail, list_runs, runs_watermark
from mlops.scheduler import ExecutionRecord, execution_history
from mlops.settings import AGENTS, Settings

PATH = "/runs"
TITLE = "Runs & jobs"
ROLE = "viewer"
LIMIT = 200  # rows per table: the newest; narrower filters reach older ones
EXECUTIONS = 100
RUN_STATUSES = ("queued", "running", "succeeded", "rejected", "failed")
RUN_TRIGGERS = ("manual", "api", "dashboard", "scheduled", "drift", "performance", "sweep")  # who asked
JOB_STATUSES = (*RUN_STATUSES, "cancelled")


RUN_COLUMNS = [
    {"name": "#", "id": "id", "type": "numeric"},
    {"name": "agent", "id": "agent"},
    {"name": "status", "id": "status"},
    {"name": "trigger", "id": "trigger"},
    {"name": "requested by", "id": "requested_by"},
    {"name": "version", "id": "version", "presentation": "markdown"},
    {"name": "MLflow run", "id": "mlflow", "presentation": "markdown"},
    number_column("Sharpe (test)", "sharpe"),
    number_column("return (test)", "total_return"),
    number_column("max drawdown (test)", "max_drawdown"),
    number_column("gate p", "gate_p", 4),
    {"name": "deployment", "id": "deployment"},
    {"name": "created (UTC)", "id": "created"},
    {"name": "took", "id": "took"},
]
JOB_COLUMNS = [
    ("#", "id"),
    ("kind", "kind"),
    ("agent", "agent"),
    ("status", "status"),
    ("requested by", "requested_by"),
    ("created (UTC)", "created"),
    ("started", "started"),
    ("finished", "finished"),
    ("error", "error"),
    ("model run", "model_run"),
]
EXECUTION_COLUMNS = [
    ("#", "id"),
    ("job", "job"),
    ("slot (UTC)", "slot"),
    ("trigger", "trigger"),
    ("status", "status"),
    ("result", "summary"),
    ("queue jobs", "jobs"),
    ("finished", "finished"),
    ("error", "error"),
]


def _dropdown(id: str, values: tuple[str, ...], placeholder: str, value: str | None = None) -> dcc.Dropdown:
    options = [{"label": v, "value": v} for v in values]
    return dcc.Dropdown(id=id, options=options, value=value, placeholder=placeholder, className="filter")


def _choice(query: dict[str, str], key: str, allowed: tuple[str, ...]) -> str | None:
    value = query.get(key)
    return value if value in allowed else None


def layout(ctx: PageContext) -> Any:
    q = ctx.query
    run_filters = html.Div(
        [
            _dropdown("runs-agent", AGENTS, "any agent", _choice(q, "agent", AGENTS)),
            _dropdown("runs-status", RUN_STATUSES, "any status", _choice(q, "status", RUN_STATUSES)),
            _dropdown("runs-trigger", RUN_TRIGGERS, "any trigger", _choice(q, "trigger", RUN_TRIGGERS)),
        ],
        className="filters",
    )
    job_filters = html.Div(
        [_dropdown("runs-job-kind", JOB_KINDS, "any kind"), _dropdown("runs-job-status", JOB_STATUSES, "any status")],
        className="filters",
    )
    return html.Div(
        [
            html.H2("Runs & jobs"),
            run_filters,
            card(
                f"Model runs (newest {LIMIT}; click a row for its detail)",
                table("runs-table", [], RUN_COLUMNS, page_size=15),
                id="runs-card",
            ),
            card("Run detail", html.Div(id="runs-detail"), id="runs-detail-card"),
            card(
                f"Jobs (newest {LIMIT}; click one with a model run to show that run above)",
                job_filters,
                table("runs-jobs", [], JOB_COLUMNS, page_size=15),
                id="runs-jobs-card",
            ),
            card(
                f"Scheduled executions (newest {EXECUTIONS})",
                table("runs-executions", [], EXECUTION_COLUMNS, page_size=15),
                id="runs-executions-card",
            ),
            dcc.Store(id="runs-selected", data=q.get("run")),
            dcc.Store(id="runs-watermark"),
            dcc.Store(id="runs-detail-state"),
            dcc.Store(id="runs-jobs-digest"),
            dcc.Store(id="runs-executions-digest"),
        ]
    )


def _at(moment: datetime | None) -> str:
    """Times in tables, compact (UTC, like every time the project stores); the detail says how long ago."""
    return f"{moment:%Y-%m-%d %H:%M:%S}" if moment else ""


def _run_row(r: RunRecord, base: str) -> dict[str, Any]:
    gate = (r.validation or {}).get("metrics") or {}
    return {
        "id": r.id,
        "agent": r.agent_type,
        "status": r.status,
        "trigger": r.trigger,
        "requested_by": r.requested_by,
        "version": markdown_version_link(base, r.agent_type, r.model_version),
        "mlflow": markdown_run_link(base, r.mlflow_run_id),
        "sharpe": r.metrics.get("test_sharpe_ratio"),
        "total_return": r.metrics.get("test_total_return"),
        "max_drawdown": r.metrics.get("test_max_drawdown"),
        "gate_p": gate.get("gate_p_value"),
        "deployment": r.deployment_status or "",
        "created": _at(r.created_at),
        "took": took(r.created_at, r.finished_at),
    }


def _job_row(j: JobRecord) -> dict[str, Any]:
    return {
        "id": j.id,
        "kind": j.kind,
        "agent": j.agent_type or "",
        "status": j.status,
        "requested_by": j.requested_by,
        "created": _at(j.created_at),
        "started": _at(j.started_at),
        "finished": _at(j.finished_at),
        "error": j.error or "",
        "model_run": f"#{j.model_run_id}" if j.model_run_id else "",
        "model_run_id": j.model_run_id,
    }


def _execution_row(e: ExecutionRecord) -> dict[str, Any]:
    return {
        "id": e.id,
        "job": e.job_name,
        "slot": f"{e.scheduled_for:%Y-%m-%d %H:%M}",
        "trigger": e.trigger,
        "status": e.status,
        "summary": str(e.result.get("summary", "")),
        "jobs": ", ".join(f"#{i}" for i in e.job_ids),
        "finished": _at(e.finished_at),
        "error": e.error or "",
    }


def _run_id(raw: Any) -> int | str:
    """The selected run's id, or why the value is not one (it can come from the URL)."""
    text = str(raw).strip().lstrip("#")
    if not text.isdigit() or len(text) > 12:
        return f"?run= must be a model run's id (a whole number), got {str(raw)[:40]!r}."
    return int(text)


def register(app: Dash, settings: Settings) -> None:
    @app.callback(
        Output("runs-table", "data"),
        Output("runs-watermark", "data"),
        Input("refresh", "n_intervals"),
        Input("runs-agent", "value"),
        Input("runs-status", "value"),
        Input("runs-trigger", "value"),
        State("runs-watermark", "data"),
    )
    def runs(_: Any, agent: str | None, status: str | None, trigger: str | None, seen: Any) -> tuple[Any, Any]:
        mark = [str(v) for v in runs_watermark(settings)]
        if callback_context.triggered_id == "refresh" and mark == seen:
            raise PreventUpdate  # no run added or changed since the table was drawn
        found = list_runs(settings, agent=agent, status=status, trigger=trigger, limit=LIMIT)
        base = mlflow_ui_base(settings)
        return [_run_row(r, base) for r in found], mark

    @app.callback(
        Output("runs-selected", "data"),
        Input("runs-table", "active_cell"),
        Input("runs-jobs", "active_cell"),
        State("runs-jobs", "data"),
        prevent_initial_call=True,
    )
    def select(run_cell: dict[str, Any] | None, job_cell: dict[str, Any] | None, jobs: list[dict[str, Any]]) -> Any:
        if callback_context.triggered_id == "runs-table" and run_cell and run_cell.get("row_id") is not None:
            return run_cell["row_id"]
        if callback_context.triggered_id == "runs-jobs" and job_cell:
            job = next((j for j in jobs or [] if j["id"] == job_cell.get("row_id")), None)
            if job and job.get("model_run_id"):
                return job["model_run_id"]
        raise PreventUpdate

    @app.callback(
        Output("runs-detail", "children"),
        Output("runs-detail-state", "data"),
        Input("runs-selected", "data"),
        Input("refresh", "n_intervals"),
        State("runs-detail-state", "data"),
    )
    def detail(selected: Any, _: Any, shown: Any) -> tuple[Any, Any]:
        if selected is None:
            return html.P(
                "Click a run in the table (or a job with a model run) to see it here.", className="muted"
            ), None
        run_id = _run_id(selected)
        if isinstance(run_id, str):
            return notice(run_id, "error"), None
        try:
            run = get_run_detail(settings, run_id)  # the run and its explanation, as the API's GET /runs/{id}
        except NotFoundError as exc:
            return notice(f"{exc}.", "error"), None
        insight = run.insight
        state = [run.id, run.status, run.deployment_status, insight.status if insight else None]
        if callback_context.triggered_id == "refresh" and state == shown:
            raise PreventUpdate  # nothing about this run changed: keep the page still
        return run_detail(run, insight, mlflow_ui_base(settings)), state

    @app.callback(
        Output("runs-jobs", "data"),
        Output("runs-jobs-digest", "data"),
        Input("refresh", "n_intervals"),
        Input("runs-job-kind", "value"),
        Input("runs-job-status", "value"),
        State("runs-jobs-digest", "data"),
    )
    def jobs(_: Any, kind: str | None, status: str | None, seen: str | None) -> tuple[Any, str]:
        return _unless_unchanged(
            [_job_row(j) for j in list_jobs(settings, kind=kind, status=status, limit=LIMIT)], seen
        )

    @app.callback(
        Output("runs-executions", "data"),
        Output("runs-executions-digest", "data"),
        Input("refresh", "n_intervals"),
        State("runs-executions-digest", "data"),
    )
    def executions(_: Any, seen: str | None) -> tuple[Any, str]:
        return _unless_unchanged([_execution_row(e) for e in execution_history(settings, limit=EXECUTIONS)], seen)


def _unless_unchanged(rows: list[dict[str, Any]], seen: str | None) -> tuple[Any, str]:
    """The rows and their digest; no rows sent when the table already shows them (most refreshes)."""
    digest = hashlib.sha256(json.dumps(rows, sort_keys=True, default=str).encode()).hexdigest()
    return (no_update if digest == seen else rows), digest
