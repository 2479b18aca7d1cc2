"""The on-disk spool: samples wait here while the broker or the database is down.

Layout: a directory of append-only segment files `seg-<12-digit number>.jsonl`, one Sample JSON per
line, plus `seg-<n>.done` holding how many lines of that segment a sink has already confirmed. New
samples go to the newest segment (a new one starts past `segment_bytes`); replay reads segments
oldest first, hands chunks to the sink, records progress after each confirmed chunk and deletes a
segment once all of it is confirmed. A crash mid-replay therefore re-sends at most one chunk, which
the (device, ts) idempotency of the stores absorbs.

Full spool: the total size is bounded by `max_bytes`. When it is full, NEW samples are refused (and
counted) while the oldest are kept: the spool then holds an unbroken history from the start of the
outage, and the current state comes back with the first live poll after the sink returns. A warning is
logged once when the spool fills, with the count of refused samples when it drains again.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path

from pydantic import ValidationError

from collectors.sample import Sample

log = logging.getLogger(__name__)

SEGMENT_GLOB = "seg-*.jsonl"


class Spool:
    """A bounded, ordered, crash-safe queue of samples on disk. Not safe for two processes at once."""

    def __init__(
        self, directory: Path, *, max_bytes: int = 512 * 1024 * 1024, segment_bytes: int = 8 << 20
    ) -> None:
        self.directory = directory
        self.max_bytes = max_bytes
        self.segment_bytes = segment_bytes
        self.refused = 0
        self._full_warned = False
        directory.mkdir(parents=True, exist_ok=True)

    def _segments(self) -> list[Path]:
        return sorted(self.directory.glob(SEGMENT_GLOB))

    @staticmethod
    def _done_file(segment: Path) -> Path:
        return segment.with_suffix(".done")

    def size_bytes(self) -> int:
        """Bytes on disk in segment files."""
        return sum(segment.stat().st_size for segment in self._segments())

    def is_empty(self) -> bool:
        """True when nothing waits for replay."""
        return not self._segments()

    def pending(self) -> int:
        """How many samples wait for replay (reads the files; for tests and status output)."""
        return sum(len(self._read(segment)) - self._confirmed(segment) for segment in self._segments())

    def append(self, samples: Sequence[Sample]) -> int:
        """Write samples to the newest segment and fsync; returns how many were taken (the rest: refused)."""
        if not samples:
            return 0
        size = self.size_bytes()
        lines: list[bytes] = []
        for sample in samples:
            line = sample.to_json().encode() + b"\n"
            if size + len(line) > self.max_bytes:
                break
            size += len(line)
            lines.append(line)
        refused = len(samples) - len(lines)
        if refused:
            self.refused += refused
            if not self._full_warned:
                log.warning(
                    "spool %s is full (%d bytes): refusing new samples until the sink returns",
                    self.directory,
                    self.max_bytes,
                )
                self._full_warned = True
        if lines:
            segments = self._segments()
            if segments and segments[-1].stat().st_size < self.segment_bytes:
                target = segments[-1]
            else:
                number = int(segments[-1].stem.split("-")[1]) + 1 if segments else 1
                target = self.directory / f"seg-{number:012d}.jsonl"
            with target.open("ab") as handle:
                handle.write(b"".join(lines))
                handle.flush()
                os.fsync(handle.fileno())
        return len(lines)

    def _confirmed(self, segment: Path) -> int:
        try:
            return int(self._done_file(segment).read_text().strip() or 0)
        except FileNotFoundError:
            return 0

    def _mark(self, segment: Path, confirmed: int) -> None:
        done = self._done_file(segment)
        temporary = done.with_suffix(".tmp")
        temporary.write_text(str(confirmed))
        os.replace(temporary, done)

    async def replay(self, send: Callable[[Sequence[Sample]], Awaitable[None]], chunk: int = 500) -> int:
        """Send everything spooled, oldest first, in chunks; stops at the first exception (re-raised).

        A chunk is removed from the spool only after `send` returned; returns how many were sent.
        """
        sent = 0
        for segment in self._segments():
            samples = self._read(segment)
            position = self._confirmed(segment)
            while position < len(samples):
                batch = samples[position : position + chunk]
                await send(batch)
                position += len(batch)
                sent += len(batch)
                self._mark(segment, position)
            segment.unlink()
            self._done_file(segment).unlink(missing_ok=True)
        if sent and self._full_warned:
            log.warning(
                "spool %s drained; %d samples were refused while it was full", self.directory, self.refused
            )
            self._full_warned = False
        return sent

    def _read(self, segment: Path) -> list[Sample]:
        samples: list[Sample] = []
        lines = segment.read_bytes().splitlines()
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                samples.append(Sample.from_json(line))
            except ValidationError:
                # Only a write torn by a crash can leave a bad line, and only as the last one.
                log.error(
                    "spool %s line %d is not a sample (torn write?), skipped: %.80r", segment, number, line
                )
        return samples
