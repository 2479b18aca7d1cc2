"""`/api/v1/keys`: the API keys (admin only; keys are created and revoked with `fleetmon keys`)."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Depends

from fleetmon.service.auth import Permission, list_keys, require
from fleetmon.service.deps import RuntimeDep
from fleetmon.service.routes import AUTH_ERRORS
from fleetmon.service.schemas import KeyOut

router = APIRouter(prefix="/api/v1/keys", tags=["keys"], responses=AUTH_ERRORS)


@router.get("", response_model=list[KeyOut], dependencies=[Depends(require(Permission.MANAGE_KEYS))])
async def get_keys(runtime: RuntimeDep) -> list[KeyOut]:
    """Every API key without its secret: id, name, role, creation, last use, revocation."""
    keys = await asyncio.to_thread(list_keys, runtime.engine)
    return [
        KeyOut(
            id=k.id,
            name=k.name,
            role=k.role,
            created_at=k.created_at,
            last_used_at=k.last_used_at,
            revoked=k.revoked_at is not None,
        )
        for k in keys
    ]
