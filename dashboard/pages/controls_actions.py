"""The Controls page's operator actions: retrain and drift check (queued as jobs), promote and roll back
(alias moves, done at once); running a scheduled job now is in controls_schedule.py. Each button sits in a
confirm dialog whose message says what will happen for the current choices; each callback, the ones that
only read too, asks for the operator role first (a forged request from a viewer gets 403), then calls the
same service as the CLI and the API, as `dashboard:<key name>`, which audits it. Values a forged request may
send that the page never offers (an unknown agent, a version that is not a number) are refused naming the
problem, never a 500."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from dash import Dash, Input, Output, State, ctx, dcc, html, no_update

from dashboard.auth import actor, require
from dashboard.components import act, card, notice
from dashboard.pages.controls_jobs import remember
from mlops.data.store import resolve_symbol
from mlops.errors import InvalidRequestError
from mlops.jobs import JobRecord, submit_drift, submit_retrain
from mlops.pipeline.deployments import DeploymentRecord, previous_champion, promote, rollback
from mlops.pipeline.queries import AgentModels, list_models
from mlops.settings import AGENTS, Settings

TRIGGER = "dashboard"  # model_runs.trigger of a retrain a person asked for here (the CLI's is manual, the API's api)
VERSIONS = 10  # versions offered to promote: the newest, plus the champion and challenger if older


def confirmed(id: str, label: str, message: str, danger: bool = False) -> Any:
    return dcc.ConfirmDialogProvider(
        html.Button(label, id=f"{id}-button", className="button button-danger" if danger else "button"),
        id=id,
        message=message,
    )


def agent_dropdown(id: str) -> Any:
    options = [{"label": a, "value": a} for a in AGENTS]
    return dcc.Dropdown(id=id, options=options, value=AGENTS[0], clearable=False, className="filter")


def training_card(settings: Settings) -> Any:
    retrain, drift = training_messages(settings, AGENTS[0])  # the dialogs are right before any callback ran
    return card(
        "Retrain or check drift",
        html.Div([agent_dropdown("controls-agent")], className="filters"),
        html.Div(
            [
                confirmed("controls-retrain", f"Retrain {AGENTS[0]}", retrain),
                confirmed("controls-drift", f"Check {AGENTS[0]} for drift", drift),
            ],
            className="controls-actions",
        ),
        html.Div(id="controls-retrain-result"),
        html.Div(id="controls-drift-result"),
        id="controls-training-card",
    )


def deploy_card() -> Any:
    force = {"label": " force: deploy even a version the validation gate rejected", "value": "force"}
    return card(
        "Promote or roll back",
        html.Div(
            [
                agent_dropdown("controls-deploy-agent"),
                dcc.Dropdown(id="controls-version", placeholder="version to promote", className="filter"),
                dcc.Checklist(id="controls-force", options=[force], value=[]),
            ],
            className="filters",
        ),
        html.Div(
            [
                confirmed("controls-promote", "Promote", ""),
                confirmed("controls-rollback", "Roll back", "", danger=True),
            ],
            className="controls-actions",
        ),
        html.Div(id="controls-deploy-state", className="muted"),
        html.Div(id="controls-deploy-result"),
        dcc.Store(id="controls-deployed"),
        id="controls-deploy-card",
    )


def act_with_ids(action: Callable[[], Any], done: Callable[[Any], tuple[Any, Any]]) -> tuple[Any, Any]:
    """`act` for a control with a second output (what it changed: the jobs it queued, a deployment): after
    a refused request, the error notice, and that output left as it was."""
    result = act(action, done)
    return result if isinstance(result, tuple) else (result, no_update)


def queued_notice(job: JobRecord, what: str) -> Any:
    return notice(f"{what} queued as job {job.id}; its progress is shown below.", "ok")


def _champion(settings: Settings, agent: str) -> AgentModels:
    return list_models(settings, agent, limit=VERSIONS)[0]


def register(app: Dash, settings: Settings) -> None:
    _register_training(app, settings)
    _register_deploy(app, settings)


def training_messages(settings: Settings, agent: str) -> tuple[str, str]:
    """What "Retrain" and "Check drift" will do for `agent`, as their confirm dialogs say it."""
    symbol = resolve_symbol(settings.app_db_url, None, settings.symbol)
    mode = "staged (challenger first)" if settings.promotion_mode == "staged" else "immediate"
    retrain = (
        f"Retrain {agent} now? A worker trains a new version on {symbol}'s bars with {agent}'s default "
        f"hyperparameters, then the validation gate decides whether it is deployed (promotion mode: {mode})."
    )
    drift = (
        f"Check {agent}'s champion for drift now? A worker compares the newest {symbol} bars with the "
        "champion's training data; a critical result raises an alert and may queue a retrain."
    )
    return retrain, drift


def _register_training(app: Dash, settings: Settings) -> None:
    @app.callback(
        Output("controls-retrain", "message"),
        Output("controls-drift", "message"),
        Output("controls-retrain-button", "children"),
        Output("controls-drift-button", "children"),
        Input("controls-agent", "value"),
    )
    def messages(agent: str) -> tuple[str, str, str, str]:
        """The dialogs and the buttons' labels change together: a button always names what it will act on."""
        require("operator")
        _known_agent(agent)
        return *training_messages(settings, agent), f"Retrain {agent}", f"Check {agent} for drift"

    @app.callback(
        Output("controls-retrain-result", "children"),
        Output("controls-retrain-job", "data"),
        Input("controls-retrain", "submit_n_clicks"),
        State("controls-agent", "value"),
        State("controls-retrain-job", "data"),
        prevent_initial_call=True,
    )
    def retrain(_: int, agent: str, kept: list[int] | None) -> tuple[Any, Any]:
        who = require("operator")
        result = act_with_ids(
            lambda: submit_retrain(settings, agent=agent, actor=actor(who), trigger=TRIGGER),
            lambda job: (
                queued_notice(job, f"Retrain of {agent} (model run {job.model_run_id})"),
                remember(kept, [job.id]),
            ),
        )
        return result

    @app.callback(
        Output("controls-drift-result", "children"),
        Output("controls-drift-job", "data"),
        Input("controls-drift", "submit_n_clicks"),
        State("controls-agent", "value"),
        State("controls-drift-job", "data"),
        prevent_initial_call=True,
    )
    def drift(_: int, agent: str, kept: list[int] | None) -> tuple[Any, Any]:
        who = require("operator")
        result = act_with_ids(
            lambda: submit_drift(settings, agent=agent, actor=actor(who)),
            lambda job: (queued_notice(job, f"Drift check of {agent}"), remember(kept, [job.id])),
        )
        return result


