"""The simulated Antminer-family replies have the captures' keys, JSON types, units and malformations."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from collectors.simulator.device import Firmware, SimDevice, SimState
from collectors.simulator.personalities.base import HttpRequest, parse_rpc_request
from collectors.simulator.personalities.models import by_name
from collectors.simulator.personalities.registry import personality_for

NOW = 1_790_000_000.0


def make_device(
    model: str = "Antminer S19 Pro", firmware: Firmware = Firmware.STOCK, **kw: object
) -> SimDevice:
    versions = {
        Firmware.STOCK: "20221206",
        Firmware.BRAIINS: "0.1.0-75912fc7",
        Firmware.LUXOS: "2025.4.8.220305-57b389c7",
        Firmware.VNISH: "1.2.6",
    }
    return SimDevice(
        ip="127.29.0.1",
        spec=by_name(model),
        firmware=firmware,
        firmware_version=versions[firmware],
        serial="THQING0BDJAB024NF",
        mac="02:55:97:22:3A:72",
        hostname="Antminer",
        seed=42,
        boot_time=NOW - 50_000,
        **kw,  # type: ignore[arg-type]
    )


def repair(raw: bytes) -> dict[str, object]:
    """What a tolerant client does: strip the NUL, glue `}{` back together."""
    text = raw.rstrip(b"\x00").decode().replace("}{", "},{")
    data = json.loads(text)
    assert isinstance(data, dict)
    return data


def ask(dev: SimDevice, command: str) -> dict[str, object]:
    raw = personality_for(dev).rpc(dev, parse_rpc_request(json.dumps({"command": command}).encode()), NOW)
    assert raw.endswith(b"\x00")
    return repair(raw)


def shape_diff(sim: object, cap: object, path: str = "$") -> list[str]:
    """Differences in key sets and JSON types between two decoded replies (lists compared per index)."""
    if isinstance(cap, bool) or isinstance(sim, bool):
        return [] if type(cap) is type(sim) else [f"{path}: {type(sim).__name__} != {type(cap).__name__}"]
    if isinstance(cap, dict):
        if not isinstance(sim, dict):
            return [f"{path}: not an object"]
        out = []
        if set(sim) != set(cap):
            out.append(f"{path}: extra {sorted(set(sim) - set(cap))} missing {sorted(set(cap) - set(sim))}")
        for key in set(sim) & set(cap):
            if key in ("When",):
                continue
            out += shape_diff(sim[key], cap[key], f"{path}.{key}")
        return out
    if isinstance(cap, list):
        if not isinstance(sim, list):
            return [f"{path}: not a list"]
        if cap and not sim:
            return [f"{path}: empty list"]
        return [d for i in range(min(len(sim), len(cap))) for d in shape_diff(sim[i], cap[i], f"{path}[{i}]")]
    if type(sim) is not type(cap):
        return [f"{path}: {type(sim).__name__} {sim!r} != {type(cap).__name__} {cap!r}"]
    return []


def load(captures_dir: Path, name: str) -> dict[str, object]:
    data = json.loads((captures_dir / name).read_text())
    assert isinstance(data, dict)
    return data


STOCK_MINING = ["version", "stats", "summary", "pools", "devs"]


@pytest.mark.parametrize("command", STOCK_MINING)
def test_stock_s19pro_matches_capture_shape(captures_dir: Path, command: str) -> None:
    sim = ask(make_device(), command)
    assert shape_diff(sim, load(captures_dir, f"antminer/s19pro_{command}.json")) == []


@pytest.mark.parametrize("command", ["stats", "version", "pools"])
def test_stock_overheating_matches_capture_shape(captures_dir: Path, command: str) -> None:
    sim = ask(make_device(state=SimState.OVERHEATING), command)
    assert shape_diff(sim, load(captures_dir, f"antminer/s19-overheating_{command}.json")) == []


def test_stock_overheating_reports_chip_temps_93_to_97() -> None:
    body = ask(make_device(state=SimState.OVERHEATING), "stats")["STATS"][1]  # type: ignore[index]
    assert all(93 <= body[f"temp2_{i}"] <= 97 for i in (1, 2, 3))


def test_stock_sleeping_with_empty_slot_matches_capture_shape(captures_dir: Path) -> None:
    dev = make_device(state=SimState.SLEEPING)
    dev.boards[0].chips = 0  # the captured S19 slept with its first chain empty
    sim = ask(dev, "stats")
    cap = load(captures_dir, "antminer/s19-sleeping_stats.json")
    assert shape_diff(sim, cap) == []
    body = sim["STATS"][1]  # type: ignore[index]
    assert body["Mode"] == 2 and body["GHS 5s"] == 0.0
    assert body["chain_rate1"] == "" and body["chain_acs1"] == "" and body["chain_acn1"] == 0
    assert set(body["chain_acs2"].replace(" ", "")) == {"x"}


def test_stock_dead_board_has_no_chips_and_no_rate() -> None:
    body = ask(make_device(state=SimState.DEAD_BOARD), "stats")["STATS"][1]  # type: ignore[index]
    assert body["chain_acn3"] == 0 and body["chain_acs3"] == "" and body["chain_rate3"] == ""
    assert "temp3" not in body and body["temp_num"] == 2


def test_stock_units_are_gh_like_the_capture(captures_dir: Path) -> None:
    cap = load(captures_dir, "antminer/s19pro_summary.json")["SUMMARY"][0]  # type: ignore[index]
    sim = ask(make_device(), "summary")["SUMMARY"][0]  # type: ignore[index]
    cap_ratio = cap["GHS 5s"] / 110.0
    sim_ratio = sim["GHS 5s"] / 110.0
    assert 0.9 < sim_ratio / cap_ratio < 1.1


def test_stock_stats_glue_elements_like_the_raw_captures(captures_dir: Path) -> None:
    dev = make_device()
    raw = personality_for(dev).rpc(dev, parse_rpc_request(b'{"command":"stats"}'), NOW)
    cap = (captures_dir / "antminer/s9-hiveon_stats.raw.txt").read_bytes()
    assert b"}{" in cap and b"}{" in raw
    with pytest.raises(json.JSONDecodeError):
        json.loads(raw.rstrip(b"\x00"))
    assert len(repair(raw)["STATS"]) == 2  # type: ignore[arg-type]


def test_vnish_type_carries_firmware_and_glues_stats() -> None:
    dev = make_device("Antminer S21", Firmware.VNISH)
    raw = personality_for(dev).rpc(dev, parse_rpc_request(b'{"command":"stats"}'), NOW)
    assert b"}{" in raw
    assert repair(raw)["STATS"][0]["Type"] == "Antminer S21 (Vnish 1.2.6)"  # type: ignore[index]


def test_web_system_info_matches_capture_shape(captures_dir: Path) -> None:
    dev = make_device("Antminer S21")
    stock = personality_for(dev)
    unauth = stock.http(dev, HttpRequest("GET", "/cgi-bin/get_system_info.cgi", "", {}), NOW)
    assert unauth.status == 401
    page = type(stock).web_system_info(stock, dev, NOW)  # type: ignore[attr-defined]
    assert shape_diff(page, load(captures_dir, "antminer/s21_web_get_system_info.json")) == []
    assert page["serinum"] == dev.serial and page["macaddr"] == dev.mac


BRAIINS = {
    "version": "braiins-os/boser-buildroot_version.json",
    "summary": "braiins-os/s9-bosplus_summary.json",
    "pools": "braiins-os/s9-bosplus_pools.json",
    "devs": "braiins-os/s9-bosplus_devs.json",
    "fans": "braiins-os/s9-bosplus_fans.json",
    "temps": "braiins-os/s9-bosplus_temps.json",
}


@pytest.mark.parametrize("command", sorted(BRAIINS))
def test_braiins_matches_capture_shape(captures_dir: Path, command: str) -> None:
    sim = ask(make_device(firmware=Firmware.BRAIINS), command)
    assert shape_diff(sim, load(captures_dir, BRAIINS[command])) == []


def test_braiins_hashrate_is_mh() -> None:
    sim = ask(make_device(firmware=Firmware.BRAIINS), "summary")["SUMMARY"][0]  # type: ignore[index]
    assert 0.9e8 < sim["MHS 1m"] < 1.3e8  # 110 TH/s in MH/s


LUXOS = [
    "version",
    "stats",
    "summary",
    "pools",
    "devs",
    "config",
    "power",
    "fans",
    "temps",
    "profiles",
    "events",
]


@pytest.mark.parametrize("command", LUXOS)
def test_luxos_matches_capture_shape(captures_dir: Path, command: str) -> None:
    dev = make_device("Antminer S19k Pro", Firmware.LUXOS, state=SimState.DEAD_BOARD)
    sim = ask(dev, command)
    assert shape_diff(sim, load(captures_dir, f"luxos/s19kpro_{command}.json")) == []


def test_luxos_stats_units_are_gh() -> None:
    dev = make_device("Antminer S19k Pro", Firmware.LUXOS)
    body = ask(dev, "stats")["STATS"][1]  # type: ignore[index]
    assert 100_000 < body["GHS 5s"] < 140_000 and body["rate_unit"] == "GH"


def test_every_reply_is_fresh_per_time() -> None:
    dev = make_device()
    first = ask(dev, "summary")["SUMMARY"][0]["Elapsed"]  # type: ignore[index]
    raw = personality_for(dev).rpc(dev, parse_rpc_request(b"summary"), NOW + 60)
    assert first == 50_000 and b"Elapsed=50060" in raw and time.time() > 0
