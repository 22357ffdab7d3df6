"""Alias moves (promote, rollback, challenger) and their history in `model_deployments`.

Every alias change goes through `move_alias`, which writes the history row after MLflow accepted the
change; the registry stays the source of truth for where an alias points."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select

from mlops.agents.specs import get_spec
from mlops.db import session_scope
from mlops.db.models import ModelDeployment
from mlops.errors import ConflictError, InvalidRequestError, NotFoundError
from mlops.logs import get_logger
from mlops.settings import Settings

log = get_logger(__name__)


@dataclass(frozen=True)
class DeploymentRecord:
    id: int
    agent_type: str
    alias: str
    action: str
    from_version: int | None
    to_version: int
    actor: str
    reason: str
    created_at: datetime
    model_run_id: int | None


def _record(row: ModelDeployment) -> DeploymentRecord:
    return DeploymentRecord(
        row.id,
        row.agent_type,
        row.alias,
        row.action,
        row.from_version,
        row.to_version,
        row.actor,
        row.reason,
        row.created_at,
        row.model_run_id,
    )


def _write_history(settings: Settings, row: ModelDeployment) -> DeploymentRecord:
    """Add one `model_deployments` row (after MLflow accepted the alias change) and return it as a record."""
    with session_scope(settings.app_db_url) as session:
        session.add(row)
        session.flush()
        return _record(row)


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
    """Make `version` the champion. The challenger alias is cleared if it pointed to that version.
    A version the validation gate rejected is only deployed with `force` (a human's explicit call)."""
    from tracking import registry

    get_spec(agent)
    info = registry.get_version(settings, agent, version)
    if info is None:
        raise NotFoundError(f"{agent} has no model version {version}")
    current = registry.alias_version(settings, agent, registry.CHAMPION)
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
        alias=registry.CHAMPION,
        version=version,
        action="promote",
        actor=actor,
        reason=reason,
        metrics=metrics,
        model_run_id=model_run_id,
    )
    if registry.alias_version(settings, agent, registry.CHALLENGER) == version:
        registry.delete_alias(settings, agent, registry.CHALLENGER)
    return record


def retire_challenger(settings: Settings, *, agent: str, version: int, actor: str, reason: str) -> DeploymentRecord:
    """Clear the `challenger` alias of a version that did not prove itself; the history keeps why."""
    from tracking import registry

    registry.delete_alias(settings, agent, registry.CHALLENGER)
    record = _write_history(
        settings,
        ModelDeployment(
            agent_type=agent,
            alias=registry.CHALLENGER,
            action="retire",
            from_version=version,
            to_version=version,
            actor=actor,
            reason=reason,
        ),
    )
    log.info("challenger retired", agent_type=agent, model_version=version, actor=actor)
    return record


def previous_champion(settings: Settings, agent: str) -> int | None:
    """The version that was champion before the current one, from the deployment history."""
    from tracking import registry

    current = registry.alias_version(settings, agent, registry.CHAMPION)
    with session_scope(settings.app_db_url) as session:
        rows = session.scalars(
            select(ModelDeployment)
            .where(ModelDeployment.agent_type == agent, ModelDeployment.alias == registry.CHAMPION)
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
    """Move `champion` back to the previous champion (or to `to_version`) in one step. Like a promotion,
    it never lands on a version the validation gate rejected unless `force` (a human's explicit call)."""
    from tracking import registry

    get_spec(agent)
    current = registry.alias_version(settings, agent, registry.CHAMPION)
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
        alias=registry.CHAMPION,
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
        return [_record(r) for r in session.scalars(query)]
