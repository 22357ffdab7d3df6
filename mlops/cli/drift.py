"""`skippy ai drift ...`: drift checks and their history. Drift found is information: exit code 0."""

from __future__ import annotations

from typing import Any

import typer

from mlops.cli.common import JSON_OPTION, ready_settings
from mlops.cli.output import console, emit, fmt, styled, table, user_errors

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
    features: bool = typer.Option(False, "--features", help="Also list every feature's KL and PSI"),
    as_json: bool = JSON_OPTION,
) -> None:
    """Check feature, prediction and performance drift of the champion(s) against their training window."""
    from mlops.pipeline.drift import check_all, check_drift

    with user_errors():
        settings = ready_settings()
        checks = [check_drift(settings, agent=agent, window_bars=window)] if agent else check_all(settings, window)

    def render() -> None:
        if not checks:
            console.print("no agent has a champion yet: nothing to check")
        for c in checks:
            rows = [r for r in c.rows if features or r.feature is None]
            table(
                f"{c.agent_type} v{c.model_version} on {c.symbol}, {c.window_bars} bars "
                f"({fmt(c.current_start)} → {fmt(c.current_end)}): {_status(c.status)}   check {c.check_id}",
                ["drift", "statistic", "feature", "value", "warning >", "critical >", "status", "notes"],
                [
                    [
                        r.drift_type,
                        r.statistic,
                        r.feature or ("max of all" if r.drift_type == "feature" else "-"),
                        r.value,
                        r.warning,
                        r.critical,
                        _status(r.status),
                        _notes(r.details),
                    ]
                    for r in rows
                ],
            )
            if c.report.get("html"):
                console.print(f"Evidently report: {c.report['html']}", highlight=False, soft_wrap=True)

    emit(as_json, checks, render)


def _notes(details: dict[str, Any]) -> str:
    if "current_sharpe" in details:
        return (
            f"Sharpe {details['current_sharpe']:.2f} vs {details['baseline_sharpe']:.2f}; "
            f"{details['note']} (P(not worse)={details['probability_not_worse']:.2f}, n={details['n']})"
        )
    if "psi" in details:
        return f"PSI {details['psi']:.3f}"
    if "worst_excess" in details:
        drifted = details["drifted"]
        return (
            f"{details['worst_feature']}: KL {details['worst_value']:.3f}, "
            f"noise floor {details['worst_noise_floor']:.3f}; "
            f"{len(drifted)} drifted" + (f": {', '.join(drifted[:5])}" if drifted else "")
        )
    if "noise_floor" in details:
        return f"PSI {details['psi']:.3f}; noise floor {details['noise_floor']:.3f}"
    if "drifted" in details:
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

    with user_errors():
        rows = history(ready_settings(), agent=agent, status=status, include_features=features, limit=limit)
    emit(
        as_json,
        rows,
        lambda: table(
            "Drift history",
            ["when", "check", "agent", "version", "drift", "feature", "value", "status"],
            [
                [
                    r.computed_at,
                    r.check_id,
                    r.agent_type,
                    fmt(r.model_version),
                    r.drift_type,
                    r.feature or str(r.details.get("worst_feature") or "-"),
                    r.value,
                    _status(r.status),
                ]
                for r in rows
            ],
        ),
    )
