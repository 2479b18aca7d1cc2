"""Build a reproducible simulated fleet, and write its manifest (JSON) and operator inventory (CSV).

Everything is drawn from one `random.Random(seed)`: the same arguments give the same fleet, byte for
byte in the manifest and inventory.

Assembly countries follow the sources listed in docs/supply-chain.md:
- Bitmain: factories in MY, TH and ID; a US line delivering from Dec 2024 (new units only); units
  entered before 2021 are mostly CN (before the move to South-East Asia).
- Canaan: MY; a US pilot completed by Jun 2025, so a small US share from Jul 2025; older units CN.
- MicroBT: the sources say its first overseas factory opened in Sep 2020 but do not name the country.
  We put it in MY (decision: South-East Asia like its peers; a parameter, not a fact), with CN for units
  entered before 2021 and a small US share from 2025 (Blockspace: "a production line on American soil").
- Auradine and Bitdeer (SealMiner): no source locates their assembly, and the clone's maker is unknown by
  definition, so these devices carry no assembly country (and no origin evidence) in the manifest and
  the inventory: the analytics must show them as unknown, not guess.
Entry dates fall between the model's release year and 2026-10-31. Customs values are nominal TH/s
times a street price per TH for the entry year (an estimate in the spirit of models.csv's deal prices).
About 12% of devices are left out of the inventory: an operator's records are never complete.

Security posture knobs (docs/security.md): `api_open` is the fraction of devices whose CGMiner API grants
`privileged` (write) access to anyone (only makes whose firmware answers `privileged`: not Whatsminer),
`changed_passwords` the fraction whose web UI no longer takes the factory password. Both are drawn from
their own random stream, so turning them on leaves the rest of a seed's fleet as it was. The manifest
names each device's `api_write_open`, `web_password_changed` and `firmware_build_date` (the date its
firmware version carries, read here independently of the collectors; null when it carries none).
"""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import ipaddress
import json
import random
import time
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from collectors.simulator.device import Fault, Firmware, Make, ModelSpec, SimDevice, SimState
from collectors.simulator.personalities.models import RELEASE_YEAR, of_make
from collectors.simulator.server import FleetServer, ListenMode, ServerTimings

DEFAULT_SUBNET = "127.20.0.0/16"
DEFAULT_MIX = "antminer:60,whatsminer:25,avalon:15,braiins:0,luxos:0,vnish:0"
HTS_CODE = "8543.70.9960"
INVENTORY_SHARE = 0.88
LAST_ENTRY = dt.date(2026, 10, 31)

# mix key -> (hardware make, firmware)
MIX_KEYS: dict[str, tuple[Make, Firmware]] = {
    "antminer": (Make.ANTMINER, Firmware.STOCK),
    "whatsminer": (Make.WHATSMINER, Firmware.STOCK),
    "avalon": (Make.AVALON, Firmware.STOCK),
    "braiins": (Make.ANTMINER, Firmware.BRAIINS),
    "luxos": (Make.ANTMINER, Firmware.LUXOS),
    "vnish": (Make.ANTMINER, Firmware.VNISH),
    "auradine": (Make.AURADINE, Firmware.STOCK),
    "sealminer": (Make.SEALMINER, Firmware.STOCK),
    "clone": (Make.CLONE, Firmware.STOCK),
}

