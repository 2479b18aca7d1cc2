"""A machine of an unknown brand whose firmware copies the Antminer API (issue 14's clone).

It answers exactly as stock Antminer firmware does (the same `stats` chain table, `summary`, `pools`,
`devs`, the same refusal of multi-commands) except where a maker's name would show: its `Type` is its
own ("ClonerX C1", the model's wire type), its `version` names a plain cgminer build and no known
firmware, and its web page carries neither Bitmain's digest realm nor its CGI. ClonerX is made up: any
brand a monitor has never heard of must be counted as unknown, never as Bitmain's.
"""

from __future__ import annotations

from collectors.simulator.device import SimDevice
from collectors.simulator.personalities import cgminer_reply as cg
from collectors.simulator.personalities.antminer import StockAntminer, compile_time
from collectors.simulator.personalities.base import HttpRequest, HttpResponse
from collectors.simulator.personalities.http_reply import landing_page

Json = cg.Json


class CloneMiner(StockAntminer):
    """A cgminer build that copies Bitmain's reply layout under its own type string."""

    description = "cgminer 4.9.0"

    def version_block(self, dev: SimDevice) -> Json:
        """The block `version` and `stats[0]` share: a generic cgminer, the clone's own Type."""
        return {
            "CGMiner": "4.9.0",
            "Miner": "1.0.2",
            "CompileTime": compile_time(dev.firmware_version),
            "Type": self.type_string(dev),
        }

    def version(self, dev: SimDevice, parameter: str | None, now: float) -> Json:
        """`version`: VERSION[0] with API 3.1 and no firmware name of a known maker."""
        item: Json = {"CGMiner": "4.9.0", "API": "3.1"}
        item.update({k: v for k, v in self.version_block(dev).items() if k != "CGMiner"})
        return cg.envelope("VERSION", [item], cg.CODE_VERSION, "CGMiner versions", self.describe(dev), now)

    def http(self, dev: SimDevice, request: HttpRequest, now: float) -> HttpResponse:
        """A plain status page, no login realm."""
        return landing_page(
            request,
            f"<!doctype html><html><head><title>{dev.spec.wire_type}</title></head>"
            f"<body><div id='app'>{dev.hostname} miner status</div></body></html>",
        )
