"""`skippy ai ...`: retrain, inspect, promote and roll back the agents."""

from __future__ import annotations

from typing import Any

import typer

from mlops.cli.common import JSON_OPTION, cli_actor, ready_settings
from mlops.cli.output import console, emit, fmt, styled, table, user_errors

app = typer.Typer(
    help="The ML agents: retrain, models, runs, promote, rollback.", no_args_is_help=True, rich_markup_mode=None
)

AGENT_HELP = "market_insight or risk_assessor"
EXIT_REJECTED, EXIT_FAILED = 4, 1


def _v(version: int | None) -> str:
    return f"v{version}" if version is not None else "none"


def _parse_params(pairs: list[str]) -> dict[str, Any]:
    from mlops.errors import InvalidRequestError

    params: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            raise InvalidRequestError(f"--param expects NAME=VALUE, got {pair!r}")
        try:
            params[key.strip()] = int(value) if value.strip().lstrip("-").isdigit() else float(value)
        except ValueError:
            raise InvalidRequestError(f"--param {key}: {value!r} is not a number") from None
    return params


@app.command("retrain")
def retrain(
    agent: str = typer.Option(..., "--agent", "-a", help=AGENT_HELP),
    symbol: str = typer.Option(None, "--symbol", "-s", help="Train on this symbol's bars (default SKIPPY_SYMBOL)"),
    param: list[str] = typer.Option([], "--param", "-p", help="Hyperparameter override NAME=VALUE (repeatable)"),
    rejection_ok: bool = typer.Option(False, "--rejection-ok", help="Exit 0 when the candidate is rejected"),
    as_json: bool = JSON_OPTION,
) -> None:
    """Retrain an agent now: quality gate, train, validate against the champion, deploy if better.
    Exit code 0 when the candidate was deployed, 4 when it was rejected, 1 when the run failed."""
    from mlops.cli.insights import print_insight
    from mlops.insights import get_insight
    from mlops.pipeline.retrain import retrain as run_retrain

    with user_errors(as_json):
        settings = ready_settings()
        with console.status(f"retraining {agent} ..."):
            result = run_retrain(
                settings,
                actor=cli_actor(),
                agent=agent,
                trigger="manual",
                symbol=symbol or None,
                hyperparameters=_parse_params(param),
            )

    def render() -> None:
        console.print(
            f"run {result.model_run_id}: {styled(result.status)}  deployment: "
            f"{styled(result.deployment_status)}  version: {fmt(result.model_version)}"
        )
        if result.metrics:
            table("held-out test metrics", ["metric", "value"], [[k, v] for k, v in result.metrics.items()])
        if gate := _gate_cell(result.validation):
            console.print(f"gate ({result.validation.get('comparison')}): Sharpe difference {gate}")
        console.print(result.reason, highlight=False)
        if result.mlflow_run_id:
            console.print(f"MLflow run: {result.mlflow_run_id}")
        print_insight(get_insight(settings, "retrain", result.model_run_id))  # the template's, at once

    emit(as_json, result, render)
    if result.status == "failed":
        raise typer.Exit(EXIT_FAILED)
    if result.status == "rejected" and not rejection_ok:
        raise typer.Exit(EXIT_REJECTED)


@app.command("models")
def models(
    agent: str = typer.Option(None, "--agent", "-a", help=AGENT_HELP),
    limit: int = typer.Option(5, help="Recent versions per agent"),
    as_json: bool = JSON_OPTION,
) -> None:
    """Deployed (champion/challenger) and recent model versions per agent, with held-out metrics and the
    validation verdict (read from the app database: no MLflow)."""
    from mlops.pipeline.queries.models import list_models

    with user_errors(as_json):
        settings = ready_settings()
        rows = list_models(settings, agent, limit)

    def render() -> None:
        for m in rows:
            table(
                f"{m.agent_type}: champion {_v(m.champion)}, challenger {_v(m.challenger)}",
                [
                    "version",
                    "aliases",
                    "validation",
                    "symbol",
                    "created",
                    "test accuracy",
                    "test sharpe",
                    "buy&hold sharpe",
                ],
                [
                    [
                        str(v.version),
                        ", ".join(v.aliases) or "-",
                        styled(v.validation),
                        v.symbol or "-",
                        v.created_at,
                        v.metrics.get("test_accuracy"),
                        v.metrics.get("test_sharpe_ratio"),
                        v.metrics.get("test_buy_hold_sharpe_ratio"),
                    ]
                    for v in m.versions
                ],
            )

    emit(as_json, rows, render)


@app.command("runs")
def runs(
    agent: str = typer.Option(None, "--agent", "-a", help=AGENT_HELP),
    status: str = typer.Option(None, help="succeeded, rejected, failed, running"),
    limit: int = typer.Option(20, min=1, max=1000),
    as_json: bool = JSON_OPTION,
) -> None:
    """Recent model runs (retrains) with their outcome."""
    from mlops.pipeline.queries.runs import list_runs

    with user_errors(as_json):
        settings = ready_settings()
        rows = list_runs(settings, agent=agent, status=status, limit=limit)

    def render() -> None:
        _runs_table(rows)
        if rows:
            console.print("`skippy ai run ID` shows one run with its plain-language explanation.", highlight=False)

    emit(as_json, rows, render)


