"""Which PDU outlet feeds which miner, and the join of a reading with that map.

Configured per PDU as a typed value; the SNMPv2c community is never written in the file but named
by the environment variable that holds it (`community_env`), so configuration can be committed and
logged without leaking it:

    PduConfig(host="10.20.0.5", community_env="FLEETMON_PDU_A07_COMMUNITY",
              outlets=[OutletBinding(outlet=1, miner_ip="10.20.7.11"), ...])
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from ipaddress import IPv4Address, IPv6Address

from pydantic import BaseModel, ConfigDict, Field, model_validator

from collectors.snmp.models import OutletState, PduReading
from collectors.snmp.transport import SnmpTarget


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class OutletBinding(_Strict):
    """One outlet (number within `unit`) feeding one miner."""

    outlet: int = Field(ge=1)
    unit: int = Field(default=1, ge=0)
    miner_ip: IPv4Address | IPv6Address


class PduConfig(_Strict):
    """One PDU to poll and the miners on its outlets."""

    host: str
    port: int = Field(default=161, ge=1, le=65535)
    community_env: str = Field(
        min_length=1, description="name of the environment variable holding the community"
    )
    outlets: list[OutletBinding] = Field(default_factory=list)

    @model_validator(mode="after")
    def _one_miner_per_outlet(self) -> PduConfig:
        seen: set[tuple[int, int]] = set()
        for binding in self.outlets:
            key = (binding.unit, binding.outlet)
            if key in seen:
                raise ValueError(f"outlet {binding.outlet} of unit {binding.unit} is mapped twice")
            seen.add(key)
        return self

    def target(self, environ: Mapping[str, str] = os.environ) -> SnmpTarget:
        """The SNMP target, the community read from the named environment variable."""
        community = environ.get(self.community_env)
        if not community:
            raise LookupError(
                f"environment variable {self.community_env} (community for {self.host}) is not set"
            )
        return SnmpTarget(host=self.host, port=self.port, community=community)


class MinerOutletPower(_Strict):
    """PDU-measured power of the outlet feeding one miner; None when the PDU did not report it."""

    miner_ip: IPv4Address | IPv6Address
    pdu_host: str
    unit: int
    outlet: int
    outlet_name: str | None
    power_w: float | None
    outlet_state: OutletState | None


def join_outlets(reading: PduReading, config: PduConfig) -> list[MinerOutletPower]:
    """One row per mapped outlet; a mapped outlet the PDU did not list gets power None, not 0."""
    by_key = {(o.unit, o.index): o for o in reading.outlets}
    rows = []
    for binding in config.outlets:
        outlet = by_key.get((binding.unit, binding.outlet))
        rows.append(
            MinerOutletPower(
                miner_ip=binding.miner_ip,
                pdu_host=config.host,
                unit=binding.unit,
                outlet=binding.outlet,
                outlet_name=outlet.name if outlet else None,
                power_w=outlet.power_w if outlet else None,
                outlet_state=outlet.state if outlet else None,
            )
        )
    return rows
