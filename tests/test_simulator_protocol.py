"""The simulator over real sockets: protocol behaviour, states, faults, fleet reproducibility and files."""

from __future__ import annotations

import asyncio
import contextlib
import csv
import json
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from collectors.simulator.device import Fault, SimState
from collectors.simulator.fleet import build_fleet, simulated_fleet, write_inventory, write_manifest
from collectors.simulator.server import FleetServer, ListenMode, ServerTimings

FAST = ServerTimings(read_timeout_s=2.0, hold_s=3.0, drip_interval_s=0.05, drip_bytes=64)


async def exchange(ip: str, payload: bytes, port: int = 4028, limit: float = 10.0) -> bytes:
    """Send one request, read until the server closes."""
    reader, writer = await asyncio.open_connection(ip, port)
    writer.write(payload)
    await writer.drain()
    try:
        return await asyncio.wait_for(reader.read(), limit)
    finally:
        writer.close()


def pick(fleet_rows: list[dict[str, object]], **want: object) -> str:
    for row in fleet_rows:
        if all(row.get(k) == v for k, v in want.items()):
            return str(row["ip"])
    raise AssertionError(f"no device with {want}")


@pytest.fixture
async def antminers():  # type: ignore[no-untyped-def]
    async with simulated_fleet(
        24,
        mix="antminer:3,luxos:1",
        subnet="127.31.0.0/24",
        seed=11,
        listen=ListenMode.PER_DEVICE,
        timings=FAST,
    ) as running:
        yield running


async def test_json_request_gets_json_with_trailing_nul_then_close(antminers) -> None:  # type: ignore[no-untyped-def]
    ip = pick(antminers.manifest, firmware="stock")
    raw = await exchange(ip, b'{"command":"summary"}')
    assert raw.endswith(b"}\x00")
    assert json.loads(raw[:-1])["SUMMARY"][0]["Elapsed"] > 0


async def test_plain_text_request_gets_plain_text(antminers) -> None:  # type: ignore[no-untyped-def]
    ip = pick(antminers.manifest, firmware="stock")
    raw = await exchange(ip, b"summary")
    assert raw.startswith(b"STATUS=S,When=") and b"|SUMMARY,Elapsed=" in raw and raw.endswith(b"|\x00")


async def test_stock_refuses_multicommand_luxos_serves_it(antminers) -> None:  # type: ignore[no-untyped-def]
    stock = json.loads(
        (await exchange(pick(antminers.manifest, firmware="stock"), b'{"command":"summary+pools"}'))[:-1]
    )
    assert stock["STATUS"][0]["STATUS"] == "E" and stock["STATUS"][0]["Code"] == 14
    lux = json.loads(
        (await exchange(pick(antminers.manifest, firmware="luxos"), b'{"command":"summary+pools"}'))[:-1]
    )
    assert set(lux) == {"summary", "pools", "id"} and lux["pools"][0]["POOLS"]


async def test_unknown_command_is_14_and_devdetails_is_45(antminers) -> None:  # type: ignore[no-untyped-def]
    ip = pick(antminers.manifest, firmware="stock")
    bad = json.loads((await exchange(ip, b'{"command":"frobnicate"}'))[:-1])["STATUS"][0]
    denied = json.loads((await exchange(ip, b'{"command":"devdetails"}'))[:-1])["STATUS"][0]
    assert (bad["STATUS"], bad["Code"], bad["Msg"]) == ("E", 14, "Invalid command")
    assert (denied["STATUS"], denied["Code"]) == ("E", 45) and "Access denied" in denied["Msg"]


async def test_web_cgi_wants_digest_then_answers(antminers) -> None:  # type: ignore[no-untyped-def]
    ip = pick(antminers.manifest, firmware="stock")
    async with httpx.AsyncClient() as client:
        first = await client.get(f"http://{ip}/cgi-bin/get_system_info.cgi")
        assert first.status_code == 401
        assert 'Digest realm="antMiner Configuration"' in first.headers["www-authenticate"]
        wrong = await client.get(
            f"http://{ip}/cgi-bin/get_system_info.cgi", auth=httpx.DigestAuth("root", "x")
        )
        assert wrong.status_code == 401
        ok = await client.get(
            f"http://{ip}/cgi-bin/get_system_info.cgi", auth=httpx.DigestAuth("root", "root")
        )
    assert ok.status_code == 200
    row = next(r for r in antminers.manifest if r["ip"] == ip)
    assert ok.json()["serinum"] == row["serial"] and ok.json()["macaddr"] == row["mac"]


