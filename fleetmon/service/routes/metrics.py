"""`/metrics` (Prometheus, the whole fleet) and `/probe?target=IP` (one device, read now).

/metrics serves the render cached for the current snapshot version (see fleetmon.service.live), gzipped
when the scraper accepts it (Prometheus does), with this process's runtime families appended.
/probe follows blackbox_exporter: Prometheus (or an operator) names a target and gets that device's
series from a read made for the request. It only reads devices this service knows (in the current
snapshot or the configured targets): an API that dials any address it is handed would let a key
holder scan the farm network through it.
"""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import Response

from collectors.targets import Target, TargetError, parse_address
from fleetmon.service.auth import Permission, require
from fleetmon.service.deps import RuntimeDep
from fleetmon.service.exposition import CONTENT_TYPE, accepts_gzip, render
from fleetmon.service.metrics import build_registry
from fleetmon.service.runtime import ServiceRuntime
from fleetmon.service.snapshot import DeviceView, FleetSnapshot

TEXT = {"content": {CONTENT_TYPE: {"schema": {"type": "string"}}}}
TARGET_PATTERN = r"^[0-9A-Fa-f.:\[\]]{2,64}$"


def _json_error(description: str) -> dict[str, object]:
    # Spelled out: with a text response class FastAPI would document a `model` error as text/plain.
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorOut"}}},
    }


ERRORS: dict[int | str, dict[str, object]] = {
    401: _json_error("no API key, or an invalid or revoked one"),
    403: _json_error("the key's role lacks the permission"),
}


class PrometheusResponse(Response):
    """The text exposition format, version 0.0.4."""

    media_type = CONTENT_TYPE


def _known(runtime: ServiceRuntime, target: Target) -> DeviceView | bool | None:
    """The device's current view when the snapshot has it, True when it is a configured target."""
    for view in runtime.live.snapshot.devices:
        if view.sample.ip == target.host and view.sample.port == target.port:
            return view
    return target in runtime.targets


def build_router(metrics_public: bool) -> APIRouter:
    """The router; `metrics_public` (config service.metrics_public) opens /metrics to anyone."""
    router = APIRouter(tags=["metrics"], responses=ERRORS)
    metrics_access = require(None if metrics_public else Permission.READ_FLEET)

    @router.get(
        "/metrics",
        response_class=PrometheusResponse,
        responses={200: {**TEXT, "description": "every fleetmon series (docs/metrics.md)"}},
        dependencies=[Depends(metrics_access)],
    )
    async def get_metrics(runtime: RuntimeDep, request: Request) -> Response:
        """The fleet in the Prometheus text format, rendered once per snapshot (gzip when accepted)."""
        gzip = accepts_gzip(request.headers.get("accept-encoding"))
        body = await runtime.live.metrics(gzip=gzip)
        headers = {"Vary": "Accept-Encoding"}
        if gzip:
            headers["Content-Encoding"] = "gzip"
        return PrometheusResponse(body, headers=headers)

    @router.get(
        "/probe",
        response_class=PrometheusResponse,
        responses={
            200: {**TEXT, "description": "the device's series, fleetmon_miner_up first"},
            404: _json_error("target is not a device this service knows (nor an IP or IP:PORT at all)"),
        },
        dependencies=[Depends(require(Permission.PROBE_DEVICES))],
    )
    async def get_probe(
        runtime: RuntimeDep,
        target: Annotated[
            str, Query(description="IP or IP:PORT (port 4028 by default)", pattern=TARGET_PATTERN)
        ],
    ) -> Response:
        """Read one known device now and answer its series (blackbox_exporter's /probe pattern)."""
        try:
            address = parse_address(target)
        except TargetError as exc:
            raise HTTPException(404, detail=f"not a known device: {exc}") from None
        known = _known(runtime, address)
        if known is False:
            raise HTTPException(404, detail=f"{address} is not a known device")
        site = known.site if isinstance(known, DeviceView) else runtime.settings.collector.site
        sample = await runtime.probe(address)
        view = (
            DeviceView(
                site=site,
                sample=sample,
                manufacturer=known.manufacturer,
                manufacturer_country=known.manufacturer_country,
                assembly_country=known.assembly_country,
                origin_source=known.origin_source,
                device_id=known.device_id,
            )
            if isinstance(known, DeviceView)
            else DeviceView(site=site, sample=sample)
        )
        snapshot = FleetSnapshot(taken_at=sample.ts.timestamp(), devices=(view,))
        body = await asyncio.to_thread(render, build_registry(lambda: snapshot, fleet=False))
        return PrometheusResponse(body)

    return router