# Model weights inside a make (a fleet that grew over five years). S19k Pro is LuxOS-only here.
MODEL_WEIGHTS: dict[str, float] = {
    "Antminer S19 Pro": 18,
    "Antminer S19j Pro": 20,
    "Antminer S19 XP": 14,
    "Antminer S19k Pro": 0,
    "Antminer S21": 20,
    "Antminer S21 Pro": 10,
    "Antminer S21 XP": 8,
    "Antminer T21": 10,
    "Whatsminer M30S": 15,
    "Whatsminer M30S+": 20,
    "Whatsminer M30S++": 20,
    "Whatsminer M50": 20,
    "Whatsminer M60S": 25,
    # Canaan's install base in 2026: the A1566 (2024) is its current volume model and many A1246s (2021)
    # are still running; the A1366 shipped through the 2022-23 bear market, when Canaan's sales fell
    # hardest, so it is the rarest of the three. (pyasic 0.79 has no A1366 class: see the pyasic test.)
    "Avalon A1246": 35,
    "Avalon A1366": 10,
    "Avalon A1566": 55,
    "Auradine AT1500": 1,
    "SealMiner A2": 1,
    "ClonerX C1": 1,
}
LUXOS_MODELS = (
    "Antminer S19 Pro",
    "Antminer S19j Pro",
    "Antminer S19k Pro",
    "Antminer S19 XP",
    "Antminer S21",
)
BRAIINS_MODELS = ("Antminer S19 Pro", "Antminer S19j Pro", "Antminer S19 XP", "Antminer S21", "Antminer T21")
VNISH_MODELS = ("Antminer S19 Pro", "Antminer S19j Pro", "Antminer S19 XP", "Antminer S21", "Antminer T21")

STATE_WEIGHTS: tuple[tuple[SimState, float], ...] = (
    (SimState.MINING, 0.88),
    (SimState.SLEEPING, 0.03),
    (SimState.DEAD_BOARD, 0.04),
    (SimState.OVERHEATING, 0.02),
    (SimState.POOL_DOWN, 0.03),
)

# Firmware builds per dialect and model. Stock Antminer: build date; Whatsminer: btminer version
# (builds after 2024-11 also serve API v3); Avalon: VERSION tag; aftermarket: their own versions.
ANTMINER_BUILDS: dict[str, tuple[str, ...]] = {
    "Antminer S19 Pro": ("20201211", "20221206"),
    "Antminer S19j Pro": ("20220609", "20230518"),
    "Antminer S19 XP": ("20221024", "20230926"),
    "Antminer S19k Pro": ("20230912",),
    "Antminer S21": ("20240325", "20251009"),
    "Antminer S21 Pro": ("20241118", "20250612"),
    "Antminer S21 XP": ("20250305",),
    "Antminer T21": ("20240510", "20250110"),
}
WHATSMINER_BUILDS: dict[str, tuple[str, ...]] = {
    "Whatsminer M30S": ("20210109.22.REL", "20210322.22.REL", "20220919.15.REL"),
    "Whatsminer M30S+": ("20210322.22.REL", "20220919.15.REL", "20230911.12.REL"),
    "Whatsminer M30S++": ("20210322.22.REL", "20220919.15.REL", "20230911.12.REL"),
    "Whatsminer M50": ("20220919.15.REL", "20230911.12.REL", "20241220.17.REL"),
    "Whatsminer M60S": ("20231120.15.REL", "20250214.11.REL", "20250612.17.REL"),
}
AVALON_BUILDS: dict[str, tuple[str, ...]] = {
    "Avalon A1246": ("21072802_4ec6bb0_211fc46",),
    "Avalon A1366": ("22101801_4f7e3a1_b2c6d90",),
    "Avalon A1566": ("24102401_25462b2_9ddf522",),
}
# GCMiner builds as the captures' STATUS Descriptions name them; BDMiner as sealminer/a2_version.json;
# the clone's firmware is a build date (its CompileTime), like stock Antminer.
OTHER_BUILDS: dict[Make, tuple[str, ...]] = {
    Make.AURADINE: ("2023-05.24-0ce5e7cc", "2023-12.27-9bf070ee"),
    Make.SEALMINER: ("4.11.1",),
    Make.CLONE: ("20230815", "20240302"),
}
AFTERMARKET_BUILDS: dict[Firmware, tuple[str, ...]] = {
    Firmware.BRAIINS: ("0.1.0-75912fc7", "0.1.0-11012d53"),
    Firmware.LUXOS: ("2025.4.8.220305-57b389c7", "2025.9.8.152528-e04420b4"),
    Firmware.VNISH: ("1.2.5", "1.2.6"),
}
V3_FROM = 20241101
PRIVILEGED_MAKES = frozenset({Make.ANTMINER, Make.AVALON, Make.AURADINE, Make.SEALMINER, Make.CLONE})
"""Makes whose simulated firmware answers cgminer's `privileged` (btminer does not)."""
CHANGED_WEB_PASSWORD = "farm-changed-pw"

