"""`fleetmon probe`, `scan` and `poll` as a user runs them (subprocesses, real sockets, a simulator
started in another process with `fleetmon simulate --manifest`)."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from fleet_process import FLEETMON, ROOT, simulated_fleet_process


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[dict[str, object]]]:
    """30 devices of every make in another process; yields the manifest rows."""
    with simulated_fleet_process(
        tmp_path_factory.mktemp("sim"),
        30,
        "127.44.0.0/27",
        seed=4,
        extra=("--mix", "antminer:5,whatsminer:3,avalon:2,vnish:1"),
    ) as manifest:
        yield json.loads(manifest.read_text())


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*FLEETMON, *args], cwd=ROOT, capture_output=True, text=True, timeout=60, check=False
    )


def test_probe_json_prints_the_sample_as_one_json_line(fleet: list[dict[str, object]]) -> None:
    row = next(r for r in fleet if r["make"] == "antminer" and r["firmware"] == "stock")
    proc = _run("probe", f"{row['ip']}:4028", "--json")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.strip().splitlines()
    assert len(lines) == 1
    sample = json.loads(lines[0])
    assert (sample["make"], sample["serial"], sample["mac"]) == ("Antminer", row["serial"], row["mac"])


def test_scan_output_feeds_poll_whose_last_line_is_the_summary(
    fleet: list[dict[str, object]], tmp_path: Path
) -> None:
    targets = tmp_path / "targets.json"
    scanned = _run("scan", "127.44.0.0/27", "--out", str(targets), "--timeout", "5")
    assert scanned.returncode == 0, scanned.stderr
    assert "identify" in scanned.stderr  # the progress bar goes to stderr
    found = json.loads(targets.read_text())
    assert sorted(d["ip"] for d in found) == sorted(str(r["ip"]) for r in fleet)
    samples_file = tmp_path / "samples.jsonl"
    polled = _run("poll", f"@{targets}", "--once", "--timeout", "5", "--out", str(samples_file))
    assert polled.returncode == 0, polled.stderr
    summary = json.loads(polled.stdout.strip().splitlines()[-1])
    assert set(summary) == {"devices", "ok", "failed", "seconds"}
    assert (summary["devices"], summary["ok"], summary["failed"]) == (len(fleet), len(fleet), 0)
    samples = [json.loads(line) for line in samples_file.read_text().splitlines()]
    assert len(samples) == len(fleet)


def test_poll_flags_an_address_where_nothing_listens(fleet: list[dict[str, object]], tmp_path: Path) -> None:
    out = tmp_path / "samples.jsonl"
    polled = _run("poll", "127.44.0.31", "--once", "--timeout", "2", "--out", str(out))
    summary = json.loads(polled.stdout.strip().splitlines()[-1])
    assert (summary["devices"], summary["failed"]) == (1, 1)
    sample = json.loads(out.read_text())
    assert sample["state"] == "unreachable"
    assert [e["code"] for e in sample["errors"]] == ["connection_refused"]
    assert sample["hashrate_ths"] is None


def test_poll_with_workers_writes_every_target_in_order(
    fleet: list[dict[str, object]], tmp_path: Path
) -> None:
    out = tmp_path / "samples.jsonl"
    polled = _run("poll", "127.44.0.0/27", "--once", "--timeout", "5", "--workers", "2", "--out", str(out))
    assert polled.returncode == 0, polled.stderr
    summary = json.loads(polled.stdout.strip().splitlines()[-1])
    nothing_there = 30 - len(fleet)  # the /27's hosts beyond the fleet refuse
    assert (summary["devices"], summary["ok"], summary["failed"]) == (30, len(fleet), nothing_there)
    samples = [json.loads(line) for line in out.read_text().splitlines()]
    assert [s["ip"] for s in samples] == [f"127.44.0.{i}" for i in range(1, 31)]
    serials = {
        str(r["ip"]): r["serial"] for r in fleet if r["make"] == "antminer" and r["firmware"] == "stock"
    }
    assert serials and all(s["serial"] == serials[s["ip"]] for s in samples if s["ip"] in serials)


def test_bad_target_is_a_clear_error(tmp_path: Path) -> None:
    proc = _run("poll", "10.0.0.300", "--once")
    assert proc.returncode == 2
    assert "10.0.0.300" in proc.stderr
