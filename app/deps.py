"""Dependencies: the settings of this app, and the caller's principal checked against a role."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from mlops.auth import Principal, authenticate, recently_verified
from mlops.settings import Settings

bearer = HTTPBearer(auto_error=False, description="An API key: `Authorization: Bearer sk_...`")


# The dependencies are async: a sync one costs a thread-pool hop per request, and these only read
# memory (authentication goes to the database in the pool when the key was not verified recently).


async def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


SettingsDep = Annotated[Settings, Depends(get_settings)]


async def principal(
    request: Request,
    settings: SettingsDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> Principal:
    key = credentials.credentials if credentials else None
    who = recently_verified(settings, key) if key else None
    if who is None:
        who = await run_in_threadpool(authenticate, settings, key)
    request.state.principal = who  # read by the audit middleware
    return who


def role(required: str) -> Callable[[Principal], Awaitable[Principal]]:
    async def check(who: Annotated[Principal, Depends(principal)]) -> Principal:
        who.require(required)
        return who

    return check


Viewer = Annotated[Principal, Depends(role("viewer"))]
Operator = Annotated[Principal, Depends(role("operator"))]
Admin = Annotated[Principal, Depends(role("admin"))]


def actor(who: Principal) -> str:
    return f"api:{who.name}"
