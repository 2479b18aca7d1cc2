"""Small constructors for the HTTP answers the simulated web servers give, plus HTTP digest checking.

Digest (RFC 2617, MD5, qop=auth) is checked for real: a client that computes the response wrong gets
a 401, as from the lighttpd inside an Antminer.
"""

from __future__ import annotations

import hashlib
import json
import re

from collectors.simulator.personalities.base import HttpRequest, HttpResponse

_PARAM = re.compile(r'(\w+)=(?:"([^"]*)"|([^\s,]+))')
_COMPACT = json.JSONEncoder(separators=(",", ":"))  # json.dumps would build one per call


def json_response(obj: object, status: int = 200, reason: str = "OK") -> HttpResponse:
    """A JSON body with the content type embedded web servers send."""
    body = _COMPACT.encode(obj).encode()
    return HttpResponse(status, reason, [("Content-Type", "application/json")], body)


def html_response(text: str, status: int = 200, reason: str = "OK") -> HttpResponse:
    """An HTML page."""
    return HttpResponse(status, reason, [("Content-Type", "text/html")], text.encode())


def not_found() -> HttpResponse:
    """404 with a small HTML body (not JSON, so clients probing for JSON get nothing)."""
    return html_response("<html><body><h1>404 Not Found</h1></body></html>", 404, "Not Found")


def landing_page(request: HttpRequest, html: str) -> HttpResponse:
    """A web UI that serves only its page shell: `html` at / and /index.html, 404 elsewhere."""
    if request.path in ("/", "/index.html"):
        return html_response(html)
    return not_found()


def _md5(text: str) -> str:
    return hashlib.md5(text.encode(), usedforsecurity=False).hexdigest()


def digest_challenge(realm: str, nonce: str) -> HttpResponse:
    """The 401 that asks for digest credentials."""
    header = f'Digest realm="{realm}", charset="UTF-8", nonce="{nonce}", qop="auth", algorithm="MD5"'
    body = b"<html><head><title>401 Unauthorized</title></head><body><h1>401 Unauthorized</h1></body></html>"
    return HttpResponse(
        401, "Unauthorized", [("WWW-Authenticate", header), ("Content-Type", "text/html")], body
    )


def digest_ok(request: HttpRequest, realm: str, user: str, password: str) -> bool:
    """True when the request carries a correct digest response for user/password."""
    header = request.headers.get("authorization", "")
    if not header.lower().startswith("digest "):
        return False
    params = {
        m.group(1).lower(): m.group(2) if m.group(2) is not None else m.group(3)
        for m in _PARAM.finditer(header)
    }
    if params.get("username") != user or params.get("realm") != realm:
        return False
    nonce, uri, response = params.get("nonce"), params.get("uri"), params.get("response")
    if not nonce or not uri or not response:
        return False
    ha1 = _md5(f"{user}:{realm}:{password}")
    ha2 = _md5(f"{request.method}:{uri}")
    qop = params.get("qop")
    if qop:
        expected = _md5(f"{ha1}:{nonce}:{params.get('nc', '')}:{params.get('cnonce', '')}:{qop}:{ha2}")
    else:
        expected = _md5(f"{ha1}:{nonce}:{ha2}")
    return expected == response


def json_body(body: bytes) -> dict[str, object]:
    """A request body's JSON object; {} for an empty body, bad JSON or JSON that is not an object."""
    try:
        data = json.loads(body or b"{}")
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}
