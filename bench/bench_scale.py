"""One collector host polling a large simulated fleet every 60 s: cycle time, CPU per device, peak RSS.

The fleet (default 100,000 devices, the default simulator mix) is sharded over several `fleetmon
simulate` processes, each on its own slice of `--subnet` in per-device listening mode: every device has
its own listening sockets on its own 127.x.y.z, so nothing binds 0.0.0.0 on the real ports 4028/80 and
the run collides with no other simulator on the machine. A shard holds as many devices as its sockets
fit under RLIMIT_NOFILE (raised here to the hard limit, which the children inherit): 2-3 sockets per
device plus a reserve, so ~6,000 devices per process under a 20,000 hard limit.

The collector is a PollerPool of `--workers` poller processes (started before the clock runs, as a
collector starts them once), reading every device in one burst per cycle and starting a cycle every
`--interval` seconds (at once when one overran). Cycle 1 identifies every device and fetches the
Antminers' serials over the web CGI; later cycles are the steady state.

Printed per cycle: wall seconds, devices read, and CPU seconds used during the cycle by the collector
(the pool's own process plus its workers) and by the simulators, each per device, from
/proc/<pid>/stat (utime + stime). At the end: peak RSS (VmHWM) of every process. The run is bounded:
`--cycles` cycles, each abandoned after `--max-cycle-s`; simulators and workers are stopped on exit.

    .venv/bin/python bench/bench_scale.py --devices 10000 --cycles 3
    .venv/bin/python bench/bench_scale.py                       # 100,000 devices, 3 cycles

The full run starts 16 simulators and needs ~7.5 GiB of memory (~3 GiB simulators, ~4.4 GiB collector)
and, on two cores, 10-15 minutes. Per-make costs: `--mix antminer:100` (or whatsminer:100, avalon:100).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import ipaddress
import json
import os
import resource
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from collectors.poller import PollerSettings, tune_gc_for_polling
from collectors.sample import is_down
from collectors.simulator.fleet import DEFAULT_MIX
from collectors.targets import Target
from collectors.web import WebCredentials
from collectors.workers import PollerPool

ROOT = Path(__file__).resolve().parent.parent
FD_RESERVE = 1024 + 200  # the simulator's own reserve, plus slack for its pipes and logs
SOCKETS_PER_DEVICE = 3  # 4028 and 80, plus 4433 on Whatsminers with API v3 (worst case: all of them)
HOSTS_PER_ADDRESS = 254 / 256  # the simulator skips host octets .0 and .255
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds a live process has used so far (/proc/<pid>/stat)."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime, stime: fields 14 and 15 of stat


def peak_rss_mib(pid: int) -> float:
    """Peak resident set size (VmHWM) of a live process, MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise ValueError(f"no VmHWM for pid {pid}")


def raise_fd_limit() -> int:
    """Raise the soft RLIMIT_NOFILE to the hard one (children inherit it); returns the new soft limit."""
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