def _version_label(v: Any) -> str:
    tags = [*v.aliases, v.validation]
    sharpe = v.metrics.get("sharpe_ratio")
    metric = f", Sharpe {sharpe:.3f}" if isinstance(sharpe, int | float) else ""
    return f"v{v.version} ({', '.join(tags)}{metric})"


def _register_deploy(app: Dash, settings: Settings) -> None:
    @app.callback(
        Output("controls-version", "options"),
        Output("controls-deploy-state", "children"),
        Output("controls-promote-button", "children"),
        Output("controls-promote", "message"),
        Output("controls-rollback", "message"),
        Input("controls-deploy-agent", "value"),
        Input("controls-version", "value"),
        Input("controls-force", "value"),
        Input("refresh", "n_intervals"),
        Input("controls-deployed", "data"),
    )
    def choices(agent: str, version: int | None, force: list[str] | None, _: Any, __: Any) -> tuple[Any, ...]:
        """The versions to promote, where the champion is, and what each button will do: one callback, so
        the messages never lag the state shown."""
        require("operator")
        _known_agent(agent)
        version = _version(version)
        models = _champion(settings, agent)
        champion = models.champion
        previous = previous_champion(settings, agent, current=champion) if champion is not None else None
        options = [{"label": _version_label(v), "value": v.version} for v in models.versions]
        state = (
            f"{agent}: champion v{champion}" + (f", the one before it v{previous}" if previous is not None else "")
            if champion is not None
            else f"{agent} has no champion yet"
        )
        label = "Promote" if version is None else f"Promote v{version}" + (" (force)" if force else "")
        return options, state, label, *_deploy_messages(agent, version, champion, previous, bool(force))

    @app.callback(
        Output("controls-deploy-result", "children"),
        Output("controls-deployed", "data"),
        Input("controls-promote", "submit_n_clicks"),
        Input("controls-rollback", "submit_n_clicks"),
        State("controls-deploy-agent", "value"),
        State("controls-version", "value"),
        State("controls-force", "value"),
        prevent_initial_call=True,
    )
    def deploy(promoted: int | None, rolled: int | None, agent: str, version: int | None, force: Any) -> Any:
        who = require("operator")
        if ctx.triggered_id == "controls-promote":
            try:
                chosen = _version(version)
            except InvalidRequestError as exc:
                return notice(str(exc), "error"), None
            if chosen is None:
                return notice("Choose a version to promote first.", "warning"), None
            result = act_with_ids(
                lambda: promote(
                    settings, agent=agent, version=chosen, actor=actor(who), reason="dashboard", force=bool(force)
                ),
                _moved,
            )
        else:
            result = act_with_ids(lambda: rollback(settings, agent=agent, actor=actor(who), force=bool(force)), _moved)
        return result


def _known_agent(agent: Any) -> None:
    """The dropdowns offer AGENTS only; a forged request may send anything."""
    if agent not in AGENTS:
        raise InvalidRequestError(f"unknown agent {agent!r}; known agents: {', '.join(AGENTS)}")


def _version(value: Any) -> int | None:
    """The version dropdown's value: a version number, or None when none is chosen."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | str) or not str(value).isdigit():
        raise InvalidRequestError(f"a model version is a positive whole number, not {value!r}")
    return int(value)


def _deploy_messages(
    agent: str, version: int | None, champion: int | None, previous: int | None, force: bool
) -> tuple[str, str]:
    now = f"now v{champion}" if champion is not None else "it has none now"
    forced = " Even a version the validation gate rejected is deployed (force)." if force else ""
    if version is None:
        promote_text = f"Choose a version of {agent} to promote first ({now}). Nothing will change."
    else:
        promote_text = (
            f"Make {agent} v{version} the champion ({now})? Predictions use it from their next request.{forced}"
        )
    if previous is None:
        rollback_text = f"{agent} has no previous champion to roll back to ({now}): the request will be refused."
    else:
        rollback_text = (
            f"Roll {agent}'s champion back from v{champion} to v{previous}, the champion before it? "
            f"Predictions use v{previous} from their next request.{forced}"
        )
    return promote_text, rollback_text


def _moved(record: DeploymentRecord) -> tuple[Any, int]:
    before = f"v{record.from_version}" if record.from_version is not None else "none"
    text = f"{record.agent_type}: champion {before} → v{record.to_version} ({record.action} by {record.actor})."
    return notice(text, "ok"), record.id
