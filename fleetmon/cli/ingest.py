"""`fleetmon ingest --mqtt URL --db URL [--group NAME]`: broker -> database, exactly once per (device, ts).

`--metrics-listen HOST:PORT` serves the ingester's figures (fleetmon_ingest_*, docs/metrics.md).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys

from fleetmon.cli.broker import (
    MetricsListenError,
    add_broker_flags,
    broker_from_args,
    parse_listen,
    start_metrics,
)
from fleetmon.exporter import ingest_registry
from fleetmon.ingest import Ingester, default_client_id
from fleetmon.storage.engine import ensure_schema, make_engine
from fleetmon.storage.errors import StorageError
from fleetmon.storage.writer import SampleStore

log = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the `ingest` command."""
    p = subparsers.add_parser(
        "ingest",
        help="store the samples collectors publish to an MQTT broker",
        description="Subscribe to fleetmon/v1/+/+/sample with a shared subscription (several ingesters "
        "split the load), write batches idempotently, acknowledge each message after its batch committed.",
    )
    p.add_argument(
        "--mqtt",
        metavar="URL",
        required=True,
        help="broker, mqtt://host[:port] or mqtts://host[:port] (password: --mqtt-password-env/-file)",
    )
    add_broker_flags(p)
    p.add_argument(
        "--metrics-listen",
        type=parse_listen,
        metavar="HOST:PORT",
        help="serve the ingester's Prometheus metrics at http://HOST:PORT/metrics",
    )
    p.add_argument(
        "--db", metavar="URL", help="database URL (default: the SQLite file in the data directory)"
    )
    p.add_argument("--group", default="fleetmon", help="shared-subscription group (default fleetmon)")
    p.add_argument(
        "--client-id",
        help="stable MQTT client id; the persistent session hangs on it "
        "(default: fleetmon-ingest-GROUP-HOST); "
        "give every ingester on one host its own",
    )
    p.add_argument(
        "--session-expiry",
        type=int,
        default=7 * 24 * 3600,
        help="seconds the broker keeps queueing for a stopped ingester (default 7 days)",
    )
    p.add_argument("--batch", type=int, default=2000, help="samples per transaction at most (default 2000)")
    p.add_argument(
        "--flush-interval", type=float, default=0.25, help="seconds before a partial batch is written"
    )
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Ingest until SIGINT or SIGTERM; then commit and acknowledge what is held, and disconnect."""
    try:
        broker = broker_from_args(args)
        engine = make_engine(args.db)
        ensure_schema(engine)
    except (ValueError, StorageError) as exc:
        print(f"fleetmon ingest: {exc}", file=sys.stderr)
        return 2
    ingester = Ingester(
        broker,
        SampleStore(engine),
        group=args.group,
        client_id=args.client_id or default_client_id(args.group),
        session_expiry_s=args.session_expiry,
        max_batch=args.batch,
        flush_interval=args.flush_interval,
    )
    try:
        server = start_metrics(args.metrics_listen, lambda: ingest_registry(ingester.metrics), "ingester")
    except MetricsListenError as exc:
        print(f"fleetmon ingest: {exc}", file=sys.stderr)
        return 2
    try:
        asyncio.run(_serve(ingester))
    finally:
        if server is not None:
            server.close()
    stats = ingester.stats
    log.warning(
        "ingest stopped: %d received, %d rejected, %d acknowledged",
        stats.received,
        stats.rejected,
        stats.acked,
    )
    return 0


async def _serve(ingester: Ingester) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    await ingester.run(stop)
