"""Dependencies shared by the routers: the process runtime and a database session per request.

The session dependency owns the transaction: it commits after the route returned and rolls back when
it raised, so routes never commit by hand.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.orm import Session

from fleetmon.service.runtime import ServiceRuntime


def get_runtime(request: Request) -> ServiceRuntime:
    """The ServiceRuntime the app was built with."""
    runtime: ServiceRuntime = request.app.state.runtime
    return runtime


def get_session(runtime: Annotated[ServiceRuntime, Depends(get_runtime)]) -> Iterator[Session]:
    """A session for one request (sync: used from routes that FastAPI runs in its thread pool)."""
    with Session(runtime.engine) as session:
        yield session
        session.commit()


RuntimeDep = Annotated[ServiceRuntime, Depends(get_runtime)]
SessionDep = Annotated[Session, Depends(get_session)]
