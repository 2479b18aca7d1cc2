"""Operator actions against the simulator over real sockets, per firmware dialect.

Each action is checked by what the next poll (or the device's own read-back) shows, the way an operator
would see it: sleep -> `sleeping`, wake -> `mining`, locate -> the light reads on, reboot -> unreachable,
then back. Test addresses: 127.80.0.0/16 only.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest
from action_support import ACT, POLL, REBOOT_S, One
from pydantic import SecretStr

from collectors.actions import (
    Action,
    ActionCredentials,
    ActionRefusedError,
    UnsupportedActionError,
    capabilities,
    locate,
    power_target,
    read_locate,
    reboot,
    sleep,
    wake,
)
from collectors.errors import MinerAuthError, MinerError
from collectors.identify import Dialect
from collectors.reader import identify_device, read_device
from collectors.sample import Sample, State
from collectors.simulator.fleet import simulated_fleet
from collectors.simulator.server import ListenMode, ServerTimings
from collectors.web import WebCredentials

ANTMINER = WebCredentials(profile="antminer-default", username="root", password=SecretStr("root"))
VNISH = WebCredentials(profile="vnish-default", username="admin", password=SecretStr("admin"))
CREDENTIALS = ActionCredentials(antminer=ANTMINER, vnish=VNISH)

# mix key -> (subnet, dialect expected from identification)
DIALECTS = {
    "antminer": ("127.80.1.0/29", Dialect.ANTMINER),
    "vnish": ("127.80.2.0/29", Dialect.ANTMINER),
    "luxos": ("127.80.3.0/29", Dialect.LUXOS),
    "avalon": ("127.80.4.0/29", Dialect.AVALON),
}


@pytest.fixture(params=sorted(DIALECTS))
async def one(request: pytest.FixtureRequest) -> AsyncIterator[One]:
    subnet, dialect = DIALECTS[request.param]
    async with simulated_fleet(
        1,
        mix=f"{request.param}:1",
        subnet=subnet,
        seed=19,
        listen=ListenMode.PER_DEVICE,
        timings=ServerTimings(reboot_s=REBOOT_S),
    ) as fleet:
        dev = fleet.devices[0].device
        identity = await identify_device(dev.ip, timeouts=POLL)
        assert identity.dialect is dialect
        yield One(fleet, dev, identity)


async def test_sleep_then_the_next_poll_reads_sleeping_and_wake_reads_mining(one: One) -> None:
    assert (await one.poll()).state is State.MINING
    pools_before = [p.url for p in one.dev.pools]
    result = await sleep(one.identity, CREDENTIALS, timeouts=ACT)
    assert result.action is Action.SLEEP and result.host == one.host
    asleep = await one.poll()
    assert asleep.state is State.SLEEPING, asleep.errors
    await wake(one.identity, CREDENTIALS, timeouts=ACT)
    awake = await one.poll()
    assert awake.state is State.MINING, awake.errors
    assert awake.hashrate_ths
    # Sleeping rewrote no configuration it should have kept (stock's set_miner_conf replaces it whole).
    assert [p.url for p in one.dev.pools] == pools_before


async def test_locate_light_reads_back_on_then_off(one: One) -> None:
    result = await locate(one.identity, True, CREDENTIALS, timeouts=ACT)
    assert result.locate is True and one.dev.locate is True
    if capabilities(one.identity).reads_locate:
        assert await read_locate(one.identity, CREDENTIALS, timeouts=ACT) is True
    # A second "on" keeps it on (VNish's find-miner is a toggle: the control must not flip it off).
    await locate(one.identity, True, CREDENTIALS, timeouts=ACT)
    assert one.dev.locate is True
    result = await locate(one.identity, False, CREDENTIALS, timeouts=ACT)
    assert result.locate is False and one.dev.locate is False
    if capabilities(one.identity).reads_locate:
        assert await read_locate(one.identity, CREDENTIALS, timeouts=ACT) is False


async def test_reboot_makes_the_miner_unreachable_then_it_returns(one: One) -> None:
    uptime_before = one.dev.uptime_s(time.time())
    await reboot(one.identity, CREDENTIALS, timeouts=ACT)
    down = await one.poll()
    assert down.state is State.UNREACHABLE
    assert down.errors[0].code == "connection_refused"
    back: Sample | None = None
    for _ in range(40):
        await asyncio.sleep(0.25)
        back = await one.poll()
        if back.state is not State.UNREACHABLE:
            break
    assert back is not None and back.state is State.MINING, back
    assert back.uptime_s is not None and back.uptime_s < max(uptime_before, 60)


async def test_power_target_where_firmware_has_no_watts_setting_is_refused_before_sending() -> None:
    async with simulated_fleet(
        3, mix="antminer:1,vnish:1,avalon:1", subnet="127.80.9.0/29", seed=19
    ) as fleet:
        for item in fleet.devices:
            dev = item.device
            identity = await identify_device(dev.ip, timeouts=POLL)
            caps = capabilities(identity)
            assert Action.POWER_TARGET not in caps.supported
            assert caps.unsupported[Action.POWER_TARGET]
            before = dev.requests
            with pytest.raises(UnsupportedActionError) as caught:
                await power_target(identity, 1000.0, CREDENTIALS, timeouts=ACT)
            assert caught.value.dialect is identity.dialect
            assert "power_target" in str(caught.value)
            assert dev.requests == before
            assert dev.power_limit_w is None


async def test_web_actions_without_a_credential_profile_send_nothing() -> None:
    async with simulated_fleet(2, mix="antminer:1,vnish:1", subnet="127.80.5.0/29", seed=19) as fleet:
        for item in fleet.devices:
            dev = item.device
            identity = await identify_device(dev.ip, timeouts=POLL)
            before = dev.requests
            with pytest.raises(UnsupportedActionError, match="credential profile"):
                await sleep(identity, ActionCredentials(), timeouts=ACT)
            assert dev.requests == before
            assert dev.state.value == "mining"


async def test_firmware_without_actions_is_refused_naming_dialect_and_action() -> None:
    # Whatsminer's and Braiins OS's actions are tested in tests/test_actions_whatsminer.py and
    # tests/test_actions_braiins.py; Auradine has none yet.
    async with simulated_fleet(1, mix="auradine:1", subnet="127.80.6.0/29", seed=19) as fleet:
        for item in fleet.devices:
            dev = item.device
            identity = await identify_device(dev.ip, timeouts=POLL)
            assert capabilities(identity).supported == frozenset()
            before = dev.requests
            for call in (
                reboot(identity, CREDENTIALS, timeouts=ACT),
                sleep(identity, CREDENTIALS, timeouts=ACT),
                locate(identity, True, CREDENTIALS, timeouts=ACT),
            ):
                with pytest.raises(UnsupportedActionError) as caught:
                    await call
                assert str(identity.dialect) in str(caught.value)
            assert dev.requests == before


async def test_luxos_power_target_scales_power_and_hashrate() -> None:
    async with simulated_fleet(1, mix="luxos:1", subnet="127.80.7.0/29", seed=19) as fleet:
        dev = fleet.devices[0].device
        identity = await identify_device(dev.ip, timeouts=POLL)
        full = (await read_device(dev.ip, timeouts=POLL, known=identity)).sample
        target = dev.spec.power_w * 0.8
        result = await power_target(identity, target, CREDENTIALS, timeouts=ACT)
        assert result.power_target_w is not None and result.power_target_w <= target
        after = (await read_device(dev.ip, timeouts=POLL, known=identity)).sample
        assert after.power_w is not None and full.power_w is not None
        assert abs(after.power_w - result.power_target_w) < 40
        ratio = result.power_target_w / dev.spec.power_w
        assert after.hashrate_ths is not None
        assert after.hashrate_ths == pytest.approx(dev.spec.nominal_ths * ratio, rel=0.06)
        assert after.power_w < full.power_w
        before = dev.power_limit_w
        with pytest.raises(ActionRefusedError, match="no LuxOS profile"):
            await power_target(identity, 10.0, CREDENTIALS, timeouts=ACT)
        assert dev.power_limit_w == before


@pytest.mark.parametrize(
    ("mix", "subnet", "credentials", "secret"),
    [
        (
            "antminer:1",
            "127.80.8.0/29",
            ActionCredentials(
                antminer=WebCredentials(
                    profile="site-a", username="root", password=SecretStr("hunter2-ant-secret")
                )
            ),
            "hunter2-ant-secret",
        ),
        (
            "vnish:1",
            "127.80.8.8/29",
            ActionCredentials(
                vnish=WebCredentials(profile="site-b", username="admin", password=SecretStr("swordfish-vn-9"))
            ),
            "swordfish-vn-9",
        ),
    ],
)
async def test_rejected_credentials_name_the_profile_and_never_the_password(
    mix: str, subnet: str, credentials: ActionCredentials, secret: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("DEBUG")
    async with simulated_fleet(1, mix=mix, subnet=subnet, seed=19) as fleet:
        dev = fleet.devices[0].device
        identity = await identify_device(dev.ip, timeouts=POLL)
        with pytest.raises(MinerAuthError) as caught:
            await sleep(identity, credentials, timeouts=ACT)
        assert "site-" in str(caught.value)
        assert dev.state.value == "mining"
    shown = [str(caught.value), repr(caught.value), repr(credentials), caplog.text]
    shown += [str(r.args) for r in caplog.records]
    assert caplog.records, "the action logs nothing: this test would pass without checking anything"
    assert all(secret not in text for text in shown)


async def test_every_action_error_is_a_miner_error() -> None:
    assert issubclass(UnsupportedActionError, MinerError)
    assert issubclass(ActionRefusedError, MinerError)
