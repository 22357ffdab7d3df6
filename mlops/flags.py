"""Feature flags: stored in the app DB, overridable by environment (SKIPPY_FLAG_<NAME>=true|false),
on by default. A disabled feature answers with FeatureDisabledError naming the flag and how to
turn it on; it is not an error of the system."""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import select

from mlops.db import session_scope
from mlops.db.models import FeatureFlag
from mlops.errors import FeatureDisabledError, NotFoundError
from mlops.settings import Settings

FLAGS: dict[str, str] = {
    "mlops_auto_retrain": "retrain automatically on critical drift or performance degradation",
    "mlops_drift_detection": "run drift checks",
    "mlops_hyperparameter_sweeps": "allow hyperparameter sweeps",
}
_TRUE, _FALSE = {"1", "true", "yes", "on"}, {"0", "false", "no", "off"}


@dataclass(frozen=True)
class FlagState:
    name: str
    enabled: bool
    source: str  # default | database | environment
    description: str


def _env_override(name: str) -> bool | None:
    raw = os.environ.get(f"SKIPPY_FLAG_{name.upper()}")
    if raw is None:
        return None
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    from mlops.errors import ConfigurationError

    raise ConfigurationError(
        f"SKIPPY_FLAG_{name.upper()}={raw!r} is neither on nor off: use one of {', '.join(sorted(_TRUE | _FALSE))}, "
        "or unset it to use the database's value"
    )


def _check(name: str) -> None:
    if name not in FLAGS:
        raise NotFoundError(f"unknown feature flag {name!r}; known flags: {', '.join(FLAGS)}")


def list_flags(settings: Settings) -> list[FlagState]:
    with session_scope(settings.app_db_url) as session:
        stored = {f.name: f.enabled for f in session.scalars(select(FeatureFlag))}
    states = []
    for name, description in FLAGS.items():
        env = _env_override(name)
        if env is not None:
            states.append(FlagState(name, env, "environment", description))
        elif name in stored:
            states.append(FlagState(name, stored[name], "database", description))
        else:
            states.append(FlagState(name, True, "default", description))
    return states


def is_enabled(settings: Settings, name: str) -> bool:
    _check(name)
    return next(f.enabled for f in list_flags(settings) if f.name == name)


def require(settings: Settings, name: str) -> None:
    if not is_enabled(settings, name):
        raise FeatureDisabledError(
            f"feature flag {name} is off ({FLAGS[name]}): "
            f"`skippy flags set {name} on` (or SKIPPY_FLAG_{name.upper()}=true) turns it on"
        )


def set_flag(settings: Settings, name: str, enabled: bool, actor: str) -> FlagState:
    """Switch a flag in the app database (an environment override still wins); audited as "flag set"."""
    from mlops.audit import audited

    with audited(settings, actor=actor, action="flag set", parameters={"name": name, "enabled": enabled}) as audit:
        _check(name)
        with session_scope(settings.app_db_url) as session:
            row = session.get(FeatureFlag, name)
            if row is None:
                session.add(FeatureFlag(name=name, enabled=enabled, description=FLAGS[name], updated_by=actor))
            else:
                row.enabled, row.updated_by, row.updated_at = enabled, actor, datetime.now(UTC)
        state = next(f for f in list_flags(settings) if f.name == name)
        audit.update(enabled=state.enabled, source=state.source)
    return state
