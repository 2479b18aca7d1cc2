"""`--out FILE`: every sample the collector produced, appended as one JSON line each."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from collectors.sample import Sample


class JsonlSink:
    """Appends samples to a file; each `send` is flushed to the OS before it returns."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._handle = path.open("a", encoding="utf-8")

    async def send(self, samples: Sequence[Sample]) -> None:
        """Append the samples (a local file write: fast enough to do on the loop)."""
        self._handle.write("".join(sample.to_json() + "\n" for sample in samples))
        self._handle.flush()

    async def close(self) -> None:
        """Close the file."""
        self._handle.close()
