"""The Whatsminer personality against the real captures: same keys, JSON types and units; states as named.

Model specs are built here from fleetmon/supplychain/data/models.csv (nominal hashrate, power) and
pyasic 0.79's model definitions (boards, chips, fans), so these tests do not depend on the simulator's
model table.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from collectors.simulator.device import Firmware, Make, ModelSpec, SimDevice, SimState
from collectors.simulator.personalities.base import parse_rpc_request
from collectors.simulator.personalities.whatsminer import WhatsminerPersonality, firmware_date

NOW = 1_790_000_000.0
M30S = ModelSpec(Make.WHATSMINER, "Whatsminer M30S", "M30S_V50", 3, 156, 2, 88.0, 3344.0)
M30S_PLUS = ModelSpec(Make.WHATSMINER, "Whatsminer M30S+", "M30S+_VE40", 3, 156, 2, 100.0, 3400.0)
# M31S: not in models.csv; 3x105 chips from pyasic M31SV10, 76 TH from the capture's Factory GHS 75697.
M31S = ModelSpec(Make.WHATSMINER, "Whatsminer M31S", "M31S_V10", 3, 105, 2, 76.0, 3360.0)
M60S = ModelSpec(Make.WHATSMINER, "Whatsminer M60S", "M60S_VK40", 3, 225, 2, 186.0, 3255.0)

FW_2020 = "20200512.13.REL"  # m30s-new-firmware
FW_2021 = "20201202.22.REL"  # m31s-new-firmware
FW_API2 = "20240624.18.REL"  # apiv2.0.5_status FirmwareVersion
FW_V3 = "20251209.16.Rel2"  # m60s-vk40_v3_get.device.info

# Numbered error keys, and error codes used as keys ({"540": "<time>"}), vary with the state.
ERROR_KEY = re.compile(r"^((Factory )?Error( Code)? \d+( Time)?|\d+)$")
PERSONALITY = WhatsminerPersonality()


def make_device(
    spec: ModelSpec, firmware: str, state: SimState = SimState.MINING, seed: int = 7
) -> SimDevice:
    """A device that has been up for ten hours at NOW."""
    dev = SimDevice(
        ip="127.20.0.9",
        spec=spec,
        firmware=Firmware.STOCK,
        firmware_version=firmware,
        serial="HTM3X10A123456789",
        mac="c6:06:12:00:2d:63",
        hostname="WhatsMiner",
        seed=seed,
        boot_time=NOW - 36_000,
        state=state,
        whatsminer_api_v3=firmware_date(firmware) > 20241100,
    )
    dev.advance(NOW)
    return dev


def ask(dev: SimDevice, request: dict[str, object] | str) -> bytes:
    raw = request.encode() if isinstance(request, str) else json.dumps(request).encode()
    return PERSONALITY.rpc(dev, parse_rpc_request(raw), NOW)


def ask_json(dev: SimDevice, request: dict[str, object] | str) -> dict[str, object]:
    reply = ask(dev, request)
    assert reply.endswith(b"\x00") and reply.count(b"\x00") == 1
    parsed = json.loads(reply[:-1])
    assert isinstance(parsed, dict)
    return parsed


def load(captures: Path, name: str) -> dict[str, object]:
    text = (captures / "whatsminer" / name).read_text()
    parsed = json.loads(text.replace("\\'", "'"))
    assert isinstance(parsed, dict)
    return parsed


def kind(value: object) -> str:
    """The JSON type of a value (JSON has one number type, so int and float are the same here)."""
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "list"
    if isinstance(value, dict):
        return "object"
    return "null"


def assert_same_shape(sim: object, cap: object, path: str = "$", extra: frozenset[str] = frozenset()) -> None:
    """Same keys (numbered error keys aside, `extra` allowed) and same JSON types, recursively."""
    assert kind(sim) == kind(cap), f"{path}: {kind(sim)} != {kind(cap)}"
    if isinstance(sim, dict) and isinstance(cap, dict):
        sim_keys = {k for k in sim if not ERROR_KEY.match(k)} - extra
        cap_keys = {k for k in cap if not ERROR_KEY.match(k)}
        assert sim_keys == cap_keys, (
            f"{path}: missing {cap_keys - sim_keys}, unexpected {sim_keys - cap_keys}"
        )
        for key in cap_keys:
            assert_same_shape(sim[key], cap[key], f"{path}.{key}", extra)
    elif isinstance(sim, list) and isinstance(cap, list) and sim and cap:
        for item in sim:
            assert_same_shape(item, cap[0], f"{path}[]", extra)


def assert_same_units(sim: dict[str, object], cap: dict[str, object], keys: tuple[str, ...]) -> None:
    """Hashrate-like values within a factor of 3 of the capture's: a unit slip is a factor of 1000."""
    for key in keys:
        s, c = sim[key], cap[key]
        assert isinstance(s, int | float) and isinstance(c, int | float)
        assert c > 0 and 1 / 3 < s / c < 3, f"{key}: simulated {s} vs captured {c}"


