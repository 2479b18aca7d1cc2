"""Prometheus exposition of the fleet: one custom collector over the latest FleetSnapshot.

`collect()` only reads the snapshot it is handed (no I/O, no per-device Gauge children kept alive), so a
scrape costs the same whether the devices are up or hung. Names and units are documented in
docs/metrics.md; hashrates leave here in hashes per second, the Prometheus base unit.

Every per-miner metric is one entry of `MINER_FAMILIES`: name, help, type, label names and how to read
each value from a device, in one place. Two paths read that table:
- `FleetCollector.collect()` builds client_python metric families from it (what `generate_latest` and
  any other client_python consumer sees; the tests compare the two paths sample for sample);
- `fleetmon.service.exposition.render` walks the same table straight into text, the /metrics hot path
  (10,000 miners are about 370,000 lines; see that module for the figures).
Fleet, supply-chain, PDU and collector-loop families are few lines each; they are built as families and
both paths write them the ordinary way.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from prometheus_client import GCCollector, PlatformCollector, ProcessCollector
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector, CollectorRegistry

from collectors.models import is_sha256
from collectors.sample import Board, Pool, SecurityFinding, State, is_down
from fleetmon.service.snapshot import CYCLE_BUCKETS, CollectorStats, DeviceView, FleetSnapshot, PduView

TH = 1e12  # hashes per second in one TH/s
MINER = ("site", "ip")  # the labels every per-miner series starts with
INFO_LABELS = (
    "serial",
    "mac",
    "make",
    "manufacturer",
    "model",
    "firmware_vendor",
    "firmware_version",
    "manufacturer_country",
    "assembly_country",
    "origin_source",
)
PDU = ("pdu", "site")

T = TypeVar("T")
LabelValues = tuple[str, ...]


@dataclass(frozen=True)
class Scope(Generic[T]):
    """What one series of a family is about: the miner itself, or each of its boards, fans or pools.

    `children` lists (label values, item) for one device; None means the device is the item.
    """

    labels: LabelValues
    children: Callable[[DeviceView], Sequence[tuple[LabelValues, T]]] | None


@dataclass(frozen=True)
class Series(Generic[T]):
    """How to read one kind of sample from an item: its value (None: not exported) and extra labels.

    `labels` are the values of the family's `extra` labels: a constant, or read from the item.
    """

    value: Callable[[T], float | None]
    labels: LabelValues | Callable[[T], LabelValues] = ()


@dataclass(frozen=True)
class MinerFamily(Generic[T]):
    """One per-miner metric. Label names: site, ip, the scope's labels, then `extra`."""

    name: str  # the full sample name (counters end in _total)
    help: str
    type: str  # gauge | counter
    scope: Scope[T]
    series: tuple[Series[T], ...]
    extra: LabelValues = ()

    @property
    def label_names(self) -> LabelValues:
        """Every label name of the family's samples, in order."""
        return (*MINER, *self.scope.labels, *self.extra)


def _s(value: str | None) -> str:
    return value if value is not None else ""


def _hashes(ths: float | None) -> float | None:
    return None if ths is None else ths * TH


def _flag(value: bool | None) -> float | None:
    return None if value is None else (1.0 if value else 0.0)


def _info(view: DeviceView) -> LabelValues:
    s = view.sample
    return (
        _s(s.serial),
        _s(s.mac),
        _s(s.make),
        _s(view.manufacturer),
        _s(s.model),
        _s(s.firmware_vendor),
        _s(s.firmware_version),
        _s(view.manufacturer_country),
        _s(view.assembly_country),
        view.origin_source,
    )


def _boards(view: DeviceView) -> list[tuple[LabelValues, Board]]:
    return [((str(b.index),), b) for b in view.sample.boards]


def _fans(view: DeviceView) -> list[tuple[LabelValues, int]]:
    return [((str(i),), rpm) for i, rpm in enumerate(view.sample.fans_rpm)]


def _pools(view: DeviceView) -> list[tuple[LabelValues, Pool]]:
    return [((str(i), p.url), p) for i, p in enumerate(view.sample.pools)]


