"""The top-level API the poller, scanner and CLI use: identify a device, read it into one Sample.

Contract:
- `read_device` NEVER raises for device trouble. An unreachable device is a Sample with state
  `unreachable`, a broken one `error`, each with a specific `errors` entry (`connection_refused`,
  `connection_reset`, `connection_failed`, `timeout`, `protocol_error` naming the bytes' start (junk,
  an HTTP answer, bytes that are not UTF-8, nesting past framing.MAX_DEPTH, a reply cut off before its
  end), `empty_reply` (closed without a byte, or only the NUL), `reply_too_large`, `api_error:<code>`
  with the device's code (`api_error:45`: access denied), `unknown_device`). It only raises on programming
  errors and on cancellation.
- A device whose replies name no brand (identify.py: positive evidence only) is still read by the closest
  dialect, with `make` None, its reported type string as `model`, and an `unknown_make` errors entry.
- The whole call, identification included, ends within `timeouts.device` seconds (plus scheduling).
- Every API socket is opened and closed inside the call; web connections live in the caller's
  WebSession pool (the caller owns and closes it).
- Units are the Sample's: TH/s, Celsius, watts, seconds, J/TH.
- `identify_device` raises MinerError subclasses: it is for the scanner, which wants the reason.
- Security posture (collectors.posture) rides along: `privileged` is asked once per identification,
  concurrently with the poll and only while the deadline leaves room (its answer is cached on the
  Identity), the web login reports whether it used the factory credentials, and the sample's `security`
  list is filled from those and from the firmware's build date and the advisory file. A posture check
  never fails a read and never writes to a device.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Coroutine
from dataclasses import dataclass, replace
from typing import Any

from pydantic import ValidationError

from collectors.client import CommandResults, MinerClient, WhatsminerV3Client, check_status, decode
from collectors.connection import Limits, Timeouts
from collectors.drivers import Driver, Reading, build_sample, driver_for
from collectors.drivers.control import bosminer_stopped
from collectors.errors import (
    MinerAPIError,
    MinerConnectionError,
    MinerConnectionRefusedError,
    MinerConnectionResetError,
    MinerError,
    MinerProtocolError,
    MinerTimeoutError,
)
from collectors.firmware import family_of
from collectors.framing import Reply
from collectors.grpc_client import GRPC_PORT
from collectors.identify import Dialect, Identity, canonical_model, classify, classify_v3
from collectors.models import branded_lookup
from collectors.pacing import paced
from collectors.posture import PRIVILEGED_COMMAND, PostureSettings, assess, privileged_open
from collectors.sample import DeviceError, Sample, SecurityFinding, State, utcnow
from collectors.web import DeviceWeb, SystemInfo, WebCredentials

V3_PORT = 4433
PROBE_COMMANDS = ("pools", "summary", "stats")
WEB_CGI_VENDORS = frozenset({"stock", "hiveon", "marafw", "mskminer", "asicseer", "ap"})
"""Antminer firmware that keeps Bitmain's digest-auth get_system_info.cgi."""


@dataclass(frozen=True, slots=True)
class DeviceReading:
    """One read: the Sample, and the Identity to cache for the next poll (None if never identified)."""

    sample: Sample
    identity: Identity | None


async def identify_device(
    host: str, port: int = 4028, *, timeouts: Timeouts, limits: Limits | None = None
) -> Identity:
    """Identify one device (version + devdetails, a summary/stats probe if needed, API v3 on 4433)."""
    identity, _ = await _identify(host, port, timeouts, limits or Limits())
    return identity


async def read_device(
    host: str,
    port: int = 4028,
    *,
    timeouts: Timeouts,
    limits: Limits | None = None,
    web: DeviceWeb | None = None,
    known: Identity | None = None,
    posture: PostureSettings | None = None,
    braiins: WebCredentials | None = None,
) -> DeviceReading:
    """Identify (unless `known`), poll with the dialect's commands, and return one Sample; never raises
    for device trouble (see the module docstring).

    `web` is the device's web side (stock Antminer CGI, VNish web API; None: no web calls). It is used
    while the serial is not known (the returned Identity carries it), concurrently with the poll's
    commands so it adds no round trips to the read. The caller owns its session.
    When a reply contradicts `known` (firmware or model changed), the device is identified again.
    `posture` sets the security checks (default: PostureSettings()).
    `braiins` is the Braiins OS gRPC login: when a known Braiins OS device's 4028 API refuses (bosminer,
    which serves it, is stopped: an operator's `sleep`), one gRPC read tells `sleeping` from down.
    """
    limits = limits or Limits()
    posture = posture or PostureSettings()
    started = time.monotonic()
    identity = known
    try:
        async with asyncio.timeout(timeouts.device):
            result = await _read(host, port, identity, timeouts, limits, web, started, posture, braiins)
            if result is None:  # the cached identity is stale: identify afresh
                identity = None
                result = await _read(host, port, None, timeouts, limits, web, started, posture, braiins)
            assert result is not None
            identity = result.identity
            return result
    except TimeoutError:
        error = MinerTimeoutError(
            f"{host}:{port}: no complete reading within {timeouts.device}s", phase="device"
        )
        return DeviceReading(_failure_from(host, port, identity, error), identity)
    except MinerError as exc:
        return DeviceReading(_failure_from(host, port, identity, exc), identity)


