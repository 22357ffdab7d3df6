"""Deployment history, promotion and one-step rollback (alias moves in the MLflow registry)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from app.deps import Operator, SettingsDep, Viewer, actor
from app.errors import documented
from app.schemas import AgentType, PromoteRequest, RollbackRequest
from mlops.pipeline.deployments import DeploymentRecord, list_deployments, promote, rollback

router = APIRouter(prefix="/api/mlops", tags=["deployments"], responses=documented(401, 403, 422))


@router.get("/deployments", response_model=list[DeploymentRecord], summary="Alias moves, newest first")
def deployments(
    settings: SettingsDep,
    _: Viewer,
    agent_type: AgentType | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> list[DeploymentRecord]:
    return list_deployments(settings, agent_type, limit)


@router.post(
    "/promote",
    response_model=DeploymentRecord,
    responses=documented(404, 409),
    summary="Make a version the champion (a version validation rejected needs force)",
)
def promote_version(settings: SettingsDep, who: Operator, body: PromoteRequest) -> DeploymentRecord:
    return promote(
        settings, agent=body.agent_type, version=body.version, actor=actor(who), reason=body.reason, force=body.force
    )


@router.post(
    "/rollback",
    response_model=DeploymentRecord,
    responses=documented(404, 409),
    summary="Move the champion back one step, or to to_version (a version validation rejected needs force)",
)
def rollback_champion(settings: SettingsDep, who: Operator, body: RollbackRequest) -> DeploymentRecord:
    return rollback(
        settings,
        agent=body.agent_type,
        actor=actor(who),
        to_version=body.to_version,
        reason=body.reason,
        force=body.force,
    )
