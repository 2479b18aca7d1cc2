"""Security posture over real sockets: a simulated fleet with a known mix of open APIs, factory web
passwords and old builds; the poller's samples carry exactly the findings its manifest implies, a
locked-down device carries none, and `fleetmon probe --json` lists `api_write_open` only where the API
grants `privileged`."""

from __future__ import annotations

import collections
import datetime as dt
import json
import subprocess
from collections.abc import Iterator

import pytest
from fleet_process import FLEETMON, ROOT, simulated_fleet_process

from collectors.poller import Poller, PollerSettings
from collectors.posture import DEFAULT_FIRMWARE_MAX_AGE_DAYS, PostureSettings
from collectors.sample import Sample
from collectors.simulator.fleet import build_fleet, simulated_fleet
from collectors.targets import Target
from collectors.web import WebCredentials

MIX = "antminer:30,whatsminer:20,avalon:15,braiins:10,luxos:10,vnish:10,auradine:3,sealminer:2"
ANTMINER_WEB = WebCredentials(profile="antminer-default", username="root", password="root")
VNISH_WEB = WebCredentials(profile="vnish-default", username="admin", password="admin")
WEB_LOGIN_FIRMWARE = {"stock", "vnish"}
"""Antminer firmware whose web UI the collector logs into for the serial (the CGI and VNish's API)."""


def expected_codes(row: dict[str, object], max_age_days: int, today: dt.date) -> set[str]:
    """The finding codes a device's manifest row implies, from the protocol and the fleet's knobs."""
    codes = set()
    if row["api_write_open"]:
        codes.add("api_write_open")
    if (
        row["make"] == "antminer"
        and row["firmware"] in WEB_LOGIN_FIRMWARE
        and not row["web_password_changed"]
    ):
        codes.add("default_credentials")
    built = row["firmware_build_date"]
    if built is not None and (today - dt.date.fromisoformat(str(built))).days > max_age_days:
        codes.add("firmware_outdated")
    return codes


async def _poll(rows: list[dict[str, object]], settings: PostureSettings, cycles: int) -> list[list[Sample]]:
    poller_settings = PollerSettings(
        concurrency=40,
        deadline_s=5.0,
        credentials=ANTMINER_WEB,
        vnish_credentials=VNISH_WEB,
        posture=settings,
    )
    targets = [Target(str(r["ip"]), int(str(r["port"]))) for r in rows]
    async with Poller(poller_settings) as poller:
        return [await poller.poll_once(targets) for _ in range(cycles)]


@pytest.mark.parametrize("max_age_days", [DEFAULT_FIRMWARE_MAX_AGE_DAYS, 1200])
async def test_samples_carry_exactly_the_findings_the_manifest_implies(max_age_days: int) -> None:
    async with simulated_fleet(
        90, mix=MIX, subnet="127.78.1.0/24", seed=18, api_open=0.3, changed_passwords=0.4
    ) as fleet:
        rows = fleet.manifest
        cycles = await _poll(rows, PostureSettings(firmware_max_age_days=max_age_days), cycles=2)
    today = dt.datetime.now(dt.UTC).date()
    expected = collections.Counter(c for r in rows for c in expected_codes(r, max_age_days, today))
    # The mix must exercise every finding both ways, or the counts below prove little.
    assert all(expected[code] > 0 for code in ("api_write_open", "default_credentials", "firmware_outdated"))
    assert expected["api_write_open"] < len(rows) and expected["default_credentials"] < len(rows)
    for samples in cycles:  # the second cycle uses the cached identity: the findings must stay
        wrong = []
        for row, sample in zip(rows, samples, strict=True):
            got = {f.code for f in sample.security}
            if got != expected_codes(row, max_age_days, today):
                wrong.append((row["ip"], row["make"], row["firmware"], sorted(got)))
        assert wrong == []
        counted = collections.Counter(f.code for s in samples for f in s.security)
        assert counted == expected
        assert all(
            f.severity in ("low", "medium", "high", "critical") and f.message
            for s in samples
            for f in s.security
        )


async def test_a_locked_down_device_has_no_finding() -> None:
    async with simulated_fleet(
        40, mix="antminer:1", subnet="127.78.2.0/24", seed=7, api_open=0.0, changed_passwords=1.0
    ) as fleet:
        recent = [
            r for r in fleet.manifest if r["firmware_build_date"] and r["firmware_build_date"] >= "2025"
        ]
        assert recent
        (samples,) = await _poll(recent, PostureSettings(), cycles=1)
    for sample in samples:
        assert sample.security == [], sample
        # The changed password shows as a failed login: the reading stands and nothing is flagged.
        assert [e.code for e in sample.errors if e.code.startswith("web_")] == ["web_auth_failed"]


async def test_posture_checks_can_be_turned_off() -> None:
    async with simulated_fleet(
        10, mix="antminer:1", subnet="127.78.3.0/24", seed=2, api_open=1.0, changed_passwords=1.0
    ) as fleet:
        rows = fleet.manifest
        (asked,) = await _poll(rows, PostureSettings(firmware_max_age_days=100_000), cycles=1)
        (silent,) = await _poll(
            rows, PostureSettings(check_api_write=False, firmware_max_age_days=100_000), cycles=1
        )
    assert [f.code for s in asked for f in s.security] == ["api_write_open"] * len(rows)
    assert [f.code for s in silent for f in s.security] == []


def test_posture_knobs_leave_the_rest_of_a_seeds_fleet_unchanged() -> None:
    plain = build_fleet(200, mix=MIX, subnet="127.78.5.0/24", seed=9, now=1.8e9)
    knobbed = build_fleet(
        200, mix=MIX, subnet="127.78.5.0/24", seed=9, now=1.8e9, api_open=0.5, changed_passwords=0.5
    )
    fields = ("ip", "serial", "firmware_version", "state", "mac")
    assert [[getattr(f.device, n) for n in fields] for f in plain] == [
        [getattr(f.device, n) for n in fields] for f in knobbed
    ]
    assert not any(f.device.api_write_open or f.device.web_password for f in plain)
    opened = [f for f in knobbed if f.device.api_write_open]
    assert opened and all(f.device.spec.make.value != "whatsminer" for f in opened)
    assert 0 < sum(f.device.web_password is not None for f in knobbed) < len(knobbed)
    with pytest.raises(ValueError, match="--api-open"):
        build_fleet(1, api_open=1.5)


@pytest.fixture(scope="module")
def fleet_process(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[dict[str, object]]]:
    """A simulator in another process, half its APIs open to writes; yields the manifest rows."""
    with simulated_fleet_process(
        tmp_path_factory.mktemp("sim"),
        16,
        "127.78.4.0/27",
        seed=5,
        extra=("--mix", "antminer:3,avalon:1", "--api-open", "0.5"),
    ) as manifest:
        yield json.loads(manifest.read_text())


@pytest.mark.parametrize("make", ["antminer", "avalon"])
def test_probe_json_lists_api_write_open_only_where_privileged_is_granted(
    fleet_process: list[dict[str, object]], make: str
) -> None:
    rows = [r for r in fleet_process if r["make"] == make]
    for write_open in (True, False):
        row = next(r for r in rows if r["api_write_open"] is write_open)
        proc = subprocess.run(
            [*FLEETMON, "probe", f"{row['ip']}:4028", "--json"],
            cwd=ROOT, capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        assert proc.returncode == 0, proc.stderr
        sample = json.loads(proc.stdout.strip().splitlines()[-1])
        codes = [f["code"] for f in sample.get("security", [])]
        assert ("api_write_open" in codes) is write_open, (row, codes)
