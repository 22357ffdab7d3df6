"""Dependencies: the settings of this app, and the caller's principal checked against a role."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from mlops.auth import Principal, authenticate
from mlops.settings import Settings

bearer = HTTPBearer(auto_error=False, description="An API key: `Authorization: Bearer sk_...`")


def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


SettingsDep = Annotated[Settings, Depends(get_settings)]


def principal(
    request: Request,
    settings: SettingsDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> Principal:
    who = authenticate(settings, credentials.credentials if credentials else None)
    request.state.principal = who  # read by the audit middleware
    return who


def role(required: str) -> Callable[[Principal], Principal]:
    def check(who: Annotated[Principal, Depends(principal)]) -> Principal:
        who.require(required)
        return who

    return check


Viewer = Annotated[Principal, Depends(role("viewer"))]
Operator = Annotated[Principal, Depends(role("operator"))]
Admin = Annotated[Principal, Depends(role("admin"))]


def actor(who: Principal) -> str:
    return f"api:{who.name}"
