"""The pieces of the Overview page: an agent's card (champion and challenger against the naive baselines,
the last retrain and the gate's verdict in words, drift per kind), the open alerts and the schedule."""

from __future__ import annotations

from typing import Any

from dash import dcc, html

from dashboard import PREFIX
from dashboard.components import badge, card, fmt, insight_box, notice, run_link, version_link, when
from mlops.insights import InsightRecord
from mlops.pipeline.queries import RunRecord
from mlops.pipeline.queries.overview import DRIFT_KINDS, AgentOverview, GateCheck, OpenAlerts, gate_checks
from mlops.pipeline.queries.overview import verdict_in_words as verdict_words
from mlops.scheduler import SchedulerStatus

# Held-out test metrics (model_runs.metrics) and, where there is one, the naive baseline on the same bars.
TEST_ROWS: tuple[tuple[str, str, str | None, str], ...] = (
    ("Sharpe, test", "test_sharpe_ratio", "test_buy_hold_sharpe_ratio", "buy & hold"),
    ("Accuracy, test", "test_accuracy", None, ""),
    ("F1, test", "test_f1", None, ""),
    ("Max drawdown, test", "test_max_drawdown", None, ""),
    ("Total return, test", "test_total_return", None, ""),
)
# The gate's naive-baseline checks (mlops/pipeline/validation.py): a short label and what the baseline is.
EDGE_LABELS = {
    "edge_sharpe_vs_always_long": ("Sharpe, gate", "always long"),
    "edge_hit_rate_vs_majority": ("Hit rate on traded bars", "majority class"),
    "edge_auc": ("AUC", "coin flip"),
    "edge_brier_skill": ("Brier skill score", "base rate"),
}


def _edges(run: RunRecord | None) -> dict[str, GateCheck]:
    return {c.name: c for c in gate_checks(run.validation if run else None) if c.naive}


def metrics_table(base: str, o: AgentOverview) -> Any:
    """Champion and challenger side by side, each beside the naive baseline of its own held-out bars."""
    models: list[tuple[str, int | None, RunRecord | None]] = [("champion", o.champion_version, o.champion)]
    if o.challenger_version is not None:
        models.append(("challenger", o.challenger_version, o.challenger))
    header = [html.Th("metric")]
    for alias, version, run in models:
        header += [
            html.Th(
                [
                    f"{alias} ",
                    version_link(base, o.agent_type, version),
                    " ",
                    run_link(base, run.mlflow_run_id if run else None),
                ]
            ),
            html.Th("naive baseline"),
        ]
    rows = []
    for label, key, baseline_key, baseline_name in TEST_ROWS:
        cells: list[Any] = [html.Td(label)]
        for _, _, run in models:
            metrics = run.metrics if run else {}
            base_value = metrics.get(baseline_key) if baseline_key else None
            cells += [html.Td(fmt(metrics.get(key)), className="num")]
            cells += [html.Td(f"{fmt(base_value)} ({baseline_name})" if baseline_key else "", className="num muted")]
        rows.append(html.Tr(cells))
    edges = [_edges(run) for _, _, run in models]
    for name in dict.fromkeys(n for e in edges for n in e):
        label, baseline_name = EDGE_LABELS.get(name, (name, "baseline"))
        cells = [html.Td(label, title=next(e[name].rule for e in edges if name in e))]
        for found in edges:
            check = found.get(name)
            cells += [html.Td(fmt(check and check.value), className="num")]
            baseline = check.baseline if check else None
            cells += [html.Td(f"{fmt(baseline)} ({baseline_name})" if check else "", className="num muted")]
        rows.append(html.Tr(cells))
    return html.Table(
        [html.Thead(html.Tr(header)), html.Tbody(rows)], className="metrics", id=f"overview-metrics-{o.agent_type}"
    )


def _check_line(c: GateCheck) -> Any:
    numbers = fmt(c.value)
    if c.baseline is not None:
        numbers += f" vs {fmt(c.baseline)}"
    if c.ci is not None:
        numbers += f" [{fmt(c.ci[0])}, {fmt(c.ci[1])}]"
    if c.p_value is not None:
        numbers += f", p {fmt(c.p_value)}"
    note = f" ({c.note})" if c.note else ""
    return html.Li(
        [html.Span("✓ " if c.passed else "✗ ", className="ok" if c.passed else "failed"), f"{c.rule}: {numbers}{note}"]
    )


