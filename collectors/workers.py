"""Poll one fleet from several processes: each worker runs its own Poller over a fixed share of it.

One Poller is one event loop, so it reads at most what one core can: on a first cycle (identification
and the web serial included) a stock Antminer costs ~1.3 ms of CPU, and a 10,000-device site needs
13 s of one core. `PollerPool` spreads the fleet over `workers` processes and gathers their samples.

Contract (the same as `Poller`'s, across processes):
- `poll_once(targets)` returns exactly one Sample per target, in target order. Devices in flight are
  `settings.concurrency` in all, split between the workers.
- A target always goes to the same worker (CRC-32 of `host:port`, modulo the worker count), so its
  identity, web login state and availability history live in one place from cycle to cycle, and each
  transition is logged once, by that worker (workers log to this process's stderr).
- Workers are `python -m collectors.workers` processes talking JSON lines over their stdin/stdout. The
  settings, credentials included, travel over that pipe, never in argv or the environment.
- A worker that is gone when a cycle starts is started again (its share is identified afresh). One
  that cannot start, or dies during a cycle, costs that cycle its share: those targets get an `error`
  sample with code `worker_failed`; the other workers' samples are unaffected.
- `poll_device(target)` (a one-off read, the service's /probe) runs in this process, on a Poller of its
  own: it never waits for a cycle in progress, and a worker's cache is not consulted.
- `aclose()` (or `async with`) ends the workers: stdin closed, then killed if still there after 5 s.

How many workers when the user names no number: `auto_workers(targets)`, one per usable core, but
none (an in-process Poller) for a fleet too small to repay the start of a process.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import os
import sys
import zlib
from collections.abc import Sequence
from types import TracebackType
from typing import Any

from pydantic import SecretStr, ValidationError

from collectors.poller import Poller, PollerSettings, Sink, repeat_cycles, tune_gc_for_polling
from collectors.posture import PostureSettings
from collectors.sample import DeviceError, Sample, State
from collectors.targets import Target
from collectors.web import WebCredentials

log = logging.getLogger(__name__)

LINE_LIMIT = 16 * 1024 * 1024
"""Longest line a worker may send (one sample); real ones are a few KiB."""
STOP_GRACE_S = 5.0
READY = {"ready": True}
AUTO_SHARE_MIN = 500
"""Targets each worker must have before `auto_workers` adds it. A worker must start (an interpreter
importing collectors/) before its first reply, and a first cycle costs a millisecond or two of CPU per
device, so a small fleet is read sooner by one process than by a pool it must first start;
`bench/bench_poll.py --sweep` prints where the pool overtakes one process on a given machine."""


def usable_cores() -> int:
    """CPUs this process may run on (its affinity mask, which container CPU sets restrict)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def auto_workers(targets: int, cores: int | None = None) -> int:
    """Poller processes for `targets` devices when none are asked for: one per usable core, at most one
    per AUTO_SHARE_MIN targets, so a small fleet gets 1 (an in-process Poller, no worker to start)."""
    cores = usable_cores() if cores is None else cores
    return max(1, min(cores, targets // AUTO_SHARE_MIN))


def shard_of(target: Target, workers: int) -> int:
    """The worker that owns `target`: stable across cycles and processes (not Python's salted hash)."""
    return zlib.crc32(f"{target.host}:{target.port}".encode()) % workers


class PollerPool:
    """A fleet read by `workers` Poller processes; the same interface as Poller (one pool per fleet)."""

    def __init__(self, settings: PollerSettings, workers: int) -> None:
        if workers < 1:
            raise ValueError("workers must be at least 1")
        self.settings = settings
        self.workers = workers
        share = max(1, settings.concurrency // workers)
        self._worker_settings = _settings_line(settings, share)
        self._procs: list[asyncio.subprocess.Process | None] = [None] * workers
        self._lock = asyncio.Lock()
        self._local: Poller | None = None  # poll_device's, created on first use

    async def __aenter__(self) -> PollerPool:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """End every worker (and close the one-off reads' poller)."""
        await asyncio.gather(*(self._stop(i) for i in range(self.workers)))
        if self._local is not None:
            await self._local.aclose()
            self._local = None

    async def start(self) -> None:
        """Start every worker now and wait until each is ready (otherwise the first cycle starts them)."""
        await asyncio.gather(*(self._running(i) for i in range(self.workers)))

    def worker_pids(self) -> list[int | None]:
        """The process id of each worker (None where none runs)."""
        return [p.pid if p is not None and p.returncode is None else None for p in self._procs]

    async def poll_once(self, targets: Sequence[Target], *, spread_s: float = 0.0) -> list[Sample]:
        """One cycle over every worker at once: one Sample per target, in target order."""
        async with self._lock:  # one cycle at a time: a worker answers one request at a time
            shares: list[list[int]] = [[] for _ in range(self.workers)]
            for position, target in enumerate(targets):
                shares[shard_of(target, self.workers)].append(position)
            results: list[Sample | None] = [None] * len(targets)
            parts = await asyncio.gather(
                *(
                    self._cycle(i, [targets[p] for p in share], spread_s)
                    for i, share in enumerate(shares)
                    if share
                )
            )
            busy = [share for share in shares if share]
            for share, samples in zip(busy, parts, strict=True):
                for position, sample in zip(share, samples, strict=True):
                    results[position] = sample
            assert all(sample is not None for sample in results)
            return [sample for sample in results if sample is not None]

    async def poll_device(self, target: Target) -> Sample:
        """Read one device now, in this process: a cycle in progress in the workers does not delay it."""
        if self._local is None:
            self._local = Poller(self.settings)
        return await self._local.poll_device(target)

    async def run(self, interval: float, sink: Sink, *, targets: Sequence[Target]) -> None:
        """Poll every `interval` seconds until cancelled, as `Poller.run` does."""
        await repeat_cycles(self.poll_once, self.settings.deadline_s, interval, sink, targets)

    async def _cycle(self, index: int, targets: list[Target], spread_s: float) -> list[Sample]:
        try:
            proc = await self._running(index)
        except (OSError, RuntimeError) as exc:
            log.error("poll worker %d cannot start: %s", index, exc)
            return [_worker_failed(target, index) for target in targets]
        assert proc.stdin is not None and proc.stdout is not None
        request = {"targets": [[t.host, t.port] for t in targets], "spread_s": spread_s}
        try:
            proc.stdin.write(json.dumps(request).encode() + b"\n")
            await proc.stdin.drain()
            samples = [Sample.model_validate_json(await _line(proc.stdout)) for _ in targets]
        except (ConnectionError, EOFError, ValueError, ValidationError) as exc:
            log.error("poll worker %d (pid %d) failed during a cycle: %s", index, proc.pid, exc)
            await self._stop(index)
            return [_worker_failed(target, index) for target in targets]
        except BaseException:
            # Cancelled mid-cycle: the worker would answer this cycle into the next one. End it.
            self._procs[index] = None
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            raise
        return samples

    async def _running(self, index: int) -> asyncio.subprocess.Process:
        proc = self._procs[index]
        if proc is not None and proc.returncode is None:
            return proc
        if proc is not None:
            log.warning("poll worker %d exited (status %s); starting a new one", index, proc.returncode)
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "collectors.workers",
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            limit=LINE_LIMIT,
        )
        assert proc.stdin is not None and proc.stdout is not None
        self._procs[index] = proc
        try:
            proc.stdin.write(self._worker_settings)
            await proc.stdin.drain()
            ready = json.loads(await _line(proc.stdout))
        except (ConnectionError, EOFError, ValueError) as exc:
            await self._stop(index)
            raise RuntimeError(f"poll worker {index} did not start: {exc}") from exc
        if ready != READY:
            await self._stop(index)
            raise RuntimeError(f"poll worker {index} did not start: it said {ready!r}")
        return proc

    async def _stop(self, index: int) -> None:
        proc = self._procs[index]
        self._procs[index] = None
        if proc is None:
            return
        if proc.stdin is not None and not proc.stdin.is_closing():
            proc.stdin.close()
        try:
            await asyncio.wait_for(proc.wait(), STOP_GRACE_S)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()


def poller_for(settings: PollerSettings, workers: int) -> Poller | PollerPool:
    """One in-process Poller for `workers` 1, else a pool of that many poller processes."""
    if workers > 1:
        log.info("polling with %d worker processes", workers)
    return Poller(settings) if workers == 1 else PollerPool(settings, workers)


async def _line(stream: asyncio.StreamReader) -> bytes:
    line = await stream.readline()
    if not line.endswith(b"\n"):
        raise EOFError("the worker closed its output")
    return line


def _worker_failed(target: Target, index: int) -> Sample:
    return Sample(
        ip=target.host,
        port=target.port,
        state=State.ERROR,
        errors=[DeviceError(code="worker_failed", message=f"poll worker {index} failed during the cycle")],
    )


def _credentials(value: WebCredentials | None) -> dict[str, str] | None:
    if value is None:
        return None
    return {
        "profile": value.profile,
        "username": value.username,
        "password": value.password.get_secret_value(),
    }


def _settings_line(settings: PollerSettings, concurrency: int) -> bytes:
    body = {
        "concurrency": concurrency,
        "deadline_s": settings.deadline_s,
        "connect_s": settings.connect_s,
        "max_reply_bytes": settings.max_reply_bytes,
        "credentials": _credentials(settings.credentials),
        "vnish_credentials": _credentials(settings.vnish_credentials),
        "braiins_credentials": _credentials(settings.braiins_credentials),
        "posture": dataclasses.asdict(settings.posture),
        "log_level": logging.getLogger().getEffectiveLevel(),
    }
    return json.dumps(body).encode() + b"\n"


def _parse_credentials(value: Any) -> WebCredentials | None:
    if value is None:
        return None
    return WebCredentials(
        profile=value["profile"], username=value["username"], password=SecretStr(value["password"])
    )


# ------------------------------------------------------------------------------------------ the worker
async def _serve() -> None:
    """Worker side: settings on the first stdin line, then one line of targets per cycle, answered with
    one sample per line, in order. Ends when stdin closes."""
    loop = asyncio.get_running_loop()
    stdin = asyncio.StreamReader(limit=LINE_LIMIT)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(stdin), sys.stdin)
    first = await stdin.readline()
    if not first:
        return
    config = json.loads(first)
    logging.basicConfig(level=config["log_level"], format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    settings = PollerSettings(
        concurrency=config["concurrency"],
        deadline_s=config["deadline_s"],
        connect_s=config["connect_s"],
        max_reply_bytes=config["max_reply_bytes"],
        credentials=_parse_credentials(config["credentials"]),
        vnish_credentials=_parse_credentials(config["vnish_credentials"]),
        braiins_credentials=_parse_credentials(config["braiins_credentials"]),
        posture=PostureSettings(**config["posture"]),
    )
    out = sys.stdout.buffer
    async with Poller(settings) as poller:
        out.write(json.dumps(READY).encode() + b"\n")
        out.flush()
        while line := await stdin.readline():
            request = json.loads(line)
            targets = [Target(host, port) for host, port in request["targets"]]
            samples = await poller.poll_once(targets, spread_s=request["spread_s"])
            out.write(b"".join(sample.to_json().encode() + b"\n" for sample in samples))
            out.flush()


def main() -> None:
    """Entry point of `python -m collectors.workers` (started by PollerPool, not by hand)."""
    tune_gc_for_polling()
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve())


if __name__ == "__main__":
    main()
