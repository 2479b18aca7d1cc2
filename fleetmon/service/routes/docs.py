"""`/openapi.json` and `/docs`, behind a key like every route but /healthz.

The Swagger UI's script and stylesheet are served from the swagger-ui-bundle package under
/static/swagger, not from a CDN: farm networks are often cut off from the internet, and a monitoring
page must not call out to third parties.

The schema describes this deployment's routes and options, so it is served to key holders only (any
role: READ_FLEET is the permission every role holds). /docs is a page: a browser without a session is
sent to /login, and once logged in the Swagger UI fetches the schema with the session cookie.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse
from swagger_ui_bundle import swagger_ui_path

from fleetmon.service.auth import Permission, require, require_page

router = APIRouter(include_in_schema=False)


@router.get("/openapi.json", dependencies=[Depends(require(Permission.READ_FLEET))])
def get_openapi(request: Request) -> JSONResponse:
    """The OpenAPI document of this app."""
    return JSONResponse(request.app.openapi())


@router.get("/docs", dependencies=[Depends(require_page(Permission.READ_FLEET))])
def get_docs(request: Request) -> HTMLResponse:
    """The Swagger UI over /openapi.json."""
    return get_swagger_ui_html(
        openapi_url="/openapi.json",
        title=f"{request.app.title} API",
        swagger_js_url=f"{SWAGGER_ASSETS}/swagger-ui-bundle.js",
        swagger_css_url=f"{SWAGGER_ASSETS}/swagger-ui.css",
        swagger_favicon_url=f"{SWAGGER_ASSETS}/favicon-32x32.png",
    )


SWAGGER_ASSETS = "/static/swagger"
SWAGGER_FILES = {
    "swagger-ui-bundle.js": "text/javascript",
    "swagger-ui.css": "text/css",
    "favicon-32x32.png": "image/png",
}


@router.get(SWAGGER_ASSETS + "/{name}", dependencies=[Depends(require(None))])
def swagger_asset(name: str) -> FileResponse:
    """One file of the Swagger UI (public, like the dashboard's assets: code and styles, no data)."""
    media_type = SWAGGER_FILES.get(name)
    if media_type is None:
        raise HTTPException(404, detail="no such asset")
    return FileResponse(
        Path(swagger_ui_path) / name,
        media_type=media_type,
        headers={"Cache-Control": "public, max-age=86400", "X-Content-Type-Options": "nosniff"},
    )
