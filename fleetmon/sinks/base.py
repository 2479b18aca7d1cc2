"""The sink contract and its exception tree (drawn in the package docstring)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from collectors.sample import Sample


class SinkError(Exception):
    """Root of every error raised by fleetmon.sinks."""


class SinkUnavailableError(SinkError):
    """The sink cannot take samples now; what it refused must be spooled and sent again later."""


class Sink(Protocol):
    """Something that durably takes samples: `send` returns only once they are safe there."""

    async def send(self, samples: Sequence[Sample]) -> None:
        """Deliver samples; raises SinkUnavailableError when they were not (all) confirmed."""

    async def close(self) -> None:
        """Flush and release the connection."""
