"""DbSink: the collector writing straight into the database through the batch writer."""

from __future__ import annotations

from collections.abc import Sequence

from collectors.sample import Sample
from fleetmon.sinks.base import SinkUnavailableError
from fleetmon.storage.batch import BatchWriter
from fleetmon.storage.errors import StorageError
from fleetmon.storage.writer import SampleStore, SiteSample


class DbSink:
    """Sends samples of one site to the database; a failed commit raises SinkUnavailableError."""

    def __init__(
        self, store: SampleStore, site: str, *, max_batch: int = 2000, flush_interval: float = 0.2
    ) -> None:
        self.site = site
        self.writer = BatchWriter(store, max_batch=max_batch, flush_interval=flush_interval, retry=False)
        self.writer.start()

    async def send(self, samples: Sequence[Sample]) -> None:
        """Return once every sample committed."""
        try:
            await self.writer.write([SiteSample(self.site, sample) for sample in samples])
        except StorageError as exc:
            raise SinkUnavailableError(f"database refused {len(samples)} samples: {exc}") from exc

    async def close(self) -> None:
        """Write what is queued and stop the writer."""
        await self.writer.close(timeout=30)
        self.writer.store.engine.dispose()
