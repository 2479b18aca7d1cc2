"""`fleetmon collect TARGETS... [--db URL | --mqtt URL]`: poll continuously into a sink, spooling meanwhile.

INTEGRATION POINT (lead): the poller of issue 3 is not wired yet. `_load_poll_cycle` must return an
async callable that polls TARGETS once and returns that cycle's list of collectors.sample.Sample; until
it does, `collect` stops with a clear error instead of inventing samples. Everything downstream (sinks,
spool, --out, signals) is implemented and tested in fleetmon/collect.py.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import logging
import signal
import socket
import sys
from pathlib import Path

from fleetmon.collect import CollectLoop, CollectStats, PollCycle
from fleetmon.sinks.base import Sink
from fleetmon.sinks.database import DbSink
from fleetmon.sinks.jsonl import JsonlSink
from fleetmon.sinks.mqtt import MqttSink
from fleetmon.sinks.spool import Spool
from fleetmon.sinks.topics import BrokerUrl, check_site
from fleetmon.storage.engine import data_dir, ensure_schema, make_engine
from fleetmon.storage.errors import StorageError
from fleetmon.storage.writer import SampleStore

log = logging.getLogger(__name__)

POLLER_MODULE = "collectors.poller"


class PollerMissingError(RuntimeError):
    """The poller of issue 3 is not available (or not wired into `collect` yet)."""


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the `collect` command."""
    p = subparsers.add_parser(
        "collect",
        help="poll devices continuously into the database or an MQTT broker",
        description="Poll TARGETS every --interval seconds. Samples go to the database (default: the SQLite "
        "file) or, with --mqtt, to the broker; while that sink is down they wait in an on-disk spool "
        "and are replayed in order. SIGINT/SIGTERM stop after the current cycle is delivered.",
    )
    p.add_argument("targets", nargs="+", metavar="TARGETS", help="IPs, CIDRs or @FILE")
    sink = p.add_mutually_exclusive_group()
    sink.add_argument("--db", metavar="URL", help="database URL (default: SQLite file in the data directory)")
    sink.add_argument("--mqtt", metavar="URL", help="publish to this broker instead, mqtt://host[:port]")
    p.add_argument("--site", default="default", help="site name (topic level and database key)")
    p.add_argument("--interval", type=float, default=60.0, help="seconds between cycle starts (default 60)")
    p.add_argument("--out", type=Path, help="also append every sample produced to this JSON-lines file")
    p.add_argument("--spool-dir", type=Path, help="spool directory (default: DATA_DIR/spool/SITE)")
    p.add_argument("--spool-max-mb", type=float, default=512.0, help="spool size bound in MiB (default 512)")
    p.add_argument(
        "--collector-id", default=socket.gethostname(), help="this collector's id (default: hostname)"
    )
    p.add_argument("--concurrency", type=int, default=200, help="devices polled at once")
    p.add_argument("--timeout", type=float, default=5.0, help="hard deadline per device and cycle, seconds")
    p.set_defaults(handler=run)


def _load_poll_cycle(args: argparse.Namespace) -> PollCycle:
    """INTEGRATION POINT: build the poll-cycle callable from collectors.poller (issue 3) for args.targets."""
    try:
        importlib.import_module(POLLER_MODULE)
    except ImportError as exc:
        raise PollerMissingError(
            f"the poller ({POLLER_MODULE}, issue 3) is not available, so `collect` has no sample source"
        ) from exc
    raise PollerMissingError(
        f"{POLLER_MODULE} exists but is not wired into `fleetmon collect` yet "
        "(see _load_poll_cycle in fleetmon/cli/collect.py)"
    )


def _make_sink(args: argparse.Namespace) -> Sink:
    if args.mqtt:
        return MqttSink(BrokerUrl.parse(args.mqtt), args.site, args.collector_id)
    engine = make_engine(args.db)
    ensure_schema(engine)
    return DbSink(SampleStore(engine), args.site)


def run(args: argparse.Namespace) -> int:
    """Run the collector until SIGINT/SIGTERM."""
    try:
        check_site(args.site)
        poll_cycle = _load_poll_cycle(args)
        sink = _make_sink(args)
    except (ValueError, StorageError, PollerMissingError) as exc:
        print(f"fleetmon collect: {exc}", file=sys.stderr)
        return 2
    spool_dir = args.spool_dir or data_dir() / "spool" / args.site
    spool = Spool(spool_dir, max_bytes=int(args.spool_max_mb * 1024 * 1024))
    out = JsonlSink(args.out) if args.out else None
    loop = CollectLoop(poll_cycle, sink, spool=spool, interval=args.interval, out=out)
    stats = asyncio.run(_serve(loop))
    log.warning(
        "collect stopped: %d cycles, %d samples, %d delivered, %d spooled, %d refused by a full spool",
        stats.cycles,
        stats.produced,
        stats.delivered,
        stats.spooled,
        stats.refused,
    )
    return 0


async def _serve(collect: CollectLoop) -> CollectStats:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    main = asyncio.current_task()

    def on_signal() -> None:
        if stop.is_set() and main is not None:
            main.cancel()  # a second signal: stop now, whatever is held stays in the spool
        stop.set()

    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, on_signal)
    return await collect.run(stop)
