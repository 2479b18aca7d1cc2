"""Find the miners in CIDR ranges: a staged, bounded scan.

Stage 1 (probe): a TCP connect to 4028 on every address, and to 4433 (Whatsminer API v3) where 4028
did not accept, each with a short connect deadline, at most `concurrency` sockets open at a time.
Nothing is sent: a refused or silent address costs a SYN per port. The sweep uses bare non-blocking
sockets in one epoll set (see `_ConnectSweep`): on a fast network the per-address Python cost sets
the pace, on a farm network the connect deadline and the concurrency do.
Stage 2 (identify): every address that accepted is read once (`read_device`: identification, one poll,
the web CGI for serial and MAC where credentials are given, over one WebSession for the whole stage),
at most `identify_concurrency` at a time, each under the deadline.

An address that accepts but cannot be identified is still reported (make None, with the error), since
something listens on a miner port there; the poller will flag it each cycle. Progress is reported
through a callback `(stage, done, total)` so the CLI can draw a bar without the scanner knowing.
"""

from __future__ import annotations

import asyncio
import collections
import errno
import os
import select
import selectors
import socket
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass

from collectors.connection import Limits, Timeouts
from collectors.reader import V3_PORT, DeviceReading, read_device
from collectors.sample import is_down
from collectors.targets import DEFAULT_PORT, Target, expand_cidr
from collectors.web import WEB_MAX_CONNECTIONS, WebCredentials, WebSession

Progress = Callable[[str, int, int], None]
"""Called as `(stage, done, total)`: stage is "probe" or "identify"."""

SCAN_REPLY_CAP_BYTES = 512 * 1024
PROBE_PORTS = (DEFAULT_PORT, V3_PORT)
"""The ports a host is tried on, in order: the CGMiner-style API, then Whatsminer API v3."""


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
    identify_concurrency: int | None = None
    """Responders read at once in stage 2; None: `concurrency`. A read is several round trips, so
    fewer reads in flight than probes keeps each read's wait inside its deadline."""

    def __post_init__(self) -> None:
        if self.concurrency < 1 or (self.identify_concurrency is not None and self.identify_concurrency < 1):
            raise ValueError("concurrency must be at least 1")
        if self.probe_timeout_s <= 0 or self.identify_timeout_s <= 0:
            raise ValueError("timeouts must be positive")


class _Readiness:
    """The sweep's own set of connecting sockets, told apart from the loop's: one epoll (Linux) or
    selector whose descriptor the loop watches. A wake-up drains every socket that finished connecting
    in one call, and closing a socket drops it from epoll, so an attempt costs no loop handle and no
    selector bookkeeping (bench/bench_scan.py prints what this buys at a /16)."""

    def __init__(self) -> None:
        self._epoll = select.epoll() if hasattr(select, "epoll") else None
        self._selector = selectors.DefaultSelector() if self._epoll is None else None

    def fileno(self) -> int:
        """The descriptor that turns readable when a registered socket finished connecting."""
        return self._epoll.fileno() if self._epoll is not None else self._selector.fileno()  # type: ignore[union-attr]

    def add(self, fd: int) -> None:
        """Watch a connecting socket until it is writable (connected or failed)."""
        if self._epoll is not None:
            self._epoll.register(fd, select.EPOLLOUT)
        else:
            self._selector.register(fd, selectors.EVENT_WRITE)  # type: ignore[union-attr]

    def forget(self, fd: int) -> None:
        """Stop watching a socket (call before closing it)."""
        if self._selector is not None:
            self._selector.unregister(fd)
        # epoll drops a descriptor when its socket closes

    def ready(self) -> list[int]:
        """The descriptors that finished connecting, without waiting."""
        if self._epoll is not None:
            return [fd for fd, _ in self._epoll.poll(0)]
        return [key.fd for key, _ in self._selector.select(0)]  # type: ignore[union-attr]

    def close(self) -> None:
        """Release the epoll or selector."""
        (self._epoll or self._selector).close()  # type: ignore[union-attr]