def _findings(view: DeviceView) -> list[tuple[LabelValues, SecurityFinding]]:
    # One series per (code, severity): two advisories of the same severity are one open door to
    # alert on, and a repeated label set would make the exposition invalid.
    seen: dict[LabelValues, SecurityFinding] = {}
    for finding in view.sample.security:
        seen.setdefault((finding.code, finding.severity), finding)
    return list(seen.items())


DEVICE: Scope[DeviceView] = Scope((), None)
BOARD: Scope[Board] = Scope(("board",), _boards)
FAN: Scope[int] = Scope(("fan",), _fans)
POOL: Scope[Pool] = Scope(("pool", "url"), _pools)
FINDING: Scope[SecurityFinding] = Scope(("code", "severity"), _findings)


def _device(name: str, help: str, value: Callable[[DeviceView], float | None]) -> MinerFamily[DeviceView]:
    return MinerFamily(name, help, "gauge", DEVICE, (Series(value),))


# The per-miner metrics, in exposition order (docs/metrics.md describes each one).
MINER_FAMILIES: tuple[MinerFamily[Any], ...] = (
    _device(
        "fleetmon_miner_up",
        "1 when the last poll read the miner",
        lambda d: 0.0 if is_down(d.sample.state) else 1.0,
    ),
    MinerFamily(
        "fleetmon_miner_info",
        "Identity and origin of the miner",
        "gauge",
        DEVICE,
        (Series(lambda d: 1.0, _info),),
        INFO_LABELS,
    ),
    # Only the current state is exported (value 1); a change makes the old series stale at the next
    # scrape. Six 0/1 series per miner would add 60,000 lines at 10,000 miners.
    MinerFamily(
        "fleetmon_miner_state",
        "Current state of the miner (enum)",
        "gauge",
        DEVICE,
        (Series(lambda d: 1.0, lambda d: (d.sample.state.value,)),),
        ("state",),
    ),
    _device(
        "fleetmon_miner_hashrate_hashes_per_second",
        "Current hashrate",
        lambda d: _hashes(d.sample.hashrate_ths),
    ),
    _device(
        "fleetmon_miner_expected_hashrate_hashes_per_second",
        "Nominal hashrate",
        lambda d: _hashes(d.sample.expected_hashrate_ths),
    ),
    MinerFamily(
        "fleetmon_miner_board_hashrate_hashes_per_second",
        "Hashrate per board",
        "gauge",
        BOARD,
        (Series(lambda b: _hashes(b.hashrate_ths)),),
    ),
    MinerFamily(
        "fleetmon_miner_board_temperature_celsius",
        "Board and chip temperature per board",
        "gauge",
        BOARD,
        (Series(lambda b: b.temp_c, ("board",)), Series(lambda b: b.chip_temp_c, ("chip",))),
        ("sensor",),
    ),
    MinerFamily(
        "fleetmon_miner_board_chips", "Working chips per board", "gauge", BOARD, (Series(lambda b: b.chips),)
    ),
    MinerFamily(
        "fleetmon_miner_board_expected_chips",
        "Chips per board for the model",
        "gauge",
        BOARD,
        (Series(lambda b: b.expected_chips),),
    ),
    MinerFamily(
        "fleetmon_miner_temperature_celsius",
        "Hottest reading",
        "gauge",
        DEVICE,
        (Series(lambda d: d.sample.temp_max_c, ("max",)),),
        ("sensor",),
    ),
    MinerFamily("fleetmon_miner_fan_speed_rpm", "Fan speed", "gauge", FAN, (Series(lambda rpm: rpm),)),
    _device("fleetmon_miner_power_watts", "Power reported by the miner", lambda d: d.sample.power_w),
    _device(
        "fleetmon_miner_efficiency_joules_per_terahash",
        "Power over hashrate",
        lambda d: d.sample.efficiency_jth,
    ),
    _device("fleetmon_miner_uptime_seconds", "Seconds since the miner started", lambda d: d.sample.uptime_s),
    MinerFamily(
        "fleetmon_miner_pool_up",
        "1 when the pool is alive",
        "gauge",
        POOL,
        (Series(lambda p: None if p.status is None else _flag(p.status.lower() == "alive")),),
    ),
    MinerFamily(
        "fleetmon_miner_pool_active",
        "1 for the pool being mined",
        "gauge",
        POOL,
        (Series(lambda p: _flag(p.active)),),
    ),
    MinerFamily(
        "fleetmon_miner_pool_accepted_shares_total",
        "Accepted shares",
        "counter",
        POOL,
        (Series(lambda p: p.accepted),),
    ),
    MinerFamily(
        "fleetmon_miner_pool_rejected_shares_total",
        "Rejected shares",
        "counter",
        POOL,
        (Series(lambda p: p.rejected),),
    ),
    # Present (value 1) while the miner's latest read found it; gone when a later read does not.
    MinerFamily(
        "fleetmon_miner_security_finding",
        "A security-posture finding of the miner's latest read (docs/security.md)",
        "gauge",
        FINDING,
        (Series(lambda f: 1.0),),
    ),
    _device(
        "fleetmon_miner_last_sample_timestamp_seconds",
        "When the miner was last read",
        lambda d: d.sample.ts.timestamp(),
    ),
)


