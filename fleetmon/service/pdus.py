"""Rack PDUs in the service: reading the configured PDUs each cycle, and their API views.

`PduPoller` reads every PDU of the configuration through one shared pysnmp engine, at most
`snmp.concurrency` at a time, each read bounded by `snmp.deadline_s`. A PDU that cannot be read is a
PduView with `reading=None` and the reason in `error`, never a reading of zeros; its down and up
transitions are logged once each. The views go into the fleet snapshot, where /metrics, GET
/api/v1/pdus and GET /api/v1/devices/{id} read them.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from fleetmon.config import PduSettings, Settings
from fleetmon.service.schemas import DeviceDetail, OutletPower, PduList, PduOut, PduOutletOut
from fleetmon.service.snapshot import DeviceView, FleetSnapshot, PduView

if TYPE_CHECKING:
    from pysnmp.hlapi.v3arch.asyncio import SnmpEngine

    from collectors.snmp import PduReading

log = logging.getLogger(__name__)


class PduPoller:
    """Reads the configured PDUs; one instance (and one SNMP engine) per service process."""

    def __init__(self, settings: Settings, environ: Mapping[str, str] | None = None) -> None:
        self.settings = settings
        self.environ = environ
        self._engine: SnmpEngine | None = None
        self._semaphore = asyncio.Semaphore(settings.snmp.concurrency)
        self._up: dict[str, bool] = {}

    @property
    def configured(self) -> bool:
        """True when the configuration names at least one PDU."""
        return bool(self.settings.pdus)

    async def poll(self) -> tuple[PduView, ...]:
        """Read every PDU concurrently (bounded); one view per PDU, in configuration order."""
        if not self.settings.pdus:
            return ()
        if self._engine is None:
            from collectors.snmp import new_engine  # pysnmp is imported only when PDUs are configured

            self._engine = new_engine()
        return tuple(await asyncio.gather(*(self._read(pdu) for pdu in self.settings.pdus)))

    async def _read(self, pdu: PduSettings) -> PduView:
        from collectors.snmp import PduError, read_pdu

        config = pdu.pdu_config()
        view = PduView(
            name=pdu.name,
            host=pdu.host,
            site=self.settings.pdu_site(pdu),
            reading=None,
            outlet_miners={(b.unit, b.outlet): str(b.miner_ip) for b in config.outlets},
        )
        deadline = self.settings.snmp.deadline_s
        error: str | None = None
        reading: PduReading | None = None
        async with self._semaphore:
            try:
                target = config.target() if self.environ is None else config.target(self.environ)
                reading = await asyncio.wait_for(
                    read_pdu(target, self.settings.snmp.timeouts(), engine=self._engine), deadline
                )
            except LookupError as exc:  # the community variable vanished since startup
                error = str(exc)
            except TimeoutError:
                error = f"no complete reading within {deadline:g} s"
            except PduError as exc:
                error = str(exc) or type(exc).__name__
        self._transition(pdu.name, pdu.host, error)
        if reading is None:
            return PduView(view.name, view.host, view.site, None, view.outlet_miners, error)
        return PduView(view.name, view.host, view.site, reading, view.outlet_miners)

    def _transition(self, name: str, host: str, error: str | None) -> None:
        was_up = self._up.get(name)
        now_up = error is None
        self._up[name] = now_up
        if was_up is None:
            if not now_up:
                log.warning("PDU %s (%s) cannot be read: %s", name, host, error)
        elif was_up and not now_up:
            log.warning("PDU %s (%s) is down: %s", name, host, error)
        elif not was_up and now_up:
            log.info("PDU %s (%s) is readable again", name, host)

    def close(self) -> None:
        """Close the shared SNMP engine's sockets."""
        if self._engine is not None:
            self._engine.close_dispatcher()
            self._engine = None


# ---- API views -----------------------------------------------------------------------------------


def _difference(pdu_w: float | None, miner_w: float | None) -> float | None:
    return None if pdu_w is None or miner_w is None else round(pdu_w - miner_w, 3)


def _devices_by_address(devices: Sequence[DeviceView]) -> dict[tuple[str, str], DeviceView]:
    return {(view.site, view.sample.ip): view for view in devices}


