"""The `non_finite` fault: a firmware that sends its hashrate as numbers no reading can be.

Some cgminer builds print a rate that overflowed or was never computed as a bare `nan`/`NaN`, or as
a number past any float (`1e999`). `NonFinite` wraps the device's real personality and rewrites every
hashrate value of its replies that way (windows as `1e999`, averages as bare `NaN`), in the exact
bytes, so the rest of the reply stays what the firmware sends. Hashrate keys are matched by the
families' conventions (`GHS 5s`, `MHS 1m`, `chain_rateN`, `rate_30m`, the Avalon `MGHS[...]` /
`GHSspd[...]` tokens, API v3 `hash-*`), never by one capture's layout.
"""

from __future__ import annotations

import math
import re

from collectors.simulator.device import SimDevice
from collectors.simulator.personalities.base import HttpRequest, HttpResponse, Personality, RpcRequest

_JSON_RATE = re.compile(
    rb'("(?:(?:GHS|MHS) (?:5s|1m|5m|15m|30s|30m|av)|rate_30m|total rate|chain_rate\d+)"\s*:\s*)'
    rb'"?-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?"?'
)
_MM_RATE = re.compile(rb"\b(MGHS|GHSspd|GHSavg)\[([^\]]*)\]")
_V3_RATE = re.compile(r"^hash-")


def _json_value(match: re.Match[bytes]) -> bytes:
    key = match.group(1)
    averaged = b" av" in key or b"30m" in key or b"total" in key
    return key + (b"NaN" if averaged else b"1e999")


def _mm_value(match: re.Match[bytes]) -> bytes:
    count = max(1, len(match.group(2).split()))
    return match.group(1) + b"[" + b" ".join([b"nan"] * count) + b"]"


def spoil_rates(payload: bytes) -> bytes:
    """The reply bytes with every hashrate value made non-finite."""
    return _MM_RATE.sub(_mm_value, _JSON_RATE.sub(_json_value, payload))


def spoil_v3(reply: object) -> object:
    """An API v3 reply object with its `hash-*` values made non-finite (JSON `Infinity`/`NaN`)."""
    if isinstance(reply, dict):
        return {
            k: (math.inf if "average" not in k else math.nan)
            if _V3_RATE.match(str(k)) and isinstance(v, int | float)
            else spoil_v3(v)
            for k, v in reply.items()
        }
    if isinstance(reply, list):
        return [spoil_v3(v) for v in reply]
    return reply


class NonFinite:
    """The device's own personality, with non-finite hashrate numbers in every reply."""

    def __init__(self, inner: Personality) -> None:
        self.inner = inner

    def rpc(self, dev: SimDevice, request: RpcRequest, now: float) -> bytes:
        """The inner reply, rates spoiled."""
        return spoil_rates(self.inner.rpc(dev, request, now))

    def http(self, dev: SimDevice, request: HttpRequest, now: float) -> HttpResponse:
        """The inner web answer, rates spoiled."""
        response = self.inner.http(dev, request, now)
        response.body = spoil_rates(response.body)
        return response


class NonFiniteV3(NonFinite):
    """`NonFinite` for a personality that also speaks Whatsminer API v3."""

    def v3(self, dev: SimDevice, request: dict[str, object], now: float) -> dict[str, object]:
        """The inner v3 reply, `hash-*` values spoiled."""
        inner = getattr(self.inner, "v3")  # noqa: B009  (the registry checked it exists)
        spoiled = spoil_v3(inner(dev, request, now))
        return spoiled if isinstance(spoiled, dict) else {}