async def _read(  # noqa: PLR0917
    host: str,
    port: int,
    known: Identity | None,
    timeouts: Timeouts,
    limits: Limits,
    web: DeviceWeb | None,
    started: float,
    posture: PostureSettings,
    braiins: WebCredentials | None = None,
) -> DeviceReading | None:
    """One identification (unless `known`) and poll; None when the replies contradict `known`."""
    identity = known
    seed: dict[str, Reply] = {}
    if identity is None:
        identity, seed = await _identify(host, port, timeouts, limits)
    driver = driver_for(identity.dialect)
    if driver is None:
        return DeviceReading(
            _failure(host, port, identity, State.ERROR, "unknown_device", "no known miner API answered"),
            identity,
        )
    web_call = None
    if identity.serial is None:
        web_call = _web_call(identity, host, web, timeouts.device - (time.monotonic() - started))
    web_task = asyncio.create_task(web_call) if web_call is not None else None
    privileged_task = None
    if known is None and posture.check_api_write and identity.dialect is not Dialect.WHATSMINER_V3:
        privileged_task = asyncio.create_task(_privileged(identity, timeouts, limits))
    try:
        replies, failures = await _poll(driver, identity, seed, timeouts, limits)
        if not any(name in replies for name in driver.required):
            if await _bosminer_stopped(identity, failures, timeouts, braiins):
                reading = Reading(sleeping=True, hashrate_ths=0.0)
                return DeviceReading(await paced(build_sample, host, port, identity, reading, None), identity)
            return DeviceReading(_from_failures(host, port, identity, failures), identity)
        spec = branded_lookup(identity.model, identity.make)
        web_error: DeviceError | None = None
        try:
            reading = await paced(driver.parse, identity, replies, spec)
            if known is not None and _contradicts(known, reading):
                return None
            if web_task is not None and reading.serial is None:
                outcome = await _web_outcome(web_task, host, timeouts, started)
                web_error = _add_web_identity(reading, outcome)
                if isinstance(outcome, SystemInfo):
                    identity = replace(identity, web_default_login=outcome.factory_login)
            if privileged_task is not None:
                identity = replace(
                    identity, api_write_open=await _privileged_outcome(privileged_task, timeouts, started)
                )
            sample = await paced(build_sample, host, port, identity, reading, spec)
        except ValidationError as exc:
            # A value the wire conversions let through that the Sample contract refuses: this device's
            # reading is an error sample naming the field, the poll of the others goes on.
            message = _invalid_reading(exc)
            return DeviceReading(
                _failure(host, port, identity, State.ERROR, "invalid_reading", message), identity
            )
        added = [e for e in (web_error, _unknown_make(identity, sample)) if e is not None]
        update: dict[str, object] = {"security": _findings(identity, sample, posture)}
        if added:
            update["errors"] = [*sample.errors, *added]
        sample = sample.model_copy(update=update)
        return DeviceReading(sample, _remember(identity.with_model(reading.wire_model), sample))
    finally:
        for task in (web_task, privileged_task):
            if task is not None and not task.done():
                # Not needed (the read failed, the API gave the serial, no time was left): stop it and
                # let it unwind, without swallowing a cancellation of this read itself.
                task.cancel()
                await asyncio.wait({task})


async def _bosminer_stopped(
    identity: Identity, failures: dict[str, MinerError], timeouts: Timeouts, braiins: WebCredentials | None
) -> bool:
    """A Braiins OS device whose 4028 API refused every command, asked over gRPC whether bosminer is
    stopped (only then, and only with a login: a cheap check on an uncommon path)."""
    if identity.dialect is not Dialect.BRAIINS or braiins is None or not failures:
        return False
    if not all(
        isinstance(e, MinerConnectionRefusedError | MinerConnectionResetError) for e in failures.values()
    ):
        return False
    try:
        return await bosminer_stopped(identity.host, GRPC_PORT, timeouts, braiins)
    except MinerError:
        return False


