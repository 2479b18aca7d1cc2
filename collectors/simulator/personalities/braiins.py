"""Braiins OS on Antminer X19/X21 hardware: BOSer's cgminer-compatible API on 4028 and its web page.

Version follows braiins-os/boser-buildroot_version.json. There is no BOSer summary, pools, devs, fans
or temps capture; those replies are derived from the closest captures, BOSminer+ 0.2.0 on an S9
(braiins-os/s9-bosplus_*), whose key sets BOSer kept: hashrates in MH/s (`MHS 1m`), `Nominal MHS`
per device, pools with `Stratum Difficulty`/`Works`. Board IDs are 0-based here (the S9 IDs 6-8
belong to that board's chain numbering). `devdetails` carries the model as "Bitmain Antminer S19 Pro"
(pyasic strips "Bitmain "). BOSer also serves its gRPC API on 50051 (`boser_grpc.py`): operator
actions, and `Stop` takes this 4028 API down with bosminer until `Start`.
"""

from __future__ import annotations

from collectors.simulator.device import BoardState, SimDevice, SimState
from collectors.simulator.personalities import boser_grpc
from collectors.simulator.personalities import cgminer_reply as cg
from collectors.simulator.personalities.antminer import Handler, StockAntminer
from collectors.simulator.personalities.base import HttpRequest, HttpResponse
from collectors.simulator.personalities.http_reply import landing_page
from collectors.simulator.personalities.template_store import fill, first, stamp, template

Json = cg.Json


