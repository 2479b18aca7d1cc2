"""The Avalon personality against the real captures: keys, JSON types, units, MM ID0 tokens; states as named.

Model specs come from fleetmon/supplychain/data/models.csv (hashrate, power) and pyasic 0.79's model
definitions (3 boards; 120 chips and 4 fans on the A1246, 160 chips and 2 fans on the A1566).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from collectors.simulator.device import Firmware, Make, ModelSpec, SimDevice, SimState
from collectors.simulator.personalities.avalon import AvalonPersonality
from collectors.simulator.personalities.base import HttpRequest, parse_rpc_request

NOW = 1_790_000_000.0
A1246 = ModelSpec(Make.AVALON, "Avalon A1246", "1246-83", 3, 120, 4, 90.0, 3420.0)
A1566 = ModelSpec(Make.AVALON, "Avalon A1566", "15-194", 3, 160, 2, 185.0, 3420.0)
FW = {"1246-83": "21072802_4ec6bb0_211fc46", "15-194": "24102401_25462b2_9ddf522"}
TOKEN = re.compile(r"(\w+)\[([^\]]*)\]")
PERSONALITY = AvalonPersonality()


def make_device(spec: ModelSpec, state: SimState = SimState.MINING, seed: int = 11) -> SimDevice:
    """A device up for three hours at NOW."""
    dev = SimDevice(
        ip="127.21.0.4",
        spec=spec,
        firmware=Firmware.STOCK,
        firmware_version=FW[spec.wire_type],
        serial="A15-194-0123",
        mac="12:34:56:78:90:12",
        hostname="avalon",
        seed=seed,
        boot_time=NOW - 10_800,
        state=state,
    )
    dev.advance(NOW)
    return dev


def ask(
    dev: SimDevice, request: dict[str, object] | str, personality: AvalonPersonality = PERSONALITY
) -> bytes:
    raw = request.encode() if isinstance(request, str) else json.dumps(request).encode()
    return personality.rpc(dev, parse_rpc_request(raw), NOW)


def ask_json(dev: SimDevice, request: dict[str, object] | str) -> dict[str, object]:
    """Send a JSON request (a bare name becomes {"command": name}) and parse the reply."""
    reply = ask(dev, {"command": request} if isinstance(request, str) else request)
    assert reply.endswith(b"\x00") and reply.count(b"\x00") == 1
    parsed = json.loads(reply[:-1])
    assert isinstance(parsed, dict)
    return parsed


def load(captures: Path, name: str) -> dict[str, object]:
    parsed = json.loads((captures / "avalon" / name).read_text())
    assert isinstance(parsed, dict)
    return parsed


def kind(value: object) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    return type(value).__name__


def token_kind(value: str) -> str:
    """How a bracket value reads: empty, a number list, a number (or percent), or text."""
    value = value.strip()
    if not value:
        return "empty"
    parts = value.split()
    numeric = all(re.fullmatch(r"-?\d+(\.\d+)?%?", p) for p in parts)
    if len(parts) > 1:
        return f"list[{len(parts)}]" if numeric else "text"
    return "number" if numeric else "text"


def tokens(mm: object) -> list[tuple[str, str]]:
    assert isinstance(mm, str)
    return TOKEN.findall(mm)


def assert_same_shape(sim: object, cap: object, path: str = "$") -> None:
    """Same keys and JSON types recursively; `MM ID0` strings must carry the same tokens, kinds and order."""
    assert kind(sim) == kind(cap), f"{path}: {kind(sim)} != {kind(cap)}"
    if isinstance(sim, dict) and isinstance(cap, dict):
        assert set(sim) == set(cap), (
            f"{path}: missing {set(cap) - set(sim)}, unexpected {set(sim) - set(cap)}"
        )
        for key in cap:
            if key == "MM ID0":
                sim_tokens, cap_tokens = tokens(sim[key]), tokens(cap[key])
                assert [k for k, _ in sim_tokens] == [k for k, _ in cap_tokens], f"{path}.MM ID0 token keys"
                for (name, s), (_, c) in zip(sim_tokens, cap_tokens, strict=True):
                    if name not in ("SYSTEMSTATU", "Ver", "DNA", "ATAOPTS0", "ATAOPTS1", "ATAOPTS2"):
                        assert token_kind(s) == token_kind(c), f"{path}.MM ID0.{name}: {s!r} vs {c!r}"
            else:
                assert_same_shape(sim[key], cap[key], f"{path}.{key}")
    elif isinstance(sim, list) and isinstance(cap, list):
        assert len(sim) == len(cap) or path.endswith("POOLS") or path.endswith("STATS"), path
        for s, c in zip(sim, cap, strict=False):
            assert_same_shape(s, c, f"{path}[]")


def mm(reply: dict[str, object]) -> dict[str, str]:
    stats = reply["STATS"]
    assert isinstance(stats, list)
    return dict(tokens(stats[0]["MM ID0"]))


@pytest.mark.parametrize(
    ("capture", "command", "spec"),
    [
        ("avalon1566_version.json", "version", A1566),
        ("avalon1566_devs.json", "devs", A1566),
        ("avalon1566_pools.json", "pools", A1566),
        ("avalon1566_stats.json", "stats", A1566),
        ("avalon1566_estats.json", "estats", A1566),
        ("avalon1246_stats.json", "stats", A1246),
    ],
)
def test_replies_match_capture_shape(captures_dir: Path, capture: str, command: str, spec: ModelSpec) -> None:
    cap = load(captures_dir, capture)
    sim = ask_json(make_device(spec), {"command": command})
    assert_same_shape(sim, cap)


def test_multicommand_has_the_shape_of_the_a10_capture(captures_dir: Path) -> None:
    cap = load(captures_dir, "avalon10xx_pools+summary+stats.json")
    sim = ask_json(make_device(A1566), {"command": "summary+stats+pools"})
    assert list(sim) == list(cap)
    for part in ("summary", "pools"):
        assert_same_shape(sim[part], cap[part], part)
    sim_stats, cap_stats = sim["stats"], cap["stats"]
    assert isinstance(sim_stats, list) and isinstance(cap_stats, list)
    # The A10's MM string has its own token set; the envelope and the non-MM keys must match.
    # (the captured unit had three pools, the simulated one two).
    assert [set(s) for s in sim_stats[0]["STATS"]] == [set(c) for c in cap_stats[0]["STATS"][:3]]


def test_hashrates_are_mh_in_devs_and_gh_in_mm(captures_dir: Path) -> None:
    cap_devs = load(captures_dir, "avalon1566_devs.json")["DEVS"]
    sim_devs = ask_json(make_device(A1566), {"command": "devs"})["DEVS"]
    assert isinstance(cap_devs, list) and isinstance(sim_devs, list)
    for key in ("MHS 30s", "MHS 1m", "MHS av"):
        assert 1 / 3 < sim_devs[0][key] / cap_devs[0][key] < 3, key
    assert sim_devs[0]["MHS 1m"] == pytest.approx(185e6, rel=0.1)
    cap_mm, sim_mm = (
        mm(load(captures_dir, "avalon1566_estats.json")),
        mm(ask_json(make_device(A1566), "estats")),
    )
    for key in ("GHSspd", "GHSmm", "GHSavg"):
        assert 1 / 3 < float(sim_mm[key]) / float(cap_mm[key]) < 3, key
    for s, c in zip(sim_mm["MGHS"].split(), cap_mm["MGHS"].split(), strict=True):
        assert 1 / 3 < float(s) / float(c) < 3


def test_version_identifies_the_model_the_way_pyasic_reads_it() -> None:
    version = ask_json(make_device(A1566), {"command": "version"})["VERSION"]
    assert isinstance(version, list)
    assert (version[0]["PROD"], version[0]["MODEL"], version[0]["MAC"]) == (
        "AvalonMiner 15-194", "15-194", "123456789012"
    )  # fmt: skip
    prod = ask_json(make_device(A1246), {"command": "version"})["VERSION"]
    assert isinstance(prod, list) and prod[0]["PROD"].upper().split("-")[0] == "AVALONMINER 1246"


def test_litestats_drops_the_per_chip_arrays() -> None:
    dev = make_device(A1246)
    full, lite = mm(ask_json(dev, "stats")), mm(ask_json(dev, "litestats"))
    dropped = set(full) - set(lite)
    assert dropped and all(re.match(r"^(PVT_[TV]|MW|ASICCRC)\d+$", k) for k in dropped)
    assert lite["MGHS"] and lite["SYSTEMSTATU"] == full["SYSTEMSTATU"]


def test_chip_arrays_have_one_entry_per_chip() -> None:
    tokens_ = mm(ask_json(make_device(A1566), "estats"))
    assert [len(tokens_[f"PVT_T{i}"].split()) for i in range(3)] == [160, 160, 160]


def test_softoff_puts_the_unit_idle_and_softon_wakes_it(captures_dir: Path) -> None:
    dev = make_device(A1566)
    reply = ask_json(dev, {"command": "ascset", "parameter": "0,softoff,1:1790000005"})
    assert_same_shape(reply, load(captures_dir, "avalonq_ascset_softoff.json"))
    status = reply["STATUS"]
    assert isinstance(status, list) and status[0]["Msg"] == "ASC 0 set info: success softoff:1790000005"
    dev.advance(NOW + 10)
    tokens_ = mm(ask_json(dev, "estats"))
    assert tokens_["SYSTEMSTATU"].startswith("Work: In Idle") and tokens_["SoftOFF"] == "4"
    devs = ask_json(dev, "devs")["DEVS"]
    assert isinstance(devs, list) and devs[0]["MHS 1m"] == 0
    on = ask_json(dev, {"command": "ascset", "parameter": "0,softon,1:1790000020"})
    assert_same_shape(on, load(captures_dir, "avalonq_ascset_softon.json"))
    assert dev.state is SimState.MINING


@pytest.mark.parametrize(
    ("parameter", "capture"),
    [("0,led,1-1", "avalonq_ascset_workmode.json"), ("0,worklevel,set,1", "avalonq_ascset_workmode.json"),
     ("0,help", "avalonq_ascset_help.json")],
)  # fmt: skip
def test_ascset_answers_like_the_captures(captures_dir: Path, parameter: str, capture: str) -> None:
    cap = load(captures_dir, capture)
    sim = ask_json(make_device(A1566), {"command": "ascset", "parameter": parameter})
    assert_same_shape(sim, cap)
    sim_status, cap_status = sim["STATUS"], cap["STATUS"]
    assert isinstance(sim_status, list) and isinstance(cap_status, list)
    assert (sim_status[0]["STATUS"], sim_status[0]["Code"]) == (
        cap_status[0]["STATUS"],
        cap_status[0]["Code"],
    )


def test_devdetails_names_the_avalon_driver(captures_dir: Path) -> None:
    sim = ask_json(make_device(A1566), "devdetails")
    assert_same_shape(sim, load(captures_dir, "avalonq_devdetails.json"))
    assert "AVALON" in json.dumps(sim).upper()


def test_dead_board_has_no_hashrate_and_no_chip_temperatures() -> None:
    tokens_ = mm(ask_json(make_device(A1246, SimState.DEAD_BOARD), "estats"))
    assert float(tokens_["MGHS"].split()[2]) == 0.0 and float(tokens_["MGHS"].split()[0]) > 0
    assert set(tokens_["PVT_T2"].split()) == {"0"}
    assert tokens_["SYSTEMSTATU"] == "Work: In Work, Hash Board: 2 "


def test_overheating_shows_hot_boards() -> None:
    tokens_ = mm(ask_json(make_device(A1566, SimState.OVERHEATING), "estats"))
    assert int(tokens_["TMax"]) > 100


def test_pool_down_marks_pools_dead() -> None:
    dev = make_device(A1566, SimState.POOL_DOWN)
    pools = ask_json(dev, "pools")["POOLS"]
    assert isinstance(pools, list) and {p["Status"] for p in pools} == {"Dead"}
    assert mm(ask_json(dev, "estats"))["POOLS"] == "1"


def test_bare_nan_quirk_reproduces_the_a10_raw_capture(captures_dir: Path) -> None:
    raw = (captures_dir / "avalon" / "avalon10xx_pools+summary+stats-2.raw.txt").read_bytes()
    assert b'"MHS av":nan,' in raw
    dev = make_device(A1566, SimState.SLEEPING)
    reply = ask(dev, {"command": "pools+summary+stats"}, AvalonPersonality(bare_nan=True))
    assert b'"MHS av":nan,' in reply
    with pytest.raises(json.JSONDecodeError):
        json.loads(reply[:-1])
    assert b"nan" not in ask(dev, {"command": "pools+summary+stats"})


def test_leading_comma_quirk_is_opt_in() -> None:
    dev = make_device(A1566)
    assert ask(dev, "summary", AvalonPersonality(leading_comma=True)).startswith(b"STATUS=")
    assert ask(dev, {"command": "summary"}, AvalonPersonality(leading_comma=True)).startswith(b',"STATUS"')


def test_unknown_command_is_invalid() -> None:
    sim = ask_json(make_device(A1566), {"command": "frobnicate"})
    status = sim["STATUS"]
    assert isinstance(status, list) and (status[0]["STATUS"], status[0]["Code"]) == ("E", 14)


def test_web_page_names_avalon() -> None:
    resp = PERSONALITY.http(make_device(A1246), HttpRequest("GET", "/", "", {}), NOW)
    assert resp.status == 200 and b"Avalon" in resp.body


# ---- over real sockets, read by an independent client ---------------------------------------------


@pytest.mark.parametrize(
    ("ip", "spec", "backend"),
    [("127.32.0.2", A1246, "CGMinerAvalon1246"), ("127.32.0.3", A1566, "CGMinerAvalon1566")],
)
async def test_pyasic_identifies_avalon_and_reads_its_hashrate(
    ip: str, spec: ModelSpec, backend: str
) -> None:
    from pyasic import get_miner

    from collectors.simulator.server import FleetServer, ListenMode

    dev = make_device(spec)
    dev.ip = ip
    server = FleetServer([dev], mode=ListenMode.PER_DEVICE)
    await server.start()
    try:
        miner = await get_miner(ip)
        assert miner is not None and type(miner).__name__ == backend
        assert miner.make == "AvalonMiner"
        data = await miner.get_data()
    finally:
        await server.close()
    assert data.hashrate is not None
    assert float(data.hashrate) == pytest.approx(spec.nominal_ths, rel=0.1)
    assert float(data.expected_hashrate or 0) == pytest.approx(spec.nominal_ths)
    assert data.mac == dev.mac.upper()
    assert [b.chips for b in data.hashboards] == [spec.chips_per_board] * spec.boards