CGMINER_CASES = [
    # capture, command, spec, firmware, section
    ("m30s-new-firmware_summary.json", "summary", M30S, FW_2020, "SUMMARY"),
    ("m30s-new-firmware_edevs.json", "edevs", M30S, FW_2020, "DEVS"),
    ("m30s-new-firmware_pools.json", "pools", M30S, FW_2020, "POOLS"),
    ("m31s-new-firmware_summary-2.json", "summary", M31S, FW_2021, "SUMMARY"),
    ("m31s-new-firmware_edevs-2.json", "edevs", M31S, FW_2021, "DEVS"),
    ("m31s-new-firmware_pools-2.json", "pools", M31S, FW_2021, "POOLS"),
    ("m3x-105chip_summary.json", "summary", M31S, FW_API2, "SUMMARY"),
    ("m3x-105chip_devs.json", "devs", M31S, FW_API2, "DEVS"),
    ("m3x-105chip_pools.json", "pools", M31S, FW_API2, "POOLS"),
]


@pytest.mark.parametrize(("capture", "command", "spec", "firmware", "section"), CGMINER_CASES)
def test_cgminer_side_replies_match_capture_shape(
    captures_dir: Path, capture: str, command: str, spec: ModelSpec, firmware: str, section: str
) -> None:
    cap = load(captures_dir, capture)
    sim = ask_json(make_device(spec, firmware), {"command": command})
    assert_same_shape(sim, cap)
    cap_status, sim_status = cap["STATUS"], sim["STATUS"]
    assert isinstance(cap_status, list) and isinstance(sim_status, list)
    assert sim_status[0]["Code"] == cap_status[0]["Code"]
    assert sim_status[0]["Description"] == cap_status[0]["Description"] or firmware == FW_API2


@pytest.mark.parametrize(
    ("capture", "spec", "firmware"),
    [
        ("m30s-new-firmware_summary.json", M30S, FW_2020),
        ("m31s-new-firmware_summary-2.json", M31S, FW_2021),
        ("m3x-105chip_summary.json", M31S, FW_API2),
    ],
)
def test_summary_hashrates_are_mh_and_factory_ghs_is_gh(
    captures_dir: Path, capture: str, spec: ModelSpec, firmware: str
) -> None:
    cap = load(captures_dir, capture)["SUMMARY"]
    sim = ask_json(make_device(spec, firmware), {"command": "summary"})["SUMMARY"]
    assert isinstance(cap, list) and isinstance(sim, list)
    assert_same_units(sim[0], cap[0], ("MHS av", "MHS 5s", "MHS 1m", "MHS 5m", "MHS 15m", "Factory GHS"))
    assert sim[0]["Firmware Version"] == f"'{firmware}'"


def test_summary_key_order_follows_the_wire_capture(captures_dir: Path) -> None:
    cap = load(captures_dir, "m31s-new-firmware_summary-2.json")["SUMMARY"]
    sim = ask_json(make_device(M31S, FW_2021), {"command": "summary"})["SUMMARY"]
    assert isinstance(cap, list) and isinstance(sim, list)
    cap_order = [k for k in cap[0] if not ERROR_KEY.match(k)]
    assert [k for k in sim[0] if not ERROR_KEY.match(k)] == cap_order


def test_devs_hashrates_are_mh(captures_dir: Path) -> None:
    cap = load(captures_dir, "m30s-new-firmware_edevs.json")["DEVS"]
    sim = ask_json(make_device(M30S, FW_2020), {"command": "edevs"})["DEVS"]
    assert isinstance(cap, list) and isinstance(sim, list)
    for board_sim, board_cap in zip(sim, cap, strict=True):
        assert_same_units(board_sim, board_cap, ("MHS av", "MHS 1m", "MHS 15m"))


