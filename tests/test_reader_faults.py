"""The reading layers against the simulator's faults and firmwares, over real sockets: read_device
names each transport and wire fault, the client falls back from a refused multi-command, identification, the
plain-text reply form, and the web-page classifier."""

from __future__ import annotations

import asyncio

import pytest

from collectors.client import MinerClient
from collectors.connection import Limits, Timeouts
from collectors.framing import decode_reply
from collectors.identify import Dialect, classify_web
from collectors.poller import REPLY_CAP_BYTES
from collectors.reader import identify_device, read_device
from collectors.sample import State
from collectors.simulator.device import Fault
from collectors.simulator.fleet import simulated_fleet
from collectors.simulator.server import ServerTimings

TIMEOUTS = Timeouts(connect=0.5, read=0.8, device=1.5)
EXPECTED = {
    Fault.REFUSED: "connection_refused",
    Fault.HANG: "timeout",
    Fault.SLOW_DRIP: "timeout",
    Fault.RESET: "connection_reset",
    Fault.GARBAGE: "protocol_error",
    Fault.OVERSIZED: "reply_too_large",
}


@pytest.mark.parametrize("fault", list(EXPECTED), ids=lambda f: f.value)
async def test_read_device_names_the_fault(fault: Fault) -> None:
    async with simulated_fleet(
        1, mix="antminer:1", subnet="127.45.0.0/29", seed=2, timings=ServerTimings(hold_s=5)
    ) as fleet:
        fleet.devices[0].device.fault = fault
        loop = asyncio.get_running_loop()
        started = loop.time()
        reading = await read_device(
            fleet.devices[0].device.ip, timeouts=TIMEOUTS, limits=Limits(max_reply_bytes=256 * 1024)
        )
        elapsed = loop.time() - started
    sample = reading.sample
    if fault is Fault.REFUSED:
        # The listener was bound before the fault was set (the server then resets), so refusal is
        # checked where no listener exists at all, as for a device built with the fault.
        reading = await read_device("127.45.0.7", timeouts=TIMEOUTS)
        sample = reading.sample
    assert sample.state in (State.UNREACHABLE, State.ERROR)
    assert [e.code for e in sample.errors] == [EXPECTED[fault]]
    assert sample.hashrate_ths is None
    assert elapsed < TIMEOUTS.device + 1.0  # the device deadline holds (scheduling slack)


async def test_no_close_device_is_read_without_waiting_for_the_close() -> None:
    async with simulated_fleet(
        1, mix="antminer:1", subnet="127.45.0.8/29", seed=2, timings=ServerTimings(hold_s=30)
    ) as fleet:
        fleet.devices[0].device.fault = Fault.NO_CLOSE
        reading = await read_device(fleet.devices[0].device.ip, timeouts=TIMEOUTS)
    assert reading.sample.state not in (State.UNREACHABLE, State.ERROR)
    assert reading.sample.hashrate_ths is not None


async def test_stock_antminer_refuses_multi_command_and_client_falls_back_to_singles() -> None:
    async with simulated_fleet(1, mix="antminer:1", subnet="127.45.0.16/29", seed=2) as fleet:
        client = MinerClient(fleet.devices[0].device.ip, 4028, TIMEOUTS)
        results = await client.commands(("summary", "stats", "pools"))
    assert set(results) == {"summary", "stats", "pools"}
    assert all(isinstance(r, dict) for r in results.values())


async def test_multi_command_is_split_where_the_firmware_accepts_it() -> None:
    async with simulated_fleet(1, mix="luxos:1", subnet="127.45.0.24/29", seed=2) as fleet:
        client = MinerClient(fleet.devices[0].device.ip, 4028, TIMEOUTS)
        results = await client.commands(("summary", "pools"))
    assert isinstance(results["summary"], dict) and "SUMMARY" in results["summary"]
    assert isinstance(results["pools"], dict) and "POOLS" in results["pools"]


async def test_identify_device_names_each_make_and_firmware() -> None:
    mix = "antminer:1,whatsminer:1,avalon:1,braiins:1,luxos:1,vnish:1"
    async with simulated_fleet(18, mix=mix, subnet="127.45.1.0/27", seed=6) as fleet:
        for row in fleet.manifest:
            identity = await identify_device(str(row["ip"]), timeouts=TIMEOUTS)
            assert (identity.make or "").lower() == row["make"]
            assert (identity.model or "").startswith(str(row["model"]))
            if row["firmware"] == "vnish":
                assert identity.firmware_vendor == "vnish"
                assert identity.firmware_version == row["firmware_version"]
            assert identity.dialect is not Dialect.UNKNOWN


def test_plain_text_reply_form_has_the_json_shape() -> None:
    reply = decode_reply(
        b"STATUS=S,When=1700000000,Code=11,Msg=Summary,Description=cgminer 4.9.0|"
        b"SUMMARY,Elapsed=120,GHS 5s=110000.5,Accepted=7|\x00"
    )
    assert reply["STATUS"][0]["STATUS"] == "S"
    assert reply["SUMMARY"][0]["Elapsed"] == 120
    assert reply["SUMMARY"][0]["GHS 5s"] == 110000.5


