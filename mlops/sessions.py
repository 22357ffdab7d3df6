"""Dashboard sessions: log in once with an API key, then a random session token in an HttpOnly cookie.

Only the token's SHA-256 is stored, with the key it was opened with: a session acts with that key's role,
ends at `expires_at` (SKIPPY_DASHBOARD_SESSION_HOURS after login) or at logout, and ends at once when its
key is revoked. Each session has a CSRF token the page sends back in a header with every state-changing
request (double submit: a cross-site page can neither read it nor, with SameSite=Strict, send the cookie)."""

from __future__ import annotations

import hmac
import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, select, update

from mlops.audit import audited, record
from mlops.auth import Principal, authenticate, hash_key
from mlops.db import session_scope
from mlops.db.models import ApiKey, DashboardSession
from mlops.errors import AuthenticationError
from mlops.settings import Settings

# A verified session is trusted this long without asking the database again (per process), like API keys.
CACHE_SECONDS = 5.0
_verified: dict[tuple[str, str], tuple[float, ActiveSession]] = {}


@dataclass(frozen=True)
class ActiveSession:
    """A live session: who it acts as, its CSRF token and when it ends."""

    principal: Principal
    csrf_token: str
    expires_at: datetime


@dataclass(frozen=True)
class OpenedSession:
    """Returned once, at login: the only time the token itself is known."""

    token: str
    session: ActiveSession


def open_session(settings: Settings, key: str | None, *, client: str | None = None) -> OpenedSession:
    """Log in with an API key: AuthenticationError for a missing, invalid or revoked one. Audited as
    "dashboard login" either way, by the key's name (`dashboard:<name>`) or `anonymous` (never the key)."""
    try:
        who = authenticate(settings, key)
    except AuthenticationError as exc:
        record(
            settings,
            actor="anonymous",
            action="dashboard login",
            parameters={"client": client},
            status_code=None,
            result={"error": str(exc), "error_type": "AuthenticationError"},
            client=client,
        )
        raise
    parameters = {"client": client, "role": who.role}
    with audited(settings, actor=f"dashboard:{who.name}", action="dashboard login", parameters=parameters) as audit:
        token, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        expires = datetime.now(UTC) + timedelta(hours=settings.dashboard_session_hours)
        with session_scope(settings.app_db_url) as db:
            # Sessions that ended are of no further use (logins and logouts stay in the audit trail).
            db.execute(
                delete(DashboardSession).where(
                    (DashboardSession.expires_at < datetime.now(UTC)) | DashboardSession.ended_at.is_not(None)
                )
            )
            key_id = db.scalars(select(ApiKey.id).where(ApiKey.key_hash == hash_key(key or ""))).one()
            db.add(
                DashboardSession(
                    token_hash=hash_key(token), csrf_token=csrf, key_id=key_id, client=client, expires_at=expires
                )
            )
        audit.update(expires_at=expires)
    return OpenedSession(token, ActiveSession(who, csrf, expires))


def verify_session(settings: Settings, token: str | None) -> ActiveSession:
    """The session of `token` if it is open, unexpired and its key not revoked; AuthenticationError otherwise."""
    if not token:
        raise AuthenticationError("not logged in")
    cache_key = (settings.app_db_url, hash_key(token))
    entry = _verified.get(cache_key)
    now = datetime.now(UTC)
    if entry is not None and time.monotonic() - entry[0] < CACHE_SECONDS and entry[1].expires_at > now:
        return entry[1]
    with session_scope(settings.app_db_url) as db:
        row = db.execute(
            select(ApiKey.name, ApiKey.role, DashboardSession.csrf_token, DashboardSession.expires_at)
            .join(ApiKey, ApiKey.id == DashboardSession.key_id)
            .where(
                DashboardSession.token_hash == cache_key[1],
                DashboardSession.ended_at.is_(None),
                DashboardSession.expires_at > now,
                ApiKey.revoked_at.is_(None),
            )
        ).one_or_none()
    if row is None:
        _verified.pop(cache_key, None)
        raise AuthenticationError("the session has ended (expired, logged out, or its key was revoked): log in again")
    active = ActiveSession(Principal(row.name, row.role), row.csrf_token, row.expires_at)
    if len(_verified) > 1000:  # forget entries past their trust window, so the cache cannot grow for ever
        stale = [k for k, (at, _) in _verified.items() if time.monotonic() - at >= CACHE_SECONDS]
        for k in stale:
            _verified.pop(k, None)
    _verified[cache_key] = (time.monotonic(), active)
    return active


def csrf_matches(active: ActiveSession, sent: str | None) -> bool:
    return bool(sent) and hmac.compare_digest(active.csrf_token.encode(), (sent or "").encode())


def close_session(settings: Settings, token: str | None, *, client: str | None = None) -> None:
    """Log out: the token stops working at once in this process (within CACHE_SECONDS in other replicas)."""
    if not token:
        return
    digest = hash_key(token)
    _verified.pop((settings.app_db_url, digest), None)
    with session_scope(settings.app_db_url) as db:
        name = db.scalars(
            select(ApiKey.name)
            .join(DashboardSession, ApiKey.id == DashboardSession.key_id)
            .where(DashboardSession.token_hash == digest, DashboardSession.ended_at.is_(None))
        ).one_or_none()
    if name is None:
        return
    audit = audited(settings, actor=f"dashboard:{name}", action="dashboard logout", parameters={"client": client})
    with audit, session_scope(settings.app_db_url) as db:
        db.execute(
            update(DashboardSession)
            .where(DashboardSession.token_hash == digest, DashboardSession.ended_at.is_(None))
            .values(ended_at=datetime.now(UTC))
        )
    _verified.pop((settings.app_db_url, digest), None)
