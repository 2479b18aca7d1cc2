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
from fleetmon.service.routes import (
    catalog,
    devices,
    fleet,
    health,
    inventory,
    keys,
    metrics,
    pdus,
    supplychain,
    tariffs,
)
from fleetmon.service.runtime import ServiceRuntime

PUBLIC_DOC_PATHS = frozenset({"/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc"})
"""Served without a key: they describe the (open-source) API, never a farm's data, and the docs page
must load the schema before the user can enter a key with its Authorize button."""


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
    )
    app.state.runtime = runtime
    app.include_router(health.router)
    app.include_router(devices.router)
    app.include_router(fleet.router)
    app.include_router(keys.router)
    app.include_router(supplychain.router)
    app.include_router(tariffs.router)
    app.include_router(catalog.router)
    app.include_router(inventory.router)
    app.include_router(pdus.router)
    app.include_router(metrics.build_router(runtime.settings.service.metrics_public))
    return app
