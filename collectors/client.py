"""Commands over the CGMiner-style API (port 4028) and the Whatsminer API v3 (port 4433).

`MinerClient.command` sends one command and returns its decoded reply, raising MinerAPIError when the
device says STATUS=E/F (cgminer lists `[{"STATUS":"E",...}]` and Whatsminer's bare string `"STATUS":"E"`
alike). `MinerClient.commands` reads several commands: one `a+b+c` multi-command where the firmware
allows it, and one concurrent connection per command where it does not (X19 stock refuses the joined form,
old btminer answers E 24 "Missing JSON 'command'"), or for commands that cannot be joined (Whatsminer
`get_*`/`status`). Its result maps each command to its reply or to the MinerError it raised, so one refused
command never hides the others.

Nothing here holds a socket between calls; each request opens and closes its own connection.

Decoding never holds the event loop for long (`decode`): a reply of at most INLINE_REPAIR_BYTES is
decoded in place, a valid one of at most INLINE_JSON_BYTES too (json's C parser only), and anything else
(a big reply that needs the Python repair pass, or any bigger reply) in one worker thread. The thresholds
and the stalls they allow are measured by bench/bench_loop_stall.py. In-place decodes are paced
(collectors/pacing.py): a burst of replies is decoded a few milliseconds' worth per loop turn.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from collectors.connection import Limits, Timeouts, exchange, exchange_v3
from collectors.errors import MinerAPIError, MinerConnectionResetError, MinerError, MinerProtocolError
from collectors.framing import Reply, decode_reply, decode_valid, encode_request, encode_v3_frame
from collectors.pacing import paced
from collectors.wire import status_record

CommandResults = dict[str, Reply | MinerError]
"""Per command: its decoded reply, or the error that command alone raised."""

_ERROR_LETTERS = frozenset({"E", "F"})

INLINE_REPAIR_BYTES = 16 * 1024
"""Replies up to this size are decoded on the event loop whatever they need: the Python repair pass
runs at about 5 MB/s, so at most ~3 ms here (bench/bench_loop_stall.py prints the figures)."""
INLINE_JSON_BYTES = 64 * 1024
"""Valid replies up to this size are parsed on the event loop by json's C parser (about 60 MB/s: ~1 ms);
every real capture is smaller. Bigger replies, and replies over INLINE_REPAIR_BYTES that need repair,
are decoded in the decoder thread."""


@cache
def _decoder() -> ThreadPoolExecutor:
    """The one thread that decodes big replies. One, not a pool: decoding holds the GIL, so more threads
    would not decode faster, and each would compete with the event loop for it (the loop waits a switch
    interval, 5 ms, per thread holding the GIL). Daemon-like: idle between replies, never joined."""
    return ThreadPoolExecutor(max_workers=1, thread_name_prefix="fleetmon-decode")


async def decode(data: bytes) -> Reply:
    """`decode_reply`, without holding the event loop for more than a few milliseconds whatever the bytes.

    Small replies are decoded in place; big ones in the decoder thread (see the module docstring). The
    cost is linear in the size (framing's contract), and a read cancelled at its deadline drops its
    queued decode, so one device's junk never delays another device's reading beyond that.
    """
    size = len(data)
    if size <= INLINE_REPAIR_BYTES:
        return await paced(decode_reply, data)
    if size <= INLINE_JSON_BYTES:
        value = await paced(decode_valid, data)
        if value is not None:
            return value
    return await asyncio.get_running_loop().run_in_executor(_decoder(), decode_reply, data)


def check_status(command: str, reply: Reply) -> Reply:
    """Return the reply, or raise MinerAPIError when its STATUS says E or F."""
    status = reply.get("STATUS")
    record = status_record(reply)
    if record is not None:
        letter, code, msg = record.get("STATUS"), record.get("Code"), record.get("Msg")
    elif isinstance(status, str):  # Whatsminer get_*/status replies
        letter, code, msg = status, reply.get("Code"), reply.get("Msg")
    else:
        return reply
    if isinstance(letter, str) and letter.upper() in _ERROR_LETTERS:
        raise MinerAPIError(command, code if isinstance(code, int) else None, str(msg or ""))
    return reply


@dataclass(frozen=True, slots=True)
class MinerClient:
    """Client for one device's port-4028 API; cheap to create, holds no connection."""

    host: str
    port: int
    timeouts: Timeouts
    limits: Limits = field(default_factory=Limits)

    async def fetch(self, command: str, parameter: str | None = None) -> bytes:
        """Send one request and return the reply's bytes as they came (NUL excluded), undecoded."""
        return await exchange(
            self.host,
            self.port,
            encode_request(command, parameter),
            timeouts=self.timeouts,
            limits=self.limits,
        )

    async def send(self, payload: bytes) -> bytes:
        """Send request bytes made elsewhere (Whatsminer's encrypted writes); return the reply's bytes."""
        return await exchange(self.host, self.port, payload, timeouts=self.timeouts, limits=self.limits)

    async def raw(self, command: str, parameter: str | None = None) -> Reply:
        """Send one request and decode the reply without checking its STATUS."""
        return await decode(await self.fetch(command, parameter))

    async def command(self, command: str, parameter: str | None = None) -> Reply:
        """One command; raises MinerAPIError on STATUS=E, MinerConnectionError/MinerProtocolError else."""
        return check_status(command, await self.raw(command, parameter))

    async def commands(
        self, joinable: tuple[str, ...], separate: tuple[str, ...] = (), *, multi: bool = True
    ) -> CommandResults:
        """Read `joinable` as one multi-command (falling back to singles) and `separate` one by one.

        Connection errors on the multi-command are not retried command by command: a device that is down
        is down, and retrying would multiply the time spent on it.
        """
        results: CommandResults = {}
        singles: list[str] = list(separate)
        if multi and len(joinable) > 1:
            try:
                reply = await self.raw("+".join(joinable))
            except (MinerProtocolError, MinerConnectionResetError):
                # Some firmware answers a joined command with junk or just hangs up: ask one by one.
                singles.extend(joinable)
            else:
                split = _split_multi(joinable, reply)
                if split is None:
                    singles.extend(joinable)
                else:
                    results.update(split)
        else:
            singles.extend(joinable)
        if len(singles) == 1:  # no task to spawn for one connection
            try:
                results[singles[0]] = await self.command(singles[0])
            except MinerError as exc:
                results[singles[0]] = exc
        elif singles:
            outcomes = await asyncio.gather(*(self.command(name) for name in singles), return_exceptions=True)
            for name, outcome in zip(singles, outcomes, strict=True):
                if isinstance(outcome, MinerError | dict):
                    results[name] = outcome
                elif isinstance(outcome, BaseException):
                    raise outcome
        return results


def _split_multi(joinable: tuple[str, ...], reply: Reply) -> CommandResults | None:
    """Cut a multi-command reply into its members; None when the firmware refused the joined form."""
    if not any(name in reply for name in joinable):
        return None  # a top-level STATUS=E (X19 "Invalid command", btminer E 24) or a single reply
    results: CommandResults = {}
    for name in joinable:
        member = reply.get(name)
        if isinstance(member, list) and member and isinstance(member[0], dict):
            member = member[0]
        if not isinstance(member, dict):
            results[name] = MinerProtocolError(f"multi-command reply lacks a usable {name!r} part")
            continue
        try:
            results[name] = check_status(name, member)
        except MinerAPIError as exc:
            results[name] = exc
    return results


@dataclass(frozen=True, slots=True)
class WhatsminerV3Client:
    """Client for the Whatsminer API v3 (TCP 4433, length-prefixed JSON)."""

    host: str
    port: int
    timeouts: Timeouts
    limits: Limits = field(default_factory=Limits)

    async def command(self, cmd: str, param: Any = None) -> Reply:
        """Send `{"cmd":..., "param":...}`; return the reply, MinerAPIError when `code` is not 0."""
        message: dict[str, Any] = {"cmd": cmd}
        if param is not None:
            message["param"] = param
        return await self.send(message)

    async def send(self, message: dict[str, Any]) -> Reply:
        """Send a whole request object (a signed `set.*` one); the reply as `command` returns it."""
        cmd = str(message.get("cmd", ""))
        data = await exchange_v3(
            self.host, self.port, encode_v3_frame(message), timeouts=self.timeouts, limits=self.limits
        )
        reply = await decode(data)
        code = reply.get("code")
        if code not in (0, None):
            msg = reply.get("msg")
            raise MinerAPIError(cmd, code if isinstance(code, int) else None, str(msg or ""))
        return reply

    async def commands(self, requests: tuple[tuple[str, str | None], ...]) -> CommandResults:
        """Several v3 commands concurrently, keyed `cmd` or `cmd:param`."""
        keys = [cmd if param is None else f"{cmd}:{param}" for cmd, param in requests]
        outcomes = await asyncio.gather(
            *(self.command(cmd, param) for cmd, param in requests), return_exceptions=True
        )
        results: CommandResults = {}
        for key, outcome in zip(keys, outcomes, strict=True):
            if isinstance(outcome, MinerError | dict):
                results[key] = outcome
            elif isinstance(outcome, BaseException):
                raise outcome
        return results
