"""The issue's must-show: collector -> broker -> two ingesters -> PostgreSQL, nothing lost, nothing doubled.

Everything runs as the operator runs it, each in its own process: `fleetmon simulate` serves 200
devices; `fleetmon collect` polls them with the real poller and publishes to a private Mosquitto
(--out records every sample it produced); two `fleetmon ingest` processes share the subscription and
write to PostgreSQL. Mid-run one ingester is SIGKILLed and restarted, and the broker is restarted
(SIGTERM, persistence on), so the collector spools and replays. After SIGINT to the collector, the
(ip, ts) multiset `fleetmon db export-samples` prints must equal the --out file's: every sample stored
exactly once, and nothing else stored.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import mqtt_broker
import pytest
from fleet_process import simulated_fleet_process, stop_process, wait_for
from fleet_samples import count_rows, create_schema, drop_schema

private_broker = mqtt_broker.private_broker
ROOT = Path(__file__).resolve().parent.parent
FLEETMON = [sys.executable, "-m", "fleetmon.cli.main"]
DEVICES = 200
SUBNET = "127.47.0.0/24"
# Cycle numbers (as counted in the --out file) at which the faults happen, and the last one.
KILL_INGESTER, RESTART_INGESTER, STOP_BROKER, START_BROKER, LAST_CYCLE = 3, 6, 9, 13, 18


class IngesterProcess:
    """One `fleetmon ingest` subprocess; its stderr goes to a log file we read for readiness."""

    def __init__(self, broker_url: str, db_url: str, client_id: str, log_dir: Path) -> None:
        self.args = [
            sys.executable, "-m", "fleetmon.cli.main", "-v", "ingest", "--mqtt", broker_url, "--db", db_url,
            "--group", "pipeline", "--client-id", client_id, "--flush-interval", "0.1", "--batch", "500",
        ]  # fmt: skip
        self.log = log_dir / f"ingest-{client_id}.log"
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def start(self) -> None:
        """Start the process (appending to its log)."""
        self.starts += 1
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(self.args, cwd=ROOT, stdout=log, stderr=log)

    def subscribed_times(self) -> int:
        """How many times it has logged a subscription so far."""
        return self.log.read_text(errors="replace").count("ingesting from") if self.log.exists() else 0

    def kill(self) -> None:
        """SIGKILL: no flush, no acknowledgement, no clean disconnect."""
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)

    def stop(self) -> int | None:
        """SIGTERM and wait; returns the exit status."""
        if self.process is None or self.process.poll() is not None:
            return None if self.process is None else self.process.returncode
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return None


def _db_upgrade(db_url: str) -> subprocess.CompletedProcess[str]:
    """`fleetmon db upgrade` as the operator runs it before starting ingesters."""
    return subprocess.run(
        [sys.executable, "-m", "fleetmon.cli.main", "db", "upgrade", "--db", db_url],
        cwd=ROOT, capture_output=True, text=True, check=False, env=os.environ.copy(),
    )  # fmt: skip


def _cycles(out: Path) -> int:
    """Whole cycles the collector has appended to --out so far."""
    if not out.exists():
        return 0
    with out.open("rb") as fh:
        return sum(1 for _ in fh) // DEVICES


def _keys(lines: list[str]) -> Counter[tuple[str, str]]:
    rows = [json.loads(line) for line in lines]
    return Counter((row["ip"], row["ts"]) for row in rows)


@pytest.mark.slow
@pytest.mark.services
def test_every_polled_sample_is_stored_exactly_once_through_broker_restart_and_ingester_kill(
    private_broker: mqtt_broker.Broker, postgres_url: str, tmp_path: Path
) -> None:
    schema, db_url = create_schema(postgres_url)
    ingesters: list[IngesterProcess] = []
    collector: subprocess.Popen[bytes] | None = None
    out = tmp_path / "samples.jsonl"
    collector_log = tmp_path / "collect.log"
    try:
        upgrade = _db_upgrade(db_url)
        assert upgrade.returncode == 0, upgrade.stderr
        ingesters = [IngesterProcess(private_broker.url, db_url, name, tmp_path) for name in ("a", "b")]
        for ingester in ingesters:
            ingester.start()
        assert wait_for(lambda: all(i.subscribed_times() >= 1 for i in ingesters), 30)
        first, _second = ingesters

        with (
            simulated_fleet_process(tmp_path, DEVICES, SUBNET, seed=12) as manifest,
            collector_log.open("wb") as log,
        ):
            collector = subprocess.Popen(
                [*FLEETMON, "-v", "collect", f"@{manifest}", "--mqtt", private_broker.url,
                 "--site", "pipeline", "--collector-id", "collector-1", "--interval", "0.5", "--timeout", "4",
                 "--out", str(out), "--spool-dir", str(tmp_path / "spool")],
                cwd=ROOT, stdout=log, stderr=log, env={**os.environ, "FLEETMON_DATA_DIR": str(tmp_path)},
            )  # fmt: skip
            steps = [
                (KILL_INGESTER, first.kill),
                (RESTART_INGESTER, first.start),
                (STOP_BROKER, private_broker.stop),
                (START_BROKER, private_broker.start),
            ]
            for cycle, action in steps:
                assert wait_for(lambda c=cycle: _cycles(out) >= c, 60), collector_log.read_text()
                action()
            assert wait_for(lambda: _cycles(out) >= LAST_CYCLE, 60), collector_log.read_text()
            assert stop_process(collector, timeout=60) == 0, collector_log.read_text()

        produced = out.read_text(encoding="utf-8").splitlines()
        assert len(produced) >= LAST_CYCLE * DEVICES and len(produced) % DEVICES == 0
        stopped = re.search(
            r"collect stopped: .* (\d+) delivered, (\d+) spooled, (\d+) refused", collector_log.read_text()
        )
        assert stopped is not None, collector_log.read_text()
        delivered, spooled, refused = map(int, stopped.groups())
        assert spooled > 0  # the broker outage really went through the spool
        assert (delivered, refused) == (len(produced), 0)

        assert wait_for(lambda: count_rows(db_url) >= len(produced), 120, step=0.5)
        # Let any late redelivery land, then check nothing was added twice and nothing is missing.
        time.sleep(2)
        export = subprocess.run(
            [*FLEETMON, "db", "export-samples", "--db", db_url],
            cwd=ROOT, capture_output=True, text=True, check=False,
        )  # fmt: skip
        assert export.returncode == 0, export.stderr
        stored = export.stdout.splitlines()
        assert _keys(stored) == _keys(produced)
        assert len(stored) == len(produced) == len(set(_keys(produced)))
        assert first.starts == 2 and first.subscribed_times() >= 2
        print(f"pipeline: {len(produced)} samples produced, {spooled} spooled, {len(stored)} stored")
    finally:
        if collector is not None:
            stop_process(collector, timeout=30)
        for ingester in ingesters:
            ingester.stop()
        drop_schema(postgres_url, schema)
