"""Whatsminer actions (API v2's token and AES channel, API v3's signed set commands) against the simulator.

Over real sockets: each action is checked by what the next poll (or the light read-back) shows; a wrong
password ends with an error naming the profile; pyasic 0.79, an independent client (passlib's md5-crypt,
its own AES framing), drives the simulator's v2 channel to prove the simulator's side of the crypto.
Braiins OS without its own profile is refused up front. Test addresses: 127.42.0.0/16 only.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest
from action_support import ACT, POLL, REBOOT_S, One, locate_on_then_off
from pydantic import SecretStr

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
    sleep,
    wake,
)
from collectors.btminer_auth import md5_crypt, v2_decrypt, v2_encrypt, v2_token, v3_token
from collectors.errors import MinerAPIError, MinerAuthError, MinerError, MinerProtocolError, MinerTimeoutError
from collectors.identify import Dialect, Identity
from collectors.reader import identify_device
from collectors.sample import Sample, State
from collectors.simulator.device import Fault, SimDevice, SimState
from collectors.simulator.fleet import RunningFleet, simulated_fleet
from collectors.simulator.server import ListenMode, ServerTimings
from collectors.web import WebCredentials

PASSWORD = "wm-admin-7f3a"
WHATSMINER = WebCredentials(profile="wm-site-a", username="super", password=SecretStr(PASSWORD))
CREDENTIALS = ActionCredentials(whatsminer=WHATSMINER)
SLACK_S = 0.5
"""Scheduling allowance over the action deadline on a shared 2-core machine."""

# The seed's 4-Whatsminer fleet holds API-2.x (2023 build) and API v3 (2025 build) machines.
SUBNETS = {Dialect.WHATSMINER: "127.42.1.0/29", Dialect.WHATSMINER_V3: "127.42.2.0/29"}


async def _identify(dev: SimDevice) -> Identity:
    """As the poller knows it: a v3 machine is identified on its API v3 port."""
    return await identify_device(dev.ip, 4433 if dev.whatsminer_api_v3 else 4028, timeouts=POLL)


def _pick(fleet: RunningFleet, v3: bool) -> SimDevice:
    dev = next(d.device for d in fleet.devices if d.device.whatsminer_api_v3 is v3 and d.device.fault is None)
    dev.apply_state(SimState.MINING)
    dev.web_password = PASSWORD  # btminer takes writes only once the factory password is changed
    return dev


@pytest.fixture(params=[Dialect.WHATSMINER, Dialect.WHATSMINER_V3], ids=["v2", "v3"])
async def one(request: pytest.FixtureRequest) -> AsyncIterator[One]:
    dialect: Dialect = request.param
    async with simulated_fleet(
        4,
        mix="whatsminer:1",
        subnet=SUBNETS[dialect],
        seed=0,
        listen=ListenMode.PER_DEVICE,
        timings=ServerTimings(reboot_s=REBOOT_S),
    ) as fleet:
        dev = _pick(fleet, dialect is Dialect.WHATSMINER_V3)
        identity = await _identify(dev)
        assert identity.dialect is dialect
        yield One(fleet, dev, identity)


async def test_every_action_is_declared_and_the_light_can_be_read(one: One) -> None:
    caps = capabilities(one.identity)
    assert caps.supported == frozenset(Action)
    assert caps.reads_locate


async def test_sleep_reads_sleeping_with_low_power_and_wake_reads_mining(one: One) -> None:
    before = await one.poll()
    assert before.state is State.MINING and before.power_w and before.power_w > 1000
    await sleep(one.identity, CREDENTIALS, timeouts=ACT)
    asleep = await one.poll()
    assert asleep.state is State.SLEEPING, asleep.errors
    assert not asleep.hashrate_ths
    assert asleep.power_w is not None and asleep.power_w < 200
    await wake(one.identity, CREDENTIALS, timeouts=ACT)
    awake = await one.poll()
    assert awake.state is State.MINING, awake.errors
    assert awake.hashrate_ths


async def test_locate_light_reads_back_on_then_off(one: One) -> None:
    assert await read_locate(one.identity, CREDENTIALS, timeouts=ACT) is False
    await locate_on_then_off(one, CREDENTIALS)


async def _until_back(one: One) -> Sample:
    back = await one.poll()
    for _ in range(40):
        if back.state is not State.UNREACHABLE:
            break
        await asyncio.sleep(0.25)
        back = await one.poll()
    return back


async def test_reboot_makes_the_miner_unreachable_then_it_returns(one: One) -> None:
    uptime_before = one.dev.uptime_s(time.time())
    await reboot(one.identity, CREDENTIALS, timeouts=ACT)
    down = await one.poll()
    assert down.state is State.UNREACHABLE
    assert down.errors[0].code == "connection_refused"
    back = await _until_back(one)
    assert back.state is State.MINING, back
    assert back.uptime_s is not None and back.uptime_s < max(uptime_before, 60)


async def test_power_target_scales_power_and_hashrate(one: One) -> None:
    full = await one.poll()
    # 60%: a deep curtailment still reads `mining`, because the firmware's `Target MHS` follows the limit.
    target = one.dev.spec.power_w * 0.60 + 0.6  # not whole watts: the limit sent is at or under it
    result = await power_target(one.identity, target, CREDENTIALS, timeouts=ACT)
    assert result.power_target_w == float(int(target))
    assert one.dev.power_limit_w == result.power_target_w
    after = await _until_back(one)  # v2's adjust_power_limit restarts the miner to apply it
    assert after.state is State.MINING, after
    assert after.power_w is not None and full.power_w is not None
    assert abs(after.power_w - result.power_target_w) < 40
    assert after.power_w < full.power_w
    assert after.hashrate_ths == pytest.approx(one.dev.spec.nominal_ths * 0.60, rel=0.06)
    assert after.expected_hashrate_ths is not None and full.expected_hashrate_ths is not None
    assert after.expected_hashrate_ths == pytest.approx(full.expected_hashrate_ths * 0.60, rel=0.02)


async def test_power_target_above_the_machines_ordinary_power_is_the_devices_error(one: One) -> None:
    with pytest.raises(MinerAPIError):
        await power_target(one.identity, one.dev.spec.power_w * 2, CREDENTIALS, timeouts=ACT)
    assert one.dev.power_limit_w is None


async def test_wrong_password_names_the_profile_never_the_password(
    one: One, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("DEBUG")
    secret = "not-the-password-91"
    wrong = ActionCredentials(
        whatsminer=WebCredentials(profile="wm-site-b", username="super", password=SecretStr(secret))
    )
    with pytest.raises((MinerAuthError, MinerAPIError)) as caught:
        await sleep(one.identity, wrong, timeouts=ACT)
    assert "wm-site-b" in str(caught.value)
    if one.identity.dialect is Dialect.WHATSMINER:
        assert isinstance(caught.value, MinerAuthError)  # v2: Code 23 "enc json load err"
    assert one.dev.state is SimState.MINING
    assert (await one.poll()).state is State.MINING
    shown = [str(caught.value), repr(caught.value), repr(wrong), caplog.text]
    shown += [str(r.args) for r in caplog.records]
    assert caplog.records, "the action logs nothing: this test would pass without checking anything"
    assert all(secret not in text and PASSWORD not in text for text in shown)


async def test_v2_writes_are_refused_while_the_factory_password_is_set() -> None:
    async with simulated_fleet(4, mix="whatsminer:1", subnet="127.42.3.0/29", seed=0) as fleet:
        dev = _pick(fleet, v3=False)
        dev.web_password = None
        identity = await identify_device(dev.ip, timeouts=POLL)
        with pytest.raises(MinerAPIError, match="can't access write cmd"):
            await reboot(identity, ActionCredentials(whatsminer=WHATSMINER), timeouts=ACT)
        assert not dev.reboot_requested and dev.uptime_s(time.time()) > 60


async def test_without_a_whatsminer_profile_nothing_is_sent() -> None:
    async with simulated_fleet(4, mix="whatsminer:1", subnet="127.42.4.0/29", seed=0) as fleet:
        for v3 in (False, True):
            dev = _pick(fleet, v3)
            identity = await _identify(dev)
            before = dev.requests
            with pytest.raises(UnsupportedActionError, match="credential profile"):
                await sleep(identity, ActionCredentials(), timeouts=ACT)
            assert dev.requests == before
            assert dev.state is SimState.MINING


async def test_braiins_without_its_profile_is_refused_up_front() -> None:
    # Braiins OS acts over gRPC with its own login (tests/test_actions_braiins.py): the Whatsminer
    # profile is not it, and nothing is sent.
    async with simulated_fleet(1, mix="braiins:1", subnet="127.42.5.0/29", seed=19) as fleet:
        dev = fleet.devices[0].device
        identity = await identify_device(dev.ip, timeouts=POLL)
        caps = capabilities(identity)
        assert caps.supported == frozenset(Action)
        before = dev.requests
        for call in (
            reboot(identity, CREDENTIALS, timeouts=ACT),
            sleep(identity, CREDENTIALS, timeouts=ACT),
            locate(identity, True, CREDENTIALS, timeouts=ACT),
            power_target(identity, 1000.0, CREDENTIALS, timeouts=ACT),
        ):
            with pytest.raises(UnsupportedActionError, match="Braiins OS credential profile"):
                await call
        assert dev.requests == before


@pytest.mark.parametrize("v3", [False, True], ids=["v2", "v3"])
@pytest.mark.parametrize(
    ("fault", "expected"),
    [(Fault.HANG, MinerTimeoutError), (Fault.GARBAGE, MinerProtocolError), (Fault.SLOW_DRIP, MinerError)],
)
async def test_a_faulty_whatsminer_ends_the_action_with_a_miner_error_in_time(
    v3: bool, fault: Fault, expected: type[MinerError]
) -> None:
    subnet = "127.42.6.8/29" if v3 else "127.42.6.0/29"
    async with simulated_fleet(
        4,
        mix="whatsminer:1",
        subnet=subnet,
        seed=0,
        timings=ServerTimings(hold_s=30.0, drip_interval_s=0.3),
    ) as fleet:
        dev = _pick(fleet, v3)
        identity = await _identify(dev)
        dev.fault = fault
        tight = ActionTimeouts(connect=0.5, read=0.5, action=1.5)
        started = time.monotonic()
        with pytest.raises(expected):
            await sleep(identity, CREDENTIALS, timeouts=tight)
        assert time.monotonic() - started < tight.action + SLACK_S
        assert dev.state is SimState.MINING


# ---- the crypto, against independent implementations ----------------------------------------------


def test_md5_crypt_matches_passlib() -> None:
    from passlib.handlers.md5_crypt import md5_crypt as reference  # pyasic's own dependency

    for password in ("", "admin", "x" * 16, "y" * 33, "pässwörd", PASSWORD):
        for salt in ("a", "BQkC1XvK", "./09azAZ", "saltlonger"):
            assert md5_crypt(password, salt) == reference.hash(password, salt=salt[:8])


def test_v2_channel_round_trips_and_a_wrong_key_does_not_decrypt() -> None:
    token = v2_token(PASSWORD, "4827", "BQkC1XvK", "Zx9.aQ/e")
    other = v2_token("another", "4827", "BQkC1XvK", "Zx9.aQ/e")
    assert PASSWORD not in repr(token) and token.sign not in repr(token)
    request = v2_encrypt(token, {"cmd": "reboot"})
    import json

    data = json.loads(request)
    assert data["enc"] == 1
    assert v2_decrypt(token, data["data"]) == {"cmd": "reboot", "token": token.sign}
    with pytest.raises(MinerProtocolError):
        v2_decrypt(other, data["data"])


def test_v3_token_is_pyasics_eight_characters() -> None:
    import base64
    import hashlib

    digest = base64.b64encode(hashlib.sha256(b"set.system.rebootsuperBQkC1XvK1700000000").digest())
    assert v3_token("set.system.reboot", "super", "BQkC1XvK", 1_700_000_000) == digest[:8].decode()


async def test_pyasic_drives_the_simulators_v2_channel() -> None:
    """pyasic 0.79's BTMinerRPCAPI (passlib md5-crypt, its own AES framing) against our simulator: if the
    simulator's crypto were wrong, this independent client could not light the LED or sleep the miner."""
    from pyasic.rpc.btminer import BTMinerRPCAPI

    async with simulated_fleet(4, mix="whatsminer:1", subnet="127.42.7.0/29", seed=0) as fleet:
        dev = _pick(fleet, v3=False)
        rpc = BTMinerRPCAPI(dev.ip)
        rpc.pwd = PASSWORD
        lit = await rpc.set_led(auto=False)
        assert lit["Code"] == 131 and lit["Msg"] == "API command OK"
        assert dev.locate is True
        off = await rpc.power_off(respbefore=True)
        assert off["Msg"] == "API command OK"
        assert dev.state is SimState.SLEEPING
        info = await rpc.get_miner_info()
        assert info["Msg"]["ledstat"] != "auto"
        wrong = BTMinerRPCAPI(dev.ip)
        wrong.pwd = "not-it"
        from pyasic.errors import APIError

        with pytest.raises(APIError):
            await wrong.power_on()
        assert dev.state is SimState.SLEEPING


async def test_simulated_btminer_refuses_a_token_it_did_not_issue_and_bad_base64() -> None:
    """The device side: the right password with a sign the device never issued is 135, non-base64 137,
    both in clear; nothing is applied."""
    import json

    from collectors.client import MinerClient
    from collectors.framing import decode_reply
    from collectors.simulator.personalities.btminer_write import device_salt

    async with simulated_fleet(4, mix="whatsminer:1", subnet="127.42.8.0/29", seed=0) as fleet:
        dev = _pick(fleet, v3=False)
        client = MinerClient(dev.ip, 4028, POLL)
        forged = v2_token(PASSWORD, "0000", device_salt(dev), "neverisd")
        reply = decode_reply(await client.send(v2_encrypt(forged, {"cmd": "reboot"})))
        assert (reply["STATUS"], reply["Code"], reply["Msg"]) == ("E", 135, "check token error")
        junk = json.dumps({"enc": 1, "data": "%%%not base64%%%"}).encode()
        reply = decode_reply(await client.send(junk))
        assert (reply["STATUS"], reply["Code"]) == ("E", 137)
        assert not dev.reboot_requested and dev.uptime_s(time.time()) > 60