@pytest.mark.parametrize(
    ("state", "check"),
    [
        (SimState.MINING, lambda s: s["GHS 5s"] > 0 and s["Mode"] == 2),
        (SimState.SLEEPING, lambda s: s["GHS 5s"] == 0.0 and s["Mode"] == 2),
        (SimState.DEAD_BOARD, lambda s: 0 in [s["chain_acn1"], s["chain_acn2"], s["chain_acn3"]]),
        (SimState.OVERHEATING, lambda s: max(s["temp2_1"], s["temp2_2"], s["temp2_3"]) >= 93),
        (SimState.POOL_DOWN, lambda s: s["GHS 5s"] == 0.0),
    ],
)
async def test_each_state_shows_in_stats(state: SimState, check) -> None:  # type: ignore[no-untyped-def]
    async with simulated_fleet(
        1, mix="antminer:1", subnet="127.32.0.0/24", seed=1, listen=ListenMode.PER_DEVICE, timings=FAST
    ) as running:
        dev = running.devices[0].device
        dev.apply_state(state)
        raw = await exchange(dev.ip, b'{"command":"stats"}')
        body = json.loads(raw[:-1].replace(b"}{", b"},{"))["STATS"][1]
        assert check(body)
        if state is SimState.POOL_DOWN:
            pools = json.loads((await exchange(dev.ip, b'{"command":"pools"}'))[:-1])["POOLS"]
            assert {p["Status"] for p in pools} == {"Dead"}


def free_ports(count: int) -> tuple[int, ...]:
    """Ports nothing listens on right now (bound to port 0 on every address, then released)."""
    socks = [socket.socket(socket.AF_INET, socket.SOCK_STREAM) for _ in range(count)]
    try:
        for sock in socks:
            sock.bind(("0.0.0.0", 0))
        return tuple(sock.getsockname()[1] for sock in socks)
    finally:
        for sock in socks:
            sock.close()


@contextlib.asynccontextmanager
async def shared_fleet(
    devices: int, *, mix: str, subnet: str, seed: int, timings: ServerTimings | None = None
) -> AsyncIterator[FleetServer]:
    """A fleet in shared-listener mode on free high ports: a shared listener binds 0.0.0.0, so on the
    real ports it would collide with any other simulator on this machine (a demo, another test run)."""
    rpc, web, v3 = free_ports(3)
    fleet = build_fleet(devices, mix=mix, subnet=subnet, seed=seed)
    server = FleetServer(
        [f.device for f in fleet], mode=ListenMode.SHARED, timings=timings, ports=(rpc, web, v3)
    )
    await server.start()
    try:
        yield server
    finally:
        await server.close()


@dataclass(frozen=True)
class FaultyFleet:
    """One device per fault kind (and a healthy one, key None) and the API port they answer on."""

    ips: dict[Fault | None, str]
    port: int


@pytest.fixture(params=[ListenMode.PER_DEVICE, ListenMode.SHARED])
async def faulty(request: pytest.FixtureRequest) -> AsyncIterator[FaultyFleet]:
    size, mix, subnet = len(Fault) + 1, "antminer:1", "127.33.0.0/24"
    async with contextlib.AsyncExitStack() as stack:
        if request.param is ListenMode.SHARED:
            server = await stack.enter_async_context(
                shared_fleet(size, mix=mix, subnet=subnet, seed=5, timings=FAST)
            )
            devices = list(server.devices.values())
        else:
            running = await stack.enter_async_context(
                simulated_fleet(
                    size, mix=mix, subnet=subnet, seed=5, listen=ListenMode.PER_DEVICE, timings=FAST
                )
            )
            server, devices = running.server, [f.device for f in running.devices]
        assert server.mode is request.param
        for dev, fault in zip(devices, [*Fault, None], strict=True):
            dev.fault = fault
        yield FaultyFleet({d.fault: d.ip for d in devices}, server.rpc_port)


async def test_fault_refused(faulty: FaultyFleet) -> None:
    with pytest.raises(ConnectionError):
        await exchange(faulty.ips[Fault.REFUSED], b'{"command":"version"}', faulty.port)


async def test_fault_hang_never_answers(faulty: FaultyFleet) -> None:
    with pytest.raises(TimeoutError):
        await exchange(faulty.ips[Fault.HANG], b'{"command":"version"}', faulty.port, limit=1.0)


async def test_fault_slow_drip_arrives_in_many_pieces(faulty: FaultyFleet) -> None:
    reader, writer = await asyncio.open_connection(faulty.ips[Fault.SLOW_DRIP], faulty.port)
    writer.write(b'{"command":"version"}')
    chunks = []
    while chunk := await asyncio.wait_for(reader.read(65536), 10):
        chunks.append(chunk)
    writer.close()
    data = b"".join(chunks)
    assert len(chunks) > 3 and max(len(c) for c in chunks) <= 64 and data.endswith(b"\x00")


async def test_fault_reset_mid_reply(faulty: FaultyFleet) -> None:
    reader, writer = await asyncio.open_connection(faulty.ips[Fault.RESET], faulty.port)
    writer.write(b'{"command":"stats"}')
    got = b""
    with pytest.raises(ConnectionResetError):
        while chunk := await asyncio.wait_for(reader.read(65536), 5):
            got += chunk
    writer.close()
    assert not got.endswith(b"\x00")


