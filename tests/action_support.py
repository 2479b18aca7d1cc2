"""What the device-level action tests share: their deadlines and one simulated device with what the
collectors know of it (tests/test_actions_dialects.py, _whatsminer.py, _braiins.py)."""

from __future__ import annotations

from dataclasses import dataclass

from collectors.actions import ActionCredentials, ActionTimeouts, locate, read_locate
from collectors.connection import Timeouts
from collectors.identify import Identity
from collectors.reader import read_device
from collectors.sample import Sample
from collectors.simulator.device import SimDevice
from collectors.simulator.fleet import RunningFleet
from collectors.web import WebCredentials

ACT = ActionTimeouts(connect=1.0, read=2.0, action=4.0)
POLL = Timeouts(connect=1.0, read=2.0, device=4.0)
REBOOT_S = 1.0


@dataclass
class One:
    """One simulated device, its fleet, and its identity as the poller knows it."""

    fleet: RunningFleet
    dev: SimDevice
    identity: Identity
    braiins: WebCredentials | None = None  # the poll's Braiins login (tells a stopped bosminer from down)

    @property
    def host(self) -> str:
        return self.dev.ip

    async def poll(self, credentials: ActionCredentials | None = None) -> Sample:
        """The next poll of the device on its known identity (with `credentials`' Braiins login if given)."""
        braiins = credentials.braiins if credentials is not None else self.braiins
        reading = await read_device(self.dev.ip, timeouts=POLL, known=self.identity, braiins=braiins)
        return reading.sample


async def locate_on_then_off(one: One, credentials: ActionCredentials) -> None:
    """Light the locate LED and put it out: each answer, the simulated device and the firmware's own
    read-back agree (for dialects whose light can be read)."""
    for on in (True, False):
        result = await locate(one.identity, on, credentials, timeouts=ACT)
        assert result.locate is on and one.dev.locate is on
        assert await read_locate(one.identity, credentials, timeouts=ACT) is on
