"""API keys and roles. A key is `sk_` + 43 URL-safe characters (256 random bits); only its SHA-256
is stored, with a short prefix to recognise it in lists. Roles are ordered: viewer < operator < admin."""

from __future__ import annotations

import hashlib
import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime

from pydantic import BaseModel, ConfigDict
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from mlops.audit import audited
from mlops.db import session_scope
from mlops.db.models import ApiKey
from mlops.errors import AuthenticationError, ConflictError, InvalidRequestError, NotFoundError, PermissionDeniedError
from mlops.settings import Settings

ROLES: tuple[str, ...] = ("viewer", "operator", "admin")
KEY_PREFIX = "sk_"
# A verified key is trusted for this long without asking the database again (per process): a
# revocation takes effect at once in the process that revokes, within this time in other replicas.
CACHE_SECONDS = 5.0
_verified: dict[tuple[str, str], tuple[float, Principal]] = {}


class KeyRecord(BaseModel):
    model_config = ConfigDict(from_attributes=True, frozen=True)

    id: int
    name: str
    role: str
    prefix: str
    created_by: str
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


@dataclass(frozen=True)
class CreatedKey:
    """Returned once, at creation: the only time the key itself is known."""

    key: str
    record: KeyRecord


@dataclass(frozen=True)
class Principal:
    """Who is calling: the key's name and role."""

    name: str
    role: str

    def can(self, role: str) -> bool:
        return ROLES.index(self.role) >= ROLES.index(role)

    def require(self, role: str) -> None:
        if not self.can(role):
            raise PermissionDeniedError(f"this needs the {role} role; key {self.name!r} has role {self.role}")


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def _record(row: ApiKey) -> KeyRecord:
    return KeyRecord.model_validate(row)


def check_role(role: str) -> str:
    if role not in ROLES:
        raise InvalidRequestError(f"unknown role {role!r}; roles: {', '.join(ROLES)}")
    return role


def create_key(settings: Settings, *, name: str, role: str, actor: str) -> CreatedKey:
    """Create an API key (only its hash is stored); audited as "key create", never with the key."""
    with audited(settings, actor=actor, action="key create", parameters={"name": name, "role": role}) as audit:
        created = _create_key(settings, name=name, role=role, created_by=actor)
        audit.update(prefix=created.record.prefix)
    return created


def _create_key(settings: Settings, *, name: str, role: str, created_by: str) -> CreatedKey:
    check_role(role)
    name = name.strip()
    if not name or len(name) > 64:
        raise InvalidRequestError("a key name must be 1-64 characters")
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    row = ApiKey(name=name, role=role, key_hash=hash_key(key), prefix=key[:10], created_by=created_by)
    try:
        with session_scope(settings.app_db_url) as session:
            session.add(row)
            session.flush()
            record = _record(row)
    except IntegrityError:
        raise ConflictError(f"an API key named {name!r} already exists (revoked keys keep their name)") from None
    return CreatedKey(key, record)


def list_keys(settings: Settings, include_revoked: bool = False) -> list[KeyRecord]:
    query = select(ApiKey).order_by(ApiKey.id)
    if not include_revoked:
        query = query.where(ApiKey.revoked_at.is_(None))
    with session_scope(settings.app_db_url) as session:
        return [_record(r) for r in session.scalars(query)]


def revoke_key(settings: Settings, name: str, *, actor: str) -> KeyRecord:
    """Revoke an API key: requests with it get 401 from then on. Audited as "key revoke"."""
    with audited(settings, actor=actor, action="key revoke", parameters={"name": name}) as audit:
        with session_scope(settings.app_db_url) as session:
            row = session.scalars(select(ApiKey).where(ApiKey.name == name)).one_or_none()
            if row is None:
                raise NotFoundError(f"no API key named {name!r}")
            if row.revoked_at is None:
                row.revoked_at = datetime.now(UTC)
            record = _record(row)
        _verified.clear()  # after the commit: a request racing the revocation cannot re-cache the key
        audit.update(role=record.role, revoked_at=record.revoked_at)
    return record


def recently_verified(settings: Settings, key: str) -> Principal | None:
    """The principal of `key` if this process verified it less than CACHE_SECONDS ago."""
    entry = _verified.get((settings.app_db_url, hash_key(key)))
    if entry is not None and time.monotonic() - entry[0] < CACHE_SECONDS:
        return entry[1]
    return None


def authenticate(settings: Settings, key: str | None) -> Principal:
    """The principal of an active key; AuthenticationError otherwise (the message never echoes the key)."""
    if not key:
        raise AuthenticationError("missing API key: send the header 'Authorization: Bearer <key>'")
    digest = hash_key(key)
    with session_scope(settings.app_db_url) as session:
        row = session.execute(
            select(ApiKey.id, ApiKey.name, ApiKey.role, ApiKey.last_used_at).where(
                ApiKey.key_hash == digest, ApiKey.revoked_at.is_(None)
            )
        ).one_or_none()
        if row is None:
            raise AuthenticationError("invalid or revoked API key")
        now = datetime.now(UTC)
        last = row.last_used_at
        # Record use at most once a minute: a write per request would serialise readers on SQLite.
        if last is None or (now - last).total_seconds() > 60:
            session.execute(update(ApiKey).where(ApiKey.id == row.id).values(last_used_at=now))
    who = Principal(row.name, row.role)
    _verified[(settings.app_db_url, digest)] = (time.monotonic(), who)
    return who


def has_admin_key(settings: Settings) -> bool:
    with session_scope(settings.app_db_url) as session:
        found = session.scalars(
            select(ApiKey.id).where(ApiKey.role == "admin", ApiKey.revoked_at.is_(None)).limit(1)
        ).first()
    return found is not None
