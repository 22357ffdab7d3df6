"""Sweeps: every sweep with its live progress; for the one selected (a row, or `?sweep=N`) the parallel
coordinates of its grid against the objective, its trials, and its best trial with the deflated significance
of picking it. An operator registers the best configuration through the validation gate, as a job whose
progress the page follows to the gate's verdict."""

from __future__ import annotations

from typing import Any

from dash import Dash, Input, Output, State, dcc, html, no_update

from dashboard import PREFIX
from dashboard.auth import actor, require
from dashboard.components import (
    GRAPH_CONFIG,
    act,
    badge,
    card,
    empty_figure,
    fmt,
    markdown_run_link,
    mlflow_ui_base,
    notice,
    run_link,
    table,
    version_link,
    when,
)
from dashboard.pages import PageContext
from dashboard.pages.sweeps_figures import parallel_coordinates, significance
from mlops.errors import NotFoundError
from mlops.jobs import JobRecord, get_job, submit_register_best
from mlops.jobs.service import TERMINAL as JOB_ENDED
from mlops.pipeline.sweeps import SweepRecord, TrialRecord, get_sweep, list_sweeps, progress, ranked_trials
from mlops.settings import Settings

PATH = "/sweeps"
TITLE = "Sweeps"
ROLE = "viewer"
LIMIT = 100
POLL_MS = 1000  # while a registration job runs
FIGURE_HEIGHT = 380

COLUMNS = [
    ("#", "id"),
    ("agent", "agent"),
    ("name", "name"),
    ("status", "status"),
    ("objective", "objective"),
    ("trials done", "progress"),
    ("best", "best"),
    ("created", "created"),
    ("MLflow", "mlflow"),
]


def _selected(query: dict[str, str]) -> tuple[int | None, Any]:
    """The sweep `?sweep=N` asks for, or a notice saying what is wrong with it."""
    raw = query.get("sweep")
    if raw is None:
        return None, None
    if raw.isdigit() and int(raw) > 0:
        return int(raw), None
    return None, notice(f"?sweep= takes a sweep's id (a whole number), not {raw!r}.", "error")


def _sweep_row(s: SweepRecord, base: str) -> dict[str, Any]:
    done = s.n_complete + s.n_failed
    arrow = "↑" if s.direction == "maximize" else "↓"
    return {
        "id": s.id,
        "agent": s.agent_type,
        "name": s.name,
        "status": s.status,
        "objective": f"{s.objective_metric} {arrow}",
        "progress": f"{done}/{s.n_trials}" + (f" ({s.n_failed} failed)" if s.n_failed else ""),
        "best": round(s.best_value, 4) if s.best_value is not None else None,
        "created": when(s.created_at),
        "mlflow": markdown_run_link(base, s.parent_run_id, "parent run"),
    }


def layout(ctx: PageContext) -> Any:
    sweep_id, problem = _selected(ctx.query)
    controls: list[Any] = []
    if ctx.who.can("operator"):
        controls = [
            dcc.ConfirmDialogProvider(
                html.Button("Register best through the gate", id="sweeps-register-button", className="button"),
                id="sweeps-register",
                message="Retrain the agent with this sweep's best configuration, as a job? The candidate goes through "
                "the validation gate like any retrain: the gate decides whether it is registered and deployed.",
            ),
            html.Div(id="sweeps-register-result"),
            html.Div(id="sweeps-job-status"),
            dcc.Store(id="sweeps-job"),
            dcc.Interval(id="sweeps-job-poll", interval=POLL_MS, disabled=True),
        ]
    hint = (
        "Select a sweep (the round button at the start of its row) to see its trials."
        if list_sweeps(ctx.settings, limit=1)
        else "No sweep yet: an operator starts one on the Controls page, or with skippy ai sweep."
    )
    return html.Div(
        [
            html.H2("Sweeps"),
            problem or "",
            card(
                "Sweeps",
                html.P(hint, className="muted"),
                table("sweeps-table", [], COLUMNS, row_selectable="single", markdown=("mlflow",)),
                id="sweeps-card",
            ),
            dcc.Store(id="sweeps-selected", data=sweep_id),
            dcc.Store(id="sweeps-shown"),
            html.Div(
                [
                    html.Div(id="sweeps-summary"),
                    html.Div(
                        [
                            card(
                                "Parameters vs objective",
                                dcc.Graph(
                                    id="sweeps-parcoords",
                                    config=GRAPH_CONFIG,
                                    figure=empty_figure("…"),
                                    style={"height": f"{FIGURE_HEIGHT}px"},
                                ),
                                id="sweeps-parcoords-card",
                            ),
                            card("Best trial", html.Div(id="sweeps-best"), *controls, id="sweeps-best-card"),
                        ],
                        className="grid",
                    ),
                    card("Trials", table("sweeps-trials", [], [("trial", "trial")]), id="sweeps-trials-card"),
                ],
                id="sweeps-detail",
                hidden=True,
            ),
        ]
    )


