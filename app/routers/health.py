"""GET /api/health: are the three stores reachable? Open without a key (load balancers call it)."""

from __future__ import annotations

import time
from collections.abc import Callable
from importlib.metadata import version

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from app.deps import SettingsDep
from app.errors import RETRY_AFTER_SECONDS, unavailable
from app.schemas import Health, HealthCheck
from mlops.logs import get_logger
from mlops.settings import Settings
from mlops.stores import STORE_CHECKS

router = APIRouter(tags=["health"])
log = get_logger(__name__)


def _timed(name: str, check: Callable[[Settings], None], settings: Settings) -> HealthCheck:
    start = time.perf_counter()
    try:
        check(settings)
        return HealthCheck(ok=True, latency_ms=round((time.perf_counter() - start) * 1000, 2))
    except Exception as exc:
        # The endpoint is open: say what kind of failure, never the text (it may carry a URL with credentials).
        log.warning("health check failed", check=name, error=str(exc))
        kind = unavailable(exc)
        detail = f"{kind or type(exc).__name__}; the server log has the details"
        return HealthCheck(ok=False, latency_ms=round((time.perf_counter() - start) * 1000, 2), detail=detail)


@router.get(
    "/api/health",
    response_model=Health,
    responses={503: {"model": Health, "description": "A store is unreachable"}},
    summary="Reachability of the app DB, the MLflow store and the Optuna storage",
)
def health(settings: SettingsDep) -> JSONResponse:
    checks = {name: _timed(name, check, settings) for name, check in STORE_CHECKS.items()}
    down = [name for name, check in checks.items() if not check.ok]
    body = Health(status="degraded" if down else "ok", down=down, checks=checks, version=version("skippy-mlops"))
    headers = {"Retry-After": str(RETRY_AFTER_SECONDS)} if down else None
    return JSONResponse(body.model_dump(), status_code=503 if down else 200, headers=headers)
