"""Who is using the dashboard: the session the request guard (dashboard/server.py) verified, kept on
Flask's request context. Callbacks ask for a role before acting; the guard already refused anyone not
logged in."""

from __future__ import annotations

from flask import g

from mlops.auth import Principal
from mlops.errors import AuthenticationError
from mlops.sessions import ActiveSession


def session() -> ActiveSession:
    active: ActiveSession | None = g.get("session")
    if active is None:  # the guard lets no such request through; this is a second line
        raise AuthenticationError("not logged in")
    return active


def who() -> Principal:
    return session().principal


def require(role: str) -> Principal:
    """The user, if their key has `role` or higher; PermissionDeniedError (403) otherwise."""
    principal = who()
    principal.require(role)
    return principal


def actor(principal: Principal) -> str:
    """How the audit trail and the records name a dashboard user: `dashboard:<key name>`."""
    return f"dashboard:{principal.name}"