async def _privileged(identity: Identity, timeouts: Timeouts, limits: Limits) -> bool | None:
    """Ask the API `privileged` (a read-only query); None when the answer says nothing either way."""
    client = MinerClient(identity.host, identity.api_port, timeouts, limits)
    try:
        return privileged_open(await client.raw(PRIVILEGED_COMMAND))
    except MinerError:
        return None


async def _privileged_outcome(
    task: asyncio.Task[bool | None], timeouts: Timeouts, started: float
) -> bool | None:
    """The `privileged` answer, waited for only while the device deadline leaves room (unknown if not)."""
    return task.result() if await _done_in_time(task, timeouts, started) else None


async def _done_in_time(task: asyncio.Task[Any], timeouts: Timeouts, started: float) -> bool:
    """Wait for a side task of a read (the web fetch, the `privileged` query) only while the device
    deadline, less a margin for building the sample, leaves room; True when it finished."""
    margin = min(WEB_MARGIN_S, 0.1 * timeouts.device)
    remaining = timeouts.device - (time.monotonic() - started) - margin
    done, _ = await asyncio.wait({task}, timeout=max(0.0, remaining))
    return bool(done)


def _findings(identity: Identity, sample: Sample, posture: PostureSettings) -> list[SecurityFinding]:
    """The sample's security findings from the identity's cached posture and its firmware."""
    return assess(
        make=sample.make,
        firmware_vendor=sample.firmware_vendor,
        firmware_version=sample.firmware_version,
        api_write_open=identity.api_write_open,
        default_login=identity.web_default_login,
        settings=posture,
        today=utcnow().date(),
    )


def _unknown_make(identity: Identity, sample: Sample) -> DeviceError | None:
    """The `unknown_make` entry for a device read without any reply naming its brand, else None."""
    if identity.make is not None:
        return None
    shown = repr(sample.model) if sample.model else "no type string"
    return DeviceError(
        code="unknown_make",
        message=(
            f"no reply names a known brand or firmware ({shown}); read with the {identity.dialect} "
            "dialect, counted under an unknown maker"
        ),
    )


def _contradicts(known: Identity, reading: Reading) -> bool:
    """True when a poll's replies name another firmware or model than the cached identity."""
    for fresh, cached in (
        (reading.firmware_vendor, known.firmware_vendor),
        (reading.firmware_version, known.firmware_version),
    ):
        if fresh and cached and fresh != cached:
            return True
    if reading.wire_model and known.model:
        return canonical_model(reading.wire_model, known.make) != known.model
    return False


def _remember(identity: Identity, sample: Sample) -> Identity:
    """The identity to cache: what this read learned (firmware version, serial, MAC, hostname) added,
    so later polls need neither the web CGI nor a second look."""
    return replace(
        identity,
        firmware_version=identity.firmware_version or sample.firmware_version,
        serial=identity.serial or sample.serial,
        mac=identity.mac or sample.mac,
        hostname=identity.hostname or sample.hostname,
    )


async def _identify(
    host: str, port: int, timeouts: Timeouts, limits: Limits
) -> tuple[Identity, dict[str, Reply]]:
    if port == V3_PORT:
        info = await WhatsminerV3Client(host, port, timeouts, limits).command("get.device.info")
        return classify_v3(info, host=host, port=port), {"get.device.info": info}
    client = MinerClient(host, port, timeouts, limits)
    stats_first = await _identify_from_stats(client, host, port)
    if stats_first is not None:
        return stats_first
    version, devdetails = await asyncio.gather(
        client.raw("version"), client.raw("devdetails"), return_exceptions=True
    )
    for outcome in (version, devdetails):
        if isinstance(outcome, BaseException) and not isinstance(outcome, MinerError):
            raise outcome
    version_reply = version if isinstance(version, dict) else None
    devdetails_reply = devdetails if isinstance(devdetails, dict) else None
    if version_reply is None and devdetails_reply is None:
        error = version if isinstance(version, MinerError) else devdetails
        assert isinstance(error, MinerError)
        if isinstance(error, MinerConnectionRefusedError | MinerTimeoutError) and port != V3_PORT:
            v3 = WhatsminerV3Client(host, V3_PORT, timeouts, limits)
            try:
                info = await v3.command("get.device.info")
            except MinerError:
                raise error from None
            return classify_v3(info, host=host, port=V3_PORT), {"get.device.info": info}
        raise error
    identity = classify(version_reply, devdetails_reply, host=host, port=port)
    seed: dict[str, Reply] = {}
    if devdetails_reply is not None and "DEVDETAILS" in devdetails_reply:
        seed["devdetails"] = devdetails_reply
    if identity.dialect is Dialect.UNKNOWN or identity.model is None:
        results = await client.commands(PROBE_COMMANDS)
        probe = {name: r for name, r in results.items() if isinstance(r, dict)}
        seed.update(probe)
        better = classify(version_reply, devdetails_reply, probe, host=host, port=port)
        if identity.dialect is Dialect.UNKNOWN or better.dialect == identity.dialect:
            identity = better
        if identity.dialect is Dialect.UNKNOWN and not probe:
            _raise_refusal(version_reply, devdetails_reply, results)
    return identity, seed


