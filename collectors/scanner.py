"""Find the miners in CIDR ranges: a staged, bounded scan.

Stage 1 (probe): a TCP connect to 4028 on every address, and to 4433 (Whatsminer API v3) where 4028
did not accept, each with a short connect deadline, at most `concurrency` at a time. Nothing is sent:
a refused or silent address costs one SYN.
Stage 2 (identify): every address that accepted is read once (`read_device`: identification, one poll,
the web CGI for serial and MAC where credentials are given, over one WebSession for the whole stage),
again bounded, each under the deadline.

An address that accepts but cannot be identified is still reported (make None, with the error), since
something listens on a miner port there; the poller will flag it each cycle. Progress is reported
through a callback `(stage, done, total)` so the CLI can draw a bar without the scanner knowing.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass

from collectors.connection import Limits, Timeouts
from collectors.reader import V3_PORT, read_device
from collectors.sample import is_down
from collectors.targets import DEFAULT_PORT, Target, expand_cidr
from collectors.web import WEB_MAX_CONNECTIONS, WebCredentials, WebSession

Progress = Callable[[str, int, int], None]
"""Called as `(stage, done, total)`: stage is "probe" or "identify"."""

SCAN_REPLY_CAP_BYTES = 512 * 1024


@dataclass(frozen=True, slots=True)
class FoundDevice:
    """One device the scan found: the address to poll and what identification said."""

    ip: str
    port: int
    make: str | None
    model: str | None
    firmware_vendor: str | None
    firmware_version: str | None
    mac: str | None
    serial: str | None
    error: str | None = None

    def to_dict(self) -> dict[str, object]:
        """The targets-JSON row (the poller's `@FILE` reads `ip` and `port`)."""
        return asdict(self)


@dataclass(frozen=True, slots=True)
class ScanSettings:
    """Explicit limits of one scan: addresses in flight, the connect deadline of the probe, and the
    deadline of identifying one responder."""

    concurrency: int
    probe_timeout_s: float
    identify_timeout_s: float
    credentials: WebCredentials | None = None
    vnish_credentials: WebCredentials | None = None

    def __post_init__(self) -> None:
        if self.concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        if self.probe_timeout_s <= 0 or self.identify_timeout_s <= 0:
            raise ValueError("timeouts must be positive")


async def _accepts(host: str, port: int, timeout: float) -> bool:
    """True when a TCP connection to host:port completes within `timeout` (closed at once)."""
    try:
        async with asyncio.timeout(timeout):
            _, writer = await asyncio.open_connection(host, port)
    except (OSError, TimeoutError):
        return False
    writer.transport.abort()
    return True


def addresses(cidrs: Iterable[str]) -> list[str]:
    """The host addresses of the ranges, deduplicated, in order (TargetError on a bad range)."""
    seen: dict[str, None] = {}
    for cidr in cidrs:
        for target in expand_cidr(cidr):
            seen.setdefault(target.host, None)
    return list(seen)


async def probe(
    hosts: Sequence[str], settings: ScanSettings, progress: Progress | None = None
) -> list[Target]:
    """Stage 1: the hosts that accept on 4028 (or, failing that, 4433), in input order."""
    semaphore = asyncio.Semaphore(settings.concurrency)
    done = 0

    async def one(host: str) -> Target | None:
        nonlocal done
        async with semaphore:
            try:
                if await _accepts(host, DEFAULT_PORT, settings.probe_timeout_s):
                    return Target(host, DEFAULT_PORT)
                if await _accepts(host, V3_PORT, settings.probe_timeout_s):
                    return Target(host, V3_PORT)
                return None
            finally:
                done += 1
                if progress is not None:
                    progress("probe", done, len(hosts))

    found = await asyncio.gather(*(one(h) for h in hosts))
    return [t for t in found if t is not None]


async def identify(
    targets: Sequence[Target], settings: ScanSettings, progress: Progress | None = None
) -> list[FoundDevice]:
    """Stage 2: read each responder once; one FoundDevice per target, in order."""
    semaphore = asyncio.Semaphore(settings.concurrency)
    timeouts = Timeouts(
        connect=settings.probe_timeout_s, read=settings.identify_timeout_s, device=settings.identify_timeout_s
    )
    limits = Limits(max_reply_bytes=SCAN_REPLY_CAP_BYTES)
    done = 0
    session: WebSession | None = None
    if settings.credentials is not None or settings.vnish_credentials is not None:
        session = WebSession(
            connect_s=settings.probe_timeout_s,
            read_s=settings.identify_timeout_s,
            max_connections=min(WEB_MAX_CONNECTIONS, settings.concurrency),
        )

    async def one(target: Target) -> FoundDevice:
        nonlocal done
        web = session.device(settings.credentials, settings.vnish_credentials) if session else None
        async with semaphore:
            try:
                reading = await read_device(
                    target.host, target.port, timeouts=timeouts, limits=limits, web=web
                )
            finally:
                done += 1
                if progress is not None:
                    progress("identify", done, len(targets))
        sample = reading.sample
        failed = is_down(sample.state)
        port = reading.identity.api_port if reading.identity is not None else target.port
        return FoundDevice(
            ip=target.host,
            port=port,
            make=sample.make,
            model=sample.model,
            firmware_vendor=sample.firmware_vendor,
            firmware_version=sample.firmware_version,
            mac=sample.mac,
            serial=sample.serial,
            error=sample.errors[0].code if failed and sample.errors else None,
        )

    try:
        return list(await asyncio.gather(*(one(t) for t in targets)))
    finally:
        if session is not None:
            await session.aclose()


async def scan(
    cidrs: Iterable[str], settings: ScanSettings, progress: Progress | None = None
) -> list[FoundDevice]:
    """Probe every address of the ranges, then identify the responders."""
    hosts = addresses(cidrs)
    responders = await probe(hosts, settings, progress)
    return await identify(responders, settings, progress)
