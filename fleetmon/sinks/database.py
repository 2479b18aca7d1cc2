"""DbSink: the collector writing straight into the database through the batch writer.

`fleetmon collect --db` gives it one site; the service's collector mode gives it a function naming
each sample's site (`fleetmon demo` polls several), keeps its engine open for the API, and is told
after each commit so new devices get their database ids.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence

from collectors.sample import Sample
from fleetmon.sinks.base import SinkUnavailableError
from fleetmon.storage.batch import BatchWriter
from fleetmon.storage.errors import StorageError
from fleetmon.storage.writer import SampleStore, SiteSample

OnStored = Callable[[Sequence[Sample]], Awaitable[None]]
"""Awaited with the samples of each send once they committed."""


def _one_site(site: str) -> Callable[[Sample], str]:
    return lambda _sample: site


class DbSink:
    """Sends samples to the database, each under its site; a failed commit raises SinkUnavailableError."""

    def __init__(
        self,
        store: SampleStore,
        site: str | Callable[[Sample], str],
        *,
        max_batch: int = 2000,
        flush_interval: float = 0.2,
        dispose: bool = True,
        on_stored: OnStored | None = None,
    ) -> None:
        """`site`: one site for every sample, or a function naming each sample's; `dispose`: close the
        store's engine with the sink (False where the engine is shared)."""
        self.site_of = _one_site(site) if isinstance(site, str) else site
        self.writer = BatchWriter(store, max_batch=max_batch, flush_interval=flush_interval, retry=False)
        self.writer.start()
        self.dispose = dispose
        self.on_stored = on_stored

    async def send(self, samples: Sequence[Sample]) -> None:
        """Return once every sample committed."""
        try:
            await self.writer.write([SiteSample(self.site_of(sample), sample) for sample in samples])
        except StorageError as exc:
            raise SinkUnavailableError(f"database refused {len(samples)} samples: {exc}") from exc
        if self.on_stored is not None:
            await self.on_stored(samples)

    async def close(self) -> None:
        """Write what is queued and stop the writer."""
        await self.writer.close(timeout=30)
        if self.dispose:
            self.writer.store.engine.dispose()