def _raise_refusal(version: Reply | None, devdetails: Reply | None, probes: CommandResults) -> None:
    """Raise the device's own error when it answered every identifying command with STATUS=E (Code 45,
    access denied, on a host its api-allow/api-groups do not trust): an operator must see that refusal,
    not "no known miner API answered"."""
    for name, reply in (("version", version), ("devdetails", devdetails)):
        if reply is not None:
            check_status(name, reply)  # raises MinerAPIError on STATUS=E/F
    for outcome in probes.values():
        if isinstance(outcome, MinerAPIError):
            raise outcome


_NOT_STOCK_API = (
    b"BOSMINER",
    b"BOSER",
    b"LUXMINER",
    b"BTMINER",
    b"BITMICRO",
    b"AVALON",
    b"KAONSU",
    b"BDMINER",
    b"GCMINER",
    b"FLUXOS",
)


async def _identify_from_stats(
    client: MinerClient, host: str, port: int
) -> tuple[Identity, dict[str, Reply]] | None:
    """Identify an Antminer-API device from its `stats` reply, which the poll needs anyway.

    `stats[0]` is the same block `version` sends (BMMiner/Miner/CompileTime/Type), and VNish's Type
    names its firmware, so for the Antminer family one reply identifies the device and seeds the poll:
    one connection instead of three (version, devdetails, then stats). Anything else (an error, another
    firmware's markers) returns None and identification takes the version/devdetails route; a
    connection failure is raised at once, since the other route would fail the same way.
    """
    try:
        data = await client.fetch("stats")
        stats = check_status("stats", await decode(data))
    except (MinerAPIError, MinerProtocolError):
        return None
    except MinerConnectionError as exc:
        if isinstance(exc, MinerConnectionRefusedError | MinerTimeoutError):
            return None  # let the version route try API v3 on 4433
        raise
    blocks = stats.get("STATS")
    if not isinstance(blocks, list) or not blocks or not isinstance(blocks[0], dict):
        return None
    text = data.upper()  # the bytes as sent: the markers may sit in any key or value
    if any(marker in text for marker in _NOT_STOCK_API):
        return None
    identity = classify({"VERSION": [blocks[0]]}, None, {"stats": stats}, host=host, port=port)
    if identity.dialect is not Dialect.ANTMINER or branded_lookup(identity.model, identity.make) is None:
        # An unknown Type ("Antminer D3 Blissz v2.06 beta") or no brand named: ask version as well.
        return None
    return identity, {"stats": stats}


async def _poll(
    driver: Driver, identity: Identity, seed: dict[str, Reply], timeouts: Timeouts, limits: Limits
) -> tuple[dict[str, Reply], dict[str, MinerError]]:
    """Run the driver's commands (reusing what identification already read)."""
    results: CommandResults
    if identity.dialect is Dialect.WHATSMINER_V3:
        v3 = WhatsminerV3Client(identity.host, identity.api_port, timeouts, limits)
        wanted = [name for name in driver.joinable if name not in seed]
        requests = tuple((n.split(":")[0], n.split(":")[1] if ":" in n else None) for n in wanted)
        results = await v3.commands(requests)
    else:
        client = MinerClient(identity.host, identity.api_port, timeouts, limits)
        joinable = tuple(n for n in driver.joinable if n not in seed)
        separate = tuple(n for n in driver.separate if n not in seed)
        # Bitmain's own bmminer ("cgminer 1.0.0") refuses joined commands: do not spend a connection
        # learning that again every cycle.
        multi = driver.multi and not (
            identity.dialect is Dialect.ANTMINER and identity.firmware_vendor == "stock"
        )
        results = await client.commands(joinable, separate, multi=multi)
    replies = dict(seed)
    failures: dict[str, MinerError] = {}
    for name, outcome in results.items():
        if isinstance(outcome, MinerError):
            failures[name] = outcome
        else:
            replies[name] = outcome
    return replies, failures