PRICE_PER_TH: dict[int, float] = {
    2020: 24.0,
    2021: 60.0,
    2022: 38.0,
    2023: 18.0,
    2024: 16.0,
    2025: 15.0,
    2026: 14.0,
}
EVIDENCE: tuple[tuple[str, float], ...] = (
    ("nameplate", 0.3),
    ("commercial_invoice", 0.45),
    ("customs_entry", 0.25),
)


@dataclass
class FleetDevice:
    """A simulated device plus the supply-chain facts the operator's paperwork holds."""

    device: SimDevice
    vendor: str  # firmware vendor for the manifest: bitmain, microbt, canaan, braiins, luxor, vnish
    assembly_country: str | None  # ISO 3166 alpha-2; None where no source locates the maker's assembly
    entry_date: dt.date
    customs_value_usd: int
    origin_evidence: str | None
    in_inventory: bool


def parse_mix(text: str) -> dict[str, int]:
    """ "antminer:60,whatsminer:25" -> weights; ValueError names the bad part."""
    mix: dict[str, int] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        key, sep, value = part.partition(":")
        key = key.strip().lower()
        if not sep or key not in MIX_KEYS:
            raise ValueError(f"bad mix entry {part!r}: expected one of {', '.join(MIX_KEYS)} as key:weight")
        try:
            weight = int(value)
        except ValueError as exc:
            raise ValueError(f"bad mix weight in {part!r}: not an integer") from exc
        if weight < 0:
            raise ValueError(f"bad mix weight in {part!r}: negative")
        mix[key] = weight
    if sum(mix.values()) <= 0:
        raise ValueError("the mix has no positive weight")
    return mix


def host_addresses(subnet: str) -> Iterator[str]:
    """Usable device addresses in `subnet`, skipping host octets .0 and .255."""
    net = ipaddress.ip_network(subnet, strict=False)
    if not net.subnet_of(ipaddress.ip_network("127.0.0.0/8")):  # type: ignore[arg-type]
        raise ValueError(f"{subnet} is not on loopback (127.0.0.0/8)")
    for addr in net.hosts() if net.num_addresses > 2 else net:
        if addr.packed[-1] not in (0, 255):
            yield str(addr)


def _allocate(mix: Mapping[str, float], n: int) -> list[str]:
    """Largest-remainder split of n devices over the mix keys, in mix order."""
    total = sum(mix.values())
    shares = {k: n * w / total for k, w in mix.items()}
    counts = {k: int(v) for k, v in shares.items()}
    left = n - sum(counts.values())
    for k in sorted(shares, key=lambda k: shares[k] - counts[k], reverse=True)[:left]:
        counts[k] += 1
    return [k for k in mix for _ in range(counts[k])]


def _model_weight(model: str, firmware: Firmware) -> float:
    # The S19k Pro appears only under LuxOS (its capture's firmware), where it is a common model.
    if firmware is Firmware.LUXOS and model == "Antminer S19k Pro":
        return 20.0
    return MODEL_WEIGHTS[model]


def _weighted(rng: random.Random, items: Sequence[tuple[str, float]]) -> str:
    return rng.choices([i for i, _ in items], weights=[w for _, w in items])[0]


def _serial(rng: random.Random, make: Make, entry: dt.date) -> str:
    alnum = "ABCDEFGHJKLMNPQRSTUVWXYZ0123456789"
    if make is Make.ANTMINER:  # 17 characters, e.g. THQING0BDJAB024NF, JYZZB0UBDJABF06RB
        return rng.choice(("TH", "JY", "YN", "HT")) + "".join(rng.choice(alnum) for _ in range(15))
    if make is Make.WHATSMINER:  # 20 characters, board-style: H5M14S69129A17K10002
        head = f"H{rng.randint(1, 9)}M{rng.randint(10, 99)}S{entry:%y%m}"
        return f"{head}{rng.randint(0, 99999):05d}K{rng.randint(10000, 99999)}"
    if make is Make.SEALMINER:  # 16 characters, as the capture's Ctrl Board SN: S127200252001850
        return f"S1272{entry:%y}{rng.randint(0, 999_999_999):09d}"
    return f"{rng.randint(0, 0xFFFFFFFFFFFF):012X}{entry:%y%m}"  # Avalon: DNA-derived hex + build month


