"""The Controls page's job panel: the jobs this browser tab started (ids kept in a session-scoped
`dcc.Store`), each with its kind, status, what it is doing now and, once it ended, its outcome with
links to the run on the Runs page and in MLflow. It polls every second only while one is still active;
otherwise the shell's refresh interval is enough."""

from __future__ import annotations

from typing import Any

from dash import Dash, Input, Output, dcc, html

from dashboard import PREFIX
from dashboard.auth import require
from dashboard.components import badge, card, fmt, mlflow_ui_base, run_link, version_link, when
from mlops.errors import NotFoundError
from mlops.jobs import JobRecord, get_job
from mlops.jobs.service import ACTIVE
from mlops.pipeline.sweeps import progress
from mlops.settings import Settings

SHOWN = 8  # the newest jobs of this tab; older ones are on the Jobs/Runs pages
POLL_MS = 1000
# Where each control keeps the ids of the jobs it queued (session storage: they survive moving to another page
# and back). Only that control writes its store, and this panel only reads them: no two writers to race.
NEW_JOB_STORES = ("controls-retrain-job", "controls-drift-job", "controls-sweep-job", "controls-schedule-job")


def remember(kept: list[int] | None, new: list[int]) -> list[int]:
    """A control's store after it queued `new` jobs: newest first, at most SHOWN."""
    return [*new, *(i for i in kept or [] if i not in new)][:SHOWN]


def panel() -> Any:
    return html.Div(
        [
            card("Jobs started here", html.Div(id="controls-jobs-panel"), id="controls-jobs-card"),
            dcc.Interval(id="controls-poll", interval=POLL_MS, disabled=True),
            *(dcc.Store(id=store, storage_type="session") for store in NEW_JOB_STORES),
        ]
    )


def register(app: Dash, settings: Settings) -> None:
    @app.callback(
        Output("controls-jobs-panel", "children"),
        Output("controls-poll", "disabled"),
        *(Input(store, "data") for store in NEW_JOB_STORES),
        Input("controls-poll", "n_intervals"),
        Input("refresh", "n_intervals"),
    )
    def jobs(*args: Any) -> tuple[Any, bool]:
        require("operator")
        kept = args[: len(NEW_JOB_STORES)]
        ids = sorted({i for ids in kept for i in _ids(ids)}, reverse=True)[:SHOWN]
        records = _records(settings, ids)
        if not records:
            return html.P("No job started from this page yet.", className="muted"), True
        base = mlflow_ui_base(settings)
        active = any(r.status in ACTIVE for r in records)
        return [job_view(settings, base, r) for r in records], not active


def _ids(kept: Any) -> list[int]:
    """A control's store: job ids (session storage, so what the browser sends back; anything else is dropped)."""
    if not isinstance(kept, list):
        return []
    return [i for i in kept if isinstance(i, int) and not isinstance(i, bool)]


def _records(settings: Settings, ids: list[int]) -> list[JobRecord]:
    found = []
    for job_id in ids:
        try:
            found.append(get_job(settings, job_id))
        except NotFoundError:  # pruned from the store since: nothing to show
            continue
    return found


def job_view(settings: Settings, base: str, job: JobRecord) -> Any:
    title = f"Job {job.id}: {job.kind} of {job.agent_type or 'every agent'}"
    return html.Div(
        [
            html.Div([html.Strong(title), " ", badge(job.status), html.Span(f" requested {when(job.created_at)}")]),
            html.Div(progress_text(settings, job), className="controls-job-progress"),
            *([] if job.status in ACTIVE else [html.Div(outcome(base, job), className="controls-job-outcome")]),
        ],
        id=f"controls-job-{job.id}",
        className=f"controls-job controls-job-{job.status}",
    )


def progress_text(settings: Settings, job: JobRecord) -> str:
    """What the job is doing now, in words."""
    if job.status == "queued":
        return "Waiting for a worker."
    if job.status != "running":
        return f"Ended {when(job.finished_at)}."
    since = f"started {when(job.started_at)}"
    stopping = " Cancel requested: stopping." if job.cancel_requested else ""
    if job.kind == "retrain":
        return f"Training model run {job.model_run_id}, {since}.{stopping}"
    if job.kind == "sweep" and job.sweep_id is not None:
        now = progress(settings, job.sweep_id)  # one sweep's trials: cheap enough to poll
        best = f", best so far {fmt(now.best_value)}" if now.best_value is not None else ""
        return (
            f"Sweep {job.sweep_id}: {now.complete + now.failed} of {now.total} trials done "
            f"({now.failed} failed, {now.running} running){best}; {since}.{stopping}"
        )
    return f"Running, {since}.{stopping}"


def outcome(base: str, job: JobRecord) -> list[Any]:
    """How it ended, with links to what it made."""
    result = job.result or {}
    parts: list[Any] = []
    if job.kind == "retrain" and job.model_run_id is not None:
        parts += _retrain_outcome(base, job, result)
    elif job.kind == "sweep" and job.sweep_id is not None:
        parts += _sweep_outcome(base, job.sweep_id, result)
    elif job.kind == "drift":
        parts += _drift_outcome(result)
    if job.error:  # a rejection is the gate's verdict, not a failure
        kind = "warning" if job.status == "rejected" else "error"
        parts.append(html.Div(job.error, className=f"notice notice-{kind}"))
    return parts


def runs_href(run_id: int) -> str:
    return f"{PREFIX}/runs?run={run_id}"


def _retrain_outcome(base: str, job: JobRecord, result: dict[str, Any]) -> list[Any]:
    assert job.model_run_id is not None
    agent = job.agent_type or ""
    version = result.get("model_version")
    deployed = result.get("deployment_status")
    words = f"version v{version}, {deployed or 'not deployed'}" if version is not None else "no version registered"
    return [
        html.Span("Model run "),
        dcc.Link(f"#{job.model_run_id}", href=runs_href(job.model_run_id), className="controls-run-link"),
        html.Span(f": {result.get('status', job.status)}, {words}. MLflow run "),
        run_link(base, result.get("mlflow_run_id")),
        html.Span(", model version "),
        version_link(base, agent, version),
        *([html.Div(result["reason"], className="muted")] if result.get("reason") and not job.error else []),
    ]


def _sweep_outcome(base: str, sweep_id: int, result: dict[str, Any]) -> list[Any]:
    best = result.get("best_value")
    return [
        html.Span("Sweep "),
        dcc.Link(f"#{sweep_id}", href=f"{PREFIX}/sweeps?sweep={sweep_id}"),
        html.Span(
            f": {result.get('status', '?')}, {result.get('n_complete', 0)} of {result.get('n_trials', 0)} trials "
            f"complete, best {result.get('objective_metric', 'objective')} {fmt(best)}. MLflow parent run "
        ),
        run_link(base, result.get("parent_run_id")),
    ]


def _drift_outcome(result: dict[str, Any]) -> list[Any]:
    checks = result.get("checks") or []
    parts: list[Any] = []
    for check in checks:
        parts.append(
            html.Div(
                [
                    html.Span(f"{check.get('agent_type')} v{check.get('model_version')}: "),
                    badge(check.get("status")),
                    html.Span(" check "),
                    dcc.Link(str(check.get("check_id", ""))[:8], href=f"{PREFIX}/drift?check={check.get('check_id')}"),
                ]
            )
        )
    for reaction in result.get("reactions") or []:
        parts.append(html.Div(str(reaction.get("message", "")), className="muted"))
    return parts or [html.Span("No agent had a champion to check.")]