def test_devdetails_reports_model_and_bitmicro_driver(captures_dir: Path) -> None:
    cap = load(captures_dir, "m30s+ve40_devdetails.json")
    sim = ask_json(make_device(M30S_PLUS, FW_2021), {"command": "devdetails"})
    assert_same_shape(sim["DEVDETAILS"], cap["DEVDETAILS"])
    assert sim["DEVDETAILS"] == cap["DEVDETAILS"]


BTMINER_CASES = [
    ("m3x-105chip_get_version.json", "get_version", "20210322.22.REL", SimState.MINING),
    ("apiv2.0.5_get_version.json", "get_version", FW_API2, SimState.MINING),
    ("m3x-105chip_get_psu.json", "get_psu", "20210322.22.REL", SimState.MINING),
    ("m3x-105chip_status.json", "status", "20210322.22.REL", SimState.MINING),
    ("apiv2.0.5_status.json", "status", FW_API2, SimState.MINING),
    ("m31s-sleeping_status.json", "status", "20210109.22.REL", SimState.SLEEPING),
    ("apiv2.0.5_get_error_code_with_errors.json", "get_error_code", FW_API2, SimState.DEAD_BOARD),
]


@pytest.mark.parametrize(("capture", "command", "firmware", "state"), BTMINER_CASES)
def test_btminer_commands_answer_with_string_status_and_object_msg(
    captures_dir: Path, capture: str, command: str, firmware: str, state: SimState
) -> None:
    cap = load(captures_dir, capture)
    sim = ask_json(make_device(M31S, firmware, state), {"command": command})
    assert_same_shape(sim, cap)
    assert sim["STATUS"] == "S" and sim["Code"] == 131
    assert sim["Description"] == cap["Description"]


def test_sleeping_status_reads_as_the_capture(captures_dir: Path) -> None:
    cap = load(captures_dir, "m31s-sleeping_status.json")
    sim = ask_json(make_device(M31S, "20210109.22.REL", SimState.SLEEPING), {"cmd": "status"})
    assert sim["Msg"] == cap["Msg"]


def test_get_miner_info_carries_mac_serial_and_hostname(captures_dir: Path) -> None:
    cap = load(captures_dir, "apiv2.0.5_get_miner_info.json")
    dev = make_device(M60S, FW_API2)
    sim = ask_json(dev, {"command": "get_miner_info"})
    assert_same_shape(sim, cap, extra=frozenset({"minersn"}))
    assert sim["Msg"] == {"hostname": "WhatsMiner", "ledstat": "auto", "mac": "C6:06:12:00:2D:63",
                          "minersn": dev.serial}  # fmt: skip


def test_stats_is_an_invalid_command() -> None:
    sim = ask_json(make_device(M31S, FW_2021), {"command": "stats"})
    assert (sim["STATUS"], sim["Code"], sim["Msg"]) == ("E", 14, "invalid cmd")


def test_2020_build_rejects_cmd_key_multicommand_like_the_capture(captures_dir: Path) -> None:
    cap = load(captures_dir, "m30s-new-firmware_pools+summary+edevs.json")
    sim = ask_json(make_device(M30S, FW_2020), {"cmd": "pools+summary+edevs"})
    cap_status, sim_status = cap["STATUS"], sim["STATUS"]
    assert isinstance(cap_status, list) and isinstance(sim_status, list)
    assert {**sim_status[0], "When": 0} == {**cap_status[0], "When": 0}
    assert sim.keys() == cap.keys()


def test_later_builds_serve_the_cmd_key_multicommand(captures_dir: Path) -> None:
    sim = ask_json(make_device(M31S, FW_2021), {"cmd": "pools+summary+edevs"})
    assert list(sim) == ["pools", "summary", "edevs", "id"]
    parts = ("summary", "edevs", "pools")
    # The multi-command capture (m31s-new-firmware_{pools,summary,edevs}.json) is a different unit whose
    # summary lacks "Chip Data" and "Env Temp"; the members are compared with the single-command captures.
    for part, capture in ((p, f"m31s-new-firmware_{p}-2.json") for p in parts):
        member = sim[part]
        assert isinstance(member, list) and len(member) == 1
        assert_same_shape(member[0], load(captures_dir, capture))


def test_command_key_multicommand_serves_every_member() -> None:
    sim = ask_json(make_device(M30S, FW_2020), {"command": "summary+devs+pools"})
    assert list(sim) == ["summary", "devs", "pools", "id"]


