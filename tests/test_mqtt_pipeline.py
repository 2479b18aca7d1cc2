"""The issue's must-show: collector -> broker -> two ingesters -> PostgreSQL, nothing lost, nothing doubled.

200 simulated devices are published through the collector's own path (CollectLoop, MqttSink, spool)
to a private Mosquitto; two `fleetmon ingest` processes share the subscription. Mid-run one ingester is
SIGKILLed and restarted, and the broker is restarted (SIGTERM, persistence on). Every sample the
collector produced must then be in PostgreSQL exactly once, byte-identical on export.

The samples are generated here; to run the real collector chain, swap `poll_cycle` for the poller of
issue 3 polling the simulator (fleetmon/cli/collect.py, `_load_poll_cycle`).
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import mqtt_broker
import pytest
from fleet_samples import create_schema, drop_schema, fleet_cycle, wait_until
from sqlalchemy import func, select

from collectors.sample import Sample, utcnow
from fleetmon.collect import CollectLoop
from fleetmon.sinks.mqtt import MqttSink
from fleetmon.sinks.spool import Spool
from fleetmon.storage.engine import make_engine
from fleetmon.storage.export import iter_samples
from fleetmon.storage.writer import SAMPLES

private_broker = mqtt_broker.private_broker
ROOT = Path(__file__).resolve().parent.parent
DEVICES = 200
CYCLES = 30


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


def _count(url: str) -> int:
    engine = make_engine(url)
    with engine.connect() as conn:
        count = int(conn.execute(select(func.count()).select_from(SAMPLES)).scalar_one())
    engine.dispose()
    return count


@pytest.mark.slow
@pytest.mark.services
async def test_every_sample_is_stored_exactly_once_through_broker_restart_and_ingester_kill(
    private_broker: mqtt_broker.Broker, postgres_url: str, tmp_path: Path
) -> None:
    schema, db_url = create_schema(postgres_url)
    ingesters: list[IngesterProcess] = []
    try:
        upgrade = _db_upgrade(db_url)
        assert upgrade.returncode == 0, upgrade.stderr
        ingesters = [IngesterProcess(private_broker.url, db_url, name, tmp_path) for name in ("a", "b")]
        for ingester in ingesters:
            ingester.start()
        assert await wait_until(lambda: all(i.subscribed_times() >= 1 for i in ingesters), timeout=30)
        first, _second = ingesters

        produced: list[Sample] = []
        start = utcnow() - timedelta(hours=1)
        cycles = iter(range(10_000))
        spool = Spool(tmp_path / "spool")
        stop = asyncio.Event()

        async def poll_cycle() -> list[Sample]:
            cycle = next(cycles)
            if cycle >= CYCLES:
                # The fleet is done; keep the collector running (empty cycles) until its spool drained.
                if spool.is_empty():
                    stop.set()
                return []
            if cycle == 8:
                first.kill()
            elif cycle == 12:
                first.start()
            elif cycle == 16:
                private_broker.stop()
            elif cycle == 20:
                private_broker.start()
            samples = fleet_cycle(DEVICES, cycle, start=start)
            produced.extend(samples)
            return samples

        sink = MqttSink(private_broker.url, "pipeline", "collector-1", timeout=3)
        loop = CollectLoop(poll_cycle, sink, spool=spool, interval=0.3)
        stats = await asyncio.wait_for(loop.run(stop), 300)
        assert stats.produced == DEVICES * CYCLES == len(produced)
        assert stats.spooled > 0  # the broker outage really went through the spool
        assert stats.delivered == stats.produced

        assert await wait_until(lambda: _count(db_url) >= len(produced), timeout=180, step=0.5)
        # Let any late redelivery land, then check nothing was added twice and nothing is missing.
        await asyncio.sleep(2)
        assert _count(db_url) == len(produced)
        exported = sorted(s.to_json() for s in iter_samples(make_engine(db_url), site="pipeline"))
        assert exported == sorted(s.to_json() for s in produced)
        assert first.starts == 2 and first.subscribed_times() >= 2
    finally:
        for ingester in ingesters:
            ingester.stop()
        drop_schema(postgres_url, schema)
