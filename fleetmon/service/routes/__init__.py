"""One APIRouter per area of the API; fleetmon.service.app mounts them. A new area adds a module here
with its own router, and every route in it declares `Depends(require(...))` (tests enforce it)."""

from __future__ import annotations

from fleetmon.service.schemas import ErrorOut

AUTH_ERRORS: dict[int | str, dict[str, object]] = {
    401: {"model": ErrorOut, "description": "no API key, or an invalid or revoked one"},
    403: {"model": ErrorOut, "description": "the key's role lacks the permission"},
}
