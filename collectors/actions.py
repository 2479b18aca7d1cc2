"""Act on a miner: reboot, locate light on/off, sleep/wake (stop and resume hashing), power target.

The entry points (`reboot`, `locate`, `sleep`, `wake`, `power_target`, `read_locate`) each take a target
(the `Identity` identification or the poller cached), the credentials by profile, and explicit
deadlines, and return an `ActionResult` or raise from the collectors' error tree:

    MinerError
    ├── UnsupportedActionError   this firmware cannot do the action (or not over a protocol we speak);
    │                            raised before anything is sent
    ├── ActionRefusedError       the firmware could, but not as asked (no power profile under the target)
    ├── MinerConnectionError     (MinerTimeoutError phase="action" when the whole action overran)
    ├── MinerProtocolError       the answer was not one the firmware gives
    ├── MinerAPIError            the device said STATUS=E (a wrong session, an unknown option)
    └── MinerAuthError           the credentials were rejected (web login, Whatsminer v2 key or token,
                                 Braiins OS gRPC login)

What each firmware supports is declared per dialect in `collectors/drivers/control.py` (one class per
dialect, one method per action) and shown by `capabilities`; docs/actions.md has the table. Credentials
are never logged and never appear in a result or an exception (WebCredentials' repr names the profile).
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Awaitable
from dataclasses import dataclass, field
from typing import TypeVar

from collectors.connection import Limits, Timeouts
from collectors.drivers.control import (
    Action,
    ActionCredentials,
    ActionRefusedError,
    Control,
    Link,
    Outcome,
    UnsupportedActionError,
    control_for,
)
from collectors.errors import MinerTimeoutError
from collectors.identify import Dialect, Identity
from collectors.web import WEB_PORT, WebSession

log = logging.getLogger(__name__)
T = TypeVar("T")

__all__ = [
    "Action",
    "ActionCredentials",
    "ActionRefusedError",
    "ActionResult",
    "ActionTimeouts",
    "Capabilities",
    "UnsupportedActionError",
    "capabilities",
    "locate",
    "power_target",
    "read_locate",
    "reboot",
    "refusal",
    "sleep",
    "wake",
]


@dataclass(frozen=True, slots=True)
class ActionTimeouts:
    """Deadlines in seconds: `connect` per TCP connect, `read` per reply, `action` for the whole action
    (every request it makes: a session, a configuration read, the command)."""

    connect: float
    read: float
    action: float

    def __post_init__(self) -> None:
        for name, value in (("connect", self.connect), ("read", self.read), ("action", self.action)):
            if not value > 0:
                raise ValueError(f"ActionTimeouts.{name} must be positive")


@dataclass(frozen=True, slots=True)
class ActionResult:
    """What the device confirmed. `locate` is the light's state after a locate action (None when the
    action does not touch it); `power_target_w` the target the firmware now runs at (a LuxOS profile's
    watts may sit under the one asked for); `detail` the device's own words."""

    host: str
    dialect: Dialect
    action: Action
    detail: str
    locate: bool | None = None
    power_target_w: float | None = None


@dataclass(frozen=True, slots=True)
class Capabilities:
    """What a target's firmware can do, and why not where it cannot."""

    dialect: Dialect
    firmware_vendor: str | None
    supported: frozenset[Action]
    unsupported: dict[Action, str] = field(default_factory=dict)
    reads_locate: bool = False


def capabilities(target: Identity) -> Capabilities:
    """The actions the target's firmware supports (no I/O)."""
    control = control_for(target)
    unsupported = {a: control.why_not(a) for a in Action if a not in control.supports}
    return Capabilities(
        dialect=target.dialect,
        firmware_vendor=target.firmware_vendor,
        supported=control.supports,
        unsupported=unsupported,
        reads_locate=control.reads_locate,
    )


def refusal(target: Identity, action: Action, credentials: ActionCredentials) -> str | None:
    """Why `action` would be refused up front on this target with these credentials (the firmware
    cannot do it, or the profile it needs is not configured); None when it would be attempted. No I/O:
    a plan uses it to leave such devices out before anything is sent."""
    control = control_for(target)
    if action not in control.supports:
        return control.why_not(action)
    return control.missing_credentials(credentials)


async def reboot(
    target: Identity, credentials: ActionCredentials, *, timeouts: ActionTimeouts, web_port: int = WEB_PORT
) -> ActionResult:
    """Restart the miner's controller; it is unreachable for a while afterwards."""
    return await _run(target, Action.REBOOT, credentials, timeouts, web_port, None)


