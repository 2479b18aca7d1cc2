"""The HTML shell every dashboard page shares: head, navigation, and the security headers.

Pages carry no inline script or style, so the Content-Security-Policy can forbid both: everything
comes from /static on this host (no CDN, no external fonts).
"""

from __future__ import annotations

from html import escape

from fastapi.responses import HTMLResponse

from fleetmon import __version__
from fleetmon.service.auth import Permission, Principal, allows

CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


def _nav(principal: Principal | None, active: str) -> str:
    if principal is None:
        return ""
    links = [("overview", "/", "Fleet")]
    if allows(principal.role, Permission.READ_SUPPLY_CHAIN):
        links.append(("supply-chain", "/supply-chain", "Supply chain"))
    links.append(("docs", "/docs", "API docs"))
    items = "".join(
        f'<a href="{href}"{" aria-current=page" if key == active else ""}>{label}</a>'
        for key, href, label in links
    )
    who = escape(principal.name or principal.key_id)
    return (
        f'<nav class="links">{items}</nav>'
        f'<form class="who" method="post" action="/logout"><span>{who} · {principal.role.value}</span>'
        '<button type="submit">Log out</button></form>'
    )


def page(
    title: str,
    body: str,
    *,
    principal: Principal | None,
    active: str,
    data: dict[str, str] | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    """A full HTML page; `data` becomes data-* attributes of <body> for the page script."""
    attrs = "".join(f' data-{k}="{escape(v)}"' for k, v in (data or {}).items())
    html = f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{escape(title)} · fleetmon</title>
<link rel="stylesheet" href="/static/fleetmon.css?v={__version__}">
<link rel="icon" href="/static/favicon.svg" type="image/svg+xml">
<script src="/static/app.js?v={__version__}" defer></script>
</head>
<body data-page="{escape(active)}"{attrs}>
<header class="top"><a class="brand" href="/">fleetmon</a>{_nav(principal, active)}</header>
<main>
{body}
</main>
</body>
</html>
"""
    return HTMLResponse(html, status_code=status_code, headers=SECURITY_HEADERS)
