"""Alias moves (promote, rollback, challenger, retire) and their history in `model_deployments`.

Every alias change goes through this module, which writes one history row after MLflow accepted the
change — a deletion included (`retire`: a challenger that did not prove itself; `clear`: a challenger
that became champion). So the newest row per (agent, alias) says where the alias points now, and the
read side (`current_aliases`, `ai models`, the API) answers from the app DB without MLflow; the
registry stays the source of truth the write side checks against.

`promote` and `rollback` are the use cases a person (CLI, API, dashboard) or the scheduler calls: each
writes its own audit row, the same whoever called. `deploy_validated` is the retrain pipeline's part:
a candidate the gate passed becomes challenger, then champion in immediate promotion mode (audited as
part of the retrain)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from mlops.audit import audited
from mlops.db import session_scope
from mlops.db.models import ModelDeployment
from mlops.errors import ConflictError, InvalidRequestError, NotFoundError
from mlops.logs import get_logger
from mlops.settings import Settings

log = get_logger(__name__)
CHAMPION, CHALLENGER = "champion", "challenger"  # the registry's aliases (tracking.registry, without MLflow)
# Actions whose row means "the alias points nowhere now" (`to_version` is the version that lost it).
CLEARING_ACTIONS = frozenset({"retire", "clear"})


class DeploymentRecord(BaseModel):
    """One alias change: `to_version` is where the alias went (for retire/clear: the version that lost it)."""

    model_config = ConfigDict(from_attributes=True, frozen=True)

    id: int
    agent_type: str
    alias: str
    action: str  # promote | rollback | challenger | retire | clear
    from_version: int | None
    to_version: int
    actor: str
    reason: str
    created_at: datetime
    model_run_id: int | None


def _write_history(settings: Settings, row: ModelDeployment) -> DeploymentRecord:
    """Add one `model_deployments` row (after MLflow accepted the alias change) and return it as a record."""
    with session_scope(settings.app_db_url) as session:
        session.add(row)
        session.flush()
        return DeploymentRecord.model_validate(row)


def move_alias(
    settings: Settings,
    *,
    agent: str,
    alias: str,
    version: int,
    action: str,
    actor: str,
    reason: str,
    metrics: dict[str, Any] | None = None,
    model_run_id: int | None = None,
) -> DeploymentRecord:
    from tracking import registry

    previous = registry.alias_version(settings, agent, alias)
    registry.set_alias(settings, agent, alias, version)
    record = _write_history(
        settings,
        ModelDeployment(
            agent_type=agent,
            alias=alias,
            action=action,
            from_version=previous,
            to_version=version,
            actor=actor,
            reason=reason,
            metrics=metrics or {},
            model_run_id=model_run_id,
        ),
    )
    log.info(
        f"{alias} of {agent} moved",
        agent_type=agent,
        model_version=version,
        action=action,
        from_version=previous,
        actor=actor,
    )
    return record


def _clear_alias(
    settings: Settings, *, agent: str, alias: str, version: int, action: str, actor: str, reason: str
) -> DeploymentRecord:
    """Delete `alias` (which points to `version`) and record it, so the history still says where it points."""
    from tracking import registry

    registry.delete_alias(settings, agent, alias)
    record = _write_history(
        settings,
        ModelDeployment(
            agent_type=agent,
            alias=alias,
            action=action,
            from_version=version,
            to_version=version,
            actor=actor,
            reason=reason,
        ),
    )
    log.info(f"{alias} of {agent} cleared", agent_type=agent, model_version=version, action=action, actor=actor)
    return record


def _moved(record: DeploymentRecord) -> dict[str, Any]:
    """The audit row's result of an alias move."""
    return {"from_version": record.from_version, "to_version": record.to_version, "alias": record.alias}


