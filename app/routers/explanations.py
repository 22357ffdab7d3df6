"""Insights: the plain-language explanation of a retrain (model run) or a critical drift check (mlops/insights).
(app/routers/insights.py serves feature importance and performance history.)"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Path

from app.deps import SettingsDep, Viewer
from app.errors import documented
from app.schemas import SINGLE_LINE
from mlops.insights import InsightRecord, require_insight

router = APIRouter(prefix="/api/mlops", tags=["insights"], responses=documented(401, 403, 422))


@router.get(
    "/insights/{subject}/{subject_id}",
    response_model=InsightRecord,
    responses=documented(404),
    summary="The explanation of a retrain (retrain/<model run id>) or a critical drift check (drift/<check id>): "
    "`text` is the generated one when it arrived, else the template's",
)
def insight(
    settings: SettingsDep,
    _: Viewer,
    subject: Literal["retrain", "drift"],
    subject_id: Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$"), SINGLE_LINE],
) -> InsightRecord:
    return require_insight(settings, subject, subject_id)