def miner_family(spec: MinerFamily[Any], devices: Sequence[DeviceView]) -> Metric:
    """The client_python family of one table entry (the compatible path; see exposition for the fast one)."""
    if spec.type == "counter":
        family: Metric = CounterMetricFamily(spec.name.removesuffix("_total"), spec.help, labels=[])
    else:
        family = GaugeMetricFamily(spec.name, spec.help, labels=[])
    children = spec.scope.children
    scope_names = spec.scope.labels
    for view in devices:
        m = {"site": view.site, "ip": view.sample.ip}
        items: Sequence[tuple[LabelValues, Any]] = [((), view)] if children is None else children(view)
        for values, item in items:
            base = dict(m, **dict(zip(scope_names, values, strict=True))) if values else m
            for series in spec.series:
                value = series.value(item)
                if value is None:
                    continue
                extra = series.labels(item) if callable(series.labels) else series.labels
                labels = dict(base, **dict(zip(spec.extra, extra, strict=True))) if extra else base
                family.add_sample(spec.name, labels, float(value))
    return family


def pdu_families(pdus: Sequence[PduView]) -> list[Metric]:
    """PDU families. Readings are exported only while the PDU reads; a missing value is never 0."""
    g = GaugeMetricFamily
    up = g("fleetmon_pdu_up", "1 when the last SNMP read of the PDU succeeded", labels=PDU)
    outlet = g(
        "fleetmon_pdu_outlet_power_watts",
        "Power per outlet, with the miner the outlet feeds where mapped",
        labels=[*PDU, "unit", "outlet", "name", "miner_ip"],
    )
    inlet = g("fleetmon_pdu_inlet_power_watts", "Power per inlet", labels=[*PDU, "unit", "inlet"])
    temp = g("fleetmon_pdu_temperature_celsius", "Ambient temperature per sensor", labels=[*PDU, "sensor"])
    humidity = g("fleetmon_pdu_humidity_ratio", "Relative humidity per sensor (0-1)", labels=[*PDU, "sensor"])
    for pdu in pdus:
        reading = pdu.reading if pdu.error is None else None
        up.add_metric([pdu.name, pdu.site], 0.0 if reading is None else 1.0)
        if reading is None:
            continue
        for o in reading.outlets:
            if o.power_w is not None:
                mapped = pdu.outlet_miners.get((o.unit, o.index), "")
                where = [pdu.name, pdu.site, str(o.unit), str(o.index), _s(o.name), mapped]
                outlet.add_metric(where, o.power_w)
        for i in reading.inlets:
            if i.power_w is not None:
                inlet.add_metric([pdu.name, pdu.site, str(i.unit), str(i.index)], i.power_w)
        for sensor in reading.sensors:
            where = [pdu.name, pdu.site, sensor.sensor]
            if sensor.temperature_c is not None:
                temp.add_metric(where, sensor.temperature_c)
            if sensor.humidity_percent is not None:
                humidity.add_metric(where, sensor.humidity_percent / 100.0)
    return [up, outlet, inlet, temp, humidity]


