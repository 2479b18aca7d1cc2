"""Browser sessions: a signed cookie that names an API key by its public id.

The dashboard's login form takes an API key once; the cookie then carries `v1.<key id>.<expiry>.<mac>`
where mac = HMAC-SHA256(signing secret, "v1.<key id>.<expiry>"). The key's secret never leaves the
login request: a stolen cookie expires, and dies with the key (every request re-reads the key row, so
revoking the key ends its sessions). The signing secret comes from the configuration
(`service.session_secret_env` or `_file`), so every replica behind a load balancer accepts the others'
cookies; during a rotation the previous secret (`service.session_previous_secret_env` or `_file`) is
still accepted while new cookies are signed with the new one. Without a configured secret it is random
per process: sessions then die with the process and hold on one replica only (`serve` warns).
The cookie is HttpOnly, SameSite=Strict, and Secure when the request came over https.

Cross-site request forgery: SameSite=Strict keeps the cookie off cross-site requests in current
browsers; in addition, a cookie-authenticated request with an unsafe method must carry an Origin (or,
failing that, a Referer) of this very host (`same_origin`), so an older browser or a sibling subdomain
cannot forge a POST either.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from starlette.requests import Request

COOKIE_NAME = "fleetmon_session"
SESSION_LIFETIME_S = 12 * 3600
"""A shift and a half: an operator logs in once a working day."""
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_VERSION = "v1"


@dataclass(frozen=True)
class SessionSigner:
    """Issues session cookie values with `secret` (random unless given); reads those signed with it or
    with one of the `previous` secrets (a rotation in progress)."""

    secret: bytes = field(default_factory=lambda: secrets.token_bytes(32), repr=False)
    lifetime_s: int = SESSION_LIFETIME_S
    previous: tuple[bytes, ...] = field(default=(), repr=False)

    def _mac(self, payload: str, secret: bytes | None = None) -> str:
        key = self.secret if secret is None else secret
        return hmac.new(key, payload.encode(), hashlib.sha256).hexdigest()

    def issue(self, key_id: str, now: float | None = None) -> str:
        """A cookie value naming `key_id`, valid for `lifetime_s` seconds."""
        expires = int((time.time() if now is None else now) + self.lifetime_s)
        payload = f"{_VERSION}.{key_id}.{expires}"
        return f"{payload}.{self._mac(payload)}"

    def read(self, value: str, now: float | None = None) -> str | None:
        """The key id of an authentic, unexpired cookie value, else None."""
        parts = value.split(".")
        if len(parts) != 4 or parts[0] != _VERSION or not parts[2].isdigit():
            return None
        payload = ".".join(parts[:3])
        if not any(
            hmac.compare_digest(parts[3], self._mac(payload, key)) for key in (self.secret, *self.previous)
        ):
            return None
        if int(parts[2]) <= (time.time() if now is None else now):
            return None
        return parts[1]


def same_origin(request: Request) -> bool:
    """True when the request's Origin (else Referer) names the host it was sent to."""
    source = request.headers.get("origin") or request.headers.get("referer")
    if not source or source == "null":
        return False
    claimed = urlsplit(source)
    host = request.headers.get("host", "")
    return claimed.scheme in ("http", "https") and claimed.netloc.lower() == host.lower()


def is_secure(request: Request) -> bool:
    """True when the browser reached us over https (directly or as uvicorn's proxy headers say)."""
    return request.url.scheme == "https"


def safe_next(target: str | None) -> str:
    """A local path to go to after login; anything else (another host, a scheme) becomes `/`."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target
