"""One model run in full, for the Runs & jobs page (dashboard/pages/runs.py): the gate's verdict in words
with each of its checks, the run's metrics and hyperparameters, its error, and its explanation."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from dash import html

from dashboard.components import badge, fmt, insight_box, notice, run_link, table, version_link, when
from mlops.insights import InsightRecord
from mlops.pipeline.queries import RunRecord

CHECK_COLUMNS = [
    ("check", "name"),
    ("passed", "passed"),
    ("value", "value"),
    ("baseline", "baseline"),
    ("p", "p_value"),
    ("rule", "rule"),
    ("note", "note"),
]


def took(created: datetime, finished: datetime | None) -> str:
    """Request to end (queue time included): `42.1 s`, `3 min 5 s`; empty while it runs."""
    if finished is None:
        return ""
    seconds = max((finished - created).total_seconds(), 0.0)
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes} min {rest} s" if minutes < 60 else f"{minutes // 60} h {minutes % 60} min"


def _against(validation: dict[str, Any]) -> str:
    comparison = validation.get("comparison") or "none"
    if comparison == "none":
        return "against naive baselines (there was no champion to beat)"
    how = {
        "champion_scored": "the champion scored on the same held-out bars",
        "champion_refit": "the champion's hyperparameters refitted on the candidate's training split",
        "paper_trading": "the champion's paper trading",
    }.get(comparison, comparison.replace("_", " "))
    return f"against champion v{validation.get('champion_version')} ({how})"


def verdict(run: RunRecord) -> Any:
    """The gate's decision in words, or why there is none."""
    validation = run.validation
    if not validation:
        if run.status in ("queued", "running"):
            return notice(f"Run #{run.id} is {run.status}: the gate has not judged it yet.")
        if run.status == "failed":
            return notice(f"Run #{run.id} failed before the gate could judge it (see the error below).", "error")
        return notice(f"Run #{run.id} has no recorded gate verdict.")
    passed = bool(validation.get("passed"))
    checks = validation.get("checks") or {}
    failed = [name for name, c in checks.items() if not c.get("passed")]
    if passed:
        words = f"Passed the promotion gate {_against(validation)}: all {len(checks)} checks passed."
    else:
        words = f"Rejected by the promotion gate {_against(validation)}: {', '.join(failed) or 'a check'} failed."
    if run.deployment_status:
        words += f" Deployment: {run.deployment_status}."
    return html.Div(
        [notice(words, "ok" if passed else "warning"), html.P(str(validation.get("verdict", "")), className="muted")],
        id="runs-verdict",
    )


def _checks(validation: dict[str, Any] | None) -> Any:
    checks = (validation or {}).get("checks") or {}
    if not checks:
        return ""
    rows = [
        {
            "name": name,
            "passed": "yes" if c.get("passed") else "no",
            "value": fmt(c.get("value"), 4),
            "baseline": fmt(c.get("baseline"), 4),
            "p_value": fmt(c.get("p_value"), 4),
            "rule": c.get("rule", ""),
            "note": c.get("note", ""),
        }
        for name, c in checks.items()
    ]
    return table("runs-checks", rows, CHECK_COLUMNS, page_size=10, sortable=False)


def _pairs(values: dict[str, Any], digits: int = 4) -> html.Dl:
    items: list[Any] = []
    for key in sorted(values):
        items += [html.Dt(key), html.Dd(fmt(values[key], digits))]
    return html.Dl(items or [html.Dt("—"), html.Dd("none recorded")], className="kv")


def _insight(found: InsightRecord | None) -> Any:
    if found is None:
        return html.Div(html.P("No explanation was written for this run.", className="muted"), id="runs-insight")
    return insight_box(found, id="runs-insight")


def run_detail(run: RunRecord, insight: InsightRecord | None, mlflow_ui: str) -> Any:
    gate_metrics = (run.validation or {}).get("metrics") or {}
    header = html.P(
        [
            badge(run.status),
            f" {run.agent_type}, trigger {run.trigger}, requested by {run.requested_by}, {when(run.created_at)}",
            f", took {took(run.created_at, run.finished_at)}" if run.finished_at else "",
            ". MLflow run ",
            run_link(mlflow_ui, run.mlflow_run_id),
            ", model version ",
            version_link(mlflow_ui, run.agent_type, run.model_version),
            ".",
        ]
    )
    parts: list[Any] = [html.H3(f"Run #{run.id}"), header, verdict(run), _checks(run.validation), _insight(insight)]
    if run.error and run.status == "failed":  # a rejection's reason is the verdict above, not an error
        parts.append(notice(f"Error: {run.error}", "error", id="runs-error"))
    parts.append(
        html.Div(
            [
                html.Div([html.H4("Metrics"), _pairs(run.metrics)]),
                html.Div([html.H4("Gate metrics"), _pairs(gate_metrics)]),
                html.Div([html.H4("Hyperparameters"), _pairs(run.hyperparameters, 6)]),
            ],
            className="grid",
        )
    )
    return html.Div(parts)
