"""`skippy ai run ID` and `skippy ai insight ...`: one run with its plain-language explanation, and the
explanation of a run or a critical drift check (generated now with `--generate`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer
from rich.markup import escape

from mlops.cli.common import JSON_OPTION, cli_actor, ready_settings
from mlops.cli.output import console, emit, fmt, styled, table, user_errors

if TYPE_CHECKING:
    from mlops.insights import InsightRecord, Subject


def register(app: typer.Typer) -> None:
    app.command("run")(run)
    app.command("insight")(insight)


def print_insight(record: InsightRecord | None) -> None:
    """The explanation as a paragraph, with where it came from (and why it is the template's, when it is)."""
    if record is None:
        console.print("insight: none yet (a run gets one when it ends; a drift check when it is critical)")
        return
    why = ""
    if record.status == "pending" and record.error:
        why = f"; generating it failed ({escape(record.error)}), it is tried again later"
    elif record.status == "pending":
        why = "; the generated one is on its way"
    elif record.status == "template" and record.error:
        why = f"; {escape(record.error)}"
    console.print(f"[bold]insight[/bold] ({record.source}{why}):", highlight=False)
    console.print(escape(record.text), highlight=False, soft_wrap=True)


def run(
    run_id: int = typer.Argument(..., min=1, help="Model run id (`skippy ai runs` lists them)"),
    as_json: bool = JSON_OPTION,
) -> None:
    """One model run: its outcome, held-out metrics, the gate's verdict and its plain-language explanation."""
    from mlops.pipeline.queries.runs import get_run_detail

    with user_errors(as_json):
        detail = get_run_detail(ready_settings(), run_id)

    def render() -> None:
        console.print(
            f"run {detail.id}: {detail.agent_type} {styled(detail.status)}  deployment: "
            f"{styled(detail.deployment_status)}  version: {fmt(detail.model_version)}  trigger: {detail.trigger}  "
            f"by {escape(detail.requested_by)}  {fmt(detail.created_at)} → {fmt(detail.finished_at)}",
            highlight=False,
        )
        test = {k.removeprefix("test_"): v for k, v in detail.metrics.items() if k.startswith("test_")}
        if test:
            table("held-out test metrics", ["metric", "value"], [[k, v] for k, v in test.items()])
        if detail.validation:
            console.print(f"gate: {escape(str(detail.validation.get('verdict', '')))}", highlight=False)
        elif detail.error:
            console.print(f"error: {escape(detail.error)}", highlight=False)
        if detail.mlflow_run_id:
            console.print(f"MLflow run: {detail.mlflow_run_id}")
        print_insight(detail.insight)

    emit(as_json, detail, render)


def insight(
    run_id: int = typer.Option(None, "--run", min=1, help="A model run's id"),
    check_id: str = typer.Option(None, "--check", help="A critical drift check's id"),
    generate: bool = typer.Option(
        False, "--generate", help="Generate it now (within SKIPPY_INSIGHT_TIMEOUT_SECONDS) if it is not generated yet"
    ),
    as_json: bool = JSON_OPTION,
) -> None:
    """The plain-language explanation of a retrain (--run) or a critical drift check (--check): the generated
    text when an OpenAI-compatible API wrote one (OPENAI_API_KEY), else the template's."""
    from mlops.errors import InvalidRequestError
    from mlops.insights import generate_now, require_insight

    with user_errors(as_json):
        if (run_id is None) == (check_id is None):
            raise InvalidRequestError("give exactly one of --run ID or --check ID")
        settings = ready_settings()
        subject: Subject = "retrain" if run_id is not None else "drift"
        subject_id = str(run_id) if run_id is not None else check_id
        if generate:
            with console.status("generating the explanation ..."):
                record = generate_now(settings, subject, subject_id, actor=cli_actor())
        else:
            record = require_insight(settings, subject, subject_id)
    emit(as_json, record, lambda: print_insight(record))
