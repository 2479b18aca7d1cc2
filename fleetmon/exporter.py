"""Prometheus endpoints of the `fleetmon collect` and `fleetmon ingest` processes (`--metrics-listen`).

Each process keeps its figures as plain counters; one custom collector per process reads them at
scrape time (client_python's custom-collector pattern, like the service's /metrics). The HTTP server is
client_python's own, in a daemon thread: a scrape never runs on the event loop. The families and what
they mean are in docs/metrics.md.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from threading import Thread
from wsgiref.simple_server import WSGIServer

from prometheus_client import start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector, CollectorRegistry

from fleetmon.ingest import COMMIT_BUCKETS, IngestMetrics
from fleetmon.service.metrics import collector_families, runtime_registry
from fleetmon.service.snapshot import CollectorStats


class _Families(Collector):
    def __init__(self, families: Callable[[], Iterable[Metric]]) -> None:
        self.families = families

    def describe(self) -> list[Metric]:
        """Nothing up front: the families are read at scrape time."""
        return []

    def collect(self) -> Iterator[Metric]:
        """The process's families now."""
        yield from self.families()


def ingest_families(m: IngestMetrics, now: float | None = None) -> Iterator[Metric]:
    """The ingester's figures: messages, batches, commit time, rejections by reason, lag."""
    messages = CounterMetricFamily("fleetmon_ingest_messages", "MQTT messages received")
    messages.add_metric([], float(m.messages))
    batches = CounterMetricFamily("fleetmon_ingest_batches", "Batches committed")
    batches.add_metric([], float(m.batches))
    commit = HistogramMetricFamily("fleetmon_ingest_commit_seconds", "Time to write and commit one batch")
    buckets = [(repr(b), float(n)) for b, n in zip(COMMIT_BUCKETS, m.commit_bucket_counts, strict=True)]
    buckets.append(("+Inf", float(m.batches)))
    commit.add_metric([], buckets, sum_value=m.commit_seconds_sum)
    rejected = CounterMetricFamily(
        "fleetmon_ingest_rejected", "Messages refused, by reason (kept as dead letters)", labels=["reason"]
    )
    for reason, n in sorted(m.rejected_by_reason.items()):
        rejected.add_metric([reason], float(n))
    yield from (messages, batches, commit, rejected)
    if m.newest_ts is not None:
        lag = GaugeMetricFamily(
            "fleetmon_ingest_lag_seconds", "Now minus the timestamp of the newest sample stored"
        )
        lag.add_metric([], max(0.0, (now if now is not None else time.time()) - m.newest_ts))
        yield lag


def collect_registry(stats: Callable[[], Iterable[CollectorStats]]) -> CollectorRegistry:
    """The registry of a `fleetmon collect` process: its site's collector families and process figures."""
    registry = runtime_registry()
    registry.register(_Families(lambda: collector_families(stats())))
    return registry


def ingest_registry(metrics: IngestMetrics) -> CollectorRegistry:
    """The registry of a `fleetmon ingest` process: the ingester's families and process figures."""
    registry = runtime_registry()
    registry.register(_Families(lambda: ingest_families(metrics)))
    return registry


class MetricsServer:
    """client_python's HTTP server on HOST:PORT, serving one registry at /metrics, until `close`."""

    def __init__(self, registry: CollectorRegistry, host: str, port: int) -> None:
        self._server: WSGIServer
        self._thread: Thread
        self._server, self._thread = start_http_server(port, addr=host, registry=registry)
        self.port = self._server.server_port

    def close(self) -> None:
        """Stop serving and release the port."""
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)