def _summary(s: SweepRecord, live: Any, base: str) -> Any:
    done = s.n_complete + s.n_failed
    counts = f"{done} of {s.n_trials} trials evaluated ({s.n_complete} complete, {s.n_failed} failed"
    if live is not None:
        counts += f", {live.running} running, {live.waiting} waiting"
    facts = [
        ("status", badge(s.status)),
        ("progress", html.Span([html.Progress(value=str(done), max=str(max(s.n_trials, 1))), " ", counts + ")"])),
        ("agent · symbol", f"{s.agent_type} · {s.symbol or 'default'}"),
        ("objective", f"{s.objective_metric} ({s.direction})"),
        ("grid", ", ".join(f"{k}: {v}" for k, v in s.parameter_grid.items())),
        ("requested", f"by {s.requested_by}, {when(s.created_at)}"),
        ("finished", when(s.finished_at)),
        ("MLflow", run_link(base, s.parent_run_id, "parent run")),
    ]
    if s.stop_reason:
        facts.append(("stopped because", s.stop_reason))
    items = [x for k, v in facts for x in (html.Dt(k), html.Dd(v))]
    return card(f"Sweep #{s.id} · {s.name}", html.Dl(items, className="kv"), id="sweeps-summary-card")


def _trials(s: SweepRecord, trials: list[TrialRecord], base: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The trials table's columns (one per hyperparameter of the grid) and rows, best first."""
    names = list(s.parameter_grid) or sorted({k for t in trials for k in t.params})
    columns = [
        {"name": "trial", "id": "trial", "type": "numeric"},
        {"name": "state", "id": "status"},
        {"name": s.objective_metric, "id": "value", "type": "numeric"},
        *({"name": n, "id": f"param-{i}"} for i, n in enumerate(names)),
        {"name": "seconds", "id": "seconds", "type": "numeric"},
        {"name": "MLflow", "id": "mlflow", "presentation": "markdown"},
        {"name": "error", "id": "error"},
    ]
    rows = [
        {
            "trial": t.trial_number,
            "status": t.status,
            "value": round(t.objective_value, 4) if t.objective_value is not None else None,
            **{f"param-{i}": _cell(t.params.get(n)) for i, n in enumerate(names)},
            "seconds": round(t.duration_seconds, 1) if t.duration_seconds is not None else None,
            "mlflow": markdown_run_link(base, t.child_run_id, f"trial {t.trial_number}"),
            "error": t.error or "",
        }
        for t in trials
    ]
    return columns, rows


def _cell(value: Any) -> Any:
    return value if isinstance(value, int | float | str) and not isinstance(value, bool) else str(value)


def _best(s: SweepRecord, trials: list[TrialRecord], base: str) -> Any:
    best = next((t for t in trials if t.status == "complete"), None)  # ranked: the first complete is the best
    if best is None:
        return html.P("No trial has completed yet.", className="muted")
    headline, details = significance(s)
    so_far = "" if s.status in ("completed", "stopped", "failed") else " (so far)"
    params = " · ".join(f"{k} = {v}" for k, v in best.params.items())
    value = fmt(best.objective_value)
    return html.Div(
        [
            html.P([html.Strong(f"Trial #{best.trial_number}{so_far}: "), f"{s.objective_metric} {value}"]),
            html.P(params),
            html.P(["MLflow: ", run_link(base, best.child_run_id, f"trial {best.trial_number} run")]),
            html.P(headline, id="sweeps-significance"),
            html.P(details, className="insight-source") if details else "",
        ]
    )


def _job_status(job: JobRecord, base: str) -> Any:
    """Where the registration job is: queued → running → succeeded/rejected (the gate's reason) or failed."""
    result = job.result
    links: list[Any] = []
    if job.model_run_id is not None:
        links = [" ", dcc.Link(f"model run #{job.model_run_id}", href=f"{PREFIX}/runs?run={job.model_run_id}")]
    if result.get("mlflow_run_id"):
        links += [" · ", run_link(base, result["mlflow_run_id"], "MLflow run")]
    if result.get("model_version") is not None:
        links += [" · ", version_link(base, str(job.agent_type), int(result["model_version"]))]
    state = html.Span(job.status, id="sweeps-job-state", className=f"badge badge-{job.status}")
    head: list[Any] = [f"Job #{job.id} ", state, ": "]
    if job.status == "queued":
        return notice([*head, "waiting for a worker.", *links])
    if job.status == "running":
        return notice([*head, f"training and validating since {when(job.started_at)}.", *links])
    if job.status == "succeeded":
        deployed = result.get("deployment_status") or "registered"
        return notice([*head, f"{deployed}: {result.get('reason') or 'passed the gate'}.", *links], "ok")
    if job.status == "rejected":
        return notice([*head, f"the gate said: {job.error or result.get('reason')}.", *links], "warning")
    return notice([*head, job.error or job.status, *links], "error")


def register(app: Dash, settings: Settings) -> None:
    @app.callback(
        Output("sweeps-table", "data"),
        Output("sweeps-table", "selected_rows"),
        Input("refresh", "n_intervals"),
        State("sweeps-selected", "data"),
    )
    def rows(_: Any, selected: int | None) -> tuple[list[dict[str, Any]], list[int]]:
        base = mlflow_ui_base(settings)
        found = [_sweep_row(s, base) for s in list_sweeps(settings, limit=LIMIT)]
        return found, [i for i, r in enumerate(found) if r["id"] == selected]

    @app.callback(
        Output("sweeps-selected", "data"),
        Input("sweeps-table", "selected_row_ids"),
        State("sweeps-selected", "data"),
        prevent_initial_call=True,
    )
    def select(ids: list[int] | None, current: int | None) -> Any:
        return ids[0] if ids and ids[0] != current else no_update

    @app.callback(
        Output("sweeps-detail", "hidden"),
        Output("sweeps-summary", "children"),
        Output("sweeps-parcoords", "figure"),
        Output("sweeps-trials", "columns"),
        Output("sweeps-trials", "data"),
        Output("sweeps-best", "children"),
        Output("sweeps-shown", "data"),
        Input("sweeps-selected", "data"),
        Input("refresh", "n_intervals"),
        State("sweeps-shown", "data"),
    )
    def detail(sweep_id: int | None, _: Any, shown: list[Any] | None) -> tuple[Any, ...]:
        if sweep_id is None:
            return (True, *[no_update] * 6)
        try:
            s = get_sweep(settings, sweep_id)
        except NotFoundError as exc:
            return (False, notice(f"{exc}.", "error"), empty_figure(str(exc)), [], [], "", None)
        live = progress(settings, s.id) if s.status == "running" and s.study_name else None
        signature = [s.id, s.status, s.n_complete, s.n_failed, live.running if live else 0]
        if signature == shown:  # nothing new: keep the reader's sorting, paging and axis brushing
            return (False, *[no_update] * 6)
        base = mlflow_ui_base(settings)
        trials = ranked_trials(settings, s)
        columns, data = _trials(s, trials, base)
        figure = parallel_coordinates(s, trials, height=FIGURE_HEIGHT)
        return False, _summary(s, live, base), figure, columns, data, _best(s, trials, base), signature

    @app.callback(
        Output("sweeps-register-result", "children"),
        Output("sweeps-job", "data"),
        Input("sweeps-register", "submit_n_clicks"),
        State("sweeps-selected", "data"),
        prevent_initial_call=True,
    )
    def queue_best(_: int, sweep_id: int | None) -> tuple[Any, Any]:
        who = require("operator")
        if sweep_id is None:
            return notice("Select a sweep first.", "warning"), no_update
        queued = act(lambda: submit_register_best(settings, int(sweep_id), actor=actor(who)), lambda job: job)
        if not isinstance(queued, JobRecord):
            return queued, no_update  # the refusal, in words
        params = queued.parameters.get("hyperparameters") or {}
        text = f"Queued as job #{queued.id}: {queued.agent_type} retrained with " + (
            ", ".join(f"{k} = {v}" for k, v in params.items()) or "its defaults"
        )
        return notice(text + ".", "info"), queued.id

    @app.callback(
        Output("sweeps-job-status", "children"),
        Output("sweeps-job-poll", "disabled"),
        Input("sweeps-job", "data"),
        Input("sweeps-job-poll", "n_intervals"),
        prevent_initial_call=True,
    )
    def follow(job_id: Any, _: Any) -> tuple[Any, bool]:
        """The queued job's progress, polled until it ends; a job pruned since (or an id that is not one's)
        says so once and stops the polling."""
        if job_id is None:
            return "", True
        if not isinstance(job_id, int) or isinstance(job_id, bool):
            return notice(f"{job_id!r} is not a job id.", "error"), True
        try:
            job = get_job(settings, job_id)
        except NotFoundError as exc:
            return notice(f"{exc}: it was removed from the store since it was queued.", "warning"), True
        return _job_status(job, mlflow_ui_base(settings)), job.status in JOB_ENDED
