"""Alias moves (promote, rollback, challenger, retire) and their history in `model_deployments`.

Every alias change goes through this module, which writes one history row after MLflow accepted the
change — a deletion included (`retire`: a challenger that did not prove itself; `clear`: a challenger
that became champion). So the newest row per (agent, alias) says where the alias points now, and the
read side (`current_aliases`, `ai models`, the API) answers from the app DB without MLflow; the
registry stays the source of truth the write side checks against.

`promote` and `rollback` are the use cases a person (CLI, API, dashboard) or the scheduler calls: each
writes its own audit row, the same whoever called. `deploy_validated` is the retrain pipeline's part:
a candidate the gate passed becomes challenger, then champion in immediate promotion mode (audited as
part of the retrain).

All or nothing: an alias change and its row commit together or not at all. The inputs are checked first
(control characters, lengths), the row is written (a row the database refuses stops there, before MLflow
is touched), the alias is changed, and the row commits only after MLflow accepted the change; if the
commit fails, or the process is interrupted in between, the alias is put back. A process killed with -9
between MLflow and the commit leaves the alias moved without its row: `undo_run_moves` (the reaper's, and
a failed retrain's own) puts back every alias a failed run moved, recorded or not."""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from mlops.audit import audited
from mlops.db import session_scope
from mlops.db.models import ModelDeployment, ModelRun
from mlops.errors import ConflictError, InvalidRequestError, NotFoundError
from mlops.logs import get_logger
from mlops.settings import Settings
from mlops.text import check_text

log = get_logger(__name__)
CHAMPION, CHALLENGER = "champion", "challenger"  # the registry's aliases (tracking.registry, without MLflow)
# An alias put back after a failed run had moved it: onto `to_version` (undo), or deleted (undo-clear).
UNDO, UNDO_CLEAR = "undo", "undo-clear"
# Actions whose row means "the alias points nowhere now" (`to_version` is the version that lost it).
CLEARING_ACTIONS = frozenset({"retire", "clear", UNDO_CLEAR})
MAX_ACTOR = 128  # model_deployments.actor
MAX_REASON = 5000


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


def check_move(*, actor: str, reason: str) -> None:
    """Refuse (InvalidRequestError) what the history could not store or should not show — control
    characters (PostgreSQL refuses NUL), an actor or reason longer than their columns — before anything moves."""
    check_text(actor, field="actor")
    check_text(reason, field="reason", multiline=True)
    if not actor or len(actor) > MAX_ACTOR:
        raise InvalidRequestError(f"actor: 1 to {MAX_ACTOR} characters, got {len(actor)}")
    if len(reason) > MAX_REASON:
        raise InvalidRequestError(f"reason: at most {MAX_REASON} characters, got {len(reason)}")


def _storable(metrics: dict[str, Any] | None) -> dict[str, Any]:
    """Metrics as a JSON column on PostgreSQL accepts them: NaN and infinities become null."""
    return {k: None if isinstance(v, float) and not math.isfinite(v) else v for k, v in (metrics or {}).items()}


