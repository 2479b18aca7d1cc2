"""Braiins OS+ (BOSer) actions over its gRPC API (port 50051) against the simulator, over real sockets.

Each action is checked by what the device then reports: the next poll (`sleeping` after Stop, `mining`
after Start), the light read back over gRPC, the power target in the next poll's numbers, a reboot
taking the device down and back. The simulator's gRPC server (h2, its own protobuf codec) and the
collectors' client (h2, collectors/protobuf.py) share no code. Test addresses: 127.45.0.0/16 only.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

import pytest
from action_support import ACT, POLL, REBOOT_S, One, locate_on_then_off
from pydantic import SecretStr

from collectors import protobuf
from collectors.actions import (
    Action,
    ActionCredentials,
    ActionTimeouts,
    UnsupportedActionError,
    capabilities,
    locate,
    power_target,
    read_locate,
    reboot,
    refusal,
    sleep,
    wake,
)
from collectors.errors import (
    MinerAuthError,
    MinerConnectionRefusedError,
    MinerError,
    MinerProtocolError,
    MinerTimeoutError,
)
from collectors.identify import Dialect, Identity
from collectors.reader import identify_device, read_device
from collectors.sample import State
from collectors.simulator.device import Fault
from collectors.simulator.fleet import simulated_fleet
from collectors.simulator.server import ListenMode, ServerTimings
from collectors.web import WebCredentials

FACTORY = WebCredentials(profile="braiins-factory", username="root", password=SecretStr(""))
CREDENTIALS = ActionCredentials(braiins=FACTORY)


@pytest.fixture(params=[ListenMode.PER_DEVICE, ListenMode.SHARED], ids=["per-device", "shared"])
async def one(request: pytest.FixtureRequest) -> AsyncIterator[One]:
    subnet = "127.45.1.0/29" if request.param is ListenMode.PER_DEVICE else "127.45.2.0/29"
    async with simulated_fleet(
        1,
        mix="braiins:1",
        subnet=subnet,
        seed=19,
        listen=request.param,
        timings=ServerTimings(reboot_s=REBOOT_S),
    ) as fleet:
        dev = fleet.devices[0].device
        identity = await identify_device(dev.ip, timeouts=POLL)
        assert identity.dialect is Dialect.BRAIINS
        yield One(fleet, dev, identity, braiins=FACTORY)


async def test_braiins_declares_every_action_and_reads_its_light() -> None:
    identity = Identity(host="127.45.9.1", api_port=4028, dialect=Dialect.BRAIINS)
    caps = capabilities(identity)
    assert caps.supported == frozenset(Action) and caps.reads_locate
    assert (
        refusal(identity, Action.SLEEP, ActionCredentials())
        == "no Braiins OS credential profile is configured"
    )
    assert refusal(identity, Action.SLEEP, CREDENTIALS) is None


async def test_stop_reads_sleeping_at_the_next_poll_and_start_mining(one: One) -> None:
    assert (await one.poll()).state is State.MINING
    result = await sleep(one.identity, CREDENTIALS, timeouts=ACT)
    assert result.action is Action.SLEEP and result.detail == "bosminer stopped"
    asleep = await one.poll()
    assert asleep.state is State.SLEEPING, asleep.errors
    assert not asleep.hashrate_ths
    again = await sleep(one.identity, CREDENTIALS, timeouts=ACT)
    assert again.detail == "bosminer was already stopped"
    await wake(one.identity, CREDENTIALS, timeouts=ACT)
    awake = await one.poll()
    assert awake.state is State.MINING, awake.errors
    assert awake.hashrate_ths


async def test_a_stopped_miner_polled_without_a_braiins_profile_reads_unreachable(one: One) -> None:
    await sleep(one.identity, CREDENTIALS, timeouts=ACT)
    # bosminer serves 4028: with it stopped and no gRPC login to ask, the poll cannot say more.
    assert (await one.poll(ActionCredentials())).state is State.UNREACHABLE


async def test_locate_reads_back_on_then_off(one: One) -> None:
    await locate_on_then_off(one, CREDENTIALS)


async def test_power_target_scales_the_next_poll(one: One) -> None:
    full = await one.poll()
    target = one.dev.spec.power_w * 0.7 + 0.6  # whole watts at or under it
    result = await power_target(one.identity, target, CREDENTIALS, timeouts=ACT)
    assert result.power_target_w == float(int(target))
    assert one.dev.power_limit_w == float(int(target))
    after = await one.poll()
    assert full.hashrate_ths and after.hashrate_ths
    assert after.hashrate_ths == pytest.approx(
        full.hashrate_ths * int(target) / one.dev.spec.power_w, rel=0.08
    )


async def test_reboot_takes_the_miner_down_then_it_returns_with_its_light_off(one: One) -> None:
    await locate(one.identity, True, CREDENTIALS, timeouts=ACT)
    await reboot(one.identity, CREDENTIALS, timeouts=ACT)
    assert (await one.poll()).state is State.UNREACHABLE
    for _ in range(50):
        await asyncio.sleep(0.1)
        sample = await one.poll()
        if sample.state is State.MINING:
            break
    assert sample.state is State.MINING
    assert await read_locate(one.identity, CREDENTIALS, timeouts=ACT) is False


async def test_wrong_password_is_an_auth_error_naming_the_profile_not_the_password(
    one: One, caplog: pytest.LogCaptureFixture
) -> None:
    secret = "not-the-password-4f1c"
    wrong = ActionCredentials(
        braiins=WebCredentials(profile="braiins-site-a", username="root", password=SecretStr(secret))
    )
    caplog.set_level(logging.DEBUG)
    with pytest.raises(MinerAuthError) as caught:
        await sleep(one.identity, wrong, timeouts=ACT)
    assert "braiins-site-a" in str(caught.value)
    assert secret not in str(caught.value) and secret not in repr(wrong)
    assert all(secret not in r.getMessage() for r in caplog.records)
    assert one.dev.state.value == "mining" and not one.dev.bosminer_stopped


async def test_a_changed_password_is_taken_and_the_factory_one_refused(one: One) -> None:
    one.dev.web_password = "s3cret"
    with pytest.raises(MinerAuthError):
        await locate(one.identity, True, CREDENTIALS, timeouts=ACT)
    changed = ActionCredentials(
        braiins=WebCredentials(profile="braiins-changed", username="root", password=SecretStr("s3cret"))
    )
    assert (await locate(one.identity, True, changed, timeouts=ACT)).locate is True


async def test_no_profile_is_refused_before_anything_is_sent(one: One) -> None:
    before = one.dev.requests
    with pytest.raises(UnsupportedActionError, match="credential profile"):
        await sleep(one.identity, ActionCredentials(), timeouts=ACT)
    assert one.dev.requests == before


async def test_firmware_without_grpc_fails_fast_naming_the_port() -> None:
    # Nothing listens on 127.45.9.2 (an old BOSminer has no 50051): the kernel refuses the connect.
    identity = Identity(host="127.45.9.2", api_port=4028, dialect=Dialect.BRAIINS)
    with pytest.raises(MinerConnectionRefusedError, match="50051"):
        await sleep(identity, CREDENTIALS, timeouts=ACT)


@pytest.mark.parametrize(
    ("fault", "expected"), [(Fault.HANG, MinerTimeoutError), (Fault.GARBAGE, MinerProtocolError)]
)
async def test_a_hung_or_garbage_grpc_peer_ends_the_action_with_a_miner_error(
    fault: Fault, expected: type[MinerError]
) -> None:
    async with simulated_fleet(1, mix="braiins:1", subnet="127.45.3.0/29", seed=19) as fleet:
        dev = fleet.devices[0].device
        identity = await identify_device(dev.ip, timeouts=POLL)
        dev.fault = fault
        with pytest.raises(expected):
            await sleep(identity, CREDENTIALS, timeouts=ActionTimeouts(connect=0.5, read=0.5, action=1.5))
        assert not dev.bosminer_stopped


async def test_an_action_on_a_device_in_a_fleet_touches_only_that_device() -> None:
    async with simulated_fleet(3, mix="braiins:3", subnet="127.45.4.0/29", seed=19) as fleet:
        devs = [f.device for f in fleet.devices]
        identity = await identify_device(devs[1].ip, timeouts=POLL)
        await sleep(identity, CREDENTIALS, timeouts=ACT)
        assert [d.bosminer_stopped for d in devs] == [False, True, False]
        for dev in (devs[0], devs[2]):
            other = await identify_device(dev.ip, timeouts=POLL)
            sample = (await read_device(dev.ip, timeouts=POLL, known=other, braiins=FACTORY)).sample
            assert sample.state is State.MINING


def test_protobuf_codec_round_trips_the_messages_we_send() -> None:
    login = protobuf.encode([(1, "root"), (2, "pässword")])
    assert protobuf.text(protobuf.decode(login), 2) == "pässword"
    request = protobuf.encode([(1, 2), (2, protobuf.encode([(1, 3250)]))])
    fields = protobuf.decode(request)
    assert protobuf.number(fields, 1) == 2
    assert protobuf.number(protobuf.message(fields, 2), 1) == 3250
    assert protobuf.number({}, 1) == 0  # proto3: absent is the default
    assert protobuf.varint(300) == b"\xac\x02"
    with pytest.raises(protobuf.ProtobufError):
        protobuf.decode(b"\x0a\x05ab")  # claims five bytes, has two
    with pytest.raises(protobuf.ProtobufError):
        protobuf.decode(b"\x08\xff\xff")  # a varint that never ends
