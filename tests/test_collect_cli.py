"""`fleetmon collect` as an operator runs it: a real poller over a simulated fleet, into SQLite.

The fleet runs in its own `fleetmon simulate` process (so nothing in this test process can stall the
devices); the collector runs a few cycles, gets SIGINT, and must exit 0 having stored exactly the
samples it appended to --out, failed devices included.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from fleet_process import FLEETMON, ROOT, simulated_fleet_process, wait_for

SUBNET = "127.46.0.0/24"
DEVICES = 24
NOBODY = "127.46.1.250"  # nothing listens here: a refused device in every cycle


def _run(*args: str, data_dir: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "FLEETMON_DATA_DIR": str(data_dir)}
    return subprocess.run([*FLEETMON, *args], cwd=ROOT, capture_output=True, text=True, env=env, check=False)


def _lines(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").splitlines() if path.exists() else []


@pytest.fixture
def fleet_manifest(tmp_path: Path) -> Iterator[Path]:
    """A simulated fleet in a `fleetmon simulate` subprocess; yields its manifest (a targets file)."""
    with simulated_fleet_process(tmp_path, DEVICES, SUBNET, seed=4) as manifest:
        yield manifest


def test_collect_stores_exactly_the_samples_it_wrote_to_out_and_stops_cleanly_on_sigint(
    fleet_manifest: Path, tmp_path: Path
) -> None:
    db_url = f"sqlite:///{tmp_path / 'fleet.db'}"
    out = tmp_path / "samples.jsonl"
    stderr = tmp_path / "collect.log"
    targets = [f"@{fleet_manifest}", NOBODY]
    with stderr.open("wb") as err:
        collector = subprocess.Popen(
            [*FLEETMON, "collect", *targets, "--db", db_url, "--site", "rack-a", "--interval", "0.5",
             "--timeout", "3", "--concurrency", "50", "--out", str(out)],
            cwd=ROOT, stdout=err, stderr=err, env={**os.environ, "FLEETMON_DATA_DIR": str(tmp_path)},
        )  # fmt: skip
        try:
            cycles = 3
            assert wait_for(lambda: len(_lines(out)) >= cycles * (DEVICES + 1), 90), stderr.read_text()
            collector.send_signal(signal.SIGINT)
            assert collector.wait(60) == 0, stderr.read_text()
        finally:
            if collector.poll() is None:
                collector.kill()
                collector.wait(10)

    produced = _lines(out)
    assert len(produced) % (DEVICES + 1) == 0  # whole cycles only: the one in progress was finished
    rows = [json.loads(line) for line in produced]
    fleet_ips = {device["ip"] for device in json.loads(fleet_manifest.read_text())}
    assert {row["ip"] for row in rows} == fleet_ips | {NOBODY}
    assert {row["state"] for row in rows if row["ip"] == NOBODY} == {"unreachable"}
    assert sum(1 for row in rows if row["state"] == "mining") >= cycles * DEVICES // 2

    export = _run("db", "export-samples", "--db", db_url, data_dir=tmp_path)
    assert export.returncode == 0, export.stderr
    stored = export.stdout.splitlines()
    key = lambda row: (row["ip"], row["port"], row["ts"])  # noqa: E731
    assert Counter(key(json.loads(line)) for line in stored) == Counter(key(row) for row in rows)
    assert len(set(map(key, rows))) == len(rows)  # one row per (device, ts)
    assert sorted(stored) == sorted(produced)  # and each stored sample is the one produced


def test_collect_rejects_a_bad_target_before_polling(tmp_path: Path) -> None:
    result = _run(
        "collect", "10.0.0.1", "10.0.0.300", "--db", f"sqlite:///{tmp_path / 'x.db'}", data_dir=tmp_path
    )
    assert result.returncode == 2
    assert "10.0.0.300" in result.stderr
    assert not (tmp_path / "x.db").exists()