@pytest.mark.parametrize(
    ("status", "headers", "body", "make", "vendor"),
    [
        (401, {"WWW-Authenticate": 'Digest realm="antMiner Configuration"'}, "", "Antminer", "stock"),
        (200, {}, "<title>AnthillOS</title>", "Antminer", "vnish"),
        (200, {}, "<h1>Braiins OS</h1>", "Antminer", "braiins"),
        (307, {"Location": "https://10.0.0.2/cgi-bin/luci"}, "", "Whatsminer", "stock"),
        (200, {}, "<title>Avalon Device</title>", "Avalon", "stock"),
    ],
)
def test_classify_web_reads_the_landing_page(
    status: int, headers: dict[str, str], body: str, make: str, vendor: str
) -> None:
    hint = classify_web(status, headers, body)
    assert hint is not None and (hint.make, hint.firmware_vendor) == (make, vendor)


def test_classify_web_says_nothing_about_an_unrelated_page() -> None:
    assert classify_web(200, {}, "<html>router login</html>") is None


async def test_hung_web_ui_costs_the_serial_not_the_reading() -> None:
    """The API answers but the web UI accepts and never replies: the read still ends within the device
    deadline as a reading of a hashing miner, with the web failure named, not as an unreachable one."""
    from collectors.simulator.fleet import build_fleet
    from collectors.simulator.server import FleetServer, ListenMode
    from collectors.web import WebCredentials, WebSession

    fleet = build_fleet(1, mix="antminer:1", subnet="127.45.0.64/29", seed=5)
    device = fleet[0].device
    device.apply_state(device.state.MINING)
    server = FleetServer([device], mode=ListenMode.PER_DEVICE, ports=(4028, 18080, 4433))
    await server.start()
    accepted: list[asyncio.StreamWriter] = []

    async def hang(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.append(writer)  # keep the connection open and silent

    web_ui = await asyncio.start_server(hang, device.ip, 80)
    session = WebSession(connect_s=0.5, read_s=5.0, max_connections=4)
    credentials = WebCredentials(profile="antminer-default", username="root", password="root")
    try:
        loop = asyncio.get_running_loop()
        started = loop.time()
        reading = await read_device(device.ip, timeouts=TIMEOUTS, web=session.device(credentials, None))
        elapsed = loop.time() - started
    finally:
        await session.aclose()
        web_ui.close()
        for writer in accepted:
            writer.close()
        await server.close()
    sample = reading.sample
    assert accepted, "the reader never tried the web UI"
    assert sample.state is State.MINING
    assert sample.hashrate_ths is not None and sample.hashrate_ths > 0
    assert sample.serial is None
    assert [e.code for e in sample.errors] == ["web_timeout"]
    assert elapsed < TIMEOUTS.device + 0.5


# The wire faults of issue 14, on every firmware family the simulator speaks, read with the poller's reply
# cap (the deep_nesting reply is under it). Each has its code, and the message says which fault it was.
WIRE_FAULTS = {
    Fault.TRUNCATED: ("protocol_error", "cut off before its end"),
    Fault.HTTP: ("protocol_error", "an HTTP response, not a miner API reply"),
    Fault.DEEP_NESTING: ("protocol_error", "levels deep (limit 64)"),
    Fault.INVALID_UTF8: ("protocol_error", "reply is not UTF-8"),
    Fault.EMPTY: ("empty_reply", "closed without a reply"),
    Fault.ACCESS_DENIED: ("api_error:45", "Access denied to"),
}
FAMILIES = "antminer:1,whatsminer:1,avalon:1,braiins:1,luxos:1,vnish:1"


@pytest.mark.parametrize("known", [False, True], ids=["identifying", "identified"])
@pytest.mark.parametrize("fault", list(WIRE_FAULTS), ids=lambda f: f.value)
async def test_read_device_names_the_wire_fault_on_every_firmware(fault: Fault, known: bool) -> None:
    """First read (identification) and a later one (the cached identity's data commands) alike."""
    code, words = WIRE_FAULTS[fault]
    subnet = f"127.60.{list(WIRE_FAULTS).index(fault) * 2 + known}.0/28"
    limits = Limits(max_reply_bytes=REPLY_CAP_BYTES)
    async with simulated_fleet(6, mix=FAMILIES, subnet=subnet, seed=3) as fleet:
        identities = {}
        for item in fleet.devices:
            if known:
                healthy = await read_device(item.device.ip, timeouts=TIMEOUTS, limits=limits)
                assert healthy.identity is not None and healthy.sample.hashrate_ths is not None
                identities[item.device.ip] = healthy.identity
            item.device.fault = fault
        loop = asyncio.get_running_loop()
        for item in fleet.devices:
            started = loop.time()
            reading = await read_device(
                item.device.ip, timeouts=TIMEOUTS, limits=limits, known=identities.get(item.device.ip)
            )
            elapsed = loop.time() - started
            sample = reading.sample
            where = (item.device.ip, item.device.firmware.value, item.device.spec.make.value)
            assert sample.state is State.ERROR, where
            assert {e.code for e in sample.errors} == {code}, (where, sample.errors)
            assert all(words in e.message for e in sample.errors), (where, sample.errors)
            assert sample.hashrate_ths is None
            assert elapsed < TIMEOUTS.device + 1.0  # the device deadline holds (scheduling slack)


async def test_a_lone_nul_is_an_empty_reply() -> None:
    """`\\x00` and nothing else, on every request: empty, like a close without a byte."""

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(65536)
        writer.write(b"\x00")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(answer, "127.61.0.1", 4028)
    try:
        reading = await read_device("127.61.0.1", timeouts=TIMEOUTS)
    finally:
        server.close()
        await server.wait_closed()
    assert reading.sample.state is State.ERROR
    assert [e.code for e in reading.sample.errors] == ["empty_reply"]
