"""The login form, one-time login links and logout: how a browser gets and drops its session cookie.

POST /login takes an API key from the form, checks it like the Authorization header would, and sets
the signed session cookie (fleetmon.web.session); the key itself is never stored in the browser nor
logged (it travels in the POST body, which the access log does not record). A one-time login link
(`/login?once=TOKEN`, made by `fleetmon demo`) logs in with one click: the token is random, names a
key id, works once, and is useless after that, so its appearance in an access log discloses nothing.
"""

from __future__ import annotations

import secrets
from html import escape
from typing import Annotated
from urllib.parse import parse_qs

from fastapi import APIRouter, Depends, FastAPI, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from fleetmon.service.auth import principal_by_id, require, verify_token
from fleetmon.storage.engine import Engine
from fleetmon.web.layout import page
from fleetmon.web.session import COOKIE_NAME, SessionSigner, is_secure, safe_next, same_origin

MAX_FORM_BYTES = 4096

router = APIRouter(include_in_schema=False)


def _form(next_path: str, error: str | None = None) -> str:
    message = f'<p class="error" role="alert">{escape(error)}</p>' if error else ""
    return f"""
<section class="card login">
  <h1>Log in</h1>
  <p>Paste an API key (<code>fleetmon keys create --role viewer</code> makes one).</p>
  {message}
  <form method="post" action="/login">
    <input type="hidden" name="next" value="{escape(next_path)}">
    <label>API key <input name="key" type="password" autocomplete="off" required autofocus
      size="60" placeholder="fm_..."></label>
    <button type="submit">Log in</button>
  </form>
</section>
"""


def _login_page(next_path: str, error: str | None = None, status_code: int = 200) -> HTMLResponse:
    return page("Log in", _form(next_path, error), principal=None, active="login", status_code=status_code)


def _signed_in(request: Request, key_id: str, next_path: str) -> Response:
    signer: SessionSigner = request.app.state.sessions
    response = RedirectResponse(safe_next(next_path), status_code=303)
    response.set_cookie(
        COOKIE_NAME,
        signer.issue(key_id),
        max_age=signer.lifetime_s,
        path="/",
        httponly=True,
        samesite="strict",
        secure=is_secure(request),
    )
    response.headers["Cache-Control"] = "no-store"
    return response


@router.get("/login", response_class=HTMLResponse, dependencies=[Depends(require(None))])
def login_form(
    request: Request,
    next_path: Annotated[str, Query(alias="next")] = "/",
    once: Annotated[str | None, Query(max_length=64)] = None,
) -> Response:
    """The login form; with `once`, a one-time link that logs in and goes to the dashboard."""
    if once is not None:
        links: dict[str, str] = request.app.state.login_links
        key_id = links.pop(once, None)
        engine: Engine = request.app.state.runtime.engine
        if key_id is not None and principal_by_id(engine, key_id) is not None:
            return _signed_in(request, key_id, next_path)
        return _login_page(next_path, "That login link was already used or is unknown.", 401)
    return _login_page(safe_next(next_path))


@router.post("/login", response_class=HTMLResponse, dependencies=[Depends(require(None))])
async def login_submit(request: Request) -> Response:
    """Check the posted key; on success set the session cookie and go to `next`."""
    if request.headers.get("origin") and not same_origin(request):
        return _login_page("/", "Cross-site login refused.", 403)
    body = await request.body()
    form = parse_qs(body[:MAX_FORM_BYTES].decode("utf-8", "replace"))
    key = (form.get("key") or [""])[0].strip()
    next_path = safe_next((form.get("next") or ["/"])[0])
    if not key:
        return _login_page(next_path, "Enter an API key.", 401)
    engine: Engine = request.app.state.runtime.engine
    principal = verify_token(engine, key)
    if principal is None:
        return _login_page(next_path, "That key is not valid (unknown, revoked or mistyped).", 401)
    return _signed_in(request, principal.key_id, next_path)


@router.post("/logout", dependencies=[Depends(require(None))])
def logout(request: Request) -> Response:
    """Drop the session cookie and go back to the login form."""
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(COOKIE_NAME, path="/", httponly=True, samesite="strict", secure=is_secure(request))
    return response


def one_time_login_link(app: FastAPI, key_id: str) -> str:
    """A path that logs a browser in as `key_id` once (for `fleetmon demo`'s printed URL)."""
    token = secrets.token_urlsafe(24)
    app.state.login_links[token] = key_id
    return f"/login?once={token}"
