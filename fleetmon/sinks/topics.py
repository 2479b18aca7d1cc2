"""MQTT topic names and broker URLs: the one place that knows how fleetmon lays out its topics.

    fleetmon/v1/<site>/<device>/sample              QoS 1, one Sample JSON per message
    fleetmon/v1/<site>/<device>/state               QoS 1, retained: {"state": ..., "ts": ...}
    fleetmon/v1/<site>/collector/<id>/status        QoS 1, retained "online"; last will "offline"

`<device>` is `<ip>_<port>` (e.g. `10.0.3.17_4028`): the same key the database uses, and safe in a
topic level (no `/`, `+` or `#`; IPv6 colons are legal). Ingesters read site from the topic and ip,
port from the payload.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

PREFIX = "fleetmon/v1"
_SITE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_FORBIDDEN = re.compile(r"[/+#\x00]")


def check_site(site: str) -> str:
    """The site name, or ValueError when it cannot be one topic level and one database key."""
    if not _SITE.match(site):
        raise ValueError(f"site name {site!r} must be 1-64 letters, digits, '_', '.' or '-'")
    return site


def device_segment(ip: str, port: int) -> str:
    """The topic level naming one device."""
    segment = f"{ip}_{port}"
    if _FORBIDDEN.search(segment):
        raise ValueError(f"device address {ip!r} cannot be used in an MQTT topic")
    return segment


def sample_topic(site: str, ip: str, port: int) -> str:
    """Where one device's samples are published."""
    return f"{PREFIX}/{check_site(site)}/{device_segment(ip, port)}/sample"


def state_topic(site: str, ip: str, port: int) -> str:
    """Where one device's current state is retained."""
    return f"{PREFIX}/{check_site(site)}/{device_segment(ip, port)}/state"


def status_topic(site: str, collector_id: str) -> str:
    """Where a collector's liveness is retained."""
    if _FORBIDDEN.search(collector_id) or not collector_id:
        raise ValueError(f"collector id {collector_id!r} cannot be used in an MQTT topic")
    return f"{PREFIX}/{check_site(site)}/collector/{collector_id}/status"


def shared_sample_subscription(group: str) -> str:
    """The shared subscription that splits every site's samples among the ingesters of `group`."""
    return f"$share/{group}/{PREFIX}/+/+/sample"


def site_of(topic: str) -> str:
    """The site level of a fleetmon topic; ValueError for a topic outside the layout."""
    parts = topic.split("/")
    if len(parts) != 5 or "/".join(parts[:2]) != PREFIX:
        raise ValueError(f"not a fleetmon sample topic: {topic!r}")
    return check_site(parts[2])


@dataclass(frozen=True)
class BrokerUrl:
    """A parsed `mqtt://[user[:password]@]host[:port]` URL. Its repr never shows the password."""

    host: str
    port: int
    username: str | None = None
    password: str | None = None

    def __repr__(self) -> str:
        return f"BrokerUrl({self.host}:{self.port})"

    __str__ = __repr__

    @classmethod
    def parse(cls, url: str) -> BrokerUrl:
        """Parse a broker URL; ValueError on another scheme or a missing host."""
        parts = urlsplit(url if "://" in url else f"mqtt://{url}")
        if parts.scheme not in ("mqtt", "tcp"):
            raise ValueError(f"unsupported broker URL scheme {parts.scheme!r} (use mqtt://host:port)")
        if not parts.hostname:
            raise ValueError("broker URL has no host")
        return cls(
            host=parts.hostname,
            port=parts.port or 1883,
            username=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password else None,
        )
