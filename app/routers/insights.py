"""Feature importance and performance history (read from the app DB)."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query

from app.deps import SettingsDep, Viewer
from app.errors import documented
from app.schemas import MAX_ID, AgentType, Page, Timestamp, page
from mlops.pipeline.queries.importance import ImportanceRecord, feature_importance
from mlops.pipeline.queries.performance import PerformanceRecord, performance_history

router = APIRouter(prefix="/api/mlops", tags=["insights"], responses=documented(401, 403, 422))


@router.get(
    "/feature-importance",
    response_model=list[ImportanceRecord],
    responses=documented(404),
    summary="Permutation importance on the held-out split: the champion's, one version's, or all versions'",
)
def importance(
    settings: SettingsDep,
    _: Viewer,
    agent_type: AgentType = "market_insight",
    version: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
    all_versions: bool = False,
) -> list[ImportanceRecord]:
    return feature_importance(settings, agent=agent_type, version=version, all_versions=all_versions)


@router.get(
    "/performance-history",
    response_model=Page[PerformanceRecord],
    summary="Scores per version and window: validation/test at training, live (drift checks), paper",
)
def performance(
    settings: SettingsDep,
    _: Viewer,
    agent_type: AgentType | None = None,
    window: Literal["validation", "test", "live", "paper"] | None = None,
    version: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
    since: Timestamp | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
) -> Page[PerformanceRecord]:
    rows = performance_history(
        settings, agent=agent_type, window=window, version=version, since=since, limit=limit, offset=offset
    )
    return page(rows, limit, offset)


@router.get("/features", response_model=list[str], summary="The feature columns the agents read, in order")
def features(_: Viewer) -> list[str]:
    from mlops.data.features import FEATURE_NAMES  # pandas: loaded on first use, not at start-up

    return list(FEATURE_NAMES)