def fleet_families(snap: FleetSnapshot) -> Iterator[Metric]:
    """Fleet totals by site, supply-chain figures."""
    g = GaugeMetricFamily
    total = g("fleetmon_fleet_hashrate_hashes_per_second", "Measured hashrate by site", labels=["site"])
    nominal = g(
        "fleetmon_fleet_expected_hashrate_hashes_per_second", "Nominal hashrate by site", labels=["site"]
    )
    devices = g("fleetmon_fleet_devices", "Devices by site and state", labels=["site", "state"])
    measured: dict[str, float] = {}
    expected: dict[str, float] = {}
    counts: dict[tuple[str, str], int] = {}
    for view in snap.devices:
        s = view.sample
        bitcoin = is_sha256(s.algorithm)  # other algorithms' rates are never added into SHA-256's
        measured[view.site] = measured.get(view.site, 0.0) + ((s.hashrate_ths or 0.0) if bitcoin else 0.0)
        expected[view.site] = expected.get(view.site, 0.0) + (
            (s.expected_hashrate_ths or 0.0) if bitcoin else 0.0
        )
        counts[(view.site, s.state.value)] = counts.get((view.site, s.state.value), 0) + 1
    for site in sorted(measured):
        total.add_metric([site], measured[site] * TH)
        nominal.add_metric([site], expected[site] * TH)
        for st in State:
            devices.add_metric([site, st.value], float(counts.get((site, st.value), 0)))
    yield from (total, nominal, devices)

    sc = snap.supply_chain
    share = g("fleetmon_fleet_hash_share_ratio", "Share of measured hashrate", labels=["dimension", "group"])
    for dimension, groups in sorted(sc.hash_share.items()):
        for group, value in sorted(groups.items()):
            share.add_metric([dimension, group], value)
    hhi = g("fleetmon_fleet_hhi", "Herfindahl-Hirschman index of hashrate", labels=["dimension"])
    for dimension, value in sorted(sc.hhi.items()):
        hhi.add_metric([dimension], value)
    yield from (share, hhi)
    singles: tuple[tuple[str, str, float | None], ...] = (
        (
            "fleetmon_fleet_china_dependency_ratio",
            "Share made by a China-HQ maker or assembled in China",
            sc.china_dependency_ratio,
        ),
        (
            "fleetmon_fleet_unverified_origin_ratio",
            "Share with inferred or unknown origin",
            sc.unverified_origin_ratio,
        ),
        ("fleetmon_fleet_tariff_exposure_score", "Composite tariff exposure score 0-100", sc.exposure_score),
        (
            "fleetmon_fleet_tariff_effective_rate_ratio",
            "Hashrate-weighted effective US duty rate",
            sc.effective_rate,
        ),
    )
    for name, doc, single in singles:
        if single is not None:
            yield g(name, doc, value=single)