def _miner(
    by_address: Mapping[tuple[str, str], DeviceView], by_ip: Mapping[str, DeviceView], site: str, ip: str
) -> DeviceView | None:
    """The device fed by an outlet: the one at `ip` on the PDU's site, else the only one anywhere."""
    return by_address.get((site, ip)) or by_ip.get(ip)


def pdu_list(snapshot: FleetSnapshot) -> PduList:
    """Every configured PDU with its outlets, the mapped miners and both powers side by side."""
    by_address = _devices_by_address(snapshot.devices)
    by_ip = {view.sample.ip: view for view in snapshot.devices}
    items = []
    for pdu in snapshot.pdus:
        reading = pdu.reading
        measured = {(o.unit, o.index): o for o in reading.outlets} if reading else {}
        keys = sorted(set(measured) | set(pdu.outlet_miners))
        outlets = []
        for key in keys:
            outlet = measured.get(key)
            ip = pdu.outlet_miners.get(key)
            miner = _miner(by_address, by_ip, pdu.site, ip) if ip else None
            power = outlet.power_w if outlet else None
            miner_power = miner.sample.power_w if miner else None
            outlets.append(
                PduOutletOut(
                    unit=key[0],
                    outlet=key[1],
                    name=outlet.name if outlet else None,
                    state=outlet.state.value if outlet and outlet.state else None,
                    power_w=power,
                    miner_ip=ip,
                    miner_id=miner.device_id if miner else None,
                    miner_power_w=miner_power,
                    difference_w=_difference(power, miner_power),
                )
            )
        mapped = [o for o in outlets if o.miner_ip is not None]
        pdu_watts = [o.power_w for o in mapped if o.power_w is not None]
        miner_watts = [o.miner_power_w for o in mapped if o.miner_power_w is not None]
        items.append(
            PduOut(
                name=pdu.name,
                host=pdu.host,
                site=pdu.site,
                up=reading is not None,
                error=pdu.error,
                vendor=reading.vendor.value if reading else None,
                model=reading.model if reading else None,
                read_at=reading.ts if reading else None,
                total_power_w=reading.total_power_w if reading else None,
                total_power_source=(
                    reading.total_power_source.value if reading and reading.total_power_source else None
                ),
                mapped_pdu_power_w=sum(pdu_watts) if pdu_watts else None,
                mapped_miner_power_w=sum(miner_watts) if miner_watts else None,
                outlets=outlets,
            )
        )
    at = datetime.fromtimestamp(snapshot.taken_at, UTC) if snapshot.taken_at else None
    return PduList(items=items, snapshot_at=at)


def outlet_power(
    snapshot: FleetSnapshot, site: str, ip: str, miner_power_w: float | None
) -> OutletPower | None:
    """The outlet mapped to the miner at (site, ip), with both powers; None when no outlet feeds it."""
    fallback = None
    for pdu in snapshot.pdus:
        for key, mapped_ip in pdu.outlet_miners.items():
            if mapped_ip != ip:
                continue
            found = _outlet_power(pdu, key, miner_power_w)
            if pdu.site == site:
                return found
            fallback = fallback or found
    return fallback


def _outlet_power(pdu: PduView, key: tuple[int, int], miner_power_w: float | None) -> OutletPower:
    reading = pdu.reading
    outlet = next((o for o in reading.outlets if (o.unit, o.index) == key), None) if reading else None
    power = outlet.power_w if outlet else None
    return OutletPower(
        pdu=pdu.name,
        pdu_host=pdu.host,
        unit=key[0],
        outlet=key[1],
        outlet_name=outlet.name if outlet else None,
        outlet_state=outlet.state.value if outlet and outlet.state else None,
        pdu_power_w=power,
        miner_power_w=miner_power_w,
        difference_w=_difference(power, miner_power_w),
        read_at=reading.ts if reading else None,
    )


def with_outlet_power(detail: DeviceDetail, snapshot: FleetSnapshot) -> DeviceDetail:
    """The device detail with the power measured at its PDU outlet, when an outlet is mapped to it."""
    device = detail.device
    outlet = outlet_power(snapshot, device.site, device.ip, device.power_w)
    if outlet is None:
        return detail
    return detail.model_copy(update={"pdu_power_w": outlet.pdu_power_w, "pdu_outlet": outlet})
