"""Prometheus exposition of the fleet: one custom collector over the latest FleetSnapshot.

`collect()` only reads the snapshot it is handed (no I/O, no per-device Gauge children kept alive), so a
scrape costs the same whether the devices are up or hung. Names and units are documented in
docs/metrics.md; hashrates leave here in hashes per second, the Prometheus base unit.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector, CollectorRegistry

from collectors.sample import State
from fleetmon.service.snapshot import CYCLE_BUCKETS, FleetSnapshot

TH = 1e12  # hashes per second in one TH/s
MINER = ["site", "ip"]
INFO_LABELS = [
    *MINER,
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
]


def _s(value: str | None) -> str:
    return value if value is not None else ""


class FleetCollector(Collector):
    """Yields every fleetmon metric family from the snapshot `source()` returns at scrape time."""

    def __init__(self, source: Callable[[], FleetSnapshot], *, fleet: bool = True) -> None:
        """`fleet=False` yields only the per-miner families (what /probe answers for one device)."""
        self._source = source
        self._fleet_families = fleet

    def describe(self) -> list[Metric]:
        """Nothing to describe up front: families depend on the snapshot (keeps registration cheap)."""
        return []

    def collect(self) -> Iterator[Metric]:
        """Build the metric families from the current snapshot."""
        snap = self._source()
        yield from self._miners(snap)
        if self._fleet_families:
            yield from self._fleet(snap)
            yield from self._collector(snap)

    # ---- per miner -----------------------------------------------------------------------------

    def _miners(self, snap: FleetSnapshot) -> Iterator[Metric]:
        g = GaugeMetricFamily
        up = g("fleetmon_miner_up", "1 when the last poll read the miner", labels=MINER)
        info = g("fleetmon_miner_info", "Identity and origin of the miner", labels=INFO_LABELS)
        state = g("fleetmon_miner_state", "Current state of the miner (enum)", labels=[*MINER, "state"])
        hashrate = g("fleetmon_miner_hashrate_hashes_per_second", "Current hashrate", labels=MINER)
        expected = g("fleetmon_miner_expected_hashrate_hashes_per_second", "Nominal hashrate", labels=MINER)
        board_rate = g(
            "fleetmon_miner_board_hashrate_hashes_per_second", "Hashrate per board", labels=[*MINER, "board"]
        )
        board_temp = g(
            "fleetmon_miner_board_temperature_celsius",
            "Board and chip temperature per board",
            labels=[*MINER, "board", "sensor"],
        )
        chips = g("fleetmon_miner_board_chips", "Working chips per board", labels=[*MINER, "board"])
        exp_chips = g(
            "fleetmon_miner_board_expected_chips", "Chips per board for the model", labels=[*MINER, "board"]
        )
        temp = g("fleetmon_miner_temperature_celsius", "Hottest reading", labels=[*MINER, "sensor"])
        fan = g("fleetmon_miner_fan_speed_rpm", "Fan speed", labels=[*MINER, "fan"])
        power = g("fleetmon_miner_power_watts", "Power reported by the miner", labels=MINER)
        eff = g("fleetmon_miner_efficiency_joules_per_terahash", "Power over hashrate", labels=MINER)
        uptime = g("fleetmon_miner_uptime_seconds", "Seconds since the miner started", labels=MINER)
        pool_labels = [*MINER, "pool", "url"]
        pool_up = g("fleetmon_miner_pool_up", "1 when the pool is alive", labels=pool_labels)
        pool_active = g("fleetmon_miner_pool_active", "1 for the pool being mined", labels=pool_labels)
        accepted = CounterMetricFamily(
            "fleetmon_miner_pool_accepted_shares", "Accepted shares", labels=pool_labels
        )
        rejected = CounterMetricFamily(
            "fleetmon_miner_pool_rejected_shares", "Rejected shares", labels=pool_labels
        )
        last = g("fleetmon_miner_last_sample_timestamp_seconds", "When the miner was last read", labels=MINER)

        for view in snap.devices:
            s = view.sample
            # One label dict shared by every series of this miner (and one per board, fan and pool):
            # the exposition writer renders each dict once, which keeps a 10,000-miner scrape fast.
            m = {"site": view.site, "ip": s.ip}
            reachable = s.state not in (State.UNREACHABLE, State.ERROR)
            up.add_sample(up.name, m, 1.0 if reachable else 0.0)
            info_labels = dict(
                m,
                serial=_s(s.serial),
                mac=_s(s.mac),
                make=_s(s.make),
                manufacturer=_s(view.manufacturer),
                model=_s(s.model),
                firmware_vendor=_s(s.firmware_vendor),
                firmware_version=_s(s.firmware_version),
                manufacturer_country=_s(view.manufacturer_country),
                assembly_country=_s(view.assembly_country),
                origin_source=view.origin_source,
            )
            info.add_sample(info.name, info_labels, 1.0)
            # Only the current state is exported (value 1); a change makes the old series stale at
            # the next scrape. Six 0/1 series per miner would add 60,000 lines at 10,000 miners.
            state.add_sample(state.name, dict(m, state=s.state.value), 1.0)
            last.add_sample(last.name, m, s.ts.timestamp())
            if s.hashrate_ths is not None:
                hashrate.add_sample(hashrate.name, m, s.hashrate_ths * TH)
            if s.expected_hashrate_ths is not None:
                expected.add_sample(expected.name, m, s.expected_hashrate_ths * TH)
            if s.temp_max_c is not None:
                temp.add_sample(temp.name, dict(m, sensor="max"), s.temp_max_c)
            if s.power_w is not None:
                power.add_sample(power.name, m, s.power_w)
            if s.efficiency_jth is not None:
                eff.add_sample(eff.name, m, s.efficiency_jth)
            if s.uptime_s is not None:
                uptime.add_sample(uptime.name, m, float(s.uptime_s))
            for b in s.boards:
                bl = dict(m, board=str(b.index))
                if b.hashrate_ths is not None:
                    board_rate.add_sample(board_rate.name, bl, b.hashrate_ths * TH)
                if b.temp_c is not None:
                    board_temp.add_sample(board_temp.name, dict(bl, sensor="board"), b.temp_c)
                if b.chip_temp_c is not None:
                    board_temp.add_sample(board_temp.name, dict(bl, sensor="chip"), b.chip_temp_c)
                if b.chips is not None:
                    chips.add_sample(chips.name, bl, float(b.chips))
                if b.expected_chips is not None:
                    exp_chips.add_sample(exp_chips.name, bl, float(b.expected_chips))
            for i, rpm in enumerate(s.fans_rpm):
                fan.add_sample(fan.name, dict(m, fan=str(i)), float(rpm))
            for i, p in enumerate(s.pools):
                pl = dict(m, pool=str(i), url=p.url)
                if p.status is not None:
                    pool_up.add_sample(pool_up.name, pl, 1.0 if p.status.lower() == "alive" else 0.0)
                if p.active is not None:
                    pool_active.add_sample(pool_active.name, pl, 1.0 if p.active else 0.0)
                if p.accepted is not None:
                    accepted.add_sample(accepted.name + "_total", pl, float(p.accepted))
                if p.rejected is not None:
                    rejected.add_sample(rejected.name + "_total", pl, float(p.rejected))

        yield from (up, info, state, hashrate, expected, board_rate, board_temp, chips, exp_chips)
        yield from (temp, fan, power, eff, uptime, pool_up, pool_active, accepted, rejected, last)

    # ---- fleet and supply chain ------------------------------------------------------------------

    def _fleet(self, snap: FleetSnapshot) -> Iterator[Metric]:
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
            measured[view.site] = measured.get(view.site, 0.0) + (s.hashrate_ths or 0.0)
            expected[view.site] = expected.get(view.site, 0.0) + (s.expected_hashrate_ths or 0.0)
            counts[(view.site, s.state.value)] = counts.get((view.site, s.state.value), 0) + 1
        for site in sorted(measured):
            total.add_metric([site], measured[site] * TH)
            nominal.add_metric([site], expected[site] * TH)
            for st in State:
                devices.add_metric([site, st.value], float(counts.get((site, st.value), 0)))
        yield from (total, nominal, devices)

        sc = snap.supply_chain
        share = g(
            "fleetmon_fleet_hash_share_ratio", "Share of measured hashrate", labels=["dimension", "group"]
        )
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
            (
                "fleetmon_fleet_tariff_exposure_score",
                "Composite tariff exposure score 0-100",
                sc.exposure_score,
            ),
            (
                "fleetmon_fleet_tariff_effective_rate_ratio",
                "Hashrate-weighted effective US duty rate",
                sc.effective_rate,
            ),
        )
        for name, doc, single in singles:
            if single is not None:
                yield g(name, doc, value=single)

    # ---- the collector loop ----------------------------------------------------------------------

    def _collector(self, snap: FleetSnapshot) -> Iterator[Metric]:
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
        for c in snap.collectors:
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
        yield from (cycle, polled, failed, last)


def build_registry(source: Callable[[], FleetSnapshot], *, fleet: bool = True) -> CollectorRegistry:
    """A registry holding only fleetmon's collector (no process metrics of the API replica)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(FleetCollector(source, fleet=fleet))
    return registry