def _runs_table(rows: list[Any]) -> None:
    table(
        "Model runs",
        ["id", "agent", "status", "deployment", "version", "trigger", "created", "sharpe", "ΔSharpe [CI]", "gate"],
        [
            [
                str(r.id),
                r.agent_type,
                styled(r.status),
                styled(r.deployment_status),
                fmt(r.model_version),
                r.trigger,
                r.created_at,
                r.metrics.get("test_sharpe_ratio"),
                _gate_cell(r.validation),
                _verdict_cell(r.validation, r.error),
            ]
            for r in rows
        ],
    )


def _verdict_cell(validation: dict[str, Any] | None, error: str | None) -> str:
    """The gate's outcome in a few words: against what, and which checks failed (full text: --json)."""
    if not validation:
        return (error or "")[:120]
    against = (validation.get("comparison") or "none").replace("_", " ")
    against = "naive baselines" if against == "none" else f"v{validation.get('champion_version')} ({against})"
    failed = [name for name, c in (validation.get("checks") or {}).items() if not c.get("passed")]
    if not failed:
        return f"passed vs {against}"
    return f"rejected vs {against}: " + ", ".join(failed)


def _gate_cell(validation: dict[str, Any] | None) -> str:
    """ΔSharpe [CI] and its p against the gate's comparator (the champion, or always-long for a first
    model), e.g. '+0.21 [-0.05, +0.48] p 0.11'; risk_assessor's deciding Brier test is in the verdict."""
    m = (validation or {}).get("metrics") or {}
    if "gate_sharpe_diff" not in m:
        return ""
    return (
        f"{m['gate_sharpe_diff']:+.2f} [{m['gate_sharpe_diff_ci_low']:+.2f}, {m['gate_sharpe_diff_ci_high']:+.2f}]"
        f" p {m.get('gate_sharpe_p_value', m['gate_p_value']):.3f}"
    )


@app.command("promote")
def promote(
    agent: str = typer.Option(..., "--agent", "-a", help=AGENT_HELP),
    version: int = typer.Option(..., "--version", "-v", help="Model version to make champion"),
    reason: str = typer.Option("manual promotion", help="Why (kept in the deployment history)"),
    force: bool = typer.Option(False, "--force", help="Deploy even a version that validation rejected"),
    as_json: bool = JSON_OPTION,
) -> None:
    """Make a model version the champion."""
    from mlops.pipeline.deployments import promote as do_promote

    with user_errors(as_json):
        settings = ready_settings()
        record = do_promote(settings, agent=agent, version=version, actor=cli_actor(), reason=reason, force=force)
    emit(
        as_json,
        record,
        lambda: console.print(f"{agent}: champion v{fmt(record.from_version)} → [green]v{record.to_version}[/green]"),
    )


@app.command("rollback")
def rollback(
    agent: str = typer.Option(..., "--agent", "-a", help=AGENT_HELP),
    to_version: int = typer.Option(None, "--to-version", help="Default: the previous champion"),
    reason: str = typer.Option("", help="Why (kept in the deployment history)"),
    force: bool = typer.Option(False, "--force", help="Roll back even to a version that validation rejected"),
    as_json: bool = JSON_OPTION,
) -> None:
    """Move the champion back to the previous champion (or a named version) in one step."""
    from mlops.pipeline.deployments import rollback as do_rollback

    with user_errors(as_json):
        settings = ready_settings()
        record = do_rollback(
            settings, agent=agent, to_version=to_version, actor=cli_actor(), reason=reason, force=force
        )
    emit(
        as_json,
        record,
        lambda: console.print(
            f"{agent}: champion v{fmt(record.from_version)} → [yellow]v{record.to_version}[/yellow] (rollback)"
        ),
    )


@app.command("evaluate-challenger")
def evaluate_challenger(
    agent: str = typer.Option(..., "--agent", "-a", help=AGENT_HELP), as_json: bool = JSON_OPTION
) -> None:
    """Staged rollout: paper-trade the challenger against the champion on bars neither has seen; once
    there are enough bars for the paired test (power 0.5 for SKIPPY_STAGED_MIN_EFFECT), promote it if the
    test says it is better, else retire it."""
    from mlops.pipeline.staged import evaluate_challenger as run_evaluation

    with user_errors(as_json):
        settings = ready_settings()
        result = run_evaluation(settings, agent=agent, actor=cli_actor())
    emit(as_json, result, lambda: console.print(f"{styled(result.decision)}: {result.reason}", highlight=False))


@app.command("deployments")
def deployments(
    agent: str = typer.Option(None, "--agent", "-a", help=AGENT_HELP),
    limit: int = typer.Option(20, min=1, max=1000),
    as_json: bool = JSON_OPTION,
) -> None:
    """Alias change history: who moved which alias, from which version to which, and why (a retired or
    cleared challenger points nowhere: "to" is empty)."""
    from mlops.pipeline.deployments import CLEARING_ACTIONS, list_deployments

    with user_errors(as_json):
        settings = ready_settings()
        rows = list_deployments(settings, agent, limit)
    emit(
        as_json,
        rows,
        lambda: table(
            "Deployments",
            ["id", "agent", "alias", "action", "from", "to", "by", "when", "reason"],
            [
                [
                    str(r.id),
                    r.agent_type,
                    r.alias,
                    styled(r.action),
                    fmt(r.from_version),
                    "-" if r.action in CLEARING_ACTIONS else str(r.to_version),
                    r.actor,
                    r.created_at,
                    r.reason[:70],
                ]
                for r in rows
            ],
        ),
    )


def _register_sweeps() -> None:
    from mlops.cli import drift, insights, sweeps

    sweeps.register(app)
    drift.register(app)
    insights.register(app)


_register_sweeps()