def _web_call(
    identity: Identity, host: str, web: DeviceWeb | None, remaining: float
) -> Coroutine[None, None, SystemInfo | MinerError] | None:
    """The web fetch this device needs for its serial and MAC, or None (not an Antminer, no profile for
    its firmware, no time left)."""
    if web is None or remaining <= 0 or identity.make != "Antminer":
        return None
    family = family_of(identity.make, identity.firmware_vendor)
    factory = family.factory_login if family is not None else None
    if identity.firmware_vendor == "vnish" and web.has_vnish:
        return _outcome(web.vnish_info(host, timeout=remaining, factory=factory))
    if identity.firmware_vendor in WEB_CGI_VENDORS and web.has_antminer:
        return _outcome(web.antminer_system_info(host, timeout=remaining, factory=factory))
    return None


async def _outcome(fetch: Awaitable[SystemInfo]) -> SystemInfo | MinerError:
    """The fetch's result, or the device error it raised (a web failure never fails the read)."""
    try:
        return await fetch
    except MinerError as exc:
        return exc


WEB_MARGIN_S = 0.25
"""How long before the device deadline the reader stops waiting for the web fetch (at most 10% of it)."""


async def _web_outcome(
    web_task: asyncio.Task[SystemInfo | MinerError], host: str, timeouts: Timeouts, started: float
) -> SystemInfo | MinerError:
    """The web fetch's outcome, waited for only while the device deadline leaves room for it.

    The API has answered by now: a slow or hung web UI must cost the sample its serial number, not make
    a hashing miner look unreachable (the read would otherwise be cancelled whole at the deadline).
    The caller cancels the task if it is still running.
    """
    if await _done_in_time(web_task, timeouts, started):
        return web_task.result()
    return MinerTimeoutError(f"{host}: web identity not read within the device deadline", phase="web")


def _add_web_identity(reading: Reading, outcome: SystemInfo | MinerError) -> DeviceError | None:
    """Put what the web side said into the reading (its serial, MAC and hostname win over the API's);
    a failed fetch is returned as the error to add to the sample, which still stands."""
    if isinstance(outcome, MinerError):
        return DeviceError(code=f"web_{outcome.code}", message=_message(outcome))
    reading.serial = outcome.serial or reading.serial
    reading.mac = outcome.mac or reading.mac
    reading.hostname = outcome.hostname or reading.hostname
    return None


def _from_failures(host: str, port: int, identity: Identity, failures: dict[str, MinerError]) -> Sample:
    errors = [_device_error(exc) for exc in failures.values()]
    unreachable = bool(failures) and all(isinstance(e, MinerConnectionError) for e in failures.values())
    state = State.UNREACHABLE if unreachable else State.ERROR
    if not errors:
        errors = [DeviceError(code="no_data", message="the device answered none of the polled commands")]
    return _sample_for(host, port, identity, state, errors)


def _invalid_reading(exc: ValidationError) -> str:
    fields = "; ".join(
        f"{'.'.join(str(part) for part in error['loc'])}: {error['msg']}" for error in exc.errors()
    )
    return f"the replies hold values a sample cannot carry ({fields})"


def _message(exc: MinerError) -> str:
    """The error's text for a DeviceError: a NUL the device put in its message shows as `\\x00`."""
    return str(exc).replace("\x00", "\\x00")


def _device_error(exc: MinerError) -> DeviceError:
    if isinstance(exc, MinerAPIError):
        return DeviceError(code=f"api_error:{exc.status_code}", message=_message(exc))
    return DeviceError(code=exc.code, message=_message(exc))


def _failure_from(host: str, port: int, identity: Identity | None, exc: MinerError) -> Sample:
    state = State.UNREACHABLE if isinstance(exc, MinerConnectionError) else State.ERROR
    return _sample_for(host, port, identity, state, [_device_error(exc)])


def _failure(  # noqa: PLR0917
    host: str, port: int, identity: Identity | None, state: State, code: str, message: str
) -> Sample:
    return _sample_for(host, port, identity, state, [DeviceError(code=code, message=message)])


def _sample_for(
    host: str, port: int, identity: Identity | None, state: State, errors: list[DeviceError]
) -> Sample:
    return Sample(
        ip=host,
        port=port,
        make=identity.make if identity else None,
        model=identity.model if identity else None,
        firmware_vendor=identity.firmware_vendor if identity else None,
        firmware_version=identity.firmware_version if identity else None,
        state=state,
        errors=errors,
        mac=identity.mac if identity else None,
        serial=identity.serial if identity else None,
        hostname=identity.hostname if identity else None,
    )