class BraiinsOS(StockAntminer):
    """BOSer on an Antminer controller."""

    accepts_multi = True
    glue_stats = False
    denied: frozenset[str] = frozenset()

    def handlers(self) -> dict[str, Handler]:
        """Command name -> reply builder."""
        return {
            "version": self.version,
            "summary": self.summary,
            "pools": self.pools,
            "devs": self.devs,
            "devdetails": self.devdetails,
            "fans": self.fans,
            "temps": self.temps,
            "tunerstatus": self.tunerstatus,
        }

    def describe(self, dev: SimDevice) -> str:
        """STATUS Description: "BOSer boser-buildroot 0.1.0-75912fc7"."""
        return f"BOSer boser-buildroot {dev.firmware_version}"

    def version(self, dev: SimDevice, parameter: str | None, now: float) -> Json:
        """`version`: `{"API":"3.7","BOSer":"boser-buildroot <ver>"}`."""
        reply = template("braiins-os/boser-buildroot_version.json")
        first(reply, "VERSION")["BOSer"] = f"boser-buildroot {dev.firmware_version}"
        return stamp(reply, self.describe(dev), now, "BOSer versions")

    def summary(self, dev: SimDevice, parameter: str | None, now: float) -> Json:
        """`summary` in MH/s."""
        reply = template("braiins-os/s9-bosplus_summary.json")
        s = first(reply, "SUMMARY")
        elapsed = dev.uptime_s(now)
        mhs = dev.hashrate_ths * 1e6 if dev.mining else 0.0
        avg = mhs * (1.0 + ((dev.seed % 101) - 50) / 10_000.0)
        accepted = sum(p.accepted for p in dev.pools)
        rejected = sum(p.rejected for p in dev.pools)
        diff = dev.pools[0].difficulty if dev.pools else 65536.0
        hw = sum(b.hw_errors for b in dev.boards)
        s.update(
            {
                "Accepted": accepted,
                "Rejected": rejected,
                "Best Share": int(diff) if accepted else 0,
                "Difficulty Accepted": float(accepted * diff),
                "Difficulty Rejected": float(rejected * diff),
                "Elapsed": elapsed,
                "Getworks": elapsed // 30 + 1,
                "Hardware Errors": hw,
                "Last getwork": int(now),
                "Local Work": elapsed * 4650,
                "MHS 15m": avg,
                "MHS 1m": mhs * (1.0 + dev.rng.uniform(-0.004, 0.004)),
                "MHS 24h": avg * min(1.0, elapsed / 86_400.0),
                "MHS 5m": avg,
                "MHS 5s": mhs,
                "MHS av": avg,
                "Pool Rejected%": 100.0 * rejected / max(accepted + rejected, 1),
                "Device Rejected%": 100.0 * rejected / max(accepted + rejected, 1),
                "Device Hardware%": 0.0,
                "Total MH": avg * elapsed,
                "Utility": accepted / max(elapsed, 1) * 60.0,
                "Work Utility": avg / 1e6 * 13.9,
            }
        )
        return stamp(reply, self.describe(dev), now, "Summary")

    def pools(self, dev: SimDevice, parameter: str | None, now: float) -> Json:
        """`pools`: BOSminer+'s pool objects, one per configured pool."""
        reply = template("braiins-os/s9-bosplus_pools.json")
        count = fill(reply, "POOLS", (self._pool(dev, i, now) for i in range(len(dev.pools))))
        return stamp(reply, self.describe(dev), now, f"{count} Pool(s)")

    def _pool(self, dev: SimDevice, index: int, now: float) -> Json:
        pool = dev.pools[index]
        active = pool.active and pool.alive
        return {
            "Accepted": pool.accepted,
            "Rejected": pool.rejected,
            "Best Share": int(pool.difficulty) if pool.accepted else 0,
            "Difficulty Accepted": float(pool.accepted * pool.difficulty),
            "Difficulty Rejected": float(pool.rejected * pool.difficulty),
            "Diff1 Shares": pool.accepted * int(pool.difficulty),
            "Getworks": dev.uptime_s(now) // 30 + 1 if active else 0,
            "Last Share Difficulty": float(pool.difficulty) if active else 0.0,
            "Last Share Time": int(now) - 3 if active and pool.accepted else 0,
            "POOL": index,
            "Priority": pool.priority,
            "Status": "Alive" if pool.alive else "Dead",
            "Stratum Active": active,
            "Stratum Difficulty": float(pool.difficulty) if active else 0.0,
            "Stratum URL": pool.url.split("://", 1)[-1],
            "URL": pool.url,
            "User": pool.user,
            "Work Difficulty": float(pool.difficulty) if active else 0.0,
            "Works": dev.uptime_s(now) * 4650 if active else 0,
            "Pool Rejected%": 100.0 * pool.rejected / max(pool.accepted + pool.rejected, 1),
        }

    def devs(self, dev: SimDevice, parameter: str | None, now: float) -> Json:
        """`devs`: one ASC per hashboard with `Nominal MHS`."""
        reply = template("braiins-os/s9-bosplus_devs.json")
        count = fill(reply, "DEVS", (self._asc(dev, b, now) for b in dev.boards))
        return stamp(reply, self.describe(dev), now, f"{count} ASC(s)")

    def _asc(self, dev: SimDevice, b: BoardState, now: float) -> Json:
        mhs = b.hashrate_ths * 1e6
        return {
            "ASC": b.index,
            "ID": b.index,
            "Device Elapsed": dev.uptime_s(now),
            "Hardware Errors": b.hw_errors,
            "MHS 15m": mhs,
            "MHS 1m": mhs,
            "MHS 5m": mhs,
            "MHS 5s": mhs,
            "MHS av": mhs,
            "Nominal MHS": dev.spec.nominal_ths * 1e6 * b.share,
            "Status": "Alive" if b.alive else "Dead",
            "Enabled": "Y" if b.alive else "N",
            "Temperature": float(round(b.temp_pcb_c)),
            "Total MH": mhs * dev.uptime_s(now),
            "Last Share Time": int(now),
            "Last Valid Work": int(now),
        }

    def devdetails(self, dev: SimDevice, parameter: str | None, now: float) -> Json:
        """`devdetails`: the model lives here on Braiins OS."""
        items: list[Json] = [
            {
                **cg.devdetails_item(b.index, "bitmain", f"Bitmain {dev.spec.wire_type}"),
                "Chips": b.chips,
                "Frequency": 525.0,
                "Voltage": 13.6,
            }
            for b in dev.boards
        ]
        return cg.envelope("DEVDETAILS", items, cg.CODE_DEVDETAILS, "Device Details", self.describe(dev), now)

    def fans(self, dev: SimDevice, parameter: str | None, now: float) -> Json:
        """`fans`: FAN/ID/RPM/Speed per fan."""
        reply = template("braiins-os/s9-bosplus_fans.json")
        speed = 100 if dev.state is SimState.OVERHEATING else 40
        reply["FANS"] = [
            {"FAN": i, "ID": i, "RPM": rpm, "Speed": speed} for i, rpm in enumerate(dev.fans_rpm)
        ]
        return stamp(reply, self.describe(dev), now, f"{len(dev.fans_rpm)} Fan(s)")

    def temps(self, dev: SimDevice, parameter: str | None, now: float) -> Json:
        """`temps`: board and chip temperature per board."""
        reply = template("braiins-os/s9-bosplus_temps.json")
        reply["TEMPS"] = [
            {
                "Board": float(round(b.temp_pcb_c)),
                "Chip": float(round(b.temp_chip_c)),
                "ID": b.index,
                "TEMP": b.index,
            }
            for b in dev.boards
        ]
        return stamp(reply, self.describe(dev), now, f"{len(dev.boards)} Temp(s)")

    def tunerstatus(self, dev: SimDevice, parameter: str | None, now: float) -> Json:
        """`tunerstatus`: power target and per-chain tuner state (no capture; names per protocols.md)."""
        chains: list[Json] = [
            {
                "HashchainIndex": b.index,
                "Iteration": 0,
                "LoadedProfile": True,
                "PowerLimit": 0,
                "Status": "Stable" if b.alive else "Failed",
                "StageElapsed": dev.uptime_s(now),
            }
            for b in dev.boards
        ]
        item: Json = {
            "ApproximateChainPowerConsumption": int(dev.power_w * 0.93),
            "ApproximateMinerPowerConsumption": int(dev.power_w),
            "DynamicPowerScaling": "Disabled",
            "PowerLimit": int(dev.spec.power_w),
            "TunerChainStatus": chains,
            "TunerEnabled": True,
            "TunerRunning": False,
        }
        return cg.envelope("TUNERSTATUS", [item], 0, "Tuner Status", self.describe(dev), now)

    def grpc(
        self, dev: SimDevice, path: str, metadata: dict[str, str], message: bytes, now: float
    ) -> boser_grpc.GrpcAnswer:
        """One unary call on the gRPC API (port 50051)."""
        return boser_grpc.answer(dev, path, metadata, message, now)

    def http(self, dev: SimDevice, request: HttpRequest, now: float) -> HttpResponse:
        """The Braiins OS web UI's landing page (no login needed to load it)."""
        return landing_page(
            request,
            "<!doctype html><html><head><title>Braiins OS</title></head>"
            f"<body><div id='root' data-hostname='{dev.hostname}'>Braiins OS</div></body></html>",
        )