async def test_fault_garbage_is_not_json(faulty: FaultyFleet) -> None:
    raw = await exchange(faulty.ips[Fault.GARBAGE], b'{"command":"version"}', faulty.port)
    assert raw
    with pytest.raises(ValueError):
        json.loads(raw.rstrip(b"\x00").decode("utf-8"))


async def test_fault_oversized_sends_megabytes(faulty: FaultyFleet) -> None:
    raw = await exchange(faulty.ips[Fault.OVERSIZED], b'{"command":"stats"}', faulty.port)
    assert len(raw) > 4_000_000 and raw.endswith(b"\x00")


async def test_fault_no_close_sends_a_valid_reply_and_keeps_the_socket(faulty: FaultyFleet) -> None:
    reader, writer = await asyncio.open_connection(faulty.ips[Fault.NO_CLOSE], faulty.port)
    writer.write(b'{"command":"version"}')
    data = b""
    while not data.endswith(b"\x00"):
        data += await asyncio.wait_for(reader.read(65536), 5)
    assert json.loads(data[:-1])["VERSION"]
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(reader.read(1), 1.0)
    writer.close()


async def test_healthy_neighbour_of_faulty_devices_answers(faulty: FaultyFleet) -> None:
    raw = await exchange(faulty.ips[None], b'{"command":"version"}', faulty.port)
    assert json.loads(raw[:-1])["VERSION"][0]["Type"].startswith("Antminer")


async def test_shared_mode_resets_addresses_without_a_device() -> None:
    async with shared_fleet(2, mix="antminer:1", subnet="127.34.0.0/24", seed=2) as server:
        assert server.mode is ListenMode.SHARED
        served = next(iter(server.devices))
        assert json.loads((await exchange(served, b'{"command":"version"}', server.rpc_port))[:-1])["VERSION"]
        with pytest.raises(ConnectionError):
            await exchange("127.34.0.200", b'{"command":"version"}', server.rpc_port)


async def test_idle_client_is_dropped_after_read_timeout(antminers) -> None:  # type: ignore[no-untyped-def]
    reader, writer = await asyncio.open_connection(pick(antminers.manifest, firmware="stock"), 4028)
    assert await asyncio.wait_for(reader.read(), 10) == b""  # closed by the server, nothing sent
    writer.close()


def test_fleet_is_reproducible_with_a_seed(tmp_path: Path) -> None:
    a = build_fleet(200, mix="antminer:60,whatsminer:25,avalon:15", faults=0.1, seed=9, now=1.0e9)
    b = build_fleet(200, mix="antminer:60,whatsminer:25,avalon:15", faults=0.1, seed=9, now=1.0e9)
    c = build_fleet(200, mix="antminer:60,whatsminer:25,avalon:15", faults=0.1, seed=10, now=1.0e9)
    for name, fleet in (("a", a), ("b", b), ("c", c)):
        write_manifest(fleet, tmp_path / f"{name}.json")
        write_inventory(fleet, tmp_path / f"{name}.csv")
    assert (tmp_path / "a.json").read_bytes() == (tmp_path / "b.json").read_bytes()
    assert (tmp_path / "a.csv").read_bytes() == (tmp_path / "b.csv").read_bytes()
    assert (tmp_path / "a.json").read_bytes() != (tmp_path / "c.json").read_bytes()


def test_manifest_and_inventory_are_complete_and_consistent(tmp_path: Path) -> None:
    fleet = build_fleet(300, mix="antminer:100,whatsminer:100,avalon:100", faults=0.2, seed=3)
    write_manifest(fleet, tmp_path / "m.json")
    listed = write_inventory(fleet, tmp_path / "i.csv")
    rows = json.loads((tmp_path / "m.json").read_text())
    assert len(rows) == 300 and len({r["ip"] for r in rows}) == 300
    required = {"ip", "port", "make", "model", "firmware_vendor", "state", "hashrate_ths", "serial", "mac"}
    assert all(required | {"assembly_country", "fault"} <= set(r) for r in rows)
    assert {r["make"] for r in rows} == {"antminer", "whatsminer", "avalon"}  # the makes of the mix
    assert all(r["ip"].split(".")[-1] not in ("0", "255") for r in rows)
    assert all(len(r["assembly_country"]) == 2 and r["assembly_country"].isupper() for r in rows)
    assert sum(r["fault"] is not None for r in rows) in range(30, 95)
    with (tmp_path / "i.csv").open() as fh:
        inv = list(csv.DictReader(fh))
    assert len(inv) == listed and 0.75 * 300 < listed < 300
    serials = {r["serial"]: r for r in rows}
    for line in inv:
        assert line["hts_code"] == "8543.70.9960"
        assert line["origin_evidence"] in {"nameplate", "commercial_invoice", "customs_entry"}
        assert serials[line["serial"]]["assembly_country"] == line["assembly_country"]
        assert int(line["customs_value_usd"]) > 0
    assert any(r["whatsminer_api_v3"] for r in rows)


def test_bad_mix_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="bad mix entry"):
        build_fleet(3, mix="antminer:1,bitaxe:2")
