"""Response models of `/api/v1/security/findings` (fleetmon.service.security fills them)."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from collectors.sample import SecurityFinding, State


class _Out(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DeviceFindingsOut(_Out):
    """One device with the findings of its latest read."""

    id: int | None = Field(description="database id (for /api/v1/devices/{id}); null before it is stored")
    site: str
    ip: str
    port: int
    make: str | None
    manufacturer: str | None
    model: str | None
    serial: str | None
    firmware_vendor: str | None
    firmware_version: str | None
    firmware_family: str | None = Field(
        description="the firmware catalog's family (collectors/data/firmware.csv), else the raw vendor"
    )
    firmware_publisher: str | None = Field(description="who publishes the firmware; null when unknown")
    state: State
    read_at: datetime = Field(description="when the read that found these was made")
    findings: list[SecurityFinding]


class FindingCountsOut(_Out):
    """Findings counted per group (each finding once); `unknown` is a group of its own."""

    by_code: dict[str, int]
    by_severity: dict[str, int]
    by_maker: dict[str, int] = Field(description="catalog maker, else the make the device reported")
    by_firmware: dict[str, int] = Field(description="firmware family")
    by_site: dict[str, int]


class SecurityFindingsOut(_Out):
    """The fleet's security findings as of the latest snapshot (docs/security.md lists the codes)."""

    snapshot_at: datetime | None
    devices_checked: int = Field(description="devices in the snapshot")
    devices_down: int = Field(description="devices whose latest read failed: their posture is not known")
    devices_with_findings: int
    findings_total: int
    counts: FindingCountsOut
    devices: list[DeviceFindingsOut] = Field(description="devices with a finding, by site then address")
