"""Identification names a make only on positive evidence (issue 14).

A machine whose firmware copies the Antminer stats layout under another brand's type string is read (its
hashrate, temperatures and pools stand) but reported as make None with its own type string and an
`unknown_make` error, and never lends Bitmain its hashrate. Auradine (GCMiner/FluxOS) and SealMiner
(BDMiner) machines are named by their firmware and keep their own model strings, whichever model they are.
Devices are simulated over real sockets on 127.64.0.0/16.
"""

from __future__ import annotations

import time

import pytest

from collectors.connection import Timeouts
from collectors.drivers.sealminer import SealMinerDriver
from collectors.identify import Dialect, canonical_model, classify
from collectors.poller import Poller, PollerSettings
from collectors.reader import read_device
from collectors.sample import Sample, State
from collectors.simulator.device import Firmware, Make, ModelSpec, SimDevice
from collectors.simulator.fleet import simulated_fleet
from collectors.simulator.server import FleetServer
from collectors.targets import Target
from fleetmon.service.units import device_unit
from fleetmon.supplychain.catalog import shipped_catalog

TIMEOUTS = Timeouts(connect=2.0, read=2.0, device=5.0)
VERSIONS = {Make.CLONE: "20230815", Make.AURADINE: "2023-05.24-0ce5e7cc", Make.SEALMINER: "4.11.1"}


def _device(ip: str, make: Make, wire_type: str, nominal: float = 100.0) -> SimDevice:
    spec = ModelSpec(make, f"{make} {wire_type}", wire_type, 3, 153, 4, nominal, 3000.0)  # A2: 153 chips
    return SimDevice(
        ip=ip,
        spec=spec,
        firmware=Firmware.STOCK,
        firmware_version=VERSIONS[make],
        serial=f"S1272{ip.replace('.', '')[-11:]:0>11}",
        mac="0A:11:22:33:44:55",
        hostname=str(make),
        seed=5,
        boot_time=time.time() - 3600,
    )


async def _read(devices: list[SimDevice]) -> list[Sample]:
    server = FleetServer(devices)
    await server.start()
    try:
        return [(await read_device(d.ip, server.rpc_port, timeouts=TIMEOUTS)).sample for d in devices]
    finally:
        await server.close()


async def test_clone_with_antminer_layout_is_unknown_make_with_its_type_string_and_still_read() -> None:
    clone = _device("127.64.1.10", Make.CLONE, "ClonerX C1", nominal=95.0)
    (sample,) = await _read([clone])
    assert (sample.make, sample.model, sample.firmware_vendor) == (None, "ClonerX C1", None)
    assert [e.code for e in sample.errors] == ["unknown_make"]
    assert "ClonerX C1" in sample.errors[0].message
    # The reading still stands: hashrate, boards with temperatures, fans, pools.
    assert sample.state is State.MINING
    assert sample.hashrate_ths == pytest.approx(clone.hashrate_ths, rel=0.02)
    assert len(sample.boards) == 3 and sample.temp_max_c is not None
    assert len(sample.fans_rpm) == 4 and [p.url for p in sample.pools] == [p.url for p in clone.pools]


async def test_clone_sending_a_bitmain_model_code_without_the_brand_is_not_counted_as_bitmain() -> None:
    # "S19 Pro" is a Bitmain code, but no reply says Antminer: it proves nothing about who built the box.
    clone = _device("127.64.1.11", Make.CLONE, "S19 Pro", nominal=110.0)
    (sample,) = await _read([clone])
    assert (sample.make, sample.model) == (None, "S19 Pro")
    # No Antminer S19 Pro row lends its expectations (the device's own total_rateideal still counts).
    assert all(b.expected_chips is None for b in sample.boards)
    assert "unknown_make" in [e.code for e in sample.errors]
    unit = device_unit(sample, {}, shipped_catalog())
    assert (unit.manufacturer, unit.catalog_model) == (None, None)


