"""A miner that hangs, refuses or answers garbage ends an action with a MinerError within its deadline.

The simulator's transport faults over real sockets, per dialect. Test addresses: 127.80.0.0/16 only.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time

import pytest
from pydantic import SecretStr

from collectors.actions import ActionCredentials, ActionResult, ActionTimeouts, locate, reboot, sleep
from collectors.connection import Timeouts
from collectors.errors import (
    MinerConnectionRefusedError,
    MinerError,
    MinerProtocolError,
    MinerTimeoutError,
)
from collectors.reader import identify_device
from collectors.simulator.device import Fault
from collectors.simulator.fleet import simulated_fleet
from collectors.simulator.server import ListenMode, ServerTimings
from collectors.web import WebCredentials

CREDENTIALS = ActionCredentials(
    antminer=WebCredentials(profile="antminer-default", username="root", password=SecretStr("root")),
    vnish=WebCredentials(profile="vnish-default", username="admin", password=SecretStr("admin")),
)
ACT = ActionTimeouts(connect=0.5, read=0.5, action=1.5)
POLL = Timeouts(connect=1.0, read=2.0, device=4.0)
SLACK_S = 0.5
"""Scheduling allowance over the action deadline on a shared 2-core machine."""

MIXES = {"antminer": "127.80.10.0/29", "vnish": "127.80.10.8/29", "luxos": "127.80.10.16/29"}
MIXES["avalon"] = "127.80.10.24/29"


@pytest.mark.parametrize("mix", sorted(MIXES))
@pytest.mark.parametrize(
    ("fault", "expected"),
    [(Fault.HANG, MinerTimeoutError), (Fault.GARBAGE, MinerProtocolError), (Fault.SLOW_DRIP, MinerError)],
)
async def test_a_faulty_miner_ends_the_action_with_a_miner_error_in_time(
    mix: str, fault: Fault, expected: type[MinerError]
) -> None:
    async with simulated_fleet(
        1,
        mix=f"{mix}:1",
        subnet=MIXES[mix],
        seed=7,
        timings=ServerTimings(hold_s=30.0, drip_interval_s=0.3),
    ) as fleet:
        dev = fleet.devices[0].device
        identity = await identify_device(dev.ip, timeouts=POLL)
        dev.fault = fault
        started = time.monotonic()
        with pytest.raises(expected):
            await sleep(identity, CREDENTIALS, timeouts=ACT)
        assert time.monotonic() - started < ACT.action + SLACK_S


@pytest.mark.parametrize("mix", sorted(MIXES))
async def test_a_refusing_miner_ends_the_action_with_connection_refused(mix: str) -> None:
    async with simulated_fleet(
        1, mix=f"{mix}:1", subnet=MIXES[mix], seed=7, listen=ListenMode.PER_DEVICE
    ) as fleet:
        dev = fleet.devices[0].device
        identity = await identify_device(dev.ip, timeouts=POLL)
    # The fleet is gone: nothing listens on the address any more, so the kernel refuses.
    started = time.monotonic()
    with pytest.raises(MinerConnectionRefusedError):
        await reboot(identity, CREDENTIALS, timeouts=ACT)
    assert time.monotonic() - started < ACT.action + SLACK_S


async def test_one_hung_miner_does_not_stop_the_others_actions() -> None:
    async with simulated_fleet(
        4, mix="antminer:1,vnish:1,luxos:1,avalon:1", subnet="127.80.11.0/29", seed=7
    ) as fleet:
        devices = [item.device for item in fleet.devices]
        identities = [await identify_device(d.ip, timeouts=POLL) for d in devices]
        hung = devices[0]
        hung.fault = Fault.HANG
        outcomes = await asyncio.gather(
            *(locate(i, True, CREDENTIALS, timeouts=ACT) for i in identities), return_exceptions=True
        )
    assert isinstance(outcomes[0], MinerTimeoutError)
    assert all(isinstance(o, ActionResult) and o.locate is True for o in outcomes[1:])
    # The hung one may have lit its light before it stopped answering, as a real one may: only the
    # others' lights are known.
    assert all(d.locate for d in devices[1:])


async def test_the_action_deadline_covers_every_request_of_the_action() -> None:
    """LuxOS sleep is two API requests (the session, then curtail): a device that drips each answer
    within the per-read deadline must still be cut at the whole action's deadline."""
    async with simulated_fleet(1, mix="luxos:1", subnet="127.80.11.8/29", seed=7) as fleet:
        dev = fleet.devices[0].device
        identity = await identify_device(dev.ip, timeouts=POLL)
        dev.fault = Fault.SLOW_DRIP
        tight = dataclasses.replace(ACT, read=5.0, action=1.0)
        started = time.monotonic()
        with pytest.raises(MinerTimeoutError) as caught:
            await sleep(identity, CREDENTIALS, timeouts=tight)
        assert time.monotonic() - started < tight.action + SLACK_S
        assert caught.value.phase == "action"
