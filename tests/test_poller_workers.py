"""PollerPool against the simulator over real sockets: the same samples as one Poller, in target order,
each target kept by one worker, credentials kept out of the workers' argv and environment, and a dead
worker costing at most its own share of one cycle."""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path

from collectors.poller import Poller, PollerSettings
from collectors.posture import PostureSettings
from collectors.sample import State
from collectors.simulator.device import Fault
from collectors.simulator.fleet import simulated_fleet
from collectors.simulator.server import ServerTimings
from collectors.targets import Target
from collectors.web import WebCredentials
from collectors.workers import PollerPool, shard_of

SECRET = "pool-test-secret-0xC0FFEE"
WEB = WebCredentials(profile="antminer-default", username="root", password="root")


def _settings(deadline: float = 5.0, credentials: WebCredentials = WEB) -> PollerSettings:
    return PollerSettings(concurrency=40, deadline_s=deadline, credentials=credentials)


async def test_pool_reads_what_one_poller_reads_in_target_order() -> None:
    async with simulated_fleet(
        24, mix="antminer:60,whatsminer:20,luxos:20", subnet="127.48.0.0/27", seed=3
    ) as fleet:
        ips = [d.device.ip for d in fleet.devices]
        targets = [Target(ip) for ip in ips] + [Target("127.48.0.30")]  # nothing listens there
        async with Poller(_settings()) as poller:
            alone = await poller.poll_once(targets)
        async with PollerPool(_settings(), workers=3) as pool:
            first = await pool.poll_once(targets)
            pids = pool.worker_pids()
            second = await pool.poll_once(list(reversed(targets)))
            assert pool.worker_pids() == pids  # no worker was replaced
    assert {shard_of(t, 3) for t in targets} == {0, 1, 2}
    for cycle, expected_order in ((first, targets), (second, list(reversed(targets)))):
        assert [(s.ip, s.port) for s in cycle] == [(t.host, t.port) for t in expected_order]
    by_ip = {s.ip: s for s in alone}
    for sample in first:
        reference = by_ip[sample.ip]
        assert (sample.state, sample.make, sample.model, sample.firmware_vendor) == (
            reference.state,
            reference.make,
            reference.model,
            reference.firmware_vendor,
        )
        assert sample.serial == reference.serial
        assert [e.code for e in sample.errors] == [e.code for e in reference.errors]
    assert first[-1].state is State.UNREACHABLE
    assert sum(1 for s in first if s.state is State.MINING) >= 15


def test_shards_are_stable_and_spread() -> None:
    targets = [Target(f"10.0.{i // 250}.{i % 250}") for i in range(1000)]
    counts = [0, 0]
    for target in targets:
        counts[shard_of(target, 2)] += 1
        assert shard_of(target, 2) == shard_of(Target(target.host, target.port), 2)
    assert min(counts) > 400  # CRC-32 spreads addresses evenly enough


def _proc(pid: int, name: str) -> bytes:
    return Path(f"/proc/{pid}/{name}").read_bytes()


async def test_credentials_reach_the_workers_only_through_their_pipe() -> None:
    secret = WebCredentials(profile="site-a", username="root", password=SECRET)
    async with PollerPool(_settings(credentials=secret), workers=2) as pool:
        await pool.start()
        pids = pool.worker_pids()
        assert all(pid is not None for pid in pids)
        for pid in pids:
            assert pid is not None
            assert SECRET.encode() not in _proc(pid, "cmdline")
            assert SECRET.encode() not in _proc(pid, "environ")
    assert pool.worker_pids() == [None, None]


async def test_worker_gone_between_cycles_is_replaced() -> None:
    async with simulated_fleet(8, mix="antminer:100", subnet="127.48.0.32/28", seed=3) as fleet:
        targets = [Target(d.device.ip) for d in fleet.devices]
        async with PollerPool(_settings(), workers=2) as pool:
            await pool.start()
            before = pool.worker_pids()
            assert before[0] is not None
            os.kill(before[0], signal.SIGKILL)
            await asyncio.sleep(0.2)
            samples = await pool.poll_once(targets)
            after = pool.worker_pids()
    assert all(s.state is State.MINING for s in samples), [s.errors for s in samples]
    assert after[0] is not None and after[0] != before[0]
    assert after[1] == before[1]


async def test_worker_dying_mid_cycle_costs_only_its_share() -> None:
    timings = ServerTimings(hold_s=30)
    async with simulated_fleet(
        12, mix="antminer:100", subnet="127.48.0.48/28", seed=3, timings=timings
    ) as fleet:
        for item in fleet.devices[:6]:
            item.device.fault = Fault.HANG  # keeps both workers' cycles open for the deadline
        targets = [Target(d.device.ip) for d in fleet.devices]
        assert {shard_of(t, 2) for t in targets[6:]} == {0, 1}  # each worker has healthy devices too
        async with PollerPool(_settings(deadline=3.0), workers=2) as pool:
            await pool.start()
            victim = pool.worker_pids()[0]
            assert victim is not None
            cycle = asyncio.create_task(pool.poll_once(targets))
            await asyncio.sleep(0.5)
            os.kill(victim, signal.SIGKILL)
            samples = await cycle
    for target, sample in zip(targets, samples, strict=True):
        codes = [e.code for e in sample.errors]
        if shard_of(target, 2) == 0:
            assert (sample.state, codes) == (State.ERROR, ["worker_failed"])
        elif target in targets[:6]:
            assert codes == ["timeout"]
        else:
            assert sample.state is State.MINING


async def test_the_posture_settings_reach_the_workers() -> None:
    # A firmware age limit of one day calls every dated build outdated: the workers must check with
    # the settings the pool was given, as one Poller does, not with the defaults.
    strict = PollerSettings(
        concurrency=40, deadline_s=5.0, credentials=WEB, posture=PostureSettings(firmware_max_age_days=1)
    )
    async with simulated_fleet(8, mix="antminer:100", subnet="127.48.0.64/28", seed=3) as fleet:
        targets = [Target(d.device.ip) for d in fleet.devices]
        async with Poller(strict) as poller:
            alone = await poller.poll_once(targets)
        async with PollerPool(strict, workers=2) as pool:
            pooled = await pool.poll_once(targets)
    codes = [sorted(f.code for f in s.security) for s in alone]
    assert any("firmware_outdated" in c for c in codes)
    assert [sorted(f.code for f in s.security) for s in pooled] == codes