def _change_recorded(
    settings: Settings, row: ModelDeployment, change: Callable[[], None], restore: Callable[[], None]
) -> DeploymentRecord:
    """Apply an alias `change` and commit its history `row` together: the row is flushed first (refused →
    nothing moved), the change applied, then the row committed; whatever fails or interrupts after the
    change began (the commit, a signal) runs `restore`, which puts the alias back, and re-raises."""
    check_move(actor=row.actor, reason=row.reason)
    touched = committed = False
    try:
        with session_scope(settings.app_db_url) as session:
            session.add(row)
            session.flush()
            touched = True
            change()
            session.commit()
            committed = True
            return DeploymentRecord.model_validate(row)
    except BaseException as exc:
        if touched and not committed:
            try:
                restore()
            except Exception as undo_error:  # MLflow unreachable too: say loudly what is left to mend
                log.error(
                    f"{row.alias} of {row.agent_type} could not be put back after its history row failed",
                    agent_type=row.agent_type,
                    model_version=row.to_version,
                    error=str(undo_error)[:500],
                    cause=str(exc)[:500],
                )
        raise


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
    """Point `alias` at `version` and record it (all or nothing, see the module docstring)."""
    from tracking import registry

    previous = registry.alias_version(settings, agent, alias)

    def restore() -> None:
        if previous is None:
            registry.delete_alias(settings, agent, alias)
        else:
            registry.set_alias(settings, agent, alias, previous)

    record = _change_recorded(
        settings,
        ModelDeployment(
            agent_type=agent,
            alias=alias,
            action=action,
            from_version=previous,
            to_version=version,
            actor=actor,
            reason=reason,
            metrics=_storable(metrics),
            model_run_id=model_run_id,
        ),
        lambda: registry.set_alias(settings, agent, alias, version),
        restore,
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
    settings: Settings,
    *,
    agent: str,
    alias: str,
    version: int,
    action: str,
    actor: str,
    reason: str,
    model_run_id: int | None = None,
) -> DeploymentRecord:
    """Delete `alias` (which points to `version`) and record it, so the history still says where it points."""
    from tracking import registry

    record = _change_recorded(
        settings,
        ModelDeployment(
            agent_type=agent,
            alias=alias,
            action=action,
            from_version=version,
            to_version=version,
            actor=actor,
            reason=reason,
            metrics={},
            model_run_id=model_run_id,
        ),
        lambda: registry.delete_alias(settings, agent, alias),
        lambda: registry.set_alias(settings, agent, alias, version),
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
    check_move(actor=actor, reason=reason)
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
        _clear_promoted_challenger(settings, agent=agent, version=version, actor=actor, model_run_id=model_run_id)
    return record


def _clear_promoted_challenger(
    settings: Settings, *, agent: str, version: int, actor: str, model_run_id: int | None = None
) -> None:
    """A challenger promoted to champion is no longer a challenger: clear that alias (a `clear` row)."""
    _clear_alias(
        settings,
        agent=agent,
        alias=CHALLENGER,
        version=version,
        action="clear",
        actor=actor,
        reason=f"v{version} promoted to champion",
        model_run_id=model_run_id,
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
    check_move(actor=actor, reason=reason)
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
    _clear_promoted_challenger(settings, agent=agent, version=version, actor=actor, model_run_id=model_run_id)
    return "promoted"


def retire_challenger(settings: Settings, *, agent: str, version: int, actor: str, reason: str) -> DeploymentRecord:
    """Clear the `challenger` alias of a version that did not prove itself; the history keeps why."""
    return _clear_alias(
        settings, agent=agent, alias=CHALLENGER, version=version, action="retire", actor=actor, reason=reason
    )


def undo_run_moves(settings: Settings, run_id: int, *, actor: str, reason: str) -> list[DeploymentRecord]:
    """Put back every alias the failed run `run_id` moved, each with one `undo`/`undo-clear` row: an alias
    where the run's recorded moves left it goes back where it pointed before the run's first move (one
    moved on since is left where it is); then an alias the registry has on the run's version that the
    history does not record (MLflow accepted it, the process died before the row committed) goes back
    where the history says. Returns the rows written; MLflow is only asked when there is something to check."""
    with session_scope(settings.app_db_url) as session:
        run = session.get(ModelRun, run_id)
        if run is None:
            return []
        agent, version = run.agent_type, run.model_version
        moves = session.execute(
            select(
                ModelDeployment.alias, ModelDeployment.action, ModelDeployment.from_version, ModelDeployment.to_version
            )
            .where(ModelDeployment.model_run_id == run_id, ModelDeployment.action.not_in((UNDO, UNDO_CLEAR)))
            .order_by(ModelDeployment.id)
        ).all()
    if not moves and version is None:
        return []
    from tracking import registry

    # Per alias: where it pointed before the run's first move (a clearing row's from_version is the version
    # that lost it, i.e. where it pointed), and where the run's last move left it.
    before: dict[str, int | None] = {}
    left: dict[str, int | None] = {}
    for alias, action, from_version, to_version in moves:
        before.setdefault(alias, from_version)
        left[alias] = None if action in CLEARING_ACTIONS else to_version
    undone = []
    for alias in sorted(left):
        if before[alias] != left[alias] and registry.alias_version(settings, agent, alias) == left[alias]:
            undone.append(_put_back(settings, agent, alias, left[alias], before[alias], actor, reason, run_id))
    if version is not None:
        with session_scope(settings.app_db_url) as session:
            recorded = current_aliases(session, agent)
        for alias in (CHAMPION, CHALLENGER):
            if registry.alias_version(settings, agent, alias) == version and recorded[alias] != version:
                undone.append(_put_back(settings, agent, alias, version, recorded[alias], actor, reason, run_id))
    return undone


def _put_back(
    settings: Settings,
    agent: str,
    alias: str,
    left_at: int | None,
    back_to: int | None,
    actor: str,
    reason: str,
    run_id: int,
) -> DeploymentRecord:
    """Move `alias` from `left_at` back to `back_to` (None: delete it), recorded as an undo of run `run_id`."""
    if back_to is None:
        assert left_at is not None  # a deletion is only undone by setting the alias again
        return _clear_alias(
            settings,
            agent=agent,
            alias=alias,
            version=left_at,
            action=UNDO_CLEAR,
            actor=actor,
            reason=reason,
            model_run_id=run_id,
        )
    return move_alias(
        settings,
        agent=agent,
        alias=alias,
        version=back_to,
        action=UNDO,
        actor=actor,
        reason=reason,
        model_run_id=run_id,
    )


def describe_undone(records: list[DeploymentRecord]) -> str:
    """`challenger v2 → none, champion v2 → v1`: what `undo_run_moves` put back, for a run's error."""
    moves = []
    for r in records:
        where = "none" if r.action == UNDO_CLEAR else f"v{r.to_version}"
        moves.append(f"{r.alias} {'none' if r.from_version is None else f'v{r.from_version}'} → {where}")
    return ", ".join(moves)


def previous_champion(settings: Settings, agent: str, current: int | None = None) -> int | None:
    """The version that was champion before the current one, from the deployment history. `current`: the
    champion now when the caller read it already (the dashboard, from the app DB); else the registry says."""
    if current is None:
        from tracking import registry

        current = registry.alias_version(settings, agent, CHAMPION)
    if current is None:
        return None
    # The newest matching move only (an index-ordered read that stops at one row): the dashboard asks on every
    # refresh, and the history grows with every run. UNDO rows are a failed run's move put back: the champion
    # before it is the one before that run.
    query = (
        select(ModelDeployment.from_version)
        .where(
            ModelDeployment.agent_type == agent,
            ModelDeployment.alias == CHAMPION,
            ModelDeployment.action != UNDO,
            ModelDeployment.to_version == current,
            ModelDeployment.from_version.is_not(None),
            ModelDeployment.from_version != current,
        )
        .order_by(ModelDeployment.id.desc())
        .limit(1)
    )
    with session_scope(settings.app_db_url) as session:
        return session.scalars(query).first()


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
    check_move(actor=actor, reason=reason)
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
