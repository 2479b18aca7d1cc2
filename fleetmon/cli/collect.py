"""`fleetmon collect TARGETS... [--db URL | --mqtt URL]`: poll continuously into a sink, spooling meanwhile.

The sample source is collectors.poller: TARGETS are parsed by collectors.targets (IP, IP:PORT, CIDR,
@FILE) and the poller is built from the same flags as `fleetmon poll` (fleetmon.cli.polling:
--concurrency, --timeout, web credentials). One Poller lives for the whole run, so identities stay
cached between cycles. Every cycle reads all targets at once (bounded by --concurrency), without
spreading start times over the interval: a stop signal then waits at most one device deadline for the
cycle in progress. Sinks, spool, --out and the stop sequence are fleetmon.collect's.

`--metrics-listen HOST:PORT` serves the collector's own figures (fleetmon_collector_*, docs/metrics.md)
for Prometheus. With --mqtt the collector also retains its site's status after every cycle
(fleetmon.sinks.status), which reader-mode API replicas show per site.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import socket
import sys
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path

from collectors.poller import PollerSettings, tune_gc_for_polling
from collectors.sample import Sample
from collectors.targets import Target, parse_targets
from collectors.workers import poller_for
from fleetmon.cli.broker import (
    MetricsListenError,
    add_broker_flags,
    broker_from_args,
    parse_listen,
    start_metrics,
)
from fleetmon.cli.polling import CliError, add_poller_flags, poller_settings, worker_count
from fleetmon.collect import CollectLoop, CollectStats, SpooledDelivery
from fleetmon.exporter import collect_registry
from fleetmon.service.snapshot import CollectorStats, failure_reasons
from fleetmon.sinks.base import Sink, SinkUnavailableError
from fleetmon.sinks.database import DbSink
from fleetmon.sinks.jsonl import JsonlSink
from fleetmon.sinks.mqtt import MqttSink
from fleetmon.sinks.spool import Spool
from fleetmon.sinks.status import SiteStatus
from fleetmon.sinks.topics import check_site
from fleetmon.storage.engine import data_dir, ensure_schema, make_engine
from fleetmon.storage.errors import StorageError
from fleetmon.storage.writer import SampleStore

log = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the `collect` command."""
    p = subparsers.add_parser(
        "collect",
        help="poll devices continuously into the database or an MQTT broker",
        description="Poll TARGETS every --interval seconds. Samples go to the database (default: the SQLite "
        "file) or, with --mqtt, to the broker; while that sink is down they wait in an on-disk spool "
        "and are replayed in order. SIGINT/SIGTERM stop after the current cycle is delivered.",
    )
    p.add_argument("targets", nargs="+", metavar="TARGETS", help="IP, IP:PORT, CIDR or @FILE")
    sink = p.add_mutually_exclusive_group()
    sink.add_argument("--db", metavar="URL", help="database URL (default: SQLite file in the data directory)")
    sink.add_argument(
        "--mqtt",
        metavar="URL",
        help="publish to this broker instead, mqtt://host[:port] or mqtts://host[:port]",
    )
    p.add_argument("--site", default="default", help="site name (topic level and database key)")
    p.add_argument("--interval", type=float, default=60.0, help="seconds between cycle starts (default 60)")
    p.add_argument("--out", type=Path, help="also append every sample produced to this JSON-lines file")
    p.add_argument("--spool-dir", type=Path, help="spool directory (default: DATA_DIR/spool/SITE)")
    p.add_argument("--spool-max-mb", type=float, default=512.0, help="spool size bound in MiB (default 512)")
    p.add_argument(
        "--collector-id", default=socket.gethostname(), help="this collector's id (default: hostname)"
    )
    p.add_argument(
        "--metrics-listen",
        type=parse_listen,
        metavar="HOST:PORT",
        help="serve this collector's Prometheus metrics at http://HOST:PORT/metrics",
    )
    add_broker_flags(p)
    add_poller_flags(p)
    p.set_defaults(handler=run)


def _targets(args: argparse.Namespace) -> list[Target]:
    targets = parse_targets(args.targets)
    if not targets:
        raise CliError("no targets")
    return targets


def _sink_factory(args: argparse.Namespace) -> Callable[[], Sink]:
    """Check the sink's URL (and the database schema) now; the sink itself starts in the event loop."""
    site, collector_id = args.site, args.collector_id
    if args.mqtt:
        broker = broker_from_args(args)
        return lambda: MqttSink(broker, site, collector_id)
    if args.mqtt_password_env or args.mqtt_password_file or args.mqtt_ca_file or args.mqtt_cert:
        raise CliError("the --mqtt-* flags need --mqtt URL")
    engine = make_engine(args.db)
    ensure_schema(engine)
    return lambda: DbSink(SampleStore(engine), site)


