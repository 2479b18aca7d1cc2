"""The MQTT flags `collect` and `ingest` share: broker URL, credentials by reference, TLS files.

A password never travels in argv: `--mqtt-password-env VAR` names an environment variable and
`--mqtt-password-file FILE` a file holding it. A password written into the URL still works (the shipped
unit files of older releases did that) but is warned about, naming these safe ways.
"""

from __future__ import annotations

import argparse
import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from fleetmon.sinks.topics import BrokerUrl

if TYPE_CHECKING:
    from prometheus_client.registry import CollectorRegistry

    from fleetmon.exporter import MetricsServer

log = logging.getLogger(__name__)


class MetricsListenError(Exception):
    """The --metrics-listen address cannot be served (the message names it and why)."""


def add_broker_flags(p: argparse.ArgumentParser) -> None:
    """Add --mqtt-username, --mqtt-password-env/-file, --mqtt-ca-file, --mqtt-cert, --mqtt-key."""
    p.add_argument("--mqtt-username", metavar="USER", help="broker username (default: the URL's)")
    secret = p.add_mutually_exclusive_group()
    secret.add_argument(
        "--mqtt-password-env", metavar="VAR", help="environment variable holding the broker password"
    )
    secret.add_argument("--mqtt-password-file", type=Path, metavar="FILE", help="file holding the password")
    p.add_argument(
        "--mqtt-ca-file",
        type=Path,
        metavar="FILE",
        help="CA certificates to verify an mqtts:// broker with (default: the system CA store)",
    )
    p.add_argument("--mqtt-cert", type=Path, metavar="FILE", help="client certificate, when the broker asks")
    p.add_argument("--mqtt-key", type=Path, metavar="FILE", help="the client certificate's key")


def read_password(env: str | None, file: Path | None) -> str | None:
    """The password the flags point at (None when neither is given); ValueError naming what is missing."""
    if env is not None:
        value = os.environ.get(env)
        if value is None:
            raise ValueError(f"--mqtt-password-env: environment variable {env} is not set")
        return value
    if file is not None:
        try:
            return file.read_text(encoding="utf-8").rstrip("\r\n")
        except OSError as exc:
            raise ValueError(f"--mqtt-password-file: cannot read {file}: {exc.strerror or exc}") from exc
    return None


def broker_from_args(args: argparse.Namespace) -> BrokerUrl:
    """The broker the flags describe; ValueError (for the operator) when they do not fit together."""
    broker = BrokerUrl.parse(args.mqtt)
    password = read_password(args.mqtt_password_env, args.mqtt_password_file)
    broker = broker.with_credentials(args.mqtt_username, password)
    if password is not None and broker.username is None:
        raise ValueError("a broker password needs a username (--mqtt-username)")
    return broker.with_tls_files(args.mqtt_ca_file, args.mqtt_cert, args.mqtt_key)


def parse_listen(value: str) -> tuple[str, int]:
    """`HOST:PORT` (IPv6 in brackets) for --metrics-listen; argparse type."""
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, got {value!r}")
    return host.strip("[]") or "0.0.0.0", int(port)


def start_metrics(
    listen: tuple[str, int] | None, registry: Callable[[], CollectorRegistry], what: str
) -> MetricsServer | None:
    """The `--metrics-listen` server over `registry()`, or None when the flag is absent; an address that
    cannot be bound raises MetricsListenError naming it."""
    if listen is None:
        return None
    from fleetmon.exporter import MetricsServer

    host, port = listen
    try:
        server = MetricsServer(registry(), host, port)
    except OSError as exc:
        raise MetricsListenError(f"--metrics-listen {host}:{port}: {exc.strerror or exc}") from exc
    log.info("%s metrics on http://%s:%d/metrics", what, host, server.port)
    return server
