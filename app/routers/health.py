"""GET /api/health: are the three stores reachable? Open without a key (load balancers call it)."""

from __future__ import annotations

import time
from collections.abc import Callable
from importlib.metadata import version
from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from sqlalchemy import text

from app.deps import SettingsDep
from app.schemas import Health, HealthCheck
from mlops.db.session import create_db_engine
from mlops.logs import get_logger
from mlops.settings import Settings

router = APIRouter(tags=["health"])
log = get_logger(__name__)


def _sql(url: str) -> None:
    with create_db_engine(url).connect() as conn:
        conn.execute(text("select 1"))


def _tracking(settings: Settings) -> None:
    uri = settings.tracking_uri
    if uri.startswith(("http://", "https://")):
        import httpx

        httpx.get(uri.rstrip("/") + "/health", timeout=2.0).raise_for_status()
    else:
        _sql(uri)


def _optuna(settings: Settings) -> None:
    from sweeps.storage import is_journal

    storage = settings.optuna_storage
    if is_journal(storage):
        folder = Path(storage).parent
        if not folder.is_dir():
            raise RuntimeError(f"journal folder {folder} does not exist")
    else:
        _sql(storage)


def _timed(name: str, check: Callable[[], None]) -> HealthCheck:
    start = time.perf_counter()
    try:
        check()
        return HealthCheck(ok=True, latency_ms=round((time.perf_counter() - start) * 1000, 2))
    except Exception as exc:
        # The endpoint is open: say what kind of failure, never the text (it may carry a URL with credentials).
        log.warning("health check failed", check=name, error=str(exc))
        detail = f"{type(exc).__name__}; the server log has the details"
        return HealthCheck(ok=False, latency_ms=round((time.perf_counter() - start) * 1000, 2), detail=detail)


@router.get(
    "/api/health",
    response_model=Health,
    responses={503: {"model": Health, "description": "A store is unreachable"}},
    summary="Reachability of the app DB, the MLflow store and the Optuna storage",
)
def health(settings: SettingsDep) -> JSONResponse:
    checks = {
        "app_db": _timed("app_db", lambda: _sql(settings.app_db_url)),
        "mlflow_store": _timed("mlflow_store", lambda: _tracking(settings)),
        "optuna_storage": _timed("optuna_storage", lambda: _optuna(settings)),
    }
    ok = all(c.ok for c in checks.values())
    body = Health(status="ok" if ok else "degraded", checks=checks, version=version("skippy-mlops"))
    return JSONResponse(body.model_dump(), status_code=200 if ok else 503)
