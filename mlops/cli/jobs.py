"""`skippy jobs ...`: the scheduled jobs — their status, a manual trigger, the history of executions.
Status and history read the app DB only (no MLflow)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import typer

from mlops.cli.common import JSON_OPTION, cli_actor, ready_settings
from mlops.cli.output import STATUS_STYLE, console, emit, fmt, table, user_errors

if TYPE_CHECKING:
    from mlops.scheduler import ExecutionRecord

app = typer.Typer(
    help="Scheduled jobs: status, trigger one now, history of executions.", no_args_is_help=True, rich_markup_mode=None
)
STYLES = STATUS_STYLE | {"skipped": "dim"}


def _styled(status: str | None) -> str:
    if not status:
        return "-"
    style = STYLES.get(status)
    return f"[{style}]{status}[/{style}]" if style else status


def _summary(execution: ExecutionRecord | None, width: int = 90) -> str:
    if execution is None:
        return "-"
    text = str(execution.result.get("summary") or execution.error or "")
    if execution.error and execution.status == "failed" and execution.error not in text:
        text = f"{text}; {execution.error}" if text else execution.error
    from rich.markup import escape  # an error may quote `[/...]`

    return escape(text if len(text) <= width else text[: width - 1] + "…")


@app.command("status")
def status_command(as_json: bool = JSON_OPTION) -> None:
    """Whether the scheduler is switched on, and per job: schedule (UTC), flag, next run, last run."""
    from mlops.scheduler import scheduler_status

    with user_errors(as_json):
        state = scheduler_status(ready_settings())

    def render() -> None:
        console.print(f"scheduler: {state.configuration}", highlight=False)
        rows: list[list[Any]] = []
        for job in state.jobs:
            last = job.last_execution
            rows.append(
                [
                    job.name,
                    job.cron if job.schedule_error is None else f"[red]invalid: {job.cron}[/red]",
                    "yes" if job.enabled else f"[yellow]no ({job.flag} off)[/yellow]",
                    fmt(job.next_run),
                    fmt(last.scheduled_for) if last else "never",
                    _styled(last.status) if last else "-",
                    _summary(last, 70),
                ]
            )
        table(
            "Scheduled jobs (UTC)",
            ["job", "schedule", "enabled", "next run", "last run", "status", "result"],
            rows,
        )
        for job in state.jobs:
            if job.schedule_error:
                console.print(f"[red]{job.schedule_error}[/red]", highlight=False)

    emit(as_json, state, render)


@app.command("trigger")
def trigger_command(
    job: str = typer.Argument(
        ..., help="retrain_market_insight, retrain_risk_assessor, drift_check, weekly_validation or champion_watch"
    ),
    as_json: bool = JSON_OPTION,
) -> None:
    """Run a scheduled job now (same checks as on its schedule: it may be skipped, with the reason). Its
    work is queued: `skippy jobs history` and the API's /api/mlops/jobs/{id} follow it."""
    from mlops.scheduler import trigger

    with user_errors(as_json):
        execution = trigger(ready_settings(), job, actor=cli_actor())

    def render() -> None:
        console.print(
            f"execution {execution.id} of {execution.job_name}: {_styled(execution.status)}  "
            f"{_summary(execution, 200)}",
            highlight=False,
        )
        if execution.job_ids:
            console.print(f"queued job(s): {', '.join(map(str, execution.job_ids))}", highlight=False)

    emit(as_json, execution, render)


@app.command("history")
def history_command(
    job: str | None = typer.Option(None, "--job", help="Only this scheduled job"),
    status: str | None = typer.Option(None, "--status", help="running, succeeded, rejected, failed or skipped"),
    limit: int = typer.Option(20, "--limit", min=1, max=500, help="How many, newest first"),
    as_json: bool = JSON_OPTION,
) -> None:
    """Executions of scheduled jobs, newest first: slot, trigger, who, status, what they found."""
    from mlops.scheduler import execution_history

    with user_errors(as_json):
        rows = execution_history(ready_settings(), job_name=job, status=status, limit=limit)
    emit(
        as_json,
        rows,
        lambda: table(
            "Scheduled job executions (UTC)",
            ["id", "job", "for", "trigger", "by", "status", "jobs", "result"],
            [
                [
                    str(e.id),
                    e.job_name,
                    e.scheduled_for.strftime("%Y-%m-%d %H:%M:%S"),
                    e.trigger,
                    e.requested_by,
                    _styled(e.status),
                    ",".join(map(str, e.job_ids)) or "-",
                    _summary(e),
                ]
                for e in rows
            ],
        ),
    )