def test_m20s_september_2020_build_sends_the_invalid_quote_escape(captures_dir: Path) -> None:
    raw = (captures_dir / "whatsminer" / "m20s-new-firmware_summary.raw.txt").read_bytes()
    assert b"\"\\'20200917.22.REL\\'\"" in raw
    reply = ask(make_device(M30S, "20200917.22.REL"), {"command": "summary"})
    assert b'"Firmware Version":"\\\'20200917.22.REL\\\'"' in reply
    with pytest.raises(json.JSONDecodeError):
        json.loads(reply[:-1])


def test_plain_text_request_gets_plain_text_reply() -> None:
    reply = ask(make_device(M31S, FW_2021), "summary")
    assert reply.startswith(b"STATUS=S,") and b"|SUMMARY,Elapsed=" in reply and reply.endswith(b"|\x00")


def test_sleeping_device_reports_mineroff_and_zero_hashrate() -> None:
    dev = make_device(M60S, FW_API2, SimState.SLEEPING)
    status = ask_json(dev, {"command": "status"})["Msg"]
    assert isinstance(status, dict) and status["mineroff"] == "true"
    summary = ask_json(dev, {"command": "summary"})["SUMMARY"]
    assert isinstance(summary, list) and summary[0]["MHS 1m"] == 0


def test_mining_device_reports_nominal_hashrate() -> None:
    summary = ask_json(make_device(M60S, FW_API2), {"command": "summary"})["SUMMARY"]
    assert isinstance(summary, list)
    assert summary[0]["MHS 1m"] == pytest.approx(186.0e6, rel=0.1)
    assert summary[0]["Factory GHS"] == 186_000


def test_dead_board_is_dead_with_no_chips_and_raises_error_codes(captures_dir: Path) -> None:
    dead = load(captures_dir, "m21sv20_edevs.json")["DEVS"]
    assert isinstance(dead, list) and dead[0]["Status"] == "Dead" and dead[0]["Effective Chips"] == 0
    dev = make_device(M31S, FW_2021, SimState.DEAD_BOARD)
    devs = ask_json(dev, {"command": "edevs"})["DEVS"]
    assert isinstance(devs, list)
    assert [(d["Status"], d["Effective Chips"], d["MHS 1m"] == 0) for d in devs] == [
        ("Alive", 105, False), ("Alive", 105, False), ("Dead", 0, True)
    ]  # fmt: skip
    summary = ask_json(dev, {"command": "summary"})["SUMMARY"]
    assert isinstance(summary, list)
    assert summary[0]["Error Code Count"] == 2
    assert (summary[0]["Error Code 0"], summary[0]["Error Code 1"]) == (542, 562)
    assert summary[0]["Error 0 Time"] == ""


def test_summary_with_errors_matches_capture_shape(captures_dir: Path) -> None:
    cap = load(captures_dir, "m3x-105chip_summary_with_errors.json")
    sim = ask_json(make_device(M31S, FW_API2, SimState.DEAD_BOARD), {"command": "summary"})
    assert_same_shape(sim, cap)
    sim_summary, cap_summary = sim["SUMMARY"], cap["SUMMARY"]
    assert isinstance(sim_summary, list) and isinstance(cap_summary, list)
    assert {k for k in sim_summary[0] if ERROR_KEY.match(k)} == {
        k for k in cap_summary[0] if ERROR_KEY.match(k)
    }


def test_overheating_raises_temperature_protection_codes() -> None:
    dev = make_device(M31S, FW_API2, SimState.OVERHEATING)
    codes = ask_json(dev, {"command": "get_error_code"})["Msg"]
    assert isinstance(codes, dict)
    assert [next(iter(c)) for c in codes["error_code"]] == ["350", "351", "352"]
    summary = ask_json(dev, {"command": "summary"})["SUMMARY"]
    assert isinstance(summary, list) and summary[0]["Temperature"] > 85


def test_pool_down_marks_pools_dead_and_stops_hashing() -> None:
    dev = make_device(M31S, FW_2021, SimState.POOL_DOWN)
    pools = ask_json(dev, {"command": "pools"})["POOLS"]
    assert isinstance(pools, list) and {p["Status"] for p in pools} == {"Dead"}
    assert not any(p["Stratum Active"] for p in pools)
    summary = ask_json(dev, {"command": "summary"})["SUMMARY"]
    assert isinstance(summary, list) and summary[0]["MHS 1m"] == 0


