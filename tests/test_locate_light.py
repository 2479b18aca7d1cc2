"""The locate light in the next read (issue 19): the poll reads it where the firmware's polled replies carry
it (Avalon `Led`, LuxOS `RedLed`, Whatsminer `ledstat` / `ledstatus`), the device detail shows the newer of
the poll's reading and the action's confirmation (stock Antminer's poll does not read it), and both are
stored (migration 0009). A simulated fleet over real sockets, a collecting service, real databases.

Test addresses: 127.44.0.0/16 only (this module: 127.44.1.0/24, 127.44.2.0/24).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import fleet_samples
import httpx
import pytest
from action_jobs import act, after_cycles
from capture_server import load_sets, read_capture
from fleet_samples import T0, make_sample
from service_harness import LiveService, antminer_factory_login, live_service

from collectors.connection import Timeouts
from collectors.reader import read_device
from collectors.simulator.device import Firmware, Make
from collectors.simulator.fleet import FleetDevice, simulated_fleet
from fleetmon.config import ActionSettings
from fleetmon.service.fleet import light_state
from fleetmon.storage.actions import LightMark
from fleetmon.storage.engine import current_revision, head_revision, make_engine, upgrade
from fleetmon.storage.export import iter_samples
from fleetmon.storage.writer import SampleStore, SiteSample

blank_db_url = fleet_samples.blank_db_url
db_url = fleet_samples.db_url

PASSWORD_ENV = "FLEETMON_I19_LOCATE_ANTMINER_PW"


# ---- the drivers: the light from the replies the poll already fetches ---------------------------------


TIMEOUTS = Timeouts(connect=1.0, read=2.0, device=3.0)


@pytest.mark.parametrize("kind", ["avalon", "luxos", "whatsminer"])
def test_the_poll_reads_the_light_where_the_firmware_reports_it(kind: str) -> None:
    async def main() -> list[tuple[bool | None, bool | None]]:
        async with simulated_fleet(3, mix=f"{kind}:1", subnet="127.44.1.0/24", seed=19) as running:
            seen = []
            for item in running.devices:
                off = await read_device(item.device.ip, running.server.rpc_port, timeouts=TIMEOUTS)
                item.device.locate = True
                on = await read_device(item.device.ip, running.server.rpc_port, timeouts=TIMEOUTS)
                item.device.locate = False
                seen.append((off.sample.locate, on.sample.locate))
            return seen

    assert asyncio.run(main()) == [(False, True)] * 3


def test_a_stock_antminer_poll_does_not_say() -> None:
    async def main() -> list[bool | None]:
        async with simulated_fleet(2, mix="antminer:1", subnet="127.44.1.0/24", seed=19) as running:
            readings = []
            for item in running.devices:
                assert item.device.firmware is Firmware.STOCK
                item.device.locate = True  # lit, but nothing the poll fetches says so
                read = await read_device(item.device.ip, running.server.rpc_port, timeouts=TIMEOUTS)
                readings.append(read.sample.locate)
            return readings

    assert asyncio.run(main()) == [None, None]


# The real captured replies (tests/captures/device-responses) served over a real socket: every light in
# them is off (Avalon `Led[0]`, LuxOS `RedLed` "auto"); stock Antminer's polled replies carry none.
CAPTURED_LIGHT = {
    "avalon/avalon1566": False,
    "avalon/avalon1246": False,
    "avalon/avalon10xx": False,
    "luxos/s19kpro": False,
    "antminer/s19pro": None,
}


@pytest.fixture(scope="module")
def capture_sets(captures_dir: Path) -> dict[str, object]:
    return load_sets(captures_dir)  # type: ignore[return-value]


@pytest.mark.parametrize("name", sorted(CAPTURED_LIGHT))
def test_the_captured_replies_give_the_light_they_carry(name: str, capture_sets: dict[str, Any]) -> None:
    async def main() -> bool | None:
        return (await read_capture(capture_sets[name], TIMEOUTS)).locate

    assert asyncio.run(main()) is CAPTURED_LIGHT[name]


# ---- which reading wins ----------------------------------------------------------------------------


def test_the_newer_of_poll_and_action_wins() -> None:
    polled = make_sample(1, T0).model_copy(update={"locate": False})
    older_mark = LightMark(True, T0 - timedelta(seconds=5), "locate")
    newer_mark = LightMark(True, T0 + timedelta(seconds=5), "locate")
    shown = light_state(polled, older_mark)
    assert shown is not None and (shown.on, shown.source, shown.at) == (False, "poll", T0)
    shown = light_state(polled, newer_mark)
    assert shown is not None and (shown.on, shown.source, shown.action) == (True, "action", "locate")
    silent = make_sample(1, T0 + timedelta(minutes=1))  # a poll that does not read the light
    shown = light_state(silent, older_mark)
    assert shown is not None and (shown.on, shown.source) == (True, "action")
    assert light_state(silent, None) is None
    reboot = LightMark(False, T0 + timedelta(seconds=5), "reboot")
    shown = light_state(make_sample(1, T0).model_copy(update={"locate": True}), reboot)
    assert shown is not None and (shown.on, shown.action) == (False, "reboot")


# ---- storage ---------------------------------------------------------------------------------------


def test_the_sample_light_is_stored_and_exported_on_both_dialects(db_url: str) -> None:
    engine = make_engine(db_url)
    samples = [
        make_sample(1, T0).model_copy(update={"locate": True}),
        make_sample(2, T0).model_copy(update={"locate": False}),
        make_sample(3, T0),
    ]
    assert SampleStore(engine).write([SiteSample("north", s) for s in samples]).inserted == 3
    exported = {s.ip: s.locate for s in iter_samples(engine)}
    assert sorted(exported.values(), key=repr) == sorted([True, False, None], key=repr)
    assert exported[samples[0].ip] is True and exported[samples[2].ip] is None
    engine.dispose()


def test_migration_0009_goes_down_and_up_again(blank_db_url: str) -> None:
    from alembic import command

    from fleetmon.storage.engine import _alembic_config

    engine = make_engine(blank_db_url)
    upgrade(engine)
    assert current_revision(engine) == head_revision()
    SampleStore(engine).write([SiteSample("north", make_sample(1, T0).model_copy(update={"locate": True}))])
    command.downgrade(_alembic_config(engine), "0008")
    assert current_revision(engine) == "0008"
    upgrade(engine)
    assert current_revision(engine) == head_revision()
    # the column came back empty: what was stored before it existed did not say
    assert [s.locate for s in iter_samples(engine)] == [None]
    engine.dispose()


# ---- through the API -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveService]:
    tmp = tmp_path_factory.mktemp("locate")
    base = antminer_factory_login(PASSWORD_ENV)
    with live_service(
        fleet_samples.sqlite_url(tmp),
        tmp,
        devices=6,
        mix="avalon:2,antminer:2,whatsminer:2,braiins:0,luxos:0,vnish:0",
        subnet="127.44.2.0/24",
        collecting=True,
        interval_s=1.0,
        actions=ActionSettings(connect_timeout_s=0.5, read_timeout_s=0.5, timeout_s=1.5, concurrency=4),
        settings_base=base,
    ) as service:
        yield service


def _device(live: LiveService, kind: str) -> tuple[FleetDevice, int]:
    match = {
        "avalon": lambda d: d.spec.make is Make.AVALON,
        "stock": lambda d: d.spec.make is Make.ANTMINER and d.firmware is Firmware.STOCK,
        "whatsminer": lambda d: d.spec.make is Make.WHATSMINER,
    }[kind]
    item = next(i for i in live.fleet if match(i.device))
    with live.client(live.keys["viewer"]) as client:
        items = client.get("/api/v1/devices", params={"limit": 1000}).json()["items"]
    return item, next(i["id"] for i in items if i["ip"] == item.device.ip)


def _light(client: httpx.Client, device_id: int) -> dict[str, Any] | None:
    response = client.get(f"/api/v1/devices/{device_id}", params={"samples": 1})
    assert response.status_code == 200, response.text
    light: dict[str, Any] | None = response.json()["locate"]
    return light


def _act(client: httpx.Client, device_id: int, action: str, **params: Any) -> dict[str, Any]:
    job = act(client, device_id, action, **params)
    assert job["state"] == "succeeded", job
    return job


def test_locate_on_shows_in_the_next_read_of_a_device_whose_poll_reads_the_light(live: LiveService) -> None:
    _, device_id = _device(live, "avalon")
    with live.client(live.keys["operator"]) as client:
        after_cycles(live, 1)
        light = _light(client, device_id)
        assert light is not None and light["on"] is False and light["source"] == "poll"
        _act(client, device_id, "locate", on=True)
        after_cycles(live, 1)
        light = _light(client, device_id)
        assert light is not None and light["on"] is True and light["source"] == "poll"
        _act(client, device_id, "locate", on=False)
        after_cycles(live, 1)
        light = _light(client, device_id)
        assert light is not None and light["on"] is False and light["source"] == "poll"


def test_the_poll_wins_when_it_is_newer_than_the_action(live: LiveService) -> None:
    miner, device_id = _device(live, "avalon")
    with live.client(live.keys["operator"]) as client:
        _act(client, device_id, "locate", on=True)
        light = _light(client, device_id)  # before the next poll: the action's confirmation is newest
        assert light is not None and light["on"] is True
        miner.device.locate = False  # turned off at the machine (its button), not through fleetmon
        after_cycles(live, 1)
        light = _light(client, device_id)
        assert light is not None and (light["on"], light["source"]) == (False, "poll")


def test_a_whatsminer_light_lit_at_the_machine_shows_in_the_next_read(live: LiveService) -> None:
    miner, device_id = _device(live, "whatsminer")
    with live.client(live.keys["viewer"]) as client:
        miner.device.locate = True
        try:
            after_cycles(live, 1)
            light = _light(client, device_id)
            assert light is not None and (light["on"], light["source"]) == (True, "poll")
        finally:
            miner.device.locate = False
        after_cycles(live, 1)
        light = _light(client, device_id)
        assert light is not None and light["on"] is False


def test_a_stock_antminer_shows_the_light_its_locate_action_confirmed(live: LiveService) -> None:
    miner, device_id = _device(live, "stock")
    with live.client(live.keys["operator"]) as client:
        assert _light(client, device_id) is None  # its poll does not read the light, and no action yet
        job = _act(client, device_id, "locate", on=True)
        assert miner.device.locate is True
        after_cycles(live, 1)
        light = _light(client, device_id)
        assert light is not None and (light["on"], light["source"], light["action"]) == (
            True,
            "action",
            "locate",
        )
        finished = job["tasks"][0]["finished_at"]
        assert light["at"] == finished
        _act(client, device_id, "locate", on=False)
        after_cycles(live, 1)
        light = _light(client, device_id)
        assert light is not None and (light["on"], light["source"]) == (False, "action")


def test_a_reboot_clears_an_action_set_light(live: LiveService) -> None:
    miner, device_id = _device(live, "stock")
    with live.client(live.keys["operator"]) as client:
        _act(client, device_id, "locate", on=True)
        _act(client, device_id, "reboot")
        light = _light(client, device_id)
        assert light is not None and (light["on"], light["action"]) == (False, "reboot")
    assert miner.device.locate is False  # the simulated firmware came back with it off too
