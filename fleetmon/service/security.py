"""The fleet's security findings as of one snapshot: per device, and counted by code, severity, maker,
firmware family and site (`GET /api/v1/security/findings`, `fleetmon report security`).

The findings are the ones the collector put on each device's latest sample (collectors.posture,
docs/security.md); nothing here judges a device again. A device whose latest read failed is counted in
`devices_down`: what it would say now is not known, and its last sample says nothing of its posture.
Counts are of findings (a device with two advisories adds two to `firmware_advisory`); the four codes
other than `firmware_advisory` occur at most once per device, so for them a count is a number of devices.
Unknown maker, firmware or site is the group `unknown`, never guessed.
"""

from __future__ import annotations

import csv
import io
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from collectors.firmware import family_of
from collectors.sample import SecurityFinding, is_down
from fleetmon.service.fleet import csv_text
from fleetmon.service.security_schemas import DeviceFindingsOut, FindingCountsOut, SecurityFindingsOut
from fleetmon.service.snapshot import DeviceView, FleetSnapshot
from fleetmon.service.state import fleet_from_database
from fleetmon.storage.engine import Engine

UNKNOWN = "unknown"
CSV_COLUMNS = (
    "site",
    "ip",
    "port",
    "device_id",
    "make",
    "manufacturer",
    "model",
    "serial",
    "firmware_vendor",
    "firmware_version",
    "firmware_family",
    "code",
    "severity",
    "message",
)


@dataclass(frozen=True)
class FindingFilter:
    """Which findings to report; None matches all. Exact match, case-insensitive."""

    code: str | None = None
    severity: str | None = None
    site: str | None = None

    def keeps(self, site: str, finding: SecurityFinding) -> bool:
        """Whether one finding of a device at `site` is reported."""
        return (
            _same(self.code, finding.code)
            and _same(self.severity, finding.severity)
            and _same(self.site, site)
        )


def _same(wanted: str | None, value: str) -> bool:
    return wanted is None or wanted.casefold() == value.casefold()


def device_findings(view: DeviceView, findings: Sequence[SecurityFinding]) -> DeviceFindingsOut:
    """One device and the findings reported for it."""
    s = view.sample
    # The firmware catalog's family (collectors/data/firmware.csv), else the raw firmware vendor.
    family = family_of(s.make, s.firmware_vendor)
    return DeviceFindingsOut(
        id=view.device_id,
        site=view.site,
        ip=s.ip,
        port=s.port,
        make=s.make,
        manufacturer=view.manufacturer,
        model=s.model,
        serial=s.serial,
        firmware_vendor=s.firmware_vendor,
        firmware_version=s.firmware_version,
        firmware_family=family.family if family is not None else s.firmware_vendor,
        firmware_publisher=family.publisher if family is not None else None,
        state=s.state,
        read_at=s.ts,
        findings=list(findings),
    )


def security_report(
    views: Iterable[DeviceView], where: FindingFilter, snapshot_at: datetime | None
) -> SecurityFindingsOut:
    """Every device with a reported finding, in the views' order, and the counts over them."""
    checked = down = 0
    devices: list[DeviceFindingsOut] = []
    by_code: Counter[str] = Counter()
    by_severity: Counter[str] = Counter()
    by_maker: Counter[str] = Counter()
    by_firmware: Counter[str] = Counter()
    by_site: Counter[str] = Counter()
    for view in views:
        checked += 1
        if is_down(view.sample.state):
            down += 1
        kept = [f for f in view.sample.security if where.keeps(view.site, f)]
        if not kept:
            continue
        item = device_findings(view, kept)
        devices.append(item)
        for finding in kept:
            by_code[finding.code] += 1
            by_severity[finding.severity] += 1
            by_maker[item.manufacturer or item.make or UNKNOWN] += 1
            by_firmware[item.firmware_family or UNKNOWN] += 1
            by_site[item.site or UNKNOWN] += 1
    return SecurityFindingsOut(
        snapshot_at=snapshot_at,
        devices_checked=checked,
        devices_down=down,
        devices_with_findings=len(devices),
        findings_total=sum(by_code.values()),
        counts=FindingCountsOut(
            by_code=dict(by_code.most_common()),
            by_severity=dict(by_severity.most_common()),
            by_maker=dict(by_maker.most_common()),
            by_firmware=dict(by_firmware.most_common()),
            by_site=dict(by_site.most_common()),
        ),
        devices=devices,
    )


def snapshot_report(snapshot: FleetSnapshot, where: FindingFilter) -> SecurityFindingsOut:
    """The report of a service snapshot (taken_at 0 means no snapshot was taken yet)."""
    taken = datetime.fromtimestamp(snapshot.taken_at, UTC) if snapshot.taken_at else None
    return security_report(snapshot.devices, where, taken)


def report_from_database(engine: Engine, where: FindingFilter) -> SecurityFindingsOut:
    """The report from the stored latest samples, through the fleet state the service uses (the CLI's
    path: its figures are the API's). Raises StorageError when the database cannot be read."""
    return security_report(fleet_from_database(engine).views(), where, datetime.now(UTC))


def _cell(value: object) -> object:
    # Device strings (model, serial, hostname) end up in spreadsheets: fleet.csv_text quotes one that
    # would start a formula (CSV injection).
    return csv_text(value) if isinstance(value, str) or value is None else value


def findings_csv(report: SecurityFindingsOut) -> str:
    """One row per finding (CSV_COLUMNS), devices in the report's order."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for d in report.devices:
        for f in d.findings:
            row = (
                d.site,
                d.ip,
                d.port,
                d.id,
                d.make,
                d.manufacturer,
                d.model,
                d.serial,
                d.firmware_vendor,
                d.firmware_version,
                d.firmware_family,
                f.code,
                f.severity,
                f.message,
            )
            writer.writerow([_cell(v) for v in row])
    return buffer.getvalue()


def findings_table(report: SecurityFindingsOut) -> str:
    """The report for a terminal: the counts, then one line per finding."""
    c = report.counts
    lines = [
        f"Security findings: {report.findings_total} on {report.devices_with_findings} of "
        f"{report.devices_checked} devices ({report.devices_down} down: posture not known)",
    ]
    for title, counts in (
        ("by code", c.by_code),
        ("by severity", c.by_severity),
        ("by maker", c.by_maker),
        ("by firmware", c.by_firmware),
        ("by site", c.by_site),
    ):
        lines.append(f"  {title}: " + (", ".join(f"{k} {n}" for k, n in counts.items()) or "none"))
    for d in report.devices:
        where = f"{d.site} {d.ip}:{d.port}"
        what = " ".join(filter(None, (d.make, d.model, d.firmware_vendor, d.firmware_version)))
        for f in d.findings:
            lines.append(f"{where:<28} {f.severity:<8} {f.code:<20} {what}")
    return "\n".join(lines) + "\n"
