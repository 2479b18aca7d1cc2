"""How long the poller's event loop is held: the worst lateness of a 1 ms heartbeat (target: <= 20 ms).

Figures, each printed with the heartbeat's worst and 99th-percentile lateness (and when the worst came):
- one `Poller.poll_once` cycle (`--timeout 3`, concurrency 1000) over the 500 healthy miners of
  tests/fault_fleet.py alone, then over the fault fleet (the same plus `--per-fault` of every fault
  kind, deep_nesting included), each served by a simulator in another process. With a thousand devices
  in flight, one loop iteration runs every callback that is ready, so the healthy fleet alone has
  stalls of its own; what the faults add is the difference;
- `--rounds` rounds of reading every real capture in tests/captures/device-responses through
  `MinerClient.raw` (framing, the decoder thread and all) from a responder in another process that
  answers each capture's bytes and a NUL: one read at a time (the stall is the longest single read),
  then all at once;
- the decoding speeds behind client.INLINE_REPAIR_BYTES and INLINE_JSON_BYTES (json's C parser and the
  repair pass, MB/s over the captures) and the longest a reply at each threshold holds the loop; and what
  one deep_nesting reply cost the loop before the depth check (the repair pass walking every bracket).

The simulated devices stand for other machines on the farm's network, so by default they run apart
from the poller: the device processes on the last core, this process on the others (`--shared-cores`
puts them back on the same cores, as before). The heartbeat's wall lateness still includes the
scheduler's share of whatever else runs on the machine, so run it on a quiet machine and say how quiet
it was; the loop's own CPU figure is the part the poller itself holds.

    .venv/bin/python bench/bench_loop_stall.py
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable
from pathlib import Path
from typing import TypeVar

from collectors import pacing
from collectors.client import INLINE_JSON_BYTES, INLINE_REPAIR_BYTES, MinerClient
from collectors.connection import Timeouts
from collectors.errors import MinerError
from collectors.framing import decode_reply, repair
from collectors.poller import Poller, PollerSettings, tune_gc_for_polling
from collectors.simulator.device import Fault
from collectors.simulator.server import DEEP_NESTING_LEVELS
from collectors.targets import Target

ROOT = Path(__file__).resolve().parent.parent
CAPTURES = ROOT / "tests" / "captures" / "device-responses"
TARGET_MS = 20.0
HEARTBEAT_S = 0.001
T = TypeVar("T")

# The capture responder: request `{"command":"<index>"}` -> capture <index>'s bytes + NUL, then close.
RESPONDER = """
import asyncio, json, sys
from pathlib import Path
replies = [Path(p).read_bytes() + b"\\x00" for p in json.loads(sys.argv[1])]
async def answer(reader, writer):
    request = await reader.read(65536)
    try:
        writer.write(replies[int(json.loads(request)["command"])])
        await writer.drain()
    finally:
        writer.close()
async def main():
    server = await asyncio.start_server(answer, sys.argv[2], 4028, backlog=1024)
    print("ready", flush=True)
    await server.serve_forever()
