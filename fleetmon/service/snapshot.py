"""An immutable picture of the fleet at one instant: what `/metrics` and the summaries read.

The snapshot is taken of the process's fleet state (fleetmon.service.state) off the request path, each
time samples were applied to it, and swapped in whole, so a scrape or an API call never waits on the
database or on a device.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace

from collectors.sample import Sample, is_down
from collectors.snmp.models import PduReading
from fleetmon.supplychain.fleet import FleetUnit


@dataclass(frozen=True)
class DeviceView:
    """One device's latest sample with the identity and origin fleetmon knows for it."""

    site: str
    sample: Sample
    manufacturer: str | None = None
    manufacturer_country: str | None = None
    assembly_country: str | None = None
    origin_source: str = "unknown"  # inventory | inferred | unknown
    device_id: int | None = None  # the database id, where the device is stored
    unit: FleetUnit | None = None  # what the supply-chain analytics see (fleetmon.service.units)


CYCLE_BUCKETS = (0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0)


@dataclass(frozen=True)
class CollectorStats:
    """Counters of one site's collector loop; cycle durations kept as histogram buckets.

    `last_ok` and `last_failed_by_reason` describe the last completed cycle only. The delivery figures
    (spool, offered to and acknowledged by the sink) are None where no sink reports them.
    """

    site: str
    cycles: int = 0
    devices_polled: int = 0
    failed_by_reason: dict[str, int] = field(default_factory=dict)
    cycle_bucket_counts: tuple[int, ...] = (0,) * len(CYCLE_BUCKETS)  # cumulative, per CYCLE_BUCKETS
    cycle_seconds_sum: float = 0.0
    last_cycle_end: float | None = None
    last_cycle_seconds: float | None = None
    last_ok: int = 0
    last_failed_by_reason: dict[str, int] = field(default_factory=dict)
    spool_samples: int | None = None
    spool_bytes: int | None = None
    published: int | None = None
    acknowledged: int | None = None

    def after_cycle(
        self, seconds: float, polled: int, failures: dict[str, int], end: float
    ) -> CollectorStats:
        """These counters with one more completed cycle added."""
        failed = dict(self.failed_by_reason)
        for reason, n in failures.items():
            failed[reason] = failed.get(reason, 0) + n
        buckets = tuple(
            count + (1 if seconds <= bound else 0)
            for count, bound in zip(self.cycle_bucket_counts, CYCLE_BUCKETS, strict=True)
        )
        return replace(
            self,
            cycles=self.cycles + 1,
            devices_polled=self.devices_polled + polled,
            failed_by_reason=failed,
            cycle_bucket_counts=buckets,
            cycle_seconds_sum=self.cycle_seconds_sum + seconds,
            last_cycle_end=end,
            last_cycle_seconds=seconds,
            last_ok=polled - sum(failures.values()),
            last_failed_by_reason=dict(failures),
        )

    def with_delivery(
        self, *, spool_samples: int, spool_bytes: int, published: int, acknowledged: int
    ) -> CollectorStats:
        """These counters with the sink's figures (a `fleetmon collect` process) set."""
        return replace(
            self,
            spool_samples=spool_samples,
            spool_bytes=spool_bytes,
            published=published,
            acknowledged=acknowledged,
        )


def failure_reasons(samples: Iterable[Sample]) -> tuple[int, dict[str, int]]:
    """(devices read, failures by reason) of one cycle: a down sample's first error code, else its state."""
    count = 0
    failures: dict[str, int] = {}
    for sample in samples:
        count += 1
        if is_down(sample.state):
            reason = sample.errors[0].code if sample.errors else sample.state.value
            failures[reason] = failures.get(reason, 0) + 1
    return count, failures


@dataclass(frozen=True)
class SupplyChainFigures:
    """Fleet-level supply-chain figures, computed by fleetmon.supplychain."""

    hash_share: dict[str, dict[str, float]] = field(default_factory=dict)  # dimension -> group -> share
    hhi: dict[str, float] = field(default_factory=dict)
    china_dependency_ratio: float | None = None
    unverified_origin_ratio: float | None = None
    exposure_score: float | None = None
    effective_rate: float | None = None


@dataclass(frozen=True)
class PduView:
    """One configured PDU: its last reading (None while it cannot be read) and outlet -> miner map."""

    name: str  # the configured name, e.g. "rack-a1-pdu1"
    host: str
    site: str
    reading: PduReading | None
    outlet_miners: dict[tuple[int, int], str] = field(default_factory=dict)  # (unit, outlet) -> miner ip
    error: str | None = None  # why the last read failed, when it did


@dataclass(frozen=True)
class FleetSnapshot:
    """Everything a scrape reports, taken at `taken_at` (epoch seconds)."""

    taken_at: float
    devices: tuple[DeviceView, ...] = ()
    collectors: tuple[CollectorStats, ...] = ()
    supply_chain: SupplyChainFigures = field(default_factory=SupplyChainFigures)
    pdus: tuple[PduView, ...] = ()
