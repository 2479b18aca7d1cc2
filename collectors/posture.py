"""Security posture of one device, from what a read already learns, plus one read-only API question.

Findings (each a `SecurityFinding` with a stable code; docs/security.md):
- `api_write_open` (critical): the CGMiner-style API answered `privileged` with STATUS=S, so anyone who
  can reach port 4028 may change pools, restart or reconfigure it. `privileged` is a query: cgminer
  answers it with "Privileged access OK" (code 46) or "Access denied" (code 45) and changes nothing.
- `default_credentials` (high): the web UI accepted the factory login of the device's firmware family
  (collectors.firmware), when the collector logged in with it to read the serial.
- `firmware_outdated` (medium): the firmware's build date is older than `firmware_max_age_days`.
- `firmware_advisory` (severity of the advisory): the firmware matches an entry of the advisory file.

Everything here is pure and never raises on device data: an unreadable reply or version gives no finding
(unknown is not a finding).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from functools import lru_cache

from collectors.firmware import advisories, build_date, family_of
from collectors.framing import Reply
from collectors.sample import SecurityFinding
from collectors.wire import status_record

PRIVILEGED_COMMAND = "privileged"
CODE_PRIVILEGED_OK = 46
DEFAULT_FIRMWARE_MAX_AGE_DAYS = 730
"""Two years: stock firmware of the current makers gets several builds a year, and aftermarket firmware
more, so a build older than two years has missed many fixes; a shorter bound would flag most of a fleet
that updates yearly, and a finding everyone has is a finding nobody reads."""


@dataclass(frozen=True, slots=True)
class PostureSettings:
    """What the posture checks do; a typed value passed down from the poller or CLI."""

    check_api_write: bool = True
    """Ask `privileged` once per identification (a re-identification asks again)."""
    firmware_max_age_days: int = DEFAULT_FIRMWARE_MAX_AGE_DAYS

    def __post_init__(self) -> None:
        if self.firmware_max_age_days < 1:
            raise ValueError("firmware_max_age_days must be at least 1")


def privileged_open(reply: Reply) -> bool | None:
    """Whether a `privileged` reply grants write access: True on STATUS=S that says so, False on
    STATUS=E/F, None when the reply is neither (a firmware that does not know the command)."""
    record = status_record(reply)
    if record is None:
        return None
    letter, code, msg = record.get("STATUS"), record.get("Code"), record.get("Msg")
    if not isinstance(letter, str):
        return None
    if letter.upper() in ("E", "F"):
        return False
    granted = code == CODE_PRIVILEGED_OK or (isinstance(msg, str) and "privileged" in msg.lower())
    return True if letter.upper() == "S" and granted else None


def assess(
    *,
    make: str | None,
    firmware_vendor: str | None,
    firmware_version: str | None,
    api_write_open: bool | None,
    default_login: bool | None,
    settings: PostureSettings,
    today: dt.date,
) -> list[SecurityFinding]:
    """The findings for one device read.

    A fleet is a few hundred distinct (firmware, posture) combinations read over and over, so the
    findings are computed once per combination and day (findings are immutable values)."""
    return list(
        _assess(
            make=make,
            firmware_vendor=firmware_vendor,
            firmware_version=firmware_version,
            api_write_open=api_write_open,
            default_login=default_login,
            max_age_days=settings.firmware_max_age_days,
            today=today,
        )
    )


@lru_cache(maxsize=4096)
def _assess(
    *,
    make: str | None,
    firmware_vendor: str | None,
    firmware_version: str | None,
    api_write_open: bool | None,
    default_login: bool | None,
    max_age_days: int,
    today: dt.date,
) -> tuple[SecurityFinding, ...]:
    findings: list[SecurityFinding] = []
    if api_write_open:
        findings.append(
            SecurityFinding(
                code="api_write_open",
                severity="critical",
                message="the miner API grants write (privileged) access to any caller: "
                "anyone on the network can change its pools",
            )
        )
    if default_login:
        findings.append(
            SecurityFinding(
                code="default_credentials",
                severity="high",
                message="the web UI accepts the firmware's factory login",
            )
        )
    built = build_date(firmware_version)
    if built is not None and (today - built).days > max_age_days:
        findings.append(
            SecurityFinding(
                code="firmware_outdated",
                severity="medium",
                message=f"firmware built {built.isoformat()}, {(today - built).days} days ago "
                f"(limit {max_age_days})",
            )
        )
    family = family_of(make, firmware_vendor)
    if family is not None:
        for advisory in advisories():
            if advisory.family == family.family and advisory.affects(firmware_version, built):
                findings.append(
                    SecurityFinding(
                        code="firmware_advisory",
                        severity=advisory.severity,
                        message=f"{advisory.id}: {advisory.summary} ({advisory.source})",
                    )
                )
    return tuple(findings)