class _ConnectSweep:
    """TCP connects to many hosts, at most `limit` in flight, none beyond its deadline.

    Each attempt is one non-blocking socket in a `_Readiness` set the running loop watches: no
    transport, stream, task or loop handle per address (the per-address Python cost is what bounds a
    scan of a large range on a fast network). A host is tried on `ports` in order until one accepts; a
    connection that completes is closed at once, nothing sent. Attempts start in host order, so their
    deadlines are in start order: one deque and one timer handle every expiry. `limit` bounds the
    sockets open at once. `done(index, port)` is called once per host: the port that accepted, or None.
    """

    def __init__(
        self,
        hosts: Sequence[str],
        ports: Sequence[int],
        limit: int,
        timeout_s: float,
        done: Callable[[int, int | None], None],
    ) -> None:
        self._loop = asyncio.get_running_loop()
        self._hosts, self._ports, self._limit, self._timeout = hosts, ports, limit, timeout_s
        self._done = done
        self._next = 0  # the next host to start
        self._inflight: dict[int, _Attempt] = {}  # by file descriptor
        self._deadlines: collections.deque[_Attempt] = collections.deque()  # in start order
        self._timer: asyncio.TimerHandle | None = None
        self._fill_scheduled = False
        # The timer wakes at most once per this long: expiries are checked this late at worst.
        self._granularity = timeout_s / 20
        self._readiness = _Readiness()
        self._closed = False
        self._loop.add_reader(self._readiness.fileno(), self._completed)
        self.finished: asyncio.Future[None] = self._loop.create_future()

    def run(self) -> asyncio.Future[None]:
        """Start the sweep; the future completes when every host is done (raises a local OSError)."""
        self._fill()
        return self.finished

    def close(self) -> None:
        """Stop: close every socket still connecting and the readiness set (idempotent)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if not self._closed:
            self._closed = True
            self._loop.remove_reader(self._readiness.fileno())
            for fd, attempt in self._inflight.items():
                self._readiness.forget(fd)
                attempt.sock.close()
            self._readiness.close()
        self._inflight.clear()
        self._deadlines.clear()

    def _fill(self) -> None:
        self._fill_scheduled = False
        if self._closed:
            return
        budget = self._limit  # starts per call: where the kernel answers every connect at once, the
        # loop still gets its turn between batches
        try:
            while len(self._inflight) < self._limit and self._next < len(self._hosts):
                if budget == 0:
                    self._fill_scheduled = True
                    self._loop.call_soon(self._fill)
                    break
                budget -= 1
                index = self._next
                self._next += 1
                self._start(index, 0)
        except OSError as exc:  # this machine is out of sockets, ports or memory: no host is at fault
            self._fail(exc)
            return
        if not self._inflight and self._next >= len(self._hosts) and not self._fill_scheduled:
            if not self.finished.done():
                self.finished.set_result(None)
        elif self._timer is None and self._deadlines:
            self._arm()

    def _start(self, index: int, port_index: int) -> None:
        """Connect host `index` on its `port_index`th port; finish it now when the kernel answers now."""
        host = self._hosts[index]
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        while True:
            port = self._ports[port_index]
            sock = socket.socket(family, socket.SOCK_STREAM)
            sock.setblocking(False)
            err = sock.connect_ex((host, port))
            if err in _IN_PROGRESS:
                fd = sock.fileno()
                attempt = _Attempt(index, port_index, sock, self._loop.time() + self._timeout)
                self._readiness.add(fd)
                self._inflight[fd] = attempt
                self._deadlines.append(attempt)
                return
            sock.close()
            if err in _LOCAL_ERRORS:
                raise OSError(err, f"cannot connect to {host}:{port}: {os.strerror(err)}")
            if err == 0:
                self._done(index, port)
                return
            port_index += 1  # refused or unreachable: the next port, if any
            if port_index == len(self._ports):
                self._done(index, None)
                return

    def _finish(self, fd: int, attempt: _Attempt, accepted: bool) -> None:
        """One attempt is over: the host is done, or its next port is tried."""
        self._readiness.forget(fd)
        attempt.sock.close()
        attempt.finished = True
        if accepted:
            self._done(attempt.index, self._ports[attempt.port_index])
        elif attempt.port_index + 1 < len(self._ports):
            self._start(attempt.index, attempt.port_index + 1)
        else:
            self._done(attempt.index, None)

    def _completed(self) -> None:
        """The loop saw the readiness set turn readable: finish every attempt that has an answer."""
        inflight = self._inflight
        try:
            for fd in self._readiness.ready():
                attempt = inflight.pop(fd)
                ok = attempt.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0
                self._finish(fd, attempt, ok)
        except OSError as exc:
            self._fail(exc)
            return
        self._fill()

    def _expire(self) -> None:
        self._timer = None
        now = self._loop.time()
        deadlines = self._deadlines
        try:
            while deadlines and (deadlines[0].finished or deadlines[0].deadline <= now):
                attempt = deadlines.popleft()
                if attempt.finished:
                    continue
                fd = attempt.sock.fileno()
                del self._inflight[fd]
                # Connected after the set was last drained, or not: either way it answered in time.
                self._finish(fd, attempt, _established(attempt.sock))
        except OSError as exc:
            self._fail(exc)
            return
        self._fill()

    def _arm(self) -> None:
        when = max(self._deadlines[0].deadline, self._loop.time() + self._granularity)
        self._timer = self._loop.call_at(when, self._expire)

    def _fail(self, exc: OSError) -> None:
        self.close()
        if not self.finished.done():
            self.finished.set_exception(exc)


@dataclass(slots=True)
class _Attempt:
    """One connect in flight: which host and port, its socket, when it gives up."""

    index: int
    port_index: int
    sock: socket.socket
    deadline: float
    finished: bool = False


# connect_ex answers for a non-blocking socket: still connecting, or this machine's own trouble (no
# descriptor, buffer or ephemeral port), which says nothing about the host and must not read as "absent".
_IN_PROGRESS = frozenset((errno.EINPROGRESS, errno.EALREADY, errno.EWOULDBLOCK))
_LOCAL_ERRORS = frozenset((errno.EADDRNOTAVAIL, errno.ENOBUFS, errno.ENOMEM, errno.EMFILE, errno.ENFILE))


def _established(sock: socket.socket) -> bool:
    """True when a non-blocking connect has completed successfully."""
    try:
        sock.getpeername()
    except OSError:
        return False
    return sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0


async def sweep(
    hosts: Sequence[str],
    ports: Sequence[int],
    limit: int,
    timeout_s: float,
    done: Callable[[int, int | None], None],
) -> None:
    """Try every host on `ports` in order (at most `limit` sockets open, each connect under
    `timeout_s`); `done(index, port or None)` once per host. Raises OSError only for this machine's own
    trouble (out of descriptors or ports), never for a host."""
    runner = _ConnectSweep(hosts, ports, limit, timeout_s, done)
    try:
        await runner.run()
    finally:
        runner.close()


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
    """Stage 1 alone: the hosts that accept on 4028 (or, failing that, 4433), in input order."""
    ports: list[int | None] = [None] * len(hosts)
    total = len(hosts)
    finished = 0

    def done(index: int, port: int | None) -> None:
        nonlocal finished
        ports[index] = port
        finished += 1
        if progress is not None:
            progress("probe", finished, total)

    await sweep(hosts, PROBE_PORTS, settings.concurrency, settings.probe_timeout_s, done)
    return [Target(host, port) for host, port in zip(hosts, ports, strict=True) if port is not None]


class _Identifier:
    """Stage 2: reads responders as they are submitted, at most `identify_concurrency` at once.

    Use as `async with`: the readers start on entry; leaving the block waits until every submitted
    responder is read (or cancels them all on an error) and closes the web session.
    """

    def __init__(self, settings: ScanSettings, progress: Progress | None) -> None:
        self._settings = settings
        self._progress = progress
        self._timeouts = Timeouts(
            connect=settings.probe_timeout_s,
            read=settings.identify_timeout_s,
            device=settings.identify_timeout_s,
        )
        self._limits = Limits(max_reply_bytes=SCAN_REPLY_CAP_BYTES)
        self._readers = settings.identify_concurrency or settings.concurrency
        self._queue: asyncio.Queue[tuple[int, Target] | None] = asyncio.Queue()
        self._found: dict[int, FoundDevice] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._session: WebSession | None = None
        self.submitted = 0
        self.read = 0

    def submit(self, key: int, target: Target) -> None:
        """Queue one responder; `key` orders the results."""
        self.submitted += 1
        self._queue.put_nowait((key, target))

    def results(self) -> list[FoundDevice]:
        """Every responder read so far, in key order."""
        return [self._found[key] for key in sorted(self._found)]

    async def __aenter__(self) -> _Identifier:
        settings = self._settings
        if settings.credentials is not None or settings.vnish_credentials is not None:
            self._session = WebSession(
                connect_s=settings.probe_timeout_s,
                read_s=settings.identify_timeout_s,
                max_connections=min(WEB_MAX_CONNECTIONS, self._readers),
            )
        self._tasks = [asyncio.create_task(self._reader()) for _ in range(self._readers)]
        return self

    async def __aexit__(self, kind: type[BaseException] | None, *rest: object) -> None:
        try:
            if kind is None:
                for _ in self._tasks:
                    self._queue.put_nowait(None)  # one end mark per reader, behind every responder
                await asyncio.gather(*self._tasks)
                if self._progress is not None:
                    self._progress("identify", self.read, self.submitted)  # always the last report
        finally:
            for task in self._tasks:
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
            if self._session is not None:
                await self._session.aclose()

    async def _reader(self) -> None:
        settings = self._settings
        while (item := await self._queue.get()) is not None:
            key, target = item
            web = (
                self._session.device(settings.credentials, settings.vnish_credentials)
                if self._session is not None
                else None
            )
            try:
                reading = await read_device(
                    target.host, target.port, timeouts=self._timeouts, limits=self._limits, web=web
                )
            finally:
                self.read += 1
                if self._progress is not None:
                    self._progress("identify", self.read, self.submitted)
            self._found[key] = _found_device(target, reading)


def _found_device(target: Target, reading: DeviceReading) -> FoundDevice:
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


async def identify(
    targets: Sequence[Target], settings: ScanSettings, progress: Progress | None = None
) -> list[FoundDevice]:
    """Stage 2 alone: read each responder once; one FoundDevice per target, in order."""
    async with _Identifier(settings, progress) as identifier:
        for key, target in enumerate(targets):
            identifier.submit(key, target)
    return identifier.results()


async def scan(
    cidrs: Iterable[str], settings: ScanSettings, progress: Progress | None = None
) -> list[FoundDevice]:
    """Probe every address of the ranges and identify each responder as soon as it is found (the two
    stages overlap: the sweep waits on the kernel, the reads on the devices). In address order; the
    last progress report is `("identify", n, n)`."""
    hosts = addresses(cidrs)
    total = len(hosts)
    probed = 0
    async with _Identifier(settings, progress) as identifier:

        def done(index: int, port: int | None) -> None:
            nonlocal probed
            probed += 1
            if port is not None:
                identifier.submit(index, Target(hosts[index], port))
            if progress is not None:
                progress("probe", probed, total)

        await sweep(hosts, PROBE_PORTS, settings.concurrency, settings.probe_timeout_s, done)
    return identifier.results()
