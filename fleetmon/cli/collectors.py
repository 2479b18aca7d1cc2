"""`fleetmon probe`, `fleetmon scan` and `fleetmon poll`: talk to devices from the command line.

Output contract (scripts and the checks rely on it):
- `probe HOST[:PORT] --json` prints the sample as one JSON line.
- `scan CIDR... --out FILE` writes the found devices as a JSON list (`ip`, `port`, make, model, firmware,
  mac, serial), which `poll @FILE` reads back; the progress bar goes to stderr.
- `poll TARGETS... --once` prints one line per device, then, as the LAST line on stdout, the summary
  `{"devices": N, "ok": K, "failed": F, "seconds": T}`; `--out` gets one JSON sample per target.

Flags shared with `collect` (concurrency, per-device deadline, web credentials) live in
fleetmon.cli.polling.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

from collectors.connection import Limits, Timeouts
from collectors.poller import REPLY_CAP_BYTES, Poller
from collectors.reader import read_device
from collectors.sample import Sample, is_down
from collectors.scanner import FoundDevice, ScanSettings, scan
from collectors.targets import Target, TargetError, parse_address, parse_targets
from collectors.web import WebSession
from collectors.workers import PollerPool
from fleetmon.cli.polling import (
    DEFAULT_CONNECT_S,
    DEFAULT_TIMEOUT_S,
    CliError,
    add_poller_flags,
    add_web_flags,
    build_poller,
    fit_concurrency,
    web_credentials,
)
from fleetmon.cli.polling import count as _count
from fleetmon.cli.polling import positive as _positive

SCAN_CONCURRENCY = 1000
SCAN_IDENTIFY_CONCURRENCY = 200
SCAN_PROBE_TIMEOUT_S = 1.0


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the `probe`, `scan` and `poll` commands."""
    probe = subparsers.add_parser("probe", help="identify and read one device")
    probe.add_argument("host", metavar="HOST[:PORT]", help="device address (port 4028 by default)")
    probe.add_argument("--json", action="store_true", help="print the sample as one JSON line")
    probe.add_argument("--timeout", type=_positive, default=DEFAULT_TIMEOUT_S, help="deadline, seconds")
    add_web_flags(probe)
    probe.set_defaults(handler=run_probe)

    scan_p = subparsers.add_parser("scan", help="find miners in CIDR ranges (TCP probe, then identify)")
    scan_p.add_argument("cidrs", nargs="+", metavar="CIDR", help="ranges to scan, e.g. 10.0.0.0/22")
    scan_p.add_argument("--out", type=Path, help="write the found devices here (targets JSON)")
    scan_p.add_argument(
        "--concurrency", type=_count, default=SCAN_CONCURRENCY, help="addresses probed at once (sockets open)"
    )
    scan_p.add_argument(
        "--identify-concurrency",
        type=_count,
        default=SCAN_IDENTIFY_CONCURRENCY,
        help="responders read at once",
    )
    scan_p.add_argument(
        "--timeout", type=_positive, default=DEFAULT_TIMEOUT_S, help="deadline to identify one responder"
    )
    scan_p.add_argument(
        "--probe-timeout", type=_positive, default=SCAN_PROBE_TIMEOUT_S, help="TCP connect deadline"
    )
    add_web_flags(scan_p)
    scan_p.set_defaults(handler=run_scan)

    poll = subparsers.add_parser("poll", help="read a fleet: one cycle with --once, else every --interval")
    poll.add_argument("targets", nargs="+", metavar="TARGET", help="IP, IP:PORT, CIDR or @FILE")
    poll.add_argument("--once", action="store_true", help="run one cycle and exit")
    poll.add_argument("--interval", type=_positive, default=30.0, help="seconds between cycles")
    poll.add_argument("--out", type=Path, help="append one JSON sample per target to this file")
    add_poller_flags(poll)
    poll.set_defaults(handler=run_poll)