asyncio.run(main())
"""


class Heartbeat:
    """A task sleeping HEARTBEAT_S at a time, recording how late each wake-up was."""

    def __init__(self) -> None:
        self.late: list[float] = []
        self.held: list[float] = []  # CPU seconds this thread ran between the beat's due time and its wake
        self.when: list[float] = []  # seconds into the measured work, per beat
        self._task: asyncio.Task[None] | None = None

    async def _beat(self) -> None:
        loop = asyncio.get_running_loop()
        start = loop.time()
        while True:
            due = loop.time() + HEARTBEAT_S
            cpu_before = time.thread_time()
            await asyncio.sleep(HEARTBEAT_S)
            self.late.append(loop.time() - due)
            # The loop's own share of the lateness: what ran on this thread, not waiting for a core.
            self.held.append(max(0.0, time.thread_time() - cpu_before - HEARTBEAT_S))
            self.when.append(due - start)

    async def measure(self, work: Awaitable[T]) -> T:
        """Run `work` with the heartbeat going."""
        self.late.clear()
        self.held.clear()
        self.when.clear()
        self._task = asyncio.create_task(self._beat())
        try:
            return await work
        finally:
            self._task.cancel()

    def figures(self) -> str:
        late = sorted(self.late)
        worst = late[-1] * 1000 if late else 0.0
        p99 = late[int(0.99 * (len(late) - 1))] * 1000 if late else 0.0
        verdict = "ok" if worst <= TARGET_MS else f"OVER the {TARGET_MS:.0f} ms target"
        top = sorted(zip(self.late, self.when, strict=True), reverse=True)[:3]
        where = ", ".join(f"{lat * 1000:.0f} ms at {at:.2f} s" for lat, at in top)
        held = sorted(self.held)
        held_worst = held[-1] * 1000 if held else 0.0
        held_p99 = held[int(0.99 * (len(held) - 1))] * 1000 if held else 0.0
        held_verdict = "ok" if held_worst <= TARGET_MS else f"OVER the {TARGET_MS:.0f} ms target"
        wall = f"worst stall {worst:.1f} ms, p99 {p99:.1f} ms over {len(late)} beats"
        own = f"of it the loop's own CPU: worst {held_worst:.1f} ms, p99 {held_p99:.1f} ms"
        return f"{wall} ({verdict}; worst: {where}); {own} ({held_verdict})"


DEVICE_CORES: set[int] | None = None
"""Cores the simulated devices run on (None: wherever the scheduler puts them); set by main()."""


def place_devices(pid: int) -> None:
    """Pin a device-side process to DEVICE_CORES, where set."""
    if DEVICE_CORES is not None:
        os.sched_setaffinity(pid, DEVICE_CORES)


def start_fault_fleet(
    healthy: int, per_fault: int, kinds: str, subnet: str, manifest: Path
) -> subprocess.Popen[bytes]:
    """tests/fault_fleet.py in its own process; returns once the manifest is written."""
    proc = subprocess.Popen(
        [
            sys.executable,
            str(ROOT / "tests" / "fault_fleet.py"),
            "--healthy",
            str(healthy),
            "--per-fault",
            str(per_fault),
            "--kinds",
            kinds,
            "--subnet",
            subnet,
            "--manifest",
            str(manifest),
        ],
        cwd=ROOT,
    )
    place_devices(proc.pid)
    for _ in range(600):
        if manifest.exists() or proc.poll() is not None:
            break
        time.sleep(0.1)
    if not manifest.exists():
        proc.kill()
        raise SystemExit("the fault fleet did not start")
    return proc


async def fault_cycle(rows: list[dict[str, object]], heartbeat: Heartbeat, label: str) -> None:
    """One poll cycle over a fleet; prints the stall and what each fault kind was read as."""
    targets = [Target(str(r["ip"]), 4028) for r in rows]
    settings = PollerSettings(concurrency=1000, deadline_s=3.0, connect_s=1.0)
    async with Poller(settings) as poller:
        started = time.perf_counter()
        samples = await heartbeat.measure(poller.poll_once(targets))
        seconds = time.perf_counter() - started
    kinds: dict[str, set[str]] = {}
    healthy_down = 0
    for row, sample in zip(rows, samples, strict=True):
        if row["fault"] is None:  # their states vary by design (mining, sleeping, a dead board...)
            healthy_down += sample.state.value in ("unreachable", "error")
            continue
        codes = ",".join(e.code for e in sample.errors) or sample.state.value
        kinds.setdefault(str(row["fault"]), set()).add(codes)
    print(f"{label}, one cycle of {len(targets)} devices in {seconds:.2f} s: {heartbeat.figures()}")
    print(f"  healthy devices read as down: {healthy_down}" + ("; faulty ones, by kind:" if kinds else ""))
    for kind, seen in sorted(kinds.items()):
        print(f"  {kind:>13}: {' | '.join(sorted(seen))}")


async def capture_rounds(paths: list[Path], host: str, rounds: int, heartbeat: Heartbeat) -> None:
    """`rounds` x every capture read through MinerClient.raw, one at a time (the loop's stall is then
    the longest single read, decoding included), then all at once; prints both stalls."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        RESPONDER,
        json.dumps([str(p) for p in paths]),
        host,
        stdout=asyncio.subprocess.PIPE,
    )
    assert proc.stdout is not None
    place_devices(proc.pid)
    await proc.stdout.readline()
    client = MinerClient(host, 4028, Timeouts(connect=2.0, read=5.0, device=10.0))
    outcomes = {"decoded": 0, "refused by framing": 0}

    async def read(index: int) -> None:
        try:
            await client.raw(str(index))
            outcomes["decoded"] += 1
        except MinerError:
            outcomes["refused by framing"] += 1

    async def one_at_a_time() -> None:
        for _ in range(rounds):
            for index in range(len(paths)):
                await read(index)

    async def all_at_once() -> None:
        for _ in range(rounds):
            await asyncio.gather(*(read(i) for i in range(len(paths))))

    try:
        for name, work in (("one at a time", one_at_a_time), ("all at once", all_at_once)):
            started = time.perf_counter()
            await heartbeat.measure(work())
            seconds = time.perf_counter() - started
            print(
                f"captures {name}, {rounds} rounds of {len(paths)} replies in {seconds:.2f} s ({outcomes}): "
                f"{heartbeat.figures()}"
            )
            outcomes.update(dict.fromkeys(outcomes, 0))
    finally:
        proc.send_signal(signal.SIGTERM)
        await proc.wait()