def _mac(rng: random.Random, make: Make) -> str:
    first = {
        Make.ANTMINER: 0x02,
        Make.WHATSMINER: 0xC4,
        Make.AVALON: 0xB4,
        Make.AURADINE: 0x0A,
        Make.SEALMINER: 0x50,  # the capture's MAC starts 50:d4:48
        Make.CLONE: 0x06,
    }[make]
    rest = [rng.randint(0, 255) for _ in range(5)]
    return ":".join(f"{b:02X}" for b in [first, *rest])


def _entry_date(rng: random.Random, model: str) -> dt.date:
    start = dt.date(RELEASE_YEAR.get(model, 2020), 3, 1)
    return start + dt.timedelta(days=rng.randint(0, (LAST_ENTRY - start).days))


def _country(rng: random.Random, make: Make, entry: dt.date) -> str | None:
    if make in (Make.AURADINE, Make.SEALMINER, Make.CLONE):
        return None  # no source says where (see the module docstring)
    if make is Make.ANTMINER:
        if entry < dt.date(2021, 1, 1) and rng.random() < 0.6:
            return "CN"
        if entry >= dt.date(2024, 12, 9) and rng.random() < 0.15:
            return "US"
        return _weighted(rng, (("MY", 0.45), ("TH", 0.35), ("ID", 0.20)))
    if make is Make.AVALON:
        if entry < dt.date(2021, 1, 1) and rng.random() < 0.5:
            return "CN"
        if entry >= dt.date(2025, 7, 1) and rng.random() < 0.10:
            return "US"
        return "MY"
    if entry < dt.date(2021, 1, 1) and rng.random() < 0.7:
        return "CN"
    if entry >= dt.date(2025, 1, 1) and rng.random() < 0.10:
        return "US"
    return "MY"


def _firmware_version(rng: random.Random, model: str, firmware: Firmware, make: Make) -> str:
    if firmware is not Firmware.STOCK:
        return rng.choice(AFTERMARKET_BUILDS[firmware])
    if make is Make.ANTMINER:
        return rng.choice(ANTMINER_BUILDS[model])
    if make is Make.WHATSMINER:
        return rng.choice(WHATSMINER_BUILDS[model])
    if make in OTHER_BUILDS:
        return rng.choice(OTHER_BUILDS[make])
    return rng.choice(AVALON_BUILDS[model])


def _vendor(make: Make, firmware: Firmware) -> str:
    if firmware is Firmware.BRAIINS:
        return "braiins"
    if firmware is Firmware.LUXOS:
        return "luxor"
    if firmware is Firmware.VNISH:
        return "vnish"
    return {
        Make.ANTMINER: "bitmain",
        Make.WHATSMINER: "microbt",
        Make.AVALON: "canaan",
        Make.AURADINE: "auradine",
        Make.SEALMINER: "bitdeer",
        Make.CLONE: "clonerx",
    }[make]


def _hostname(make: Make, firmware: Firmware) -> str:
    if firmware is Firmware.BRAIINS:
        return "braiins-os"
    return {
        Make.ANTMINER: "Antminer",
        Make.WHATSMINER: "WhatsMiner",
        Make.AVALON: "Avalon",
        Make.AURADINE: "Auradine",
        Make.SEALMINER: "SealMiner",
        Make.CLONE: "ClonerX",
    }[make]