def _handle(run: object) -> int:
    try:
        assert callable(run)
        result = run()
        assert isinstance(result, int)
        return result
    except (CliError, TargetError, ValueError) as exc:
        print(f"fleetmon: {exc}", file=sys.stderr)
        return 2


# ------------------------------------------------------------------------------------------------ probe
def run_probe(args: argparse.Namespace) -> int:
    """Handler of `fleetmon probe`: exit 0 when the device was read, 1 when it was not."""
    return _handle(lambda: asyncio.run(_probe(args)))


async def _probe(args: argparse.Namespace) -> int:
    target = parse_address(args.host)
    antminer, vnish = web_credentials(args)
    timeout = args.timeout
    connect = min(DEFAULT_CONNECT_S, timeout)
    async with WebSession(connect_s=connect, read_s=timeout, max_connections=1) as session:
        reading = await read_device(
            target.host,
            target.port,
            timeouts=Timeouts(connect=connect, read=timeout, device=timeout),
            limits=Limits(max_reply_bytes=REPLY_CAP_BYTES),
            web=session.device(antminer, vnish) if antminer or vnish else None,
        )
    sample = reading.sample
    if args.json:
        print(sample.to_json())
    else:
        print(describe(sample))
    return 1 if is_down(sample.state) else 0


def describe(sample: Sample) -> str:
    """A few human lines about one sample."""
    name = " ".join(p for p in (sample.make, sample.model) if p) or "unknown device"
    firmware = " ".join(p for p in (sample.firmware_vendor, sample.firmware_version) if p) or "-"
    lines = [f"{sample.ip}:{sample.port}  {name}  firmware {firmware}  state {sample.state.value}"]
    if sample.hashrate_ths is not None:
        expected = f" of {sample.expected_hashrate_ths:.1f}" if sample.expected_hashrate_ths else ""
        lines.append(f"  hashrate {sample.hashrate_ths:.2f}{expected} TH/s")
    if sample.temp_max_c is not None:
        lines.append(f"  temperature max {sample.temp_max_c:.0f} C, fans {sample.fans_rpm} rpm")
    if sample.power_w is not None:
        lines.append(f"  power {sample.power_w:.0f} W")
    if sample.serial or sample.mac:
        lines.append(f"  serial {sample.serial or '-'}  mac {sample.mac or '-'}")
    lines.extend(f"  ! {e.code}: {e.message}" for e in sample.errors)
    return "\n".join(lines)


# ------------------------------------------------------------------------------------------------- scan
class ProgressBar:
    """A plain-text progress line on a stream (stderr), redrawn in place with `\\r`.

    The scan's two stages overlap (responders are read while the sweep goes on), so one line shows
    both: the probe's bar and the reads done of the responders found so far. It is redrawn at most
    every `INTERVAL_S` (a /16 reports 65,534 probes) and once more at the end, which the scanner marks
    by reporting `identify` last.
    """

    WIDTH = 30
    INTERVAL_S = 0.1

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self._stages: dict[str, tuple[int, int]] = {}
        self._drawn_at = -math.inf
        self._text = ""

    def __call__(self, stage: str, done: int, total: int) -> None:
        self._stages[stage] = (done, total)
        probe_done, probe_total = self._stages.get("probe", (0, 0))
        finished = stage == "identify" and done == total and probe_done == probe_total
        now = time.monotonic()
        if not finished and now - self._drawn_at < self.INTERVAL_S:
            return
        self._drawn_at = now
        percent = 100 * probe_done // probe_total if probe_total else 100
        filled = self.WIDTH * percent // 100
        bar = "#" * filled + "." * (self.WIDTH - filled)
        read, found = self._stages.get("identify", (0, 0))
        end = "\n" if finished else ""
        text = f"\rprobe [{bar}] {probe_done}/{probe_total}  identify {read}/{found}{end}"
        if text != self._text:  # the end is reported twice when the last read ends the scan
            self._text = text
            self.stream.write(text)
            self.stream.flush()