async def locate(
    target: Identity,
    on: bool,
    credentials: ActionCredentials,
    *,
    timeouts: ActionTimeouts,
    web_port: int = WEB_PORT,
) -> ActionResult:
    """Blink (on=True) or stop blinking the miner's locate light."""
    action = Action.LOCATE_ON if on else Action.LOCATE_OFF
    return await _run(target, action, credentials, timeouts, web_port, None)


async def sleep(
    target: Identity, credentials: ActionCredentials, *, timeouts: ActionTimeouts, web_port: int = WEB_PORT
) -> ActionResult:
    """Stop hashing (the controller stays up and answers; the next poll reads `sleeping`)."""
    return await _run(target, Action.SLEEP, credentials, timeouts, web_port, None)


async def wake(
    target: Identity, credentials: ActionCredentials, *, timeouts: ActionTimeouts, web_port: int = WEB_PORT
) -> ActionResult:
    """Resume hashing after `sleep`."""
    return await _run(target, Action.WAKE, credentials, timeouts, web_port, None)


async def power_target(
    target: Identity,
    watts: float,
    credentials: ActionCredentials,
    *,
    timeouts: ActionTimeouts,
    web_port: int = WEB_PORT,
) -> ActionResult:
    """Run at no more than `watts` (the firmware's nearest setting at or under it)."""
    if not math.isfinite(watts) or watts <= 0:
        raise ValueError("power target must be a positive number of watts")
    return await _run(target, Action.POWER_TARGET, credentials, timeouts, web_port, watts)


async def read_locate(
    target: Identity, credentials: ActionCredentials, *, timeouts: ActionTimeouts, web_port: int = WEB_PORT
) -> bool:
    """Whether the locate light is on now, as the firmware reports it."""
    control = control_for(target)
    if not control.reads_locate:
        raise UnsupportedActionError(target.dialect, "read_locate", control.why_not_read())
    async with _session(timeouts) as session:
        link = _link(target, credentials, timeouts, web_port, session)
        return await _within(target, "read_locate", timeouts, control.read_locate(link))


async def _run(  # noqa: PLR0917
    target: Identity,
    action: Action,
    credentials: ActionCredentials,
    timeouts: ActionTimeouts,
    web_port: int,
    watts: float | None,
) -> ActionResult:
    control = control_for(target)
    why = refusal(target, action, credentials)
    if why is not None:
        raise UnsupportedActionError(target.dialect, action, why)
    log.info("%s: %s (%s)", target.host, action, target.dialect)
    async with _session(timeouts) as session:
        link = _link(target, credentials, timeouts, web_port, session)
        outcome = await _within(target, action, timeouts, _perform(control, action, link, watts))
    log.info("%s: %s done: %s", target.host, action, outcome.detail)
    return ActionResult(
        host=target.host,
        dialect=target.dialect,
        action=action,
        detail=outcome.detail,
        locate=outcome.locate,
        power_target_w=outcome.power_target_w,
    )


async def _perform(control: Control, action: Action, link: Link, watts: float | None) -> Outcome:
    """Call the control's method for the action (an explicit match: no name-based dispatch)."""
    match action:
        case Action.REBOOT:
            return await control.reboot(link)
        case Action.LOCATE_ON:
            return await control.locate(link, True)
        case Action.LOCATE_OFF:
            return await control.locate(link, False)
        case Action.SLEEP:
            return await control.sleep(link)
        case Action.WAKE:
            return await control.wake(link)
        case Action.POWER_TARGET:
            assert watts is not None
            return await control.power_target(link, watts)


async def _within(target: Identity, what: str, timeouts: ActionTimeouts, work: Awaitable[T]) -> T:
    try:
        async with asyncio.timeout(timeouts.action):
            return await work
    except TimeoutError as exc:
        raise MinerTimeoutError(
            f"{target.host}: {what} not done within {timeouts.action}s", phase="action"
        ) from exc


def _session(timeouts: ActionTimeouts) -> WebSession:
    return WebSession(connect_s=timeouts.connect, read_s=timeouts.read, max_connections=2)


def _link(
    target: Identity,
    credentials: ActionCredentials,
    timeouts: ActionTimeouts,
    web_port: int,
    session: WebSession,
) -> Link:
    return Link(
        host=target.host,
        api_port=target.api_port,
        web_port=web_port,
        timeouts=Timeouts(connect=timeouts.connect, read=timeouts.read, device=timeouts.action),
        limits=Limits(),
        web=session.device(credentials.antminer, credentials.vnish),
        whatsminer=credentials.whatsminer,
        braiins=credentials.braiins,
    )
