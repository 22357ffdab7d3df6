"""Market data: ingest bars (validated like a file import; re-sending is idempotent), and status."""

from __future__ import annotations

from fastapi import APIRouter

from app.deps import Operator, SettingsDep, Viewer, actor
from app.errors import documented
from app.schemas import BarsRequest
from mlops.data.store import ImportResult, SymbolStatus, bars_status
from mlops.pipeline.market import import_bars_rows

router = APIRouter(prefix="/api/mlops", tags=["market data"], responses=documented(401, 403, 422))


@router.post(
    "/market-bars",
    response_model=ImportResult,
    responses=documented(409),
    summary="Store OHLCV bars of a symbol (all-or-nothing; every bad row is named)",
)
def ingest(settings: SettingsDep, who: Operator, body: BarsRequest) -> ImportResult:
    rows = [b.model_dump() for b in body.bars]
    return import_bars_rows(settings, actor=actor(who), symbol=body.symbol, rows=rows, source="api")


@router.get("/market-bars", response_model=list[SymbolStatus], summary="Symbols with bars: count and time range")
def status(settings: SettingsDep, _: Viewer) -> list[SymbolStatus]:
    return bars_status(settings.app_db_url)
