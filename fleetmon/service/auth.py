"""API keys, roles and the permission dependencies every route declares.

Tokens look like `fm_<id>_<secret>`: `id` (12 hex characters) is public and is the row's primary key,
`secret` is 32 random bytes (URL-safe base64). Only SHA-256(secret) is stored. A plain, fast hash is
the right tool here: the secret has 256 bits of entropy, so there is nothing to brute-force or to look
up in a table, and a deliberately slow password hash (bcrypt, argon2) would only add ~100 ms of CPU to
every request. Comparison is constant-time.

Roles and what they may do live in ROLE_PERMISSIONS, the one table of the service's authorisation:

    viewer       read the fleet (devices, summary, metrics)
    operator     viewer + probe devices + security findings + act on devices (jobs, audit log)
    procurement  read the fleet + supply chain + import inventory + security findings
    admin        everything, including API keys

A route declares `Depends(require(Permission.X))`; `require(None)` marks a deliberately public route;
a dashboard page declares `Depends(require_page(Permission.X))`.
`Requirement.__call__` is the one place where a request becomes a Principal: from the
`Authorization: Bearer` header, else from the dashboard's signed session cookie (fleetmon.web.session),
which names a key by id and is re-checked against the key row on every request. A cookie-authenticated
request with an unsafe method must come from this origin (CSRF), else 403.
No key or an unknown/revoked key -> 401 with `WWW-Authenticate: Bearer` (a page redirects to /login
instead); a key whose role lacks the permission -> 403. Tokens never appear in logs or responses (only
the public id does).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Annotated
from urllib.parse import quote

from fastapi import HTTPException, Request, Security, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from collectors.sample import utcnow
from fleetmon.storage.engine import Engine
from fleetmon.storage.keys import KeyRow, all_keys, insert_key, key_by_id, revoke_key_row, touch_key
from fleetmon.web.session import COOKIE_NAME, SAFE_METHODS, SessionSigner, same_origin

TOKEN_PREFIX = "fm"
LAST_USED_RESOLUTION = timedelta(seconds=60)
"""last_used_at is rewritten at most this often per key: one UPDATE a minute, not one per request."""


class Role(StrEnum):
    """What kind of user a key belongs to."""

    VIEWER = "viewer"
    OPERATOR = "operator"
    PROCUREMENT = "procurement"
    ADMIN = "admin"


class Permission(StrEnum):
    """One thing a route lets a caller do."""

    READ_FLEET = "read_fleet"
    PROBE_DEVICES = "probe_devices"
    READ_SUPPLY_CHAIN = "read_supply_chain"
    IMPORT_INVENTORY = "import_inventory"
    MANAGE_KEYS = "manage_keys"
    READ_SECURITY = "read_security"  # which miners are open: not for viewer (wall-display) keys
    ACT_ON_DEVICES = "act_on_devices"  # reboot, locate, sleep/wake, power targets; read jobs and audit


ROLE_PERMISSIONS: dict[Role, frozenset[Permission]] = {
    Role.VIEWER: frozenset({Permission.READ_FLEET}),
    Role.OPERATOR: frozenset(
        {
            Permission.READ_FLEET,
            Permission.PROBE_DEVICES,
            Permission.READ_SECURITY,
            Permission.ACT_ON_DEVICES,
        }
    ),
    Role.PROCUREMENT: frozenset(
        {
            Permission.READ_FLEET,
            Permission.READ_SUPPLY_CHAIN,
            Permission.IMPORT_INVENTORY,
            Permission.READ_SECURITY,
        }
    ),
    Role.ADMIN: frozenset(Permission),
}


def allows(role: Role, permission: Permission) -> bool:
    """True when `role` holds `permission`."""
    return permission in ROLE_PERMISSIONS[role]


# ---- keys in the database -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class KeyInfo:
    """A stored key without its secret."""

    id: str
    name: str | None
    role: Role
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


@dataclass(frozen=True, slots=True)
class Principal:
    """The caller of one request, as established by its API key."""

    key_id: str
    role: Role
    name: str | None


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def split_token(token: str) -> tuple[str, str] | None:
    """(id, secret) of a well-formed token, else None."""
    prefix, sep, rest = token.partition("_")
    key_id, sep2, secret = rest.partition("_")
    if prefix != TOKEN_PREFIX or not sep or not sep2 or len(key_id) != 12 or not secret:
        return None
    return key_id, secret


def create_key(engine: Engine, role: Role, name: str | None = None) -> tuple[KeyInfo, str]:
    """Store a new key; returns its info and the token, which exists only in this return value."""
    key_id = secrets.token_hex(6)
    secret = secrets.token_urlsafe(32)
    now = utcnow()
    insert_key(engine, KeyRow(key_id, name, role.value, _digest(secret), now, None, None))
    info = KeyInfo(id=key_id, name=name, role=role, created_at=now, last_used_at=None, revoked_at=None)
    return info, f"{TOKEN_PREFIX}_{key_id}_{secret}"


def list_keys(engine: Engine) -> list[KeyInfo]:
    """Every key, oldest first, without secrets."""
    return [
        KeyInfo(row.id, row.name, Role(row.role), row.created_at, row.last_used_at, row.revoked_at)
        for row in all_keys(engine)
    ]


def revoke_key(engine: Engine, key_id: str) -> bool:
    """Revoke a key by id; False when no such key exists (revoking twice keeps the first time)."""
    return revoke_key_row(engine, key_id, utcnow())


def verify_token(engine: Engine, token: str) -> Principal | None:
    """The principal of a valid, unrevoked token, else None; touches last_used_at at most once a minute."""
    parts = split_token(token)
    if parts is None:
        return None
    return _principal(engine, *parts)


def principal_by_id(engine: Engine, key_id: str) -> Principal | None:
    """The principal of an unrevoked key named by id (a signed session already proved the secret)."""
    return _principal(engine, key_id, None)


def _principal(engine: Engine, key_id: str, secret: str | None) -> Principal | None:
    row = key_by_id(engine, key_id)
    if row is None or row.revoked_at is not None:
        return None
    if secret is not None and not hmac.compare_digest(row.secret_sha256, _digest(secret)):
        return None
    now = utcnow()
    if row.last_used_at is None or now - row.last_used_at >= LAST_USED_RESOLUTION:
        touch_key(engine, key_id, now)
    return Principal(key_id=key_id, role=Role(row.role), name=row.name)


# ---- the FastAPI dependency -----------------------------------------------------------------------

_bearer = HTTPBearer(auto_error=False, description="An API key: `Authorization: Bearer fm_<id>_<secret>`")


def _unauthorized(detail: str) -> HTTPException:
    return HTTPException(status.HTTP_401_UNAUTHORIZED, detail=detail, headers={"WWW-Authenticate": "Bearer"})


class Requirement:
    """The dependency a route declares to need `permission`.

    Its `permission` attribute is what the auth-matrix test reads from every route (a route with
    neither a Requirement nor a PublicAccess fails that test).
    """

    def __init__(self, permission: Permission) -> None:
        self.permission: Permission | None = permission

    def __repr__(self) -> str:
        return f"require({self.permission})"

    def __call__(
        self, request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Security(_bearer)]
    ) -> Principal:
        """Authenticate and authorise (sync: FastAPI runs it in the thread pool, off the event loop)."""
        principal = self.authenticate(request, credentials)
        if not self.permits(principal):
            raise self.forbidden(self.refusal(principal))
        return principal

    def authenticate(self, request: Request, credentials: HTTPAuthorizationCredentials | None) -> Principal:
        """The request's principal (401, or a redirect for a page, when it has none); reads the database."""
        engine: Engine = request.app.state.runtime.engine
        if credentials is not None:
            principal = verify_token(engine, credentials.credentials.strip())
            if principal is None:
                raise self.unauthenticated(request, "invalid or revoked API key")
            return principal
        return self._from_session(request, engine)

    def permits(self, principal: Principal) -> bool:
        """True when the principal's role holds this requirement's permission."""
        assert self.permission is not None
        return allows(principal.role, self.permission)

    def refusal(self, principal: Principal) -> str:
        """Why the principal is refused (the 403's detail)."""
        assert self.permission is not None
        return f"role {principal.role.value!r} may not {self.permission.value.replace('_', ' ')}"

    def _from_session(self, request: Request, engine: Engine) -> Principal:
        signer: SessionSigner | None = getattr(request.app.state, "sessions", None)
        cookie = request.cookies.get(COOKIE_NAME)
        if signer is None or not cookie:
            raise self.unauthenticated(request, "an API key is required (Authorization: Bearer KEY)")
        key_id = signer.read(cookie)
        principal = principal_by_id(engine, key_id) if key_id is not None else None
        if principal is None:
            raise self.unauthenticated(request, "the session has expired or its key was revoked")
        if request.method not in SAFE_METHODS and not same_origin(request):
            raise self.forbidden("cross-site request refused: a session needs an Origin of this host")
        return principal

    def unauthenticated(self, request: Request, detail: str) -> HTTPException:
        """What to raise when the request carries no valid key: 401 for the API."""
        return _unauthorized(detail)

    def forbidden(self, detail: str) -> HTTPException:
        """What to raise when the key may not do this: 403."""
        return HTTPException(status.HTTP_403_FORBIDDEN, detail=detail)