# ---- API v3 ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("capture", "request_", "state"),
    [
        ("m60s-vk40_v3_get.device.info.json", {"cmd": "get.device.info"}, SimState.MINING),
        ("m60s-vk40_v3_get.device.info_with_errors.json", {"cmd": "get.device.info"}, SimState.DEAD_BOARD),
        (
            "v3_get.miner.status_summary.json",
            {"cmd": "get.miner.status", "param": "summary"},
            SimState.MINING,
        ),
        ("v3_get.miner.status_edevs.json", {"cmd": "get.miner.status", "param": "edevs"}, SimState.MINING),
        ("v3_get.miner.status_pools.json", {"cmd": "get.miner.status", "param": "pools"}, SimState.MINING),
    ],
)
def test_v3_replies_match_capture_shape(
    captures_dir: Path, capture: str, request_: dict[str, object], state: SimState
) -> None:
    cap = load(captures_dir, capture)
    sim = PERSONALITY.v3(make_device(M60S, FW_V3, state), request_, NOW)
    # pools carry "id" as well: pyasic's v3 config reader requires it (see whatsminer.py).
    extra = frozenset({"id"}) if capture.endswith("_pools.json") else frozenset()
    assert_same_shape(json.loads(json.dumps(sim)), cap, extra=extra)
    assert sim["code"] == 0 and sim["desc"] == cap["desc"]


def test_v3_hashrates_are_th_floats(captures_dir: Path) -> None:
    cap = load(captures_dir, "v3_get.miner.status_summary.json")["msg"]
    sim = PERSONALITY.v3(make_device(M60S, FW_V3), {"cmd": "get.miner.status", "param": "summary"}, NOW)[
        "msg"
    ]
    assert isinstance(cap, dict) and isinstance(sim, dict)
    assert_same_units(sim["summary"], cap["summary"], ("hash-average", "hash-realtime", "factory-hash"))
    assert isinstance(sim["summary"]["hash-realtime"], float)


def test_v3_device_reports_its_post_2024_11_build_on_every_version_path() -> None:
    dev = make_device(M60S, FW_V3)
    info = PERSONALITY.v3(dev, {"cmd": "get.device.info"}, NOW)["msg"]
    assert isinstance(info, dict)
    assert info["system"]["fwversion"] == FW_V3 and info["miner"]["type"] == "M60S_VK40"
    version = ask_json(dev, {"command": "get_version"})["Msg"]
    assert isinstance(version, dict) and version["fw_ver"] == FW_V3
    assert firmware_date(FW_V3) > 20241100


def test_web_redirects_to_https_luci() -> None:
    from collectors.simulator.personalities.base import HttpRequest

    resp = PERSONALITY.http(
        make_device(M60S, FW_V3), HttpRequest("GET", "/", "", {"host": "127.20.0.9"}), NOW
    )
    assert resp.status == 307
    assert dict(resp.headers)["Location"].startswith("https://127.20.0.9/")
    assert b"/cgi-bin/luci" in resp.body


# ---- over real sockets, read by an independent client ---------------------------------------------


@pytest.mark.parametrize(
    ("ip", "spec", "firmware", "backend"),
    [
        ("127.31.0.2", M30S_PLUS, FW_2021, "BTMinerM30SPlusVE40"),
        ("127.31.0.3", M60S, FW_V3, "BTMinerM60SVK40"),
    ],
)
async def test_pyasic_identifies_whatsminer_and_reads_its_hashrate(
    ip: str, spec: ModelSpec, firmware: str, backend: str
) -> None:
    from pyasic import get_miner

    from collectors.simulator.server import FleetServer, ListenMode

    dev = make_device(spec, firmware)
    dev.ip = ip
    server = FleetServer([dev], mode=ListenMode.PER_DEVICE)
    await server.start()
    try:
        miner = await get_miner(ip)
        assert miner is not None and type(miner).__name__ == backend
        assert miner.make == "WhatsMiner"
        # V2 firmware reads through btminer on 4028, V3 firmware through API v3 on 4433.
        assert type(miner.rpc).__name__ == ("BTMinerV3RPCAPI" if dev.whatsminer_api_v3 else "BTMinerRPCAPI")
        data = await miner.get_data()
    finally:
        await server.close()
    assert data.hashrate is not None
    assert float(data.hashrate) == pytest.approx(spec.nominal_ths, rel=0.1)
    assert data.fw_ver == firmware and data.serial_number == dev.serial
    assert [b.chips for b in data.hashboards] == [spec.chips_per_board] * spec.boards