def promote(
    settings: Settings,
    *,
    agent: str,
    version: int,
    actor: str,
    reason: str = "manual promotion",
    model_run_id: int | None = None,
    metrics: dict[str, Any] | None = None,
    force: bool = False,
) -> DeploymentRecord:
    """Make `version` the champion (one audit row, action `promote`). The challenger alias is cleared if it
    pointed to that version. A version the validation gate rejected is only deployed with `force` (a
    human's explicit call)."""
    parameters = {"agent": agent, "version": version, "force": force, "reason": reason}
    with audited(settings, actor=actor, action="promote", parameters=parameters) as result:
        record = _promote(
            settings,
            agent=agent,
            version=version,
            actor=actor,
            reason=reason,
            model_run_id=model_run_id,
            metrics=metrics,
            force=force,
        )
        result.update(_moved(record))
    return record


def _promote(
    settings: Settings,
    *,
    agent: str,
    version: int,
    actor: str,
    reason: str,
    model_run_id: int | None,
    metrics: dict[str, Any] | None,
    force: bool,
) -> DeploymentRecord:
    from mlops.agents.specs import get_spec
    from tracking import registry

    get_spec(agent)
    info = registry.get_version(settings, agent, version)
    if info is None:
        raise NotFoundError(f"{agent} has no model version {version}")
    current = registry.alias_version(settings, agent, CHAMPION)
    if current == version:
        raise ConflictError(f"{agent} v{version} is already the champion")
    if info.tags.get("validation") == "rejected" and not force:
        raise InvalidRequestError(
            f"{agent} v{version} was rejected by validation ({info.tags.get('validation_reason') or 'see its run'}); "
            "promote it anyway with --force"
        )
    record = move_alias(
        settings,
        agent=agent,
        alias=CHAMPION,
        version=version,
        action="promote",
        actor=actor,
        reason=reason,
        metrics=metrics,
        model_run_id=model_run_id,
    )
    if registry.alias_version(settings, agent, CHALLENGER) == version:
        _clear_promoted_challenger(settings, agent=agent, version=version, actor=actor)
    return record


def _clear_promoted_challenger(settings: Settings, *, agent: str, version: int, actor: str) -> None:
    """A challenger promoted to champion is no longer a challenger: clear that alias (a `clear` row)."""
    _clear_alias(
        settings,
        agent=agent,
        alias=CHALLENGER,
        version=version,
        action="clear",
        actor=actor,
        reason=f"v{version} promoted to champion",
    )


def deploy_validated(
    settings: Settings,
    *,
    agent: str,
    version: int,
    actor: str,
    reason: str,
    metrics: dict[str, Any],
    model_run_id: int,
) -> str:
    """Deploy a candidate the validation gate passed: it becomes `challenger`; in immediate promotion mode
    it is promoted straight on and the challenger alias cleared. Returns "promoted" or "challenger".
    No audit row of its own: this is one step of a retrain, whose row records the outcome."""
    moves = [(CHALLENGER, "challenger")]
    if settings.promotion_mode == "immediate":
        moves.append((CHAMPION, "promote"))
    for alias, action in moves:
        move_alias(
            settings,
            agent=agent,
            alias=alias,
            version=version,
            action=action,
            actor=actor,
            reason=reason,
            metrics=metrics,
            model_run_id=model_run_id,
        )
    if settings.promotion_mode != "immediate":
        return "challenger"
    _clear_promoted_challenger(settings, agent=agent, version=version, actor=actor)
    return "promoted"


def retire_challenger(settings: Settings, *, agent: str, version: int, actor: str, reason: str) -> DeploymentRecord:
    """Clear the `challenger` alias of a version that did not prove itself; the history keeps why."""
    return _clear_alias(
        settings, agent=agent, alias=CHALLENGER, version=version, action="retire", actor=actor, reason=reason
    )


def previous_champion(settings: Settings, agent: str) -> int | None:
    """The version that was champion before the current one, from the deployment history."""
    from tracking import registry

    current = registry.alias_version(settings, agent, CHAMPION)
    with session_scope(settings.app_db_url) as session:
        rows = session.scalars(
            select(ModelDeployment)
            .where(ModelDeployment.agent_type == agent, ModelDeployment.alias == CHAMPION)
            .order_by(ModelDeployment.id.desc())
        ).all()
    for row in rows:
        if row.to_version == current and row.from_version is not None and row.from_version != current:
            return row.from_version
    return None


