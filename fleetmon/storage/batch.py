"""The async batch writer: a bounded queue in front of SampleStore, flushed by size or by interval.

Producers `submit()` samples and get a future that resolves once the batch holding them committed
(or fails with the storage error), so the MQTT ingester can acknowledge only after commit and the
collector can spool what an unavailable database did not take. A sample whose values the database
refuses is no failure here: the store keeps it in rejected_samples and its future resolves.
The database work runs in one worker thread, so no event loop (and no request path) ever waits on a commit.

With `retry=True` (the ingester) a failed batch is retried with backoff until it commits and the queue
fills up meanwhile, which stops intake (backpressure) instead of dropping samples. With `retry=False`
(the collector) the batch's futures fail at once and the caller decides (it spools).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence

from fleetmon.storage.errors import StorageError
from fleetmon.storage.writer import SampleStore, WriteItem, WriteResult

log = logging.getLogger(__name__)


class BatchWriter:
    """Collects samples into batches and writes each batch in one transaction, in submission order."""

    def __init__(
        self,
        store: SampleStore,
        *,
        max_batch: int = 2000,
        flush_interval: float = 0.5,
        max_queue: int = 20000,
        retry: bool = False,
        retry_max_delay: float = 10.0,
    ) -> None:
        self.store = store
        self.max_batch = max_batch
        self.flush_interval = flush_interval
        self.retry = retry
        self.retry_max_delay = retry_max_delay
        self._queue: asyncio.Queue[tuple[WriteItem, asyncio.Future[None]]] = asyncio.Queue(max_queue)
        self._task: asyncio.Task[None] | None = None
        self._idle = asyncio.Event()
        self._idle.set()
        self.written = 0
        self.duplicates = 0
        self.rejected = 0
        self.batches = 0

    async def __aenter__(self) -> BatchWriter:
        self.start()
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.close()

    def start(self) -> None:
        """Start the flushing task (idempotent)."""
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="fleetmon-batch-writer")

    async def submit(self, item: WriteItem) -> asyncio.Future[None]:
        """Queue one item (waits while the queue is full); the future resolves once it is stored.

        Stored means committed as a sample, or kept in rejected_samples when its values were refused.
        """
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._idle.clear()
        await self._queue.put((item, future))
        return future

    async def write(self, items: Sequence[WriteItem]) -> None:
        """Queue samples and wait until all of them committed; raises the storage error otherwise."""
        futures = [await self.submit(item) for item in items]
        results = await asyncio.gather(*futures, return_exceptions=True)
        for result in results:
            if isinstance(result, BaseException):
                raise result

    async def flush(self) -> None:
        """Wait until everything submitted so far has been written (or has failed)."""
        # Set only by the writer after a batch, when the queue was empty; every submit clears it.
        await self._idle.wait()

    async def close(self, timeout: float | None = None) -> None:
        """Write what is queued (waiting at most `timeout` seconds), then stop."""
        if self._task is None:
            return
        try:
            await asyncio.wait_for(self.flush(), timeout)
        except TimeoutError:
            log.warning("batch writer closed with %d samples unwritten", self._queue.qsize())
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self._task = None

    async def _collect(self) -> list[tuple[WriteItem, asyncio.Future[None]]]:
        batch = [await self._queue.get()]
        deadline = asyncio.get_running_loop().time() + self.flush_interval
        while len(batch) < self.max_batch:
            while not self._queue.empty() and len(batch) < self.max_batch:
                batch.append(self._queue.get_nowait())
            if len(batch) >= self.max_batch:
                break
            remaining = deadline - asyncio.get_running_loop().time()
            if remaining <= 0:
                break
            try:
                batch.append(await asyncio.wait_for(self._queue.get(), remaining))
            except TimeoutError:
                break
        return batch

    async def _run(self) -> None:
        while True:
            batch = await self._collect()
            self._idle.clear()
            try:
                result = await self._write([item for item, _ in batch])
            except Exception as exc:
                # A StorageError (no retry) or a bug/bad value: fail this batch, keep the writer alive.
                if not isinstance(exc, StorageError):
                    log.exception("batch of %d samples could not be written", len(batch))
                for _, future in batch:
                    if not future.done():
                        future.set_exception(exc)
            else:
                self.written += result.inserted
                self.duplicates += result.duplicates
                self.rejected += result.rejected
                self.batches += 1
                for _, future in batch:
                    if not future.done():
                        future.set_result(None)
            finally:
                if self._queue.empty():
                    self._idle.set()

    async def _write(self, items: list[WriteItem]) -> WriteResult:
        delay = 0.5
        failing = False
        while True:
            try:
                result = await asyncio.to_thread(self.store.write, items)
            except StorageError as exc:
                if not self.retry:
                    raise
                if not failing:
                    log.warning("database write failed, retrying until it succeeds: %s", exc)
                    failing = True
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.retry_max_delay)
                continue
            if failing:
                log.warning("database writes succeed again")
            return result
