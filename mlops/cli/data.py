"""`skippy data ...`: import, generate and inspect market bars."""

from __future__ import annotations

from pathlib import Path

import typer

from mlops.cli.common import JSON_OPTION, cli_actor, ready_settings
from mlops.cli.output import console, emit, fmt, table, user_errors

app = typer.Typer(
    help="Market data: import CSV/Parquet, generate the synthetic market, status.",
    no_args_is_help=True,
    rich_markup_mode=None,
)


def _print_import(result: object) -> None:
    r = result  # ImportResult
    console.print(
        f"[bold]{r.symbol}[/bold]: {r.inserted} new, {r.updated} updated, {r.unchanged} unchanged bars "  # type: ignore[attr-defined]
        f"({fmt(r.first_ts)} → {fmt(r.last_ts)})"  # type: ignore[attr-defined]
    )


@app.command("import")
def import_file(
    file: Path = typer.Argument(
        ..., help="CSV or Parquet with a Date/Datetime column and Open, High, Low, Close, Volume"
    ),
    symbol: str = typer.Option(..., "--symbol", "-s", help="Symbol to store the bars under"),
    as_json: bool = JSON_OPTION,
) -> None:
    """Validate and import bars; re-importing the same file changes nothing."""
    from mlops.pipeline.market import import_bars_file

    with user_errors(as_json):
        settings = ready_settings()
        result = import_bars_file(settings, actor=cli_actor(), path=file, symbol=symbol)
    emit(as_json, result, lambda: _print_import(result))


@app.command("generate")
def generate(
    symbol: str = typer.Option("SYNTH", "--symbol", "-s"),
    bars: int = typer.Option(5000, "--bars", "-n", help="Number of bars to generate"),
    seed: int = typer.Option(42, help="Random seed (same seed, same market)"),
    regime: str = typer.Option(None, help="Hold one regime (calm, normal, volatile); default: switching"),
    append: bool = typer.Option(False, "--append", help="Continue after the symbol's last bar"),
    replace: bool = typer.Option(False, "--replace", help="Delete the symbol's bars first"),
    interval: str = typer.Option("1d", help="Bar interval: 1d (business days), 1h, 15min, ..."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Generate the seeded synthetic market (or append bars in a chosen regime to make drift happen)."""
    from mlops.pipeline.market import generate_bars

    with user_errors(as_json):
        settings = ready_settings()
        result = generate_bars(
            settings,
            actor=cli_actor(),
            symbol=symbol,
            n_bars=bars,
            seed=seed,
            regime=regime,
            append=append,
            replace=replace,
            interval=interval,
        )
    emit(as_json, result, lambda: _print_import(result))


@app.command("status")
def status(as_json: bool = JSON_OPTION) -> None:
    """Bars stored per symbol."""
    from mlops.data.store import bars_status

    with user_errors(as_json):
        settings = ready_settings()
        rows = bars_status(settings.app_db_url)
    emit(
        as_json,
        rows,
        lambda: table(
            "Market bars",
            ["symbol", "bars", "first", "last", "sources"],
            [[r.symbol, str(r.bars), r.first_ts, r.last_ts, r.sources] for r in rows],
        ),
    )
