"""Mounting the dashboard on the app: session signer, its routers and the 403 page handler."""

from __future__ import annotations

from fastapi import FastAPI

from fleetmon.service.auth import PageForbiddenError
from fleetmon.web import login, pages, racks
from fleetmon.web.session import SessionSigner


def mount_dashboard(app: FastAPI, signer: SessionSigner | None = None) -> None:
    """Add the pages, the login routes and the rack heat-map API to `app`; sessions are signed by
    `signer` (default: a random secret of this process)."""
    app.state.sessions = signer or SessionSigner()
    app.state.login_links = {}
    app.include_router(racks.router)
    app.include_router(login.router)
    app.include_router(pages.router)
    app.add_exception_handler(PageForbiddenError, pages.forbidden_page)