def build_fleet(
    devices: int,
    *,
    mix: str = DEFAULT_MIX,
    subnet: str = DEFAULT_SUBNET,
    faults: float = 0.0,
    seed: int = 1,
    now: float | None = None,
    api_open: float = 0.0,
    changed_passwords: float = 0.0,
) -> list[FleetDevice]:
    """Draw `devices` simulated miners; ValueError on a bad argument (message says which)."""
    if devices < 0:
        raise ValueError("--devices must be >= 0")
    for name, value in (
        ("--faults", faults),
        ("--api-open", api_open),
        ("--changed-passwords", changed_passwords),
    ):
        if not 0.0 <= value <= 1.0:
            raise ValueError(f"{name} must be a fraction between 0 and 1")
    posture_rng = random.Random(f"posture-{seed}")
    weights = parse_mix(mix)
    addresses = host_addresses(subnet)
    rng = random.Random(seed)
    now = time.time() if now is None else now
    kinds = _allocate(weights, devices)
    rng.shuffle(kinds)
    allowed = {
        Firmware.LUXOS: LUXOS_MODELS,
        Firmware.BRAIINS: BRAIINS_MODELS,
        Firmware.VNISH: VNISH_MODELS,
    }
    # Models are split by weight exactly (largest remainder), not drawn one by one, so a fleet of 100
    # Avalons holds the weighted share of each model rather than whatever the dice gave.
    models: dict[str, list[ModelSpec]] = {}
    for kind in weights:
        make, firmware = MIX_KEYS[kind]
        by_name = {spec.name: spec for spec in of_make(make, allowed.get(firmware))}
        shares = {name: _model_weight(name, firmware) for name in by_name}
        drawn = [by_name[name] for name in _allocate(shares, kinds.count(kind))]
        rng.shuffle(drawn)
        models[kind] = drawn
    fault_kinds = list(Fault)
    fleet: list[FleetDevice] = []
    for index, kind in enumerate(kinds):
        try:
            ip = next(addresses)
        except StopIteration:
            raise ValueError(f"subnet {subnet} has room for only {index} devices") from None
        make, firmware = MIX_KEYS[kind]
        spec = models[kind].pop()
        state = rng.choices([s for s, _ in STATE_WEIGHTS], weights=[w for _, w in STATE_WEIGHTS])[0]
        fault = rng.choice(fault_kinds) if rng.random() < faults else None
        entry = _entry_date(rng, spec.name)
        version = _firmware_version(rng, spec.name, firmware, make)
        dev = SimDevice(
            ip=ip,
            spec=spec,
            firmware=firmware,
            firmware_version=version,
            serial=_serial(rng, make, entry),
            mac=_mac(rng, make),
            hostname=_hostname(make, firmware),
            seed=rng.getrandbits(32),
            boot_time=now - rng.randint(600, 40 * 86_400),
            state=state,
            fault=fault,
            whatsminer_api_v3=make is Make.WHATSMINER and int(version[:8]) >= V3_FROM,
        )
        open_draw, password_draw = posture_rng.random(), posture_rng.random()
        dev.api_write_open = make in PRIVILEGED_MAKES and open_draw < api_open
        dev.web_password = CHANGED_WEB_PASSWORD if password_draw < changed_passwords else None
        price = PRICE_PER_TH.get(entry.year, 15.0)
        country = _country(rng, make, entry)  # the draws stay in their order: a seed gives the same fleet
        value = round(spec.nominal_ths * price * rng.uniform(0.9, 1.1))
        evidence = _weighted(rng, EVIDENCE)
        fleet.append(
            FleetDevice(
                device=dev,
                vendor=_vendor(make, firmware),
                assembly_country=country,
                entry_date=entry,
                customs_value_usd=value,
                origin_evidence=evidence if country is not None else None,
                in_inventory=rng.random() < INVENTORY_SHARE,
            )
        )
    return fleet


