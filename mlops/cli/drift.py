"""`skippy ai drift ...`: drift checks and their history. Drift found is information: exit code 0."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import typer
from rich.markup import escape

from mlops.cli.common import JSON_OPTION, cli_actor, ready_settings
from mlops.cli.output import console, emit, fmt, styled, table, user_errors

if TYPE_CHECKING:
    from mlops.jobs.reactions import Reaction
    from mlops.pipeline.drift import DriftCheck
    from mlops.settings import Settings

AGENT_HELP = "market_insight or risk_assessor (default: every agent with a champion)"
STATUS_STYLE = {"ok": "green", "warning": "yellow", "critical": "red", "insufficient": "magenta"}


def _status(status: str) -> str:
    style = STATUS_STYLE.get(status)
    return f"[{style}]{status}[/{style}]" if style else styled(status)


def register(app: typer.Typer) -> None:
    app.command("drift")(drift)
    app.command("drift-history")(drift_history)


def drift(
    agent: str = typer.Option(None, "--agent", "-a", help=AGENT_HELP),
    window: int = typer.Option(
        None, "--window", min=1, help="Bars in the current window (default SKIPPY_DRIFT_WINDOW_BARS)"
    ),
    features: bool = typer.Option(
        False, "--features", help="List every feature (default: the drifting ones) with its KL, p and null percentile"
    ),
    as_json: bool = JSON_OPTION,
) -> None:
    """Check feature, prediction and performance drift of the champion(s) against their training window.

    Each status is a test: the statistic must be improbable under its bootstrap null (features: after
    Benjamini-Hochberg across features) and pass its threshold, which is an effect-size floor.
    A critical check raises a drift_critical alert and, with the flag mlops_auto_retrain on, queues a
    retrain of that agent (trigger drift) for the job dispatcher of `skippy up`/`skippy serve`."""
    from mlops.pipeline.drift import check_all, check_drift
    from mlops.pipeline.drift_history import test_numbers

    with user_errors(as_json):
        settings = ready_settings()
        checks = (
            [check_drift(settings, actor=cli_actor(), agent=agent, window_bars=window)]
            if agent
            else check_all(settings, actor=cli_actor(), window_bars=window)
        )
        reactions = _react(settings, checks)

    def render() -> None:
        if not checks:
            console.print("no agent has a champion yet: nothing to check")
        for c in checks:
            rows = [r for r in c.rows if features or r.feature is None or r.status not in ("ok", "insufficient")]
            table(
                f"{c.agent_type} v{c.model_version} on {c.symbol}, {c.window_bars} bars "
                f"({fmt(c.current_start)} → {fmt(c.current_end)}): {_status(c.status)}   check {c.check_id}",
                [
                    "drift",
                    "statistic",
                    "feature",
                    "value",
                    "warning >",
                    "critical >",
                    "p",
                    "adj. p",
                    "null pct",
                    "status",
                    "notes",
                ],
                [
                    [
                        r.drift_type,
                        r.statistic,
                        r.feature or ("summary" if r.drift_type == "feature" else "-"),
                        r.value,
                        r.warning,
                        r.critical,
                        *_test_columns(test_numbers(r.feature, r.drift_type, r.details)),
                        _status(r.status),
                        _notes(r.details),
                    ]
                    for r in rows
                ],
            )
            if c.report.get("html"):
                console.print(f"Evidently report: {c.report['html']}", highlight=False, soft_wrap=True)
        for r in reactions:
            console.print(
                f"[red]{r.severity} alert[/red] {r.kind} (alert {fmt(r.alert_id)}): {escape(r.message)}",
                highlight=False,
                soft_wrap=True,
            )

    emit(as_json, checks, render)


def _react(settings: Settings, checks: list[DriftCheck]) -> list[Reaction]:
    """The closed loop, as after a queued check: a critical check alerts and may queue a retrain
    (mlops.jobs.reactions). This process is short-lived: its alerts get a bounded time to leave."""
    from mlops.alerts import flush
    from mlops.jobs.reactions import react_to_drift

    reactions = react_to_drift(settings, checks)
    if reactions:
        flush(settings, 10.0)
    return reactions


def _p(value: Any) -> str:
    return "-" if value is None else f"{value:.2g}" if value < 0.01 else f"{value:.3f}"


def _test_columns(numbers: dict[str, Any]) -> list[str]:
    """p, adjusted p and null percentile of a row (`drift_history.test_numbers`)."""
    pct = numbers["null_percentile"]
    return [_p(numbers["p_value"]), _p(numbers["adjusted_p"]), "-" if pct is None else f"{pct:.1f}"]


def _notes(details: dict[str, Any]) -> str:
    if "current_sharpe" in details:
        return (
            f"Sharpe {details['current_sharpe']:.2f} vs {details['baseline_sharpe']:.2f} (n={details['n']}); "
            f"{details['note']}"
        )
    if "deciding_feature" in details:
        critical = details["critical"]
        return (
            f"decided by {details['deciding_feature']} (KL {details['deciding_kl']:.3f}); "
            f"largest KL {details['max_kl']:.3f} ({details['max_kl_feature']}); "
            f"{len(critical)} critical"
            + (f": {', '.join(critical[:5])}" if critical else "")
            + (f"; {details['note']}" if "note" in details else "")
        )
    if "psi" in details:
        return f"PSI {details['psi']:.3f}" + (
            "; null of the nearest window length" if details.get("approximate") else ""
        )
    if "raw_w1" in details:
        return (
            f"raw W1 {details['raw_w1']:.4f}; mean p {details['current_mean']:.3f} vs {details['reference_mean']:.3f}"
            + (f"; {details['note']}" if "note" in details else "")
        )
    if "drifted" in details:  # rows written before the tests existed
        return f"{len(details['drifted'])} features drifted" + (
            f": {', '.join(details['drifted'][:4])}" if details["drifted"] else ""
        )
    if "current_mean" in details:
        return f"mean p {details['current_mean']:.3f} vs {details['reference_mean']:.3f}"
    return str(details.get("reason", ""))


def drift_history(
    agent: str = typer.Option(None, "--agent", "-a", help="market_insight or risk_assessor"),
    status: str = typer.Option(None, help="ok, warning, critical or insufficient"),
    features: bool = typer.Option(False, "--features", help="Include per-feature rows"),
    limit: int = typer.Option(50, min=1),
    as_json: bool = JSON_OPTION,
) -> None:
    """Past drift results, newest first."""
    from mlops.pipeline.drift_history import drift_history as history

    with user_errors(as_json):
        rows = history(ready_settings(), agent=agent, status=status, include_features=features, limit=limit)
    emit(
        as_json,
        rows,
        lambda: table(
            "Drift history",
            ["when", "check", "agent", "version", "drift", "feature", "value", "p", "adj. p", "null pct", "status"],
            [
                [
                    r.computed_at,
                    r.check_id,
                    r.agent_type,
                    fmt(r.model_version),
                    r.drift_type,
                    r.feature or r.deciding_feature or "-",
                    r.value,
                    _p(r.p_value),
                    _p(r.adjusted_p),
                    "-" if r.null_percentile is None else f"{r.null_percentile:.1f}",
                    _status(r.status),
                ]
                for r in rows
            ],
        ),
    )
