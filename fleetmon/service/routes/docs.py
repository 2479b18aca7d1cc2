"""`/openapi.json` and `/docs`, behind a key like every route but /healthz.

The schema describes this deployment's routes and options, so it is served to key holders only (any
role: READ_FLEET is the permission every role holds). /docs is a page: a browser without a session is
sent to /login, and once logged in the Swagger UI fetches the schema with the session cookie.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse

from fleetmon.service.auth import Permission, require, require_page

router = APIRouter(include_in_schema=False)


@router.get("/openapi.json", dependencies=[Depends(require(Permission.READ_FLEET))])
def get_openapi(request: Request) -> JSONResponse:
    """The OpenAPI document of this app."""
    return JSONResponse(request.app.openapi())


@router.get("/docs", dependencies=[Depends(require_page(Permission.READ_FLEET))])
def get_docs(request: Request) -> HTMLResponse:
    """The Swagger UI over /openapi.json."""
    return get_swagger_ui_html(openapi_url="/openapi.json", title=f"{request.app.title} API")
