"""`skippy ai sweep ...`: hyperparameter grid sweeps (Optuna studies, nested MLflow runs)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from mlops.cli.common import JSON_OPTION, cli_actor, ready_settings
from mlops.cli.output import console, emit, err_console, fmt, print_json, styled, table, user_errors

AGENT_HELP = "market_insight or risk_assessor"


def register(app: typer.Typer) -> None:
    app.command("sweep")(sweep)
    app.command("sweep-worker")(sweep_worker)
    app.command("sweep-results")(sweep_results)
    app.command("sweeps")(sweeps)


def _results_table(settings: Any, record: Any, limit: int) -> None:
    from mlops.pipeline.sweeps import ranked_trials

    rows = ranked_trials(settings, record)[:limit]
    names = list(record.parameter_grid)
    table(
        f"sweep {record.id} ({record.name}): {styled(record.status)}, {record.n_complete} complete, "
        f"{record.n_failed} failed — by validation {record.objective_metric} ({record.direction})",
        ["trial", "status", record.objective_metric, *names, "val accuracy", "test sharpe", "seconds", "error"],
        [
            [
                str(t.trial_number),
                styled("passed" if t.status == "complete" else "failed"),
                t.objective_value,
                *(fmt(t.params.get(n)) for n in names),
                t.metrics.get("accuracy"),
                t.metrics.get("test_sharpe_ratio"),
                fmt(t.duration_seconds, 2),
                (t.error or "")[:50],
            ]
            for t in rows
        ],
    )
    _selection_line(record)


def _selection_line(record: Any) -> None:
    """The winner judged for selection bias (Deflated Sharpe Ratio), in words, under the table."""
    selection = record.selection
    if selection is None:
        return
    # The verdict already names the DSR, the expected maximum and the number of trials.
    unadjusted = (
        f"; without the correction, PSR vs 0 {selection.psr_vs_zero:.3f}" if selection.psr_vs_zero is not None else ""
    )
    console.print(f"selection bias: {selection.verdict}{unadjusted}", highlight=False, soft_wrap=True)
    for note in selection.notes:
        console.print(f"  note: {note}", highlight=False, soft_wrap=True)


def sweep(
    agent: str = typer.Option(..., "--agent", "-a", help=AGENT_HELP),
    config: Path = typer.Option(None, "--config", "-c", help='JSON grid, e.g. {"learning_rate": [0.001, 0.01]}'),
    name: str = typer.Option(None, "--name", help="Sweep name (default: agent and time)"),
    workers: int = typer.Option(None, "--workers", "-w", min=1, help="Worker processes (default: cores)"),
    symbol: str = typer.Option(None, "--symbol", "-s", help="Bars to train on (default SKIPPY_SYMBOL)"),
    objective: str = typer.Option("sharpe_ratio", help="Validation metric to optimise"),
    direction: str = typer.Option(None, help="maximize or minimize (default: the metric's natural one)"),
    time_budget: float = typer.Option(None, "--time-budget", help="Stop claiming new points after this many s"),
    register_best: bool = typer.Option(False, "--register-best", help="Retrain + validate the best configuration"),
    limit: int = typer.Option(10, help="Rows of the results table"),
    as_json: bool = JSON_OPTION,
) -> None:
    """Run a grid sweep: one Optuna study, a parent MLflow run and one nested child run per grid point,
    in parallel worker processes. Every grid point is evaluated exactly once. The winner's Sharpe is
    judged for selection bias: its Deflated Sharpe Ratio for the number of trials run."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from mlops.pipeline.sweeps import register_best as do_register
    from mlops.pipeline.sweeps import sweep as run

    with user_errors(as_json):
        settings = ready_settings()
        progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[detail]}"),
            TimeElapsedColumn(),
            console=err_console,
            auto_refresh=False,
            redirect_stdout=False,
            redirect_stderr=False,
            disable=as_json,
            transient=True,
        )
        task: dict[str, Any] = {}

        def created(record: Any) -> None:
            task["id"] = progress.add_task(f"sweep {record.id}", total=record.n_trials, detail="")
            if not as_json:
                err_console.print(
                    f"sweep {record.id}: {record.n_trials} grid points, study {record.study_name}, "
                    f"parent MLflow run {record.parent_run_id}",
                    highlight=False,
                )

        def update(state: Any) -> None:
            best = f"best {state.best_value:.4f}" if state.best_value is not None else "best -"
            progress.update(
                task["id"],
                completed=state.complete + state.failed,
                detail=f"done {state.complete} failed {state.failed} remaining {state.remaining} {best}",
            )
            progress.refresh()

        with progress:
            record = run(
                settings,
                actor=cli_actor(),
                agent=agent,
                config=config,
                name=name,
                symbol=symbol,
                workers=workers,
                objective=objective,
                direction=direction,
                time_budget_seconds=time_budget,
                on_created=created,
                on_progress=update,
            )
        registered = do_register(settings, record.id, actor=cli_actor()) if register_best else None

    if as_json:
        from mlops.pipeline.sweeps import ranked_trials

        print_json(
            {
                "sweep_id": record.id,
                "sweep": record,
                "trials": ranked_trials(settings, record),
                "registered": registered,
            }
        )
        return
    _results_table(settings, record, limit)
    if registered is not None:
        console.print(
            f"best configuration retrained as run {registered.model_run_id}: {styled(registered.status)}, "
            f"deployment {styled(registered.deployment_status)}, version {fmt(registered.model_version)} — "
            f"{registered.reason}",
            highlight=False,
        )