def decoding_speeds(paths: list[Path]) -> None:
    """MB/s of the json path and of the repair pass over the captures, and what the thresholds allow."""
    texts = [p.read_bytes() for p in paths]
    size = sum(len(t) for t in texts)
    started = time.perf_counter()
    for data in texts:
        with contextlib.suppress(MinerError):
            decode_reply(data)
    decode_mbs = size / (time.perf_counter() - started) / 1e6
    objects = [t.decode().strip().rstrip("\x00") for t in texts if t.lstrip().startswith(b"{")]
    started = time.perf_counter()
    for text in objects:
        with contextlib.suppress(MinerError):
            repair(text)
    repair_mbs = sum(len(t) for t in objects) / (time.perf_counter() - started) / 1e6
    print(
        f"decoding the captures: decode_reply {decode_mbs:.0f} MB/s (mostly json's C parser), "
        f"repair pass {repair_mbs:.1f} MB/s"
    )
    print(
        f"  in place at most: a {INLINE_REPAIR_BYTES // 1024} KiB reply needing repair "
        f"{INLINE_REPAIR_BYTES / repair_mbs / 1e3:.1f} ms, a valid {INLINE_JSON_BYTES // 1024} KiB one "
        f"{INLINE_JSON_BYTES / decode_mbs / 1e3:.1f} ms; bigger ones go to the decoder thread"
    )
    deep = '{"STATS":[{"chain":' + "[" * DEEP_NESTING_LEVELS + "]" * DEEP_NESTING_LEVELS + "}]}"
    started = time.perf_counter()
    with contextlib.suppress(MinerError):
        decode_reply(deep.encode())
    now_ms = (time.perf_counter() - started) * 1000
    # Before the depth check, json gave up (RecursionError) and the repair pass walked every bracket on
    # the loop; it stops at MAX_DEPTH now, so time its walk over a flat reply of the same length.
    flat = '{"STATS":[' + '{"a":1}' * (len(deep) // 7) + "]}"
    started = time.perf_counter()
    repair(flat)
    walk_ms = (time.perf_counter() - started) * 1000
    print(
        f"one deep_nesting reply ({len(deep) // 1024} KiB): refused in {now_ms:.1f} ms (depth scan, off the "
        f"loop); the repair pass alone would walk it in ~{walk_ms:.0f} ms on the loop, per reply"
    )


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--healthy", type=int, default=500)
    parser.add_argument(
        "--budget-ms",
        type=float,
        default=pacing.TURN_BUDGET_S * 1000,
        help="paced CPU per loop turn (collectors/pacing.py); 0 = unpaced, to see what pacing buys",
    )
    parser.add_argument("--per-fault", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--kinds", default=",".join(Fault), help="fault kinds in the fleet (all)")
    parser.add_argument("--subnet", default="127.60.64.0/22")
    parser.add_argument("--responder", default="127.60.100.1")
    parser.add_argument(
        "--shared-cores",
        action="store_true",
        help="run the simulated devices on the poller's cores too (default: apart, on the last core)",
    )
    args = parser.parse_args()
    global DEVICE_CORES  # noqa: PLW0603 (one setting for the whole run)
    cores = sorted(os.sched_getaffinity(0))
    if not args.shared_cores and len(cores) >= 2:
        DEVICE_CORES = {cores[-1]}
        os.sched_setaffinity(0, set(cores[:-1]))
        print(f"placement: poller on cores {cores[:-1]}, simulated devices on core {cores[-1]}")
    else:
        print(f"placement: poller and simulated devices share cores {cores}")
    pacing.TURN_BUDGET_S = args.budget_ms / 1000 if args.budget_ms > 0 else float("inf")
    print(
        f"pacing: {args.budget_ms:g} ms of paced steps per loop turn" if args.budget_ms > 0 else "pacing: off"
    )
    tune_gc_for_polling()
    print(f"cpu: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f} at start")
    paths = sorted(p for p in CAPTURES.rglob("*") if p.suffix in (".json", ".txt") and p.name != "SOURCES.md")
    decoding_speeds(paths)
    heartbeat = Heartbeat()
    # The healthy fleet alone first: the stall a cycle of this size costs without any fault.
    for label, per_fault in (("healthy fleet", 0), ("fault fleet", args.per_fault)):
        with tempfile.TemporaryDirectory() as tmp:
            manifest = Path(tmp) / "manifest.json"
            fleet = start_fault_fleet(args.healthy, per_fault, args.kinds, args.subnet, manifest)
            try:
                await fault_cycle(json.loads(manifest.read_text()), heartbeat, label)
            finally:
                fleet.send_signal(signal.SIGTERM)
                fleet.wait(10)
    await capture_rounds(paths, args.responder, args.rounds, heartbeat)
    print(f"cpu: load average {os.getloadavg()[0]:.2f} at the end (2 cores shared with other work)")


if __name__ == "__main__":
    asyncio.run(main())
