"""The FastAPI service (DESIGN §10): `create_app()` wires the routers, the error mapping, the body
limit + audit middleware and the job dispatcher. The server listens in about a second; MLflow and the
champions then load in a background thread, so the first prediction does not pay for them."""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib.metadata import version

from fastapi import FastAPI
from fastapi_offline import FastAPIOffline

from app import errors
from app.middleware import GuardAndAudit
from app.routers import (
    admin,
    alerts,
    deployments,
    drift,
    explanations,
    health,
    insights,
    jobs,
    market,
    predictions,
    runs,
    schedule,
    sweeps,
)
from dashboard import mount_dashboard
from mlops.alerts import Courier
from mlops.insights import Narrator
from mlops.jobs.dispatcher import Dispatcher
from mlops.pipeline.serving import warm_up
from mlops.scheduler import Scheduler, scheduler_enabled
from mlops.settings import Settings, get_settings

DESCRIPTION = """Retrain, validate, deploy and watch the trading agents `market_insight` and `risk_assessor`.

Every endpoint but `/api/health` needs an API key: `Authorization: Bearer sk_...`. Roles: **viewer**
(read), **operator** (+ retrain, sweep, drift, promote, rollback, cancel jobs, ingest bars), **admin**
(+ keys, flags, audit). `skippy auth create-key --name N --role R` makes one; `skippy up` prints an
admin key on first start. Long work answers 202 with a job id: poll `GET /api/mlops/jobs/{id}`.
Errors are JSON `{"error": code, "message": what was wrong}`.
"""


def create_app(
    settings: Settings | None = None, *, dispatch: bool = True, warm: bool = True, schedule_jobs: bool | None = None
) -> FastAPI:
    """The API over `settings`' stores (already initialised: see `mlops.stores.init_stores`).
    `dispatch=False` leaves submitted jobs queued (for a replica that only answers reads); `warm=False`
    loads MLflow and the champions on first use instead of in the background at start. `schedule_jobs`: run
    the scheduler here (default: when ENABLE_MLOPS_JOBS=true or SKIPPY_ENV=production)."""
    settings = settings or get_settings()
    dispatcher = Dispatcher(settings)
    courier = Courier(settings)  # sends queued alert deliveries and their retries
    narrator = Narrator(settings)  # writes the insights' generated texts, after the work they explain
    # The scheduler runs in every replica that enables it: each slot still runs once (mlops/scheduler).
    if schedule_jobs is None:
        schedule_jobs = scheduler_enabled(settings)
    scheduler = Scheduler(settings) if schedule_jobs else None

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if dispatch:
            dispatcher.start()
            courier.start()
            narrator.start()
        if scheduler is not None:
            scheduler.start()
        if warm:
            # MLflow and the champions load in the background right after the server starts listening.
            threading.Thread(target=warm_up, args=(settings,), name="warm-up", daemon=True).start()
        yield
        if scheduler is not None:
            scheduler.stop()
        if dispatch:
            dispatcher.stop()
            courier.stop()
            narrator.stop()

    # /docs and /redoc from bundled assets, not a CDN: they work on machines without internet.
    app = FastAPIOffline(
        title="Skippy MLOps API",
        version=version("skippy-mlops"),
        description=DESCRIPTION,
        lifespan=lifespan,
        responses=errors.documented(400, 413),
    )
    app.state.settings = settings
    app.state.dispatcher = dispatcher
    app.state.scheduler = scheduler
    app.state.runs_pages = runs.PageCache()
    errors.install(app)
    routers = (
        health,
        runs,
        deployments,
        sweeps,
        drift,
        insights,
        explanations,
        schedule,
        jobs,
        alerts,
        predictions,
        market,
        admin,
    )
    for module in routers:
        app.include_router(module.router)
    mount_dashboard(app, settings)  # /mlops: the dashboard, behind its own login (dashboard/server.py)
    app.add_middleware(GuardAndAudit, settings=settings)
    return app