def collector_families(collectors: Iterable[CollectorStats]) -> Iterator[Metric]:
    """The collector loop's own figures, per site (from `serve` in collector mode or `fleetmon collect`)."""
    cycle = HistogramMetricFamily(
        "fleetmon_collector_cycle_duration_seconds", "Wall time of one poll cycle", labels=["site"]
    )
    polled = CounterMetricFamily("fleetmon_collector_devices_polled", "Devices polled", labels=["site"])
    failed = CounterMetricFamily(
        "fleetmon_collector_devices_failed", "Polls that failed, by reason", labels=["site", "reason"]
    )
    last = GaugeMetricFamily(
        "fleetmon_collector_last_cycle_timestamp_seconds", "End of the last cycle", labels=["site"]
    )
    devices = GaugeMetricFamily(
        "fleetmon_collector_devices",
        "Devices of the last completed cycle, by result (ok|failed) and failure reason",
        labels=["site", "result", "reason"],
    )
    spool_samples = GaugeMetricFamily(
        "fleetmon_collector_spool_samples", "Samples waiting in the spool for the sink", labels=["site"]
    )
    spool_bytes = GaugeMetricFamily(
        "fleetmon_collector_spool_bytes", "Bytes of spool segment files on disk", labels=["site"]
    )
    published = CounterMetricFamily(
        "fleetmon_collector_published",
        "Samples offered to the sink (replays from the spool included)",
        labels=["site"],
    )
    acknowledged = CounterMetricFamily(
        "fleetmon_collector_acknowledged",
        "Samples the sink confirmed (broker PUBACK with a subscriber, or database commit)",
        labels=["site"],
    )
    for c in collectors:
        buckets = [
            (repr(bound), float(n)) for bound, n in zip(CYCLE_BUCKETS, c.cycle_bucket_counts, strict=True)
        ]
        buckets.append(("+Inf", float(c.cycles)))
        cycle.add_metric([c.site], buckets, sum_value=c.cycle_seconds_sum)
        polled.add_metric([c.site], float(c.devices_polled))
        for reason, n in sorted(c.failed_by_reason.items()):
            failed.add_metric([c.site, reason], float(n))
        if c.last_cycle_end is not None:
            last.add_metric([c.site], c.last_cycle_end)
            devices.add_metric([c.site, "ok", ""], float(c.last_ok))
            for reason, n in sorted(c.last_failed_by_reason.items()):
                devices.add_metric([c.site, "failed", reason], float(n))
        if c.spool_samples is not None and c.spool_bytes is not None:
            spool_samples.add_metric([c.site], float(c.spool_samples))
            spool_bytes.add_metric([c.site], float(c.spool_bytes))
        if c.published is not None and c.acknowledged is not None:
            published.add_metric([c.site], float(c.published))
            acknowledged.add_metric([c.site], float(c.acknowledged))
    yield from (cycle, polled, failed, last, devices, spool_samples, spool_bytes, published, acknowledged)


class FleetCollector(Collector):
    """Yields every fleetmon metric family from the snapshot `source()` returns at scrape time."""

    def __init__(self, source: Callable[[], FleetSnapshot], *, fleet: bool = True) -> None:
        """`fleet=False` yields only the per-miner families (what /probe answers for one device)."""
        self.source = source
        self.fleet = fleet

    def describe(self) -> list[Metric]:
        """Nothing to describe up front: families depend on the snapshot (keeps registration cheap)."""
        return []

    def collect(self) -> Iterator[Metric]:
        """Build the metric families from the current snapshot."""
        snap = self.source()
        for spec in MINER_FAMILIES:
            yield miner_family(spec, snap.devices)
        yield from self.other_families(snap)

    def other_families(self, snap: FleetSnapshot) -> Iterator[Metric]:
        """Everything but the per-miner table: PDUs, fleet and supply chain, the collector loop."""
        if self.fleet:
            yield from pdu_families(snap.pdus)
            yield from fleet_families(snap)
            yield from collector_families(snap.collectors)


class FleetRegistry(CollectorRegistry):
    """A registry holding only fleetmon's collector, which exposition.render writes the fast way."""

    def __init__(self, collector: FleetCollector) -> None:
        super().__init__(auto_describe=False)
        self.fleet_collector = collector
        self.register(collector)


def build_registry(source: Callable[[], FleetSnapshot], *, fleet: bool = True) -> FleetRegistry:
    """A registry holding only fleetmon's collector (no process metrics of the API replica)."""
    return FleetRegistry(FleetCollector(source, fleet=fleet))


def runtime_registry() -> CollectorRegistry:
    """This process's own figures, as client_python's standard collectors give them: `process_*` (CPU,
    memory, descriptors, start time; Linux), `python_info` and `python_gc_*`.

    They change between scrapes, so /metrics renders them at every scrape (about 30 lines, a fraction
    of a millisecond) and appends them to the fleet body cached per snapshot version.
    """
    registry = CollectorRegistry(auto_describe=False)
    ProcessCollector(registry=registry)
    PlatformCollector(registry=registry)
    GCCollector(registry=registry)
    return registry
