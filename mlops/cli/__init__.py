"""The `skippy` command. Imports stay lazy (inside commands) so `skippy --help` is instant."""

from __future__ import annotations

import atexit
import gc
import sys

import typer

from mlops.cli import ai, alerts, auth, data, db, flags, jobs
from mlops.cli.common import JSON_OPTION

app = typer.Typer(
    help="Skippy MLOps: retrain, validate, deploy and watch the trading agents.",
    no_args_is_help=True,
    rich_markup_mode=None,  # plain help: typer's rich help imports markdown and pygments (~0.3 s)
    pretty_exceptions_enable=False,
)
app.add_typer(ai.app, name="ai")
app.add_typer(data.app, name="data")
app.add_typer(db.app, name="db")
app.add_typer(flags.app, name="flags")
app.add_typer(auth.app, name="auth")
app.add_typer(jobs.app, name="jobs")
app.add_typer(alerts.app, name="alerts")


@app.command("up")
def up(
    serve: bool = typer.Option(True, "--serve/--no-serve", help="Serve the API and the MLflow UI afterwards"),
    port: int | None = typer.Option(None, help="API port (default SKIPPY_API_PORT, 5000)"),
    ui_port: int | None = typer.Option(None, help="MLflow UI port (default SKIPPY_MLFLOW_UI_PORT, 5001)"),
    retrain_all: bool = typer.Option(False, "--retrain", help="Retrain both agents even if they are deployed"),
    as_json: bool = JSON_OPTION,
) -> None:
    """Initialise the stores, load the synthetic market if there are no bars, train the agents that
    have no champion, create an admin API key on first start, then serve the API (:5000) and the
    MLflow UI (:5001) until Ctrl-C."""
    from mlops.cli.platform import run_up

    run_up(serve=serve, api_port=port, ui_port=ui_port, retrain_all=retrain_all, as_json=as_json)


@app.command("serve")
def serve(
    host: str | None = typer.Option(None, help="Interface (default SKIPPY_API_HOST, 127.0.0.1)"),
    port: int | None = typer.Option(None, help="Port (default SKIPPY_API_PORT, 5000)"),
    jobs: bool = typer.Option(True, "--jobs/--no-jobs", help="Run queued jobs from this replica"),
) -> None:
    """Serve the API alone (for replicas behind a load balancer; they share the stores)."""
    from mlops.cli.platform import run_serve

    run_serve(host=host, port=port, dispatch=jobs)


@app.command("scheduler")
def scheduler(
    jobs: bool = typer.Option(
        True, "--jobs/--no-jobs", help="Run the queued jobs from here too (alerts are sent either way)"
    ),
) -> None:
    """Run the scheduler alone, in the foreground, until Ctrl-C or SIGTERM (whatever ENABLE_MLOPS_JOBS says):
    the scheduled jobs, the job dispatcher that runs their queued work, and alert delivery — no API server
    needed. Several may run on one database: each scheduled slot still runs once."""
    from mlops.cli.platform import run_scheduler

    run_scheduler(dispatch=jobs)


def main() -> None:
    # At exit the interpreter's last cyclic collections walk the whole heap a command's imports built
    # (MLflow, SQLAlchemy, pydantic, scipy): ~0.7 s of `skippy ai retrain`. Frozen objects are left to
    # the OS; atexit handlers registered later (MLflow's flushes, ...) still run before this one.
    atexit.register(gc.freeze)
    _refuse_control_characters(sys.argv[1:])
    app()


def _refuse_control_characters(args: list[str]) -> None:
    """Exit 2 naming the option when an argument holds a control character (`mlops.cli.inputs`)."""
    from mlops.cli.inputs import check_arguments
    from mlops.errors import InvalidRequestError

    try:
        check_arguments(typer.main.get_command(app), args)
    except InvalidRequestError as exc:
        from mlops.cli.output import fail

        try:
            fail(str(exc), code=2, as_json="--json" in args)
        except typer.Exit as done:
            raise SystemExit(done.exit_code) from None