def _build_date(dev: SimDevice) -> str | None:
    """The ISO build date the simulated firmware's version carries, or None (Braiins, VNish, BDMiner)."""
    version = dev.firmware_version
    try:
        if dev.firmware is Firmware.LUXOS:  # "2025.4.8.220305-57b389c7"
            year, month, day = version.split(".")[:3]
            return dt.date(int(year), int(month), int(day)).isoformat()
        if dev.firmware is not Firmware.STOCK:
            return None
        if dev.spec.make in (Make.ANTMINER, Make.WHATSMINER, Make.CLONE):  # "20221206", "20210322.22.REL"
            return dt.datetime.strptime(version[:8], "%Y%m%d").date().isoformat()
        if dev.spec.make is Make.AVALON:  # "21072802_4ec6bb0_211fc46"
            return dt.datetime.strptime(version[:6], "%y%m%d").date().isoformat()
        if dev.spec.make is Make.AURADINE:  # "2023-05.24-0ce5e7cc"
            return dt.datetime.strptime(version[:10], "%Y-%m.%d").date().isoformat()
    except ValueError:
        return None
    return None


def manifest_rows(fleet: Sequence[FleetDevice], rpc_port: int = 4028) -> list[dict[str, object]]:
    """One JSON object per device (the --manifest file)."""
    rows: list[dict[str, object]] = []
    for item in fleet:
        d = item.device
        rows.append(
            {
                "ip": d.ip,
                "port": rpc_port,
                "make": d.spec.make.value,
                "model": d.spec.name,
                "firmware": d.firmware.value,
                "firmware_vendor": item.vendor,
                "firmware_version": d.firmware_version,
                "state": d.state.value,
                "hashrate_ths": d.spec.nominal_ths,
                "power_w": d.spec.power_w,
                "serial": d.serial,
                "mac": d.mac,
                "hostname": d.hostname,
                "assembly_country": item.assembly_country,
                "fault": d.fault.value if d.fault is not None else None,
                "whatsminer_api_v3": d.whatsminer_api_v3,
                "api_write_open": d.api_write_open,
                "web_password_changed": d.web_password is not None,
                "firmware_build_date": _build_date(d),
            }
        )
    return rows


def write_manifest(fleet: Sequence[FleetDevice], path: Path) -> None:
    """Write the manifest JSON atomically (a reader never sees half a file)."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(manifest_rows(fleet), indent=1) + "\n", encoding="utf-8")
    tmp.replace(path)


INVENTORY_FIELDS = (
    "serial",
    "model",
    "assembly_country",
    "origin_evidence",
    "customs_value_usd",
    "entry_date",
    "hts_code",
)


def write_inventory(fleet: Sequence[FleetDevice], path: Path) -> int:
    """Write the operator's inventory CSV; returns how many devices it lists."""
    tmp = path.with_name(path.name + ".tmp")
    count = 0
    with tmp.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(INVENTORY_FIELDS)
        for item in fleet:
            if not item.in_inventory:
                continue
            writer.writerow(
                [
                    item.device.serial,
                    item.device.spec.name,
                    item.assembly_country or "",
                    item.origin_evidence or "",
                    item.customs_value_usd,
                    item.entry_date.isoformat(),
                    HTS_CODE,
                ]
            )
            count += 1
    tmp.replace(path)
    return count


@dataclass
class RunningFleet:
    """A fleet that is listening: its devices, the server, and the manifest rows."""

    devices: list[FleetDevice]
    server: FleetServer

    @property
    def manifest(self) -> list[dict[str, object]]:
        """The manifest rows (as --manifest writes them)."""
        return manifest_rows(self.devices, self.server.rpc_port)


@contextlib.asynccontextmanager
async def simulated_fleet(
    devices: int,
    *,
    mix: str = DEFAULT_MIX,
    subnet: str = DEFAULT_SUBNET,
    faults: float = 0.0,
    seed: int = 1,
    listen: ListenMode = ListenMode.AUTO,
    timings: ServerTimings | None = None,
    api_open: float = 0.0,
    changed_passwords: float = 0.0,
) -> AsyncIterator[RunningFleet]:
    """Start a fleet in this event loop; every device listens inside the block, none after it."""
    fleet = build_fleet(
        devices,
        mix=mix,
        subnet=subnet,
        faults=faults,
        seed=seed,
        api_open=api_open,
        changed_passwords=changed_passwords,
    )
    server = FleetServer([f.device for f in fleet], mode=listen, timings=timings)
    await server.start()
    try:
        yield RunningFleet(fleet, server)
    finally:
        await server.close()
