"""`skippy alerts ...`: list, acknowledge and test alerts; show the channels. Targets are masked."""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer
from rich.markup import escape

from mlops.cli.common import JSON_OPTION, cli_actor, ready_settings
from mlops.cli.output import console, emit, fmt, print_json, table, user_errors

if TYPE_CHECKING:
    from mlops.alerts import AlertRecord

app = typer.Typer(
    help="Alerts: open ones by default (--all for every one); ack, test, channels.",
    invoke_without_command=True,
    rich_markup_mode=None,
)
SEVERITY_STYLE = {"critical": "red", "warning": "yellow", "info": "cyan"}
DELIVERY_STYLE = {"sent": "green", "failed": "red", "pending": "yellow", "sending": "yellow"}


def _severity(value: str) -> str:
    style = SEVERITY_STYLE.get(value)
    return f"[{style}]{value}[/{style}]" if style else value


def _deliveries(alert: AlertRecord) -> str:
    if not alert.deliveries:
        return "-"
    parts = []
    for d in alert.deliveries:
        style = DELIVERY_STYLE.get(d.status, "")
        retry = f" ×{d.attempts}" if d.attempts > 1 else ""
        parts.append(f"{d.channel} [{style}]{d.status}[/{style}]{retry}" if style else f"{d.channel} {d.status}")
    return ", ".join(parts)


def _short(text: str, n: int = 90) -> str:
    """The first line, cut to `n` characters, with rich markup escaped (a message quoting an HTTP answer may
    hold `[/...]`)."""
    from rich.markup import escape

    line = text.splitlines()[0] if text else ""
    return escape(line if len(line) <= n else line[: n - 3] + "...")


def _result(ok: bool) -> str:
    return "[green]sent[/green]" if ok else "[red]failed[/red]"


@app.callback()
def list_command(
    ctx: typer.Context,
    every: bool = typer.Option(False, "--all", help="Acknowledged alerts too"),
    severity: str | None = typer.Option(None, help="info, warning or critical"),
    agent: str | None = typer.Option(None, help="Agent type"),
    limit: int = typer.Option(50, min=1, max=10_000, help="At most this many"),
    as_json: bool = JSON_OPTION,
) -> None:
    """Open alerts (not acknowledged), most recently seen first, with where each was sent."""
    if ctx.invoked_subcommand is not None:
        return
    from mlops.alerts import list_alerts

    with user_errors(as_json):
        rows = list_alerts(
            ready_settings(), severity=severity, agent=agent, acknowledged=None if every else False, limit=limit
        )

    def render() -> None:
        if not rows:
            console.print("No open alerts." if not every else "No alerts.")
            return
        table(
            "Alerts" if every else "Open alerts",
            ["id", "severity", "kind", "agent", "count", "first seen", "last seen", "message", "sent to", "ack"],
            [
                [
                    str(a.id),
                    _severity(a.severity),
                    a.kind,
                    a.agent_type or "-",
                    str(a.count),
                    fmt(a.first_seen),
                    fmt(a.last_seen),
                    _short(a.message),
                    _deliveries(a),
                    a.acknowledged_by or "-",
                ]
                for a in rows
            ],
        )
        for a in rows:  # the generated explanations, in full (the table's message is the template's, cut)
            if a.insight:
                console.print(f"[bold]alert {a.id}[/bold] explained: {escape(a.insight)}", highlight=False)
        if not every:
            console.print("`skippy alerts ack ID` acknowledges one; `--all` shows acknowledged ones too.")

    emit(as_json, rows, render)


@app.command("ack")
def ack_command(alert_id: int = typer.Argument(..., min=1, help="Alert id"), as_json: bool = JSON_OPTION) -> None:
    """Acknowledge an alert: its repeats raise a new alert (and notify again) from now on."""
    from mlops.alerts import acknowledge_alert

    with user_errors(as_json):
        alert = acknowledge_alert(ready_settings(), alert_id, actor=cli_actor())
    emit(
        as_json,
        alert,
        lambda: console.print(
            f"alert {alert.id} ({alert.severity} {alert.kind}) acknowledged by {alert.acknowledged_by}",
            highlight=False,
        ),
    )


@app.command("test")
def test_command(as_json: bool = JSON_OPTION) -> None:
    """Send a test alert to every configured channel now and show each one's answer (exit 1 if any failed)."""
    from mlops.alerts import send_test_alert

    with user_errors(as_json):
        report = send_test_alert(ready_settings(), actor=cli_actor())
    if as_json:
        print_json(report)
    elif report.hint:
        console.print(report.hint, highlight=False)
    else:
        table(
            f"Test alert {report.alert_id}",
            ["channel", "target", "result", "seconds", "error"],
            [
                [r.channel, r.target, _result(r.ok), r.seconds, _short(r.error or "-", 200)]
                for r in report.results
            ],
        )
    if not report.ok:
        raise typer.Exit(1)


@app.command("channels")
def channels_command(as_json: bool = JSON_OPTION) -> None:
    """The configured channels: masked targets, minimum severities, configuration problems."""
    from mlops.alerts import list_channels
    from mlops.alerts.channels import CHANNEL_SETTINGS

    with user_errors(as_json):
        rows = list_channels(ready_settings())

    def render() -> None:
        if not rows:
            console.print(f"No alert channel is configured: set {CHANNEL_SETTINGS}.", highlight=False)
            return
        table(
            "Alert channels",
            ["channel", "kind", "target", "min severity", "problem"],
            [[c.channel, c.kind, c.target, c.min_severity, c.problem or "-"] for c in rows],
        )

    emit(as_json, rows, render)