def sweep_worker(
    sweep_id: int = typer.Option(..., "--sweep-id", help="Sweep to join"),
    as_json: bool = JSON_OPTION,
) -> None:
    """Join a running sweep from this process or another machine (shared Optuna storage and MLflow
    store): evaluates only grid points no other worker has taken, until none are left."""
    from mlops.pipeline.sweeps import get_sweep, join_sweep

    with user_errors(as_json):
        settings = ready_settings()
        done = join_sweep(settings, sweep_id, actor=cli_actor())
        record = get_sweep(settings, sweep_id)
    emit(
        as_json,
        {"sweep_id": sweep_id, "evaluated": done, "sweep": record},
        lambda: console.print(f"evaluated {done} grid points; sweep {sweep_id} is {styled(record.status)}"),
    )


def sweep_results(
    sweep_id: int = typer.Option(..., "--sweep-id", help="Sweep id"),
    limit: int = typer.Option(100, min=1),
    as_json: bool = JSON_OPTION,
) -> None:
    """Trials of a sweep, best first by its objective (on the validation split), failed ones last."""
    from mlops.pipeline.sweeps import get_sweep, ranked_trials

    with user_errors(as_json):
        settings = ready_settings()
        record = get_sweep(settings, sweep_id)
        rows = ranked_trials(settings, record)[:limit]
    if as_json:
        print_json({"sweep_id": sweep_id, "sweep": record, "trials": rows})
    else:
        _results_table(settings, record, limit)


def sweeps(
    agent: str = typer.Option(None, "--agent", "-a", help=AGENT_HELP),
    limit: int = typer.Option(20, min=1),
    as_json: bool = JSON_OPTION,
) -> None:
    """Sweeps, newest first."""
    from mlops.pipeline.sweeps import list_sweeps
    from sweeps.storage import cli_storage_args, dashboard_command

    with user_errors(as_json):
        settings = ready_settings()
        rows = list_sweeps(settings, agent, limit)

    def render() -> None:
        table(
            "Sweeps",
            ["id", "name", "agent", "status", "points", "complete", "failed", "best", "DSR", "study", "created"],
            [
                [
                    str(r.id),
                    r.name,
                    r.agent_type,
                    styled(r.status),
                    str(r.n_trials),
                    str(r.n_complete),
                    str(r.n_failed),
                    r.best_value,
                    fmt(r.selection.dsr if r.selection else None, 3),
                    r.study_name or "-",
                    r.created_at,
                ]
                for r in rows
            ],
        )
        # soft_wrap: commands meant to be copied must not be broken across lines
        storage = settings.optuna_storage
        console.print(f"open the studies: {dashboard_command(storage)}", highlight=False, soft_wrap=True)
        console.print(
            f"list a study's trials: optuna trials --study-name NAME {cli_storage_args(storage)}",
            highlight=False,
            soft_wrap=True,
        )

    emit(as_json, rows, render)
