"""How many poller processes a fleet gets when nobody says (`--workers auto`, `collector.workers`), and
the pool's one-off reads; against the simulator over real sockets (subnets 127.68/16, 127.69/16)."""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
from pathlib import Path

import pytest
from fleet_process import FLEETMON, ROOT, simulated_fleet_process
from pydantic import SecretStr

from collectors.poller import Poller, PollerSettings
from collectors.sample import State
from collectors.simulator.device import Fault
from collectors.simulator.fleet import simulated_fleet
from collectors.simulator.server import ServerTimings
from collectors.targets import Target
from collectors.workers import AUTO_SHARE_MIN, PollerPool, auto_workers, shard_of, usable_cores
from fleetmon.cli.polling import add_poller_flags
from fleetmon.config import CollectorSettings, ConfigError, Settings, StorageSettings, load_settings
from fleetmon.service.runtime import ServiceRuntime
from fleetmon.storage.engine import make_engine


def test_auto_gives_small_fleets_one_process_and_large_ones_one_per_core() -> None:
    assert auto_workers(0, cores=8) == 1
    assert auto_workers(10, cores=8) == 1
    assert auto_workers(2 * AUTO_SHARE_MIN - 1, cores=8) == 1  # a second worker needs a full share
    assert auto_workers(2 * AUTO_SHARE_MIN, cores=8) == 2
    assert auto_workers(100 * AUTO_SHARE_MIN, cores=8) == 8  # never more than the cores
    assert auto_workers(100 * AUTO_SHARE_MIN, cores=1) == 1
    assert auto_workers(100 * AUTO_SHARE_MIN) == usable_cores()


def _parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_poller_flags(parser)
    return parser.parse_args(list(argv))


def test_workers_flag_defaults_to_auto_and_takes_a_count() -> None:
    assert _parse().workers is None  # auto
    assert _parse("--workers", "auto").workers is None
    assert _parse("--workers", "3").workers == 3
    for bad in ("0", "many", "-1"):
        with pytest.raises(SystemExit):
            _parse("--workers", bad)


def test_config_workers_is_auto_by_default_a_count_or_an_error(tmp_path: Path, monkeypatch) -> None:
    assert Settings().collector.workers == "auto"
    path = tmp_path / "fleetmon.toml"
    path.write_text("[collector]\nworkers = 3\n", encoding="utf-8")
    assert load_settings(path).collector.workers == 3
    monkeypatch.setenv("FLEETMON_COLLECTOR__WORKERS", "2")
    assert load_settings(path).collector.workers == 2
    monkeypatch.delenv("FLEETMON_COLLECTOR__WORKERS")
    for bad in ("0", "'many'"):
        path.write_text(f"[collector]\nworkers = {bad}\n", encoding="utf-8")
        with pytest.raises(ConfigError, match=r"collector\.workers"):
            load_settings(path)


def _runtime(tmp_path: Path, workers: int | str, targets: int) -> ServiceRuntime:
    settings = Settings(
        storage=StorageSettings(url=SecretStr(f"sqlite:///{tmp_path / 'f.db'}")),
        collector=CollectorSettings(workers=workers),  # type: ignore[arg-type]
    )
    sites = {Target(f"127.68.{i // 250}.{i % 250 + 1}"): "default" for i in range(targets)}
    return ServiceRuntime.from_settings(settings, make_engine(settings.storage.url_value()), sites=sites)


def test_service_collector_takes_the_configured_or_automatic_worker_count(tmp_path: Path) -> None:
    assert isinstance(_runtime(tmp_path, "auto", 10).poller, Poller)
    pool = _runtime(tmp_path, 2, 10).poller
    assert isinstance(pool, PollerPool) and pool.workers == 2
    large = _runtime(tmp_path, "auto", 2 * AUTO_SHARE_MIN).poller
    if usable_cores() > 1:
        assert isinstance(large, PollerPool) and large.workers == min(2, usable_cores())
    else:
        assert isinstance(large, Poller)


async def test_pool_one_off_read_does_not_wait_for_the_cycle_in_progress() -> None:
    timings = ServerTimings(hold_s=30)
    async with simulated_fleet(
        6, mix="antminer:100", subnet="127.68.250.0/28", seed=5, timings=timings
    ) as fleet:
        for item in fleet.devices[:4]:
            item.device.fault = Fault.HANG  # holds the workers' cycle open for the whole deadline
        targets = [Target(d.device.ip) for d in fleet.devices]
        settings = PollerSettings(concurrency=10, deadline_s=6.0)
        async with PollerPool(settings, workers=2) as pool:
            await pool.start()
            cycle = asyncio.create_task(pool.poll_once(targets))
            await asyncio.sleep(0.3)
            probed = await pool.poll_device(targets[5])
            assert not cycle.done()  # the one-off read came back while the cycle still ran
            samples = await cycle
    assert probed.state is State.MINING
    assert [s.errors[0].code for s in samples[:4]] == ["timeout"] * 4
    assert all(s.state is State.MINING for s in samples[4:])
    assert {shard_of(t, 2) for t in targets}  # every target had an owner


@pytest.mark.slow
def test_poll_with_default_flags_uses_one_worker_per_core_on_a_large_fleet(tmp_path: Path) -> None:
    devices = 2 * AUTO_SHARE_MIN
    expected = auto_workers(devices)
    with simulated_fleet_process(tmp_path, devices, "127.69.0.0/16", seed=4) as manifest:
        result = subprocess.run(
            [*FLEETMON, "-v", "poll", f"@{manifest}", "--once", "--concurrency", "200", "--timeout", "20"],
            check=False,
            capture_output=True,
            text=True,
            timeout=300,
            cwd=ROOT,
        )
    assert result.returncode == 0, result.stderr[-2000:]
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["devices"] == devices
    assert summary["failed"] == 0
    if expected > 1:
        assert f"polling with {expected} worker processes" in result.stderr
    else:
        assert "worker processes" not in result.stderr
