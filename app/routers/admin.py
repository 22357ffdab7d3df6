"""Admin: API keys, feature flags and the audit trail."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, status

from app.deps import Admin, SettingsDep, actor
from app.errors import documented
from app.schemas import SINGLE_LINE, CreatedKeyResponse, FlagUpdate, KeyRequest, Page, Timestamp, page
from mlops.audit import AuditRecord, list_audit
from mlops.auth import KeyRecord, create_key, list_keys, revoke_key
from mlops.flags import FlagState, list_flags, set_flag

router = APIRouter(tags=["admin"], responses=documented(401, 403, 422))


@router.get("/api/admin/keys", response_model=list[KeyRecord], summary="API keys (never the keys themselves)")
def keys(settings: SettingsDep, _: Admin, include_revoked: bool = False) -> list[KeyRecord]:
    return list_keys(settings, include_revoked)


@router.post(
    "/api/admin/keys",
    response_model=CreatedKeyResponse,
    status_code=status.HTTP_201_CREATED,
    responses=documented(409),
    summary="Create an API key; the response is the only time the key is shown",
)
def create(settings: SettingsDep, who: Admin, body: KeyRequest) -> CreatedKeyResponse:
    created = create_key(settings, name=body.name, role=body.role, actor=actor(who))
    r = created.record
    return CreatedKeyResponse(key=created.key, name=r.name, role=r.role, prefix=r.prefix, created_at=r.created_at)


@router.delete(
    "/api/admin/keys/{name}", response_model=KeyRecord, responses=documented(404), summary="Revoke an API key"
)
def revoke(settings: SettingsDep, who: Admin, name: Annotated[str, Path(max_length=64), SINGLE_LINE]) -> KeyRecord:
    return revoke_key(settings, name, actor=actor(who))


@router.get("/api/admin/audit", response_model=Page[AuditRecord], summary="The audit trail, newest first")
def audit(
    settings: SettingsDep,
    _: Admin,
    actor_name: Annotated[str | None, Query(alias="actor", max_length=128), SINGLE_LINE] = None,
    action: Annotated[str | None, Query(max_length=128), SINGLE_LINE] = None,
    since: Timestamp | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
) -> Page[AuditRecord]:
    rows = list_audit(settings, actor=actor_name, action=action, since=since, limit=limit, offset=offset)
    return page(rows, limit, offset)


@router.get("/api/mlops/flags", response_model=list[FlagState], summary="Feature flags and where each value comes from")
def flags(settings: SettingsDep, _: Admin) -> list[FlagState]:
    return list_flags(settings)


@router.put(
    "/api/mlops/flags/{name}",
    response_model=FlagState,
    responses=documented(404),
    summary="Switch a feature flag (an environment override SKIPPY_FLAG_* still wins)",
)
def toggle(
    settings: SettingsDep, who: Admin, name: Annotated[str, Path(max_length=64), SINGLE_LINE], body: FlagUpdate
) -> FlagState:
    return set_flag(settings, name, body.enabled, actor(who))
