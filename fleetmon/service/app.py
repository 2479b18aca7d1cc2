"""The FastAPI application: routers mounted on one app around a ServiceRuntime.

`create_app(runtime)` is all a server needs; the lifespan starts the runtime's background work (the
collector loop or the database reader) and stops it on shutdown. Later areas (supply chain, the web
pages) add their router with `app.include_router(...)` in `ROUTERS`-style, each route declaring its
permission with `Depends(require(...))`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from fleetmon import __version__
from fleetmon.config import Settings
from fleetmon.service.routes import (
    actions,
    catalog,
    devices,
    docs,
    fleet,
    health,
    inventory,
    keys,
    metrics,
    pdus,
    security,
    sites,
    supplychain,
    tariffs,
)
from fleetmon.service.runtime import ServiceRuntime
from fleetmon.web.mount import mount_dashboard
from fleetmon.web.session import SessionSigner

PUBLIC_DOC_PATHS: frozenset[str] = frozenset()
"""Routes outside the routers' permission dependencies: none. /openapi.json and /docs need a key like
every route but /healthz (routes/docs.py); the dashboard's login session lets the docs page load the
schema."""


def session_signer(settings: Settings) -> SessionSigner:
    """The session signer of the configured secrets (a random secret when none is configured)."""
    current, previous = settings.session_secrets()
    if current is None:
        return SessionSigner()
    return SessionSigner(secret=current, previous=(previous,) if previous is not None else ())


def create_app(runtime: ServiceRuntime, *, manage_runtime: bool = True) -> FastAPI:
    """The app over `runtime`; with `manage_runtime` its lifespan starts and stops the runtime."""

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        if manage_runtime:
            await runtime.start()
        try:
            yield
        finally:
            if manage_runtime:
                await runtime.stop()

    app = FastAPI(
        title="fleetmon",
        version=__version__,
        summary="Bitcoin-mining fleet monitor: devices, fleet figures, Prometheus metrics.",
        lifespan=lifespan,
        openapi_url=None,  # served by routes/docs.py, behind a key
        docs_url=None,
        redoc_url=None,
    )
    app.state.runtime = runtime
    app.include_router(health.router)
    app.include_router(devices.router)
    app.include_router(fleet.router)
    app.include_router(sites.router)
    app.include_router(keys.router)
    app.include_router(supplychain.router)
    app.include_router(tariffs.router)
    app.include_router(catalog.router)
    app.include_router(inventory.router)
    app.include_router(pdus.router)
    app.include_router(security.router)
    app.include_router(actions.router)
    app.include_router(metrics.build_router(runtime.settings.service.metrics_public))
    app.include_router(docs.router)
    mount_dashboard(app, session_signer(runtime.settings))
    return app