class PageForbiddenError(HTTPException):
    """A dashboard page the caller's role may not see (fleetmon.web renders it as an HTML page)."""


class PageRequirement(Requirement):
    """The dependency of a dashboard page: without a valid key it redirects to /login (303)."""

    def __repr__(self) -> str:
        return f"require_page({self.permission})"

    def unauthenticated(self, request: Request, detail: str) -> HTTPException:
        """A redirect to the login form that comes back here afterwards."""
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return HTTPException(
            status.HTTP_303_SEE_OTHER, detail=detail, headers={"Location": f"/login?next={quote(target)}"}
        )

    def forbidden(self, detail: str) -> HTTPException:
        """403, rendered as a page."""
        return PageForbiddenError(status.HTTP_403_FORBIDDEN, detail=detail)


class PublicAccess:
    """The dependency of a deliberately public route (/healthz, or /metrics when configured open)."""

    permission: Permission | None = None

    def __repr__(self) -> str:
        return "public"

    def __call__(self) -> None:
        """Nothing to check."""


def require(permission: Permission | None) -> Requirement | PublicAccess:
    """The dependency for a route needing `permission`; None marks the route public."""
    return PublicAccess() if permission is None else Requirement(permission)


def require_page(permission: Permission) -> PageRequirement:
    """The dependency for a dashboard page needing `permission`."""
    return PageRequirement(permission)


def roles_with(permission: Permission) -> Sequence[Role]:
    """Roles that hold `permission`, in declaration order."""
    return [role for role in Role if allows(role, permission)]
