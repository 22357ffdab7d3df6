"""What a notification says, the same on every channel: severity, agent, what happened and when, the
alert's id and the command that acknowledges it."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from mlops.alerts.records import AlertRecord

MAX_DETAILS = 600  # characters of the details line: a message is read on a phone


def when(ts: datetime) -> str:
    return ts.strftime("%Y-%m-%d %H:%M:%S UTC")


def ack_command(alert_id: int) -> str:
    return f"skippy alerts ack {alert_id}"


def subject(alert: AlertRecord) -> str:
    where = f" on {alert.agent_type}" if alert.agent_type else ""
    first = alert.message.splitlines()[0] if alert.message else ""
    first = first if len(first) <= 120 else first[:117] + "..."
    return f"[Skippy {alert.severity.upper()}] {alert.kind}{where}: {first}"


def text(alert: AlertRecord) -> str:
    """The plain-text body (Slack, e-mail, apprise; PagerDuty's summary is `subject`)."""
    repeated = f", {alert.count} times (last {when(alert.last_seen)})" if alert.count > 1 else ""
    lines = [
        f"[{alert.severity.upper()}] {alert.kind} — agent {alert.agent_type or '(none)'}",
        alert.message,
        f"When: {when(alert.first_seen)}{repeated}",
    ]
    if alert.details:
        shown = json.dumps(alert.details, default=str, sort_keys=True)
        lines.append("Details: " + (shown if len(shown) <= MAX_DETAILS else shown[:MAX_DETAILS] + " ..."))
    lines.append(f"Alert {alert.id}: acknowledge with `{ack_command(alert.id)}`")
    return "\n".join(lines)


def payload(alert: AlertRecord) -> dict[str, Any]:
    """The generic webhook's JSON body."""
    return {
        "id": alert.id,
        "severity": alert.severity,
        "kind": alert.kind,
        "agent": alert.agent_type,
        "message": alert.message,
        "details": alert.details,
        "first_seen": alert.first_seen.isoformat(),
        "last_seen": alert.last_seen.isoformat(),
        "count": alert.count,
    }