def run_scan(args: argparse.Namespace) -> int:
    """Handler of `fleetmon scan`."""
    return _handle(lambda: asyncio.run(_scan(args)))


async def _scan(args: argparse.Namespace) -> int:
    antminer, vnish = web_credentials(args)
    settings = ScanSettings(
        concurrency=fit_concurrency(args.concurrency),
        probe_timeout_s=args.probe_timeout,
        identify_timeout_s=args.timeout,
        credentials=antminer,
        vnish_credentials=vnish,
        identify_concurrency=fit_concurrency(args.identify_concurrency),
    )
    started = time.monotonic()
    try:
        found = await scan(args.cidrs, settings, ProgressBar(sys.stderr))
    except OSError as exc:  # this machine's own limits (descriptors, ports): no device is at fault
        raise CliError(f"scan stopped: {exc}") from exc
    for device in found:
        print(_found_line(device))
    if args.out is not None:
        _write_atomically(args.out, json.dumps([d.to_dict() for d in found], indent=1) + "\n")
    seconds = round(time.monotonic() - started, 3)
    print(json.dumps({"found": len(found), "seconds": seconds}))
    return 0


def _found_line(device: FoundDevice) -> str:
    name = " ".join(p for p in (device.make, device.model) if p) or "unidentified"
    firmware = " ".join(p for p in (device.firmware_vendor, device.firmware_version) if p) or "-"
    extra = f"  ({device.error})" if device.error else ""
    return f"{device.ip}:{device.port}  {name}  {firmware}  {device.serial or '-'}{extra}"


def _write_atomically(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)


# ------------------------------------------------------------------------------------------------- poll
def run_poll(args: argparse.Namespace) -> int:
    """Handler of `fleetmon poll`."""
    return _handle(lambda: asyncio.run(_poll(args)))


def summary(samples: Sequence[Sample], seconds: float) -> dict[str, object]:
    """The cycle summary line's content."""
    failed = sum(1 for s in samples if is_down(s.state))
    return {"devices": len(samples), "ok": len(samples) - failed, "failed": failed, "seconds": seconds}


def _sample_line(sample: Sample) -> str:
    rate = f"{sample.hashrate_ths:.2f} TH/s" if sample.hashrate_ths is not None else "-"
    name = " ".join(p for p in (sample.make, sample.model) if p) or "unknown"
    errors = ",".join(e.code for e in sample.errors)
    return f"{sample.ip}:{sample.port}  {sample.state.value:<11} {name}  {rate}  {errors}".rstrip()


async def _poll(args: argparse.Namespace) -> int:
    targets: list[Target] = parse_targets(args.targets)
    if not targets:
        raise CliError("no targets")
    out = args.out.open("a", encoding="utf-8") if args.out is not None else None
    async with build_poller(args, len(targets)) as poller:
        return await _cycles(args, poller, targets, out)


async def _cycles(
    args: argparse.Namespace, poller: Poller | PollerPool, targets: list[Target], out: TextIO | None
) -> int:
    try:
        if args.once:
            started = time.monotonic()
            samples = await poller.poll_once(targets)
            seconds = round(time.monotonic() - started, 3)
            _emit(samples, out)
            print(json.dumps(summary(samples, seconds)), flush=True)
            return 0

        async def sink(samples: list[Sample]) -> None:
            _emit(samples, out)
            line = summary(samples, 0.0)
            del line["seconds"]
            print(json.dumps(line), flush=True)

        await poller.run(args.interval, sink, targets=targets)
        return 0
    finally:
        if out is not None:
            out.close()


def _emit(samples: Sequence[Sample], out: TextIO | None) -> None:
    lines = [_sample_line(s) for s in samples]
    sys.stdout.write("\n".join(lines) + ("\n" if lines else ""))
    if out is not None:
        out.write("".join(s.to_json() + "\n" for s in samples))
        out.flush()