@pytest.mark.parametrize(
    ("wire", "model"),
    [
        ("AT1500", "Auradine AT1500"),
        ("AT2880", "Auradine AT2880"),
        ("AI3680", "Auradine AI3680"),
        ("AD2500", "Auradine AD2500"),  # not in the model table: kept as sent, brand in front
    ],
)
async def test_auradine_models_identify_by_firmware_with_their_own_model(wire: str, model: str) -> None:
    dev = _device("127.64.2.10", Make.AURADINE, wire, nominal=160.0)
    (sample,) = await _read([dev])
    assert (sample.make, sample.model, sample.firmware_vendor) == ("Auradine", model, "stock")
    assert sample.firmware_version == VERSIONS[Make.AURADINE]
    assert sample.errors == [] and sample.state is State.MINING
    assert sample.hashrate_ths == pytest.approx(dev.hashrate_ths, rel=0.02)
    assert device_unit(sample, {}, shipped_catalog()).manufacturer == "Auradine"


@pytest.mark.parametrize(
    ("wire", "model"),
    [
        ("A2", "SealMiner A2"),
        ("A2 Pro", "SealMiner A2 Pro"),  # not in the model table: kept as sent, brand in front
        ("A2 Hyd", "SealMiner A2 Hyd"),
        ("A3", "SealMiner A3"),
    ],
)
async def test_sealminer_models_identify_by_firmware_with_their_own_model(wire: str, model: str) -> None:
    dev = _device("127.64.3.10", Make.SEALMINER, wire, nominal=226.0)
    server = FleetServer([dev])
    await server.start()
    try:
        first = await read_device(dev.ip, server.rpc_port, timeouts=TIMEOUTS)
        again = await read_device(dev.ip, server.rpc_port, timeouts=TIMEOUTS, known=first.identity)
    finally:
        await server.close()
    sample = first.sample
    assert (sample.make, sample.model, sample.firmware_vendor) == ("SealMiner", model, "stock")
    assert (sample.serial, sample.mac) == (dev.serial, dev.mac.lower())
    assert sample.errors == [] and sample.state is State.MINING
    assert device_unit(sample, {}, shipped_catalog()).manufacturer == "Bitdeer"
    # The next poll on the cached identity sees the same machine (no spurious re-identification).
    assert again.identity == first.identity and again.sample.model == model


def _version(**fields: object) -> dict[str, object]:
    return {"STATUS": [{"STATUS": "S", "Description": "cgminer 4.9.0"}], "VERSION": [fields]}


ANTMINER_STATS = {"STATS": [{"STATS": 0, "ID": "BTM_SOC0", "GHS 5s": "95000.0", "chain_acn1": 76}]}


@pytest.mark.parametrize(
    ("version", "probe", "make", "model", "dialect"),
    [
        # A brand named by the type string: made whatever the layout.
        (_version(BMMiner="1.0.0", Type="Antminer S19"), {}, "Antminer", "Antminer S19", Dialect.ANTMINER),
        (_version(CGMiner="4.9.0", Type="SealMiner A2"), {}, "SealMiner", "SealMiner A2", Dialect.ANTMINER),
        # No brand, only bmminer's shape: read as Antminer's dialect, make unknown.
        (_version(CGMiner="4.9.0", Type="ClonerX C1"), {}, None, "ClonerX C1", Dialect.ANTMINER),
        (_version(BMMiner="1.0.0", Type="T19 Hyd"), {}, None, "T19 Hyd", Dialect.ANTMINER),
        (None, {"stats": ANTMINER_STATS}, None, None, Dialect.ANTMINER),
        # The firmware's own name proves the maker.
        (_version(BDMiner="4.11.1"), {}, "SealMiner", None, Dialect.SEALMINER),
        (_version(GCMiner="0.5"), {}, "Auradine", None, Dialect.AURADINE),
    ],
)
def test_make_comes_only_from_a_brand_or_a_firmware_name(
    version: dict[str, object] | None,
    probe: dict[str, dict[str, object]],
    make: str | None,
    model: str | None,
    dialect: Dialect,
) -> None:
    identity = classify(version, None, probe, host="127.64.0.1", port=4028)  # type: ignore[arg-type]
    assert (identity.make, identity.model, identity.dialect) == (make, model, dialect)


