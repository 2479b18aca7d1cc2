"""MQTT topic names and broker URLs: the one place that knows how fleetmon lays out its topics.

    fleetmon/v1/<site>/<device>/sample              QoS 1, one Sample JSON per message
    fleetmon/v1/<site>/<device>/state               QoS 1, retained: {"state": ..., "ts": ...}
    fleetmon/v1/<site>/collector/<id>/status        QoS 1, retained "online"; last will "offline"
    fleetmon/v1/<site>/status                       QoS 1, retained site status JSON (fleetmon.sinks.status)

`<device>` is `<ip>_<port>` (e.g. `10.0.3.17_4028`): the same key the database uses, and safe in a
topic level (no `/`, `+` or `#`; IPv6 colons are legal). Ingesters read site from the topic and ip,
port from the payload.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import aiomqtt

log = logging.getLogger(__name__)

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


def site_status_topic(site: str) -> str:
    """Where a site's collector retains its status (cycle, devices, spool; offline by last will)."""
    return f"{PREFIX}/{check_site(site)}/status"


SITE_STATUS_SUBSCRIPTION = f"{PREFIX}/+/status"
"""What a reader subscribes to for every site's status."""
COLLECTOR_STATUS_SUBSCRIPTION = f"{PREFIX}/+/collector/+/status"
"""... and for every collector's online/offline (its last will)."""


def _levels(topic: str, tail: tuple[str | None, ...], kind: str) -> list[str]:
    """The levels of a topic shaped PREFIX/<site>/`tail` (None: any level); ValueError naming `kind` else."""
    parts = topic.split("/")
    shape = (*PREFIX.split("/"), None, *tail)
    if len(parts) != len(shape) or any(
        want is not None and want != got for want, got in zip(shape, parts, strict=True)
    ):
        raise ValueError(f"not a fleetmon {kind} topic: {topic!r}")
    return parts


def collector_of_status(topic: str) -> tuple[str, str]:
    """(site, collector id) of a collector status topic; ValueError for any other topic."""
    parts = _levels(topic, ("collector", None, "status"), "collector status")
    return check_site(parts[2]), parts[4]


def site_of_status(topic: str) -> str:
    """The site of a site-status topic; ValueError for any other topic."""
    return check_site(_levels(topic, ("status",), "site status")[2])


def shared_sample_subscription(group: str) -> str:
    """The shared subscription that splits every site's samples among the ingesters of `group`."""
    return f"$share/{group}/{PREFIX}/+/+/sample"


def site_of(topic: str) -> str:
    """The site level of a device topic (sample or state); ValueError for a topic outside the layout."""
    return check_site(_levels(topic, (None, None), "sample")[2])


SAFE_PASSWORD_SOURCES = (
    "a credential profile (mqtt.credential_profile), --mqtt-password-env VAR or --mqtt-password-file FILE"
)


@dataclass(frozen=True)
class BrokerUrl:
    """How to reach the broker: `mqtt://host[:port]` (plain, 1883) or `mqtts://host[:port]` (TLS, 8883).

    TLS verifies the broker against the system CA store, or against `ca_file` when given; `cert_file`
    and `key_file` are the client certificate for a broker that asks for one. The password comes from
    a credential profile, an environment variable or a file (`with_credentials`); one written into the
    URL still works but is warned about, since a URL ends up in argv, shell history and unit files.
    Its repr never shows the password.
    """

    host: str
    port: int
    username: str | None = None
    password: str | None = None
    tls: bool = False
    ca_file: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = None

    def __repr__(self) -> str:
        scheme = "mqtts" if self.tls else "mqtt"
        return f"BrokerUrl({scheme}://{self.host}:{self.port})"

    __str__ = __repr__

    @classmethod
    def parse(cls, url: str) -> BrokerUrl:
        """Parse a broker URL; ValueError on another scheme or a missing host."""
        parts = urlsplit(url if "://" in url else f"mqtt://{url}")
        if parts.scheme not in ("mqtt", "tcp", "mqtts", "ssl"):
            raise ValueError(
                f"unsupported broker URL scheme {parts.scheme!r} (use mqtt://host:port or mqtts://host:port)"
            )
        if not parts.hostname:
            raise ValueError("broker URL has no host")
        tls = parts.scheme in ("mqtts", "ssl")
        if parts.password:
            log.warning(
                "the broker URL carries a password: anyone who can list processes or read the unit file "
                "sees it; use %s instead",
                SAFE_PASSWORD_SOURCES,
            )
        return cls(
            host=parts.hostname,
            port=parts.port or (8883 if tls else 1883),
            username=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password else None,
            tls=tls,
        )

    def with_credentials(self, username: str | None, password: str | None) -> BrokerUrl:
        """This broker with the username and password given (None keeps the URL's own)."""
        return replace(
            self,
            username=username if username is not None else self.username,
            password=password if password is not None else self.password,
        )

    def with_tls_files(
        self, ca_file: Path | None = None, cert_file: Path | None = None, key_file: Path | None = None
    ) -> BrokerUrl:
        """This broker with a CA file and/or a client certificate; ValueError on a half-given pair or a
        file given to a plain `mqtt://` URL (it would silently be ignored)."""
        if (cert_file is None) != (key_file is None):
            raise ValueError("give the client certificate and its key together (--mqtt-cert, --mqtt-key)")
        if not self.tls and (ca_file or cert_file):
            raise ValueError("a CA file or a client certificate needs an mqtts:// broker URL")
        for path in (ca_file, cert_file, key_file):
            if path is not None and not path.is_file():
                raise ValueError(f"TLS file {path} does not exist")
        return replace(self, ca_file=ca_file, cert_file=cert_file, key_file=key_file)

    def client_options(self) -> dict[str, Any]:
        """Keyword arguments for aiomqtt.Client: host, port, credentials and TLS."""
        tls_params = None
        if self.tls:
            tls_params = aiomqtt.TLSParameters(
                ca_certs=str(self.ca_file) if self.ca_file else None,
                certfile=str(self.cert_file) if self.cert_file else None,
                keyfile=str(self.key_file) if self.key_file else None,
            )
        return {
            "hostname": self.host,
            "port": self.port,
            "username": self.username,
            "password": self.password,
            "tls_params": tls_params,
        }
