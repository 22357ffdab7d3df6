"""The Controls page's "Run a scheduled job now": the job to run, a confirm dialog saying what it does,
and the execution's outcome (the jobs it queued join the jobs panel). Both callbacks ask for the operator
role first; a job name the page never offers is refused naming the known ones."""

from __future__ import annotations

from typing import Any

from dash import Dash, Input, Output, State, dcc, html

from dashboard.auth import actor, require
from dashboard.components import card, notice
from dashboard.pages.controls_actions import act_with_ids, confirmed
from dashboard.pages.controls_jobs import remember
from mlops.errors import InvalidRequestError
from mlops.scheduler import JOBS, ExecutionRecord, trigger
from mlops.settings import Settings


def schedule_card() -> Any:
    options = [{"label": f"{j.name}: {j.description}", "value": j.name} for j in JOBS]
    return card(
        "Run a scheduled job now",
        html.Div(
            [dcc.Dropdown(id="controls-schedule-name", options=options, value=JOBS[0].name, clearable=False)],
            className="filters controls-wide",
        ),
        confirmed("controls-schedule", "Run now", ""),
        html.Div(id="controls-schedule-result"),
        id="controls-schedule-card",
    )


def register(app: Dash, settings: Settings) -> None:
    described = {j.name: j for j in JOBS}

    @app.callback(Output("controls-schedule", "message"), Input("controls-schedule-name", "value"))
    def message(name: str) -> str:
        require("operator")
        job = described.get(name)
        if job is None:
            raise InvalidRequestError(f"unknown scheduled job {name!r}; known: {', '.join(described)}")
        gate = f" It is skipped while the flag {job.flag} is off." if job.flag else ""
        return (
            f"Run the scheduled job {name} now? {job.description}. It takes the same step as on its schedule, "
            f"with the same reasons to skip, recorded as a manual trigger by you.{gate}"
        )

    @app.callback(
        Output("controls-schedule-result", "children"),
        Output("controls-schedule-job", "data"),
        Input("controls-schedule", "submit_n_clicks"),
        State("controls-schedule-name", "value"),
        State("controls-schedule-job", "data"),
        prevent_initial_call=True,
    )
    def run_now(_: int, name: str, kept: list[int] | None) -> tuple[Any, Any]:
        who = require("operator")
        result = act_with_ids(lambda: trigger(settings, name, actor=actor(who)), lambda e: _executed(e, kept))
        return result


def _executed(record: ExecutionRecord, kept: list[int] | None) -> tuple[Any, list[int]]:
    summary = record.result.get("summary") or record.error or ""
    kind = {"skipped": "warning", "failed": "error"}.get(record.status, "ok")
    text = f"{record.job_name}: {record.status} (execution {record.id}). {summary}".strip()
    return notice(text, kind), remember(kept, list(record.job_ids))