def test_bdminer_named_only_in_a_probe_description_still_identifies_the_sealminer() -> None:
    stats = {
        "STATUS": [{"STATUS": "S", "Description": "bdminer 4.11.1"}],
        "STATS": [{"Model": "A2", "Board Count": 3}],
    }
    identity = classify(None, None, {"stats": stats}, host="127.64.0.1", port=4028)
    assert (identity.make, identity.model, identity.dialect) == (
        "SealMiner",
        "SealMiner A2",
        Dialect.SEALMINER,
    )


@pytest.mark.parametrize("wire", ["A2", "A3 Pro"])
def test_sealminer_poll_names_the_model_as_identification_did(wire: str) -> None:
    # The reader re-identifies a device whose poll names another model than its cached identity: the
    # driver must name an unlisted model ("A3 Pro") exactly as identification did, or every poll would
    # identify the machine afresh.
    stats = {
        "STATUS": [{"STATUS": "S", "Description": "bdminer 4.11.1"}],
        "STATS": [{"Model": wire, "Board Count": 3, "MHS(1m)": 2.2e8}],
    }
    identity = classify(None, None, {"stats": stats}, host="127.64.0.1", port=4028)
    reading = SealMinerDriver().parse(identity, {"stats": stats}, None)
    assert reading.wire_model is not None
    assert canonical_model(reading.wire_model, identity.make) == identity.model == f"SealMiner {wire}"


MAKES = {"auradine": "Auradine", "sealminer": "SealMiner", "clone": None}
STATES = {
    "mining": {State.MINING},
    "sleeping": {State.SLEEPING},
    "dead_board": {State.DEGRADED},
    "overheating": {State.DEGRADED},
    "pool_down": {State.IDLE, State.DEGRADED},
}


def _mismatches(row: dict[str, object], sample: Sample) -> list[str]:
    found = []
    if sample.make != MAKES[str(row["make"])]:
        found.append(f"make {sample.make}")
    if sample.model != row["model"]:
        found.append(f"model {sample.model}")
    states = set(STATES[str(row["state"])])
    if row["make"] == "sealminer" and row["state"] == "sleeping":
        states.add(State.DEGRADED)  # BDMiner's sleep flag is not known: 0 TH/s is all it shows
    if sample.state not in states:
        found.append(f"state {sample.state}")
    nominal = row["hashrate_ths"]
    assert isinstance(nominal, float | int)
    if row["state"] == "mining" and (
        sample.hashrate_ths is None or abs(sample.hashrate_ths - nominal) > 0.1 * nominal
    ):
        found.append(f"hashrate {sample.hashrate_ths} vs {nominal}")
    if row["make"] == "sealminer" and (sample.serial, (sample.mac or "").upper()) != (
        row["serial"],
        row["mac"],
    ):
        found.append(f"serial/mac {sample.serial} {sample.mac}")
    unknown = [e.code for e in sample.errors if e.code == "unknown_make"]
    if unknown != (["unknown_make"] if row["make"] == "clone" else []):
        found.append(f"errors {[e.code for e in sample.errors]}")
    if row["state"] != "pool_down" and not sample.pools:
        found.append("no pools")
    if row["state"] == "mining" and (sample.temp_max_c is None or not sample.fans_rpm):
        found.append(f"temps {sample.temp_max_c} fans {sample.fans_rpm}")
    return found


async def test_poller_reads_auradine_sealminer_and_clones_as_the_manifest_says_in_both_cycles() -> None:
    async with simulated_fleet(
        36, mix="auradine:1,sealminer:1,clone:1", subnet="127.64.10.0/24", seed=14
    ) as fleet:
        rows = fleet.manifest
        assert {str(r["state"]) for r in rows} >= {"mining", "sleeping", "dead_board"}
        targets = [Target(str(r["ip"])) for r in rows]
        poller = Poller(PollerSettings(concurrency=50, deadline_s=5.0))
        for cycle in (1, 2):  # cycle 2 runs on cached identities
            samples = await poller.poll_once(targets)
            wrong = {r["ip"]: m for r, s in zip(rows, samples, strict=True) if (m := _mismatches(r, s))}
            assert wrong == {}, f"cycle {cycle}"