def rollback(
    settings: Settings,
    *,
    agent: str,
    actor: str,
    to_version: int | None = None,
    reason: str = "",
    force: bool = False,
) -> DeploymentRecord:
    """Move `champion` back to the previous champion (or to `to_version`) in one step (one audit row,
    action `rollback`). Like a promotion, it never lands on a version the validation gate rejected unless
    `force` (a human's explicit call)."""
    parameters = {"agent": agent, "to_version": to_version, "force": force, "reason": reason}
    with audited(settings, actor=actor, action="rollback", parameters=parameters) as result:
        record = _rollback(settings, agent=agent, actor=actor, to_version=to_version, reason=reason, force=force)
        result.update(_moved(record))
    return record


def _rollback(
    settings: Settings, *, agent: str, actor: str, to_version: int | None, reason: str, force: bool
) -> DeploymentRecord:
    from mlops.agents.specs import get_spec
    from tracking import registry

    get_spec(agent)
    current = registry.alias_version(settings, agent, CHAMPION)
    if current is None:
        raise NotFoundError(f"{agent} has no champion to roll back")
    target = to_version if to_version is not None else previous_champion(settings, agent)
    if target is None:
        raise NotFoundError(f"{agent} has no previous champion to roll back to (champion is v{current})")
    info = registry.get_version(settings, agent, target)
    if info is None:
        raise NotFoundError(f"{agent} has no model version {target}")
    if target == current:
        raise ConflictError(f"{agent} v{target} is already the champion")
    if info.tags.get("validation") == "rejected" and not force:
        raise InvalidRequestError(
            f"rolling {agent} back would deploy v{target}, which validation rejected "
            f"({info.tags.get('validation_reason') or 'see its run'}); roll back anyway with --force, "
            "or name another version with --to-version"
        )
    return move_alias(
        settings,
        agent=agent,
        alias=CHAMPION,
        version=target,
        action="rollback",
        actor=actor,
        reason=reason or f"rollback from v{current}",
    )


def list_deployments(settings: Settings, agent: str | None = None, limit: int = 50) -> list[DeploymentRecord]:
    with session_scope(settings.app_db_url) as session:
        query = select(ModelDeployment).order_by(ModelDeployment.id.desc()).limit(limit)
        if agent:
            query = query.where(ModelDeployment.agent_type == agent)
        return [DeploymentRecord.model_validate(r) for r in session.scalars(query)]


def current_aliases(session: Session, agent: str) -> dict[str, int | None]:
    """Where `champion` and `challenger` point now, from the history alone (no MLflow): the newest row
    per alias, none when that row cleared it or there is no row.

    Histories written before deletions were recorded lack the `clear` row of a challenger promoted to
    champion; there a later `promote` of the challenger's version is what cleared it (it always did)."""
    newest = (
        select(func.max(ModelDeployment.id)).where(ModelDeployment.agent_type == agent).group_by(ModelDeployment.alias)
    )
    rows = session.execute(
        select(ModelDeployment.id, ModelDeployment.alias, ModelDeployment.action, ModelDeployment.to_version).where(
            ModelDeployment.id.in_(newest)
        )
    ).all()
    aliases: dict[str, int | None] = {CHAMPION: None, CHALLENGER: None}
    for row_id, alias, action, version in rows:
        aliases[alias] = None if action in CLEARING_ACTIONS else version
        if alias == CHALLENGER and aliases[alias] is not None:
            promoted = session.scalar(
                select(ModelDeployment.id).where(
                    ModelDeployment.agent_type == agent,
                    ModelDeployment.alias == CHAMPION,
                    ModelDeployment.action == "promote",
                    ModelDeployment.to_version == version,
                    ModelDeployment.id > row_id,
                )
            )
            if promoted is not None:
                aliases[alias] = None
    return aliases