def run(args: argparse.Namespace) -> int:
    """Run the collector until SIGINT/SIGTERM."""
    try:
        check_site(args.site)
        if args.interval <= 0:
            raise CliError("--interval must be positive")
        targets = _targets(args)
        settings = poller_settings(args)
        make_sink = _sink_factory(args)
    except (ValueError, StorageError, CliError) as exc:
        print(f"fleetmon collect: {exc}", file=sys.stderr)
        return 2
    spool_dir = args.spool_dir or data_dir() / "spool" / args.site
    spool = Spool(spool_dir, max_bytes=int(args.spool_max_mb * 1024 * 1024))
    out = JsonlSink(args.out) if args.out else None
    log.info("collecting from %d targets every %.1f s", len(targets), args.interval)
    tune_gc_for_polling()
    watch = SiteWatch(args.site, args.collector_id, spool)
    try:
        server = start_metrics(
            args.metrics_listen, lambda: collect_registry(watch.collector_stats), "collector"
        )
    except MetricsListenError as exc:
        print(f"fleetmon collect: {exc}", file=sys.stderr)
        return 2
    try:
        stats = asyncio.run(
            _serve(
                settings,
                targets,
                make_sink=make_sink,
                spool=spool,
                interval=args.interval,
                out=out,
                workers=worker_count(args.workers, len(targets)),
                watch=watch,
            )
        )
    finally:
        if server is not None:
            server.close()
    log.warning(
        "collect stopped: %d cycles, %d samples, %d delivered, %d spooled, %d refused by a full spool",
        stats.cycles,
        stats.produced,
        stats.delivered,
        stats.spooled,
        stats.refused,
    )
    return 0


async def _serve(
    settings: PollerSettings,
    targets: list[Target],
    *,
    make_sink: Callable[[], Sink],
    spool: Spool,
    interval: float,
    out: JsonlSink | None,
    workers: int = 1,
    watch: SiteWatch | None = None,
) -> CollectStats:
    async with poller_for(settings, workers) as poller:

        async def poll_cycle() -> list[Sample]:
            return await poller.poll_once(targets)

        sink = make_sink()
        collect = CollectLoop(poll_cycle, sink, spool=spool, interval=interval, out=out)
        if watch is not None:
            watch.attach(collect, sink)
        return await _until_signal(collect)


class SiteWatch:
    """This collector's figures for its site: kept for --metrics-listen, retained as the site status."""

    def __init__(self, site: str, collector_id: str, spool: Spool) -> None:
        self.stats = CollectorStats(site=site)
        self.collector_id = collector_id
        self.spool = spool
        self.loop_stats: CollectStats | None = None
        self.sink: Sink | None = None
        self.delivery: SpooledDelivery | None = None

    def attach(self, collect: CollectLoop, sink: Sink) -> None:
        """Follow `collect`'s cycles and report the site status through `sink` (an MqttSink)."""
        self.loop_stats, self.sink, self.delivery = collect.stats, sink, collect.delivery
        collect.on_cycle = self.after_cycle

    def collector_stats(self) -> list[CollectorStats]:
        """What the metrics endpoint exports (read from its thread: the value is replaced, never changed)."""
        return [self.stats]

    async def after_cycle(self, samples: Sequence[Sample], seconds: float, end: float) -> None:
        """Count the cycle and the spool, then retain the site status (skipped while the sink is down)."""
        count, failures = failure_reasons(samples)
        spool_samples, spool_bytes = await asyncio.to_thread(self._spool_depth)
        loop = self.loop_stats or CollectStats()
        self.stats = self.stats.after_cycle(seconds, count, failures, end).with_delivery(
            spool_samples=spool_samples,
            spool_bytes=spool_bytes,
            published=loop.offered,
            acknowledged=loop.delivered,
        )
        sink_down = self.delivery is not None and self.delivery.sink_down
        if isinstance(self.sink, MqttSink) and not sink_down:
            status = SiteStatus(
                site=self.stats.site,
                online=True,
                collector_id=self.collector_id,
                last_cycle_end=datetime.fromtimestamp(end, UTC),
                cycle_duration_s=round(seconds, 3),
                devices_ok=self.stats.last_ok,
                devices_failed=count - self.stats.last_ok,
                spool_samples=spool_samples,
                spool_bytes=spool_bytes,
            )
            with contextlib.suppress(SinkUnavailableError):
                await self.sink.report(status)

    def _spool_depth(self) -> tuple[int, int]:
        if self.spool.is_empty():
            return 0, 0
        return self.spool.pending(), self.spool.size_bytes()


async def _until_signal(collect: CollectLoop) -> CollectStats:
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