def last_retrain(base: str, run: RunRecord | None, insight: InsightRecord | None, agent: str) -> Any:
    if run is None:
        return html.P(
            "No retrain yet: the Controls page, or skippy ai retrain --agent " + agent + ".", className="muted"
        )
    outcome: list[Any] = [badge(run.status)]
    if run.deployment_status and run.deployment_status != run.status:
        outcome += [" ", badge(run.deployment_status)]
    facts = html.Dl(
        [
            html.Dt("when"),
            html.Dd(when(run.finished_at or run.created_at)),
            html.Dt("trigger"),
            html.Dd(f"{run.trigger} (by {run.requested_by})"),
            html.Dt("outcome"),
            html.Dd(outcome),
            html.Dt("run"),
            html.Dd(
                [f"#{run.id} ", run_link(base, run.mlflow_run_id), " ", version_link(base, agent, run.model_version)]
            ),
        ],
        className="kv",
    )
    parts: list[Any] = [facts, html.P(verdict_words(run), id=f"overview-verdict-{agent}", className="verdict")]
    checks = gate_checks(run.validation)
    if checks:
        parts.append(html.Ul([_check_line(c) for c in checks], className="checks"))
    if insight is not None:
        parts.append(insight_box(insight, id=f"overview-insight-{agent}"))
    return html.Div(parts)


def drift_badges(o: AgentOverview) -> Any:
    if o.drift is None:
        return html.P(["No drift check yet (", dcc.Link("Drift", href=f"{PREFIX}/drift"), ")."], className="muted")
    items: list[Any] = []
    for kind in DRIFT_KINDS:
        found = o.drift.kinds.get(kind)
        if found is None:
            items.append(html.Span([f"{kind}: ", badge("not computed")], className="drift-kind"))
            continue
        title = f"{found.statistic} {fmt(found.value)} (warning > {found.warning:g}, critical > {found.critical:g})"
        items.append(html.Span([f"{kind}: ", badge(found.status)], title=title, className="drift-kind"))
    version = f" of v{o.drift.model_version}" if o.drift.model_version is not None else ""
    return html.Div(
        [
            html.Div(items, className="drift-kinds", id=f"overview-drift-{o.agent_type}"),
            html.Div(
                [
                    f"check {o.drift.check_id}{version}, {when(o.drift.computed_at)} · ",
                    dcc.Link("details", href=f"{PREFIX}/drift"),
                ],
                className="muted",
            ),
        ]
    )


def agent_card(base: str, o: AgentOverview, insight: InsightRecord | None) -> Any:
    if o.champion_version is None:
        models: Any = notice(f"{o.agent_type} has no champion yet: a retrain that passes the gate deploys one.")
    else:
        models = metrics_table(base, o)
    alerts = f"{o.open_alerts} open alert{'s' if o.open_alerts != 1 else ''}"
    return card(
        o.agent_type,
        html.Div([html.Span(alerts, className="muted"), " · ", dcc.Link("performance", href=f"{PREFIX}/performance")]),
        html.H4("Deployed models"),
        models,
        html.H4("Last retrain"),
        last_retrain(base, o.last_retrain, insight, o.agent_type),
        html.H4("Drift (newest check)"),
        drift_badges(o),
        id=f"overview-agent-{o.agent_type}",
    )


def alerts_card(found: OpenAlerts) -> Any:
    items = [
        html.Li(
            [badge(a.severity), f" {a.kind} · {a.agent_type or 'all agents'} · {when(a.last_seen)}: ", a.message[:200]]
        )
        for a in found.latest
    ]
    return card(
        "Open alerts",
        html.P(
            [
                html.Strong(str(found.count), id="overview-alert-count"),
                " not acknowledged · ",
                dcc.Link("all alerts", href=f"{PREFIX}/alerts"),
            ]
        ),
        html.Ul(items, className="alerts-latest") if items else html.P("Nothing open.", className="muted"),
        id="overview-alerts",
    )


def schedule_card(status: SchedulerStatus) -> Any:
    jobs = sorted(status.jobs, key=lambda j: (j.next_run is None, j.next_run))
    rows = [
        html.Tr(
            [
                html.Td(j.name, title=j.description),
                html.Td(when(j.next_run) if j.next_run else (j.schedule_error or "—")),
                html.Td(j.cron, className="muted"),
                html.Td(badge("on" if j.enabled else "off"), title=j.disabled_reason or ""),
                html.Td(badge(j.last_execution.status) if j.last_execution else "never ran"),
            ]
        )
        for j in jobs
    ]
    return card(
        "Next scheduled jobs",
        html.P(f"Scheduler {status.configuration}".replace("`", ""), className="muted"),
        html.Table(
            [
                html.Thead(html.Tr([html.Th(h) for h in ("job", "next run", "cron (UTC)", "flag", "last run")])),
                html.Tbody(rows),
            ],
            className="metrics",
        ),
        id="overview-schedule",
    )