def shard_subnets(subnet: str, devices: int, per_shard: int) -> list[tuple[str, int]]:
    """Split `devices` into shards of at most `per_shard`, each on its own slice of `subnet`."""
    parent = ipaddress.ip_network(subnet)
    prefix: int = parent.max_prefixlen
    while (2 ** (parent.max_prefixlen - prefix)) * HOSTS_PER_ADDRESS < per_shard + 2:
        prefix -= 1
    if prefix < parent.prefixlen:
        raise SystemExit(f"{subnet} is too small for shards of {per_shard} devices")
    slices = list(parent.subnets(new_prefix=prefix))
    count = -(-devices // per_shard)
    if count > len(slices):
        raise SystemExit(f"{subnet} holds {len(slices)} shards of {per_shard}; {count} are needed")
    sizes = [devices // count + (1 if i < devices % count else 0) for i in range(count)]
    return [(str(slices[i]), size) for i, size in enumerate(sizes)]


@dataclass
class Shard:
    """One simulator process and the fleet slice it serves."""

    proc: subprocess.Popen[bytes]
    manifest: Path
    subnet: str
    devices: int


def start_shards(shards: list[tuple[str, int]], mix: str, tmp: Path) -> list[Shard]:
    """Start one `fleetmon simulate` per shard (all at once); returns when every manifest is written."""
    started: list[Shard] = []
    for index, (subnet, devices) in enumerate(shards):
        manifest = tmp / f"shard-{index}.json"
        command = [
            str(ROOT / ".venv" / "bin" / "fleetmon"),
            "simulate",
            "--devices",
            str(devices),
            "--mix",
            mix,
            "--subnet",
            subnet,
            "--seed",
            str(100 + index),
            "--listen",
            "per-device",
            "--manifest",
            str(manifest),
        ]
        proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        started.append(Shard(proc, manifest, subnet, devices))
    deadline = time.monotonic() + 60 + 0.02 * sum(s.devices for s in started)
    while not all(s.manifest.exists() for s in started):
        for shard in started:
            if shard.proc.poll() is not None:
                stop_shards(started)
                error = shard.proc.stderr.read().decode(errors="replace") if shard.proc.stderr else ""
                raise SystemExit(f"simulator for {shard.subnet} exited early:\n{error[-2000:]}")
        if time.monotonic() > deadline:
            stop_shards(started)
            raise SystemExit("the simulators did not all start in time")
        time.sleep(0.2)
    return started


def stop_shards(shards: list[Shard]) -> None:
    """SIGINT every simulator, then kill the ones still there after 30 s."""
    for shard in shards:
        if shard.proc.poll() is None:
            shard.proc.send_signal(signal.SIGINT)
    for shard in shards:
        try:
            shard.proc.wait(30)
        except subprocess.TimeoutExpired:
            shard.proc.kill()
            shard.proc.wait()


@dataclass
class CycleFigures:
    """What one cycle cost."""

    seconds: float
    read: int
    states: collections.Counter[str]
    pool_cpu_s: float  # the PollerPool's own process: sharding, gathering and validating samples
    workers_cpu_s: float
    simulator_cpu_s: float

    @property
    def collector_cpu_s(self) -> float:
        """The collector host's CPU: the pool process and its workers."""
        return self.pool_cpu_s + self.workers_cpu_s


def cpu_of(pids: list[int]) -> float:
    """Summed CPU seconds of live processes."""
    return sum(cpu_seconds(pid) for pid in pids)


async def run_cycles(
    targets: list[Target], sim_pids: list[int], args: argparse.Namespace
) -> tuple[list[CycleFigures], dict[str, float]]:
    """Run the cycles; returns each cycle's figures and the peak RSS of each collector process."""
    settings = PollerSettings(
        concurrency=args.concurrency,
        deadline_s=args.deadline,
        connect_s=5.0,
        credentials=WebCredentials(profile="antminer-default", username="root", password="root"),
    )
    figures: list[CycleFigures] = []
    loop = asyncio.get_running_loop()
    async with PollerPool(settings, args.workers) as pool:
        await pool.start()
        workers = [pid for pid in pool.worker_pids() if pid is not None]
        for number in range(1, args.cycles + 1):
            started = loop.time()
            cpu_before = cpu_of([os.getpid()]), cpu_of(workers), cpu_of(sim_pids)
            try:
                async with asyncio.timeout(args.max_cycle_s):
                    samples = await pool.poll_once(targets)
            except TimeoutError:
                print(f"cycle {number}: not done after {args.max_cycle_s:.0f} s; stopping the run")
                break
            seconds = loop.time() - started
            states = collections.Counter(s.state.value for s in samples)
            read = sum(1 for s in samples if not is_down(s.state))
            cycle = CycleFigures(
                seconds=seconds,
                read=read,
                states=states,
                pool_cpu_s=cpu_of([os.getpid()]) - cpu_before[0],
                workers_cpu_s=cpu_of(workers) - cpu_before[1],
                simulator_cpu_s=cpu_of(sim_pids) - cpu_before[2],
            )
            figures.append(cycle)
            report_cycle(number, cycle, len(targets))
            if number < args.cycles:
                await asyncio.sleep(max(0.0, started + args.interval - loop.time()))
        peaks = {"collector (pool process)": peak_rss_mib(os.getpid())}
        for index, pid in enumerate(workers):
            peaks[f"poll worker {index}"] = peak_rss_mib(pid)
    return figures, peaks


def report_cycle(number: int, cycle: CycleFigures, devices: int) -> None:
    """Print one cycle's line."""
    kind = "identification + web serials" if number == 1 else "steady state"
    total = cycle.collector_cpu_s + cycle.simulator_cpu_s
    print(
        f"cycle {number} ({kind}): {cycle.seconds:6.1f} s, {cycle.read}/{devices} read; CPU per device: "
        f"collector {cycle.collector_cpu_s / devices * 1000:.2f} ms (workers "
        f"{cycle.workers_cpu_s / devices * 1000:.2f}, pool process {cycle.pool_cpu_s / devices * 1000:.2f}), "
        f"simulator {cycle.simulator_cpu_s / devices * 1000:.2f} ms "
        f"(collector {cycle.collector_cpu_s:.0f} s + simulator {cycle.simulator_cpu_s:.0f} s = "
        f"{total:.0f} CPU-s, {total / cycle.seconds:.2f} cores busy; simulator share "
        f"{cycle.simulator_cpu_s / total:.0%})",
        flush=True,
    )
    print("    states: " + ", ".join(f"{k} {v}" for k, v in sorted(cycle.states.items())), flush=True)


def main() -> None:
    """Start the shards, poll them for the cycles, print the figures."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--devices", type=int, default=100_000)
    parser.add_argument("--cycles", type=int, default=3, help="cycles to run (the first identifies)")
    parser.add_argument(
        "--interval", type=float, default=60.0, help="seconds from one cycle start to the next"
    )
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="poller processes")
    parser.add_argument("--concurrency", type=int, default=1000, help="devices in flight, all workers")
    parser.add_argument("--deadline", type=float, default=20.0, help="per-device deadline, seconds")
    parser.add_argument("--max-cycle-s", type=float, default=600.0, help="abandon a cycle after this")
    parser.add_argument("--mix", default=DEFAULT_MIX, help="simulator mix (default: the simulator's)")
    parser.add_argument("--subnet", default="127.100.0.0/14", help="sliced into one subnet per shard")
    parser.add_argument("--per-shard", type=int, default=0, help="devices per simulator (0: fd budget)")
    args = parser.parse_args()

    tune_gc_for_polling()  # as the CLI's polling commands do
    limit = raise_fd_limit()
    per_shard = args.per_shard or (limit - FD_RESERVE) // SOCKETS_PER_DEVICE
    shards = shard_subnets(args.subnet, args.devices, per_shard)
    print(
        f"fd limit {limit}: {len(shards)} simulator processes of <= {per_shard} devices each "
        f"(per-device listeners), {args.workers} poll workers, concurrency {args.concurrency}, "
        f"{os.cpu_count()} CPUs; load average before start {os.getloadavg()[0]:.2f}",
        flush=True,
    )
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        running = start_shards(shards, args.mix, Path(tmp))
        try:
            rows = [row for shard in running for row in json.loads(shard.manifest.read_text())]
            targets = [Target(str(row["ip"]), int(row["port"])) for row in rows]
            print(f"simulators: {len(targets)} devices listening in {time.perf_counter() - started:.1f} s")
            sim_pids = [shard.proc.pid for shard in running]
            figures, peaks = asyncio.run(run_cycles(targets, sim_pids, args))
            for index, pid in enumerate(sim_pids):
                peaks[f"simulator {index} ({running[index].devices} devices)"] = peak_rss_mib(pid)
        finally:
            stop_shards(running)
    summarize(figures, peaks, len(targets), args.interval)


def summarize(figures: list[CycleFigures], peaks: dict[str, float], devices: int, interval: float) -> None:
    """Print the steady state and the peak RSS lines."""
    print("peak RSS (VmHWM):")
    for name, mib in peaks.items():
        print(f"    {name}: {mib:.0f} MiB")
    sims = [mib for name, mib in peaks.items() if name.startswith("simulator")]
    collector = [mib for name, mib in peaks.items() if not name.startswith("simulator")]
    print(f"    total: collector {sum(collector):.0f} MiB, simulators {sum(sims):.0f} MiB")
    steady = figures[1:]
    if not steady:
        return
    worst = max(c.seconds for c in steady)
    collector_ms = sum(c.collector_cpu_s for c in steady) / len(steady) / devices * 1000
    simulator_ms = sum(c.simulator_cpu_s for c in steady) / len(steady) / devices * 1000
    verdict = "under" if worst < interval else "OVER"
    print(
        f"steady state over {devices} devices: slowest cycle {worst:.1f} s ({verdict} the {interval:.0f} s "
        f"interval); CPU per device: collector {collector_ms:.2f} ms, simulator {simulator_ms:.2f} ms"
    )
    print(f"load average at the end: {os.getloadavg()[0]:.2f} (the machine's cores are shared)")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
