"""Predictions for the trading platform from an agent's deployed model."""

from __future__ import annotations

from fastapi import APIRouter

from app.deps import SettingsDep, Viewer, actor
from app.errors import documented
from app.schemas import PredictRequest
from mlops.pipeline.serving import Prediction, predict

router = APIRouter(prefix="/api/mlops", tags=["predictions"], responses=documented(401, 403, 404, 422, 503))


@router.post(
    "/predict",
    response_model=Prediction,
    summary="Probabilities and the positions they imply, from the champion (or challenger); each answer is logged",
)
def predictions(settings: SettingsDep, who: Viewer, body: PredictRequest) -> Prediction:
    return predict(
        settings,
        agent=body.agent_type,
        requested_by=actor(who),
        features=body.features,
        symbol=body.symbol,
        n_bars=body.n_bars,
        alias=body.alias,
    )
