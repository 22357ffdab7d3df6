"""The `skippy` command. Imports stay lazy (inside commands) so `skippy --help` is instant."""

from __future__ import annotations

import typer

from mlops.cli import ai, data, db, flags
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


@app.command("up")
def up(
    ui: bool = typer.Option(True, "--ui/--no-ui", help="Serve the MLflow UI after training"),
    port: int = typer.Option(5001, help="MLflow UI port"),
    retrain_agents: bool = typer.Option(True, "--retrain/--no-retrain", help="Retrain both agents"),
    as_json: bool = JSON_OPTION,
) -> None:
    """Initialise the stores, load the synthetic market if there are no bars, retrain both agents,
    show the deployed models, then serve the MLflow UI (Ctrl-C stops it)."""
    from mlops.cli.platform import run_up

    run_up(ui=ui, port=port, retrain_agents=retrain_agents, as_json=as_json)


def main() -> None:
    app()
