"""Dependencies shared by the routers: the process runtime.

Routes never open database sessions: they call service functions, which read the fleet state or
storage's named queries (fleetmon.storage), so no transaction is ever held across a request.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from fleetmon.service.runtime import ServiceRuntime


def get_runtime(request: Request) -> ServiceRuntime:
    """The ServiceRuntime the app was built with."""
    runtime: ServiceRuntime = request.app.state.runtime
    return runtime


RuntimeDep = Annotated[ServiceRuntime, Depends(get_runtime)]
