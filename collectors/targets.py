"""What to poll: `Target(host, port)` values parsed from the forms the CLI accepts.

- `192.0.2.10` or `192.0.2.10:4029` (an IP, optionally with a port; the port defaults to 4028),
- `192.0.2.0/24` (a CIDR: every host address of the network, network and broadcast excluded),
- `@FILE`: a text file with one `IP[:PORT]` (or CIDR) per line (blank lines and `#` comments skipped),
  or a scan output (a JSON list of objects with `ip` and `port`, as `fleetmon scan --out` writes).

Bad input raises `TargetError` naming the offending text and, for files, the line; nothing is dropped
silently. Duplicates are removed, first occurrence wins, so the order of the targets is the input's.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

DEFAULT_PORT = 4028
MAX_CIDR_HOSTS = 1 << 20  # a /12: beyond this a typo (a /8) would stall the CLI for minutes


class TargetError(ValueError):
    """A target the CLI cannot understand; the message says which and where."""


@dataclass(frozen=True, slots=True, order=True)
class Target:
    """One device address: host (an IP literal) and the API port."""

    host: str
    port: int = DEFAULT_PORT

    def __str__(self) -> str:
        return f"{self.host}:{self.port}"


def parse_address(text: str, default_port: int = DEFAULT_PORT) -> Target:
    """`IP` or `IP:PORT` -> Target; TargetError when either part is invalid."""
    text = text.strip()
    host, sep, port_text = text.rpartition(":")
    if not sep or ":" in host:  # no port, or a bare IPv6 literal
        host, port_text = text, ""
    host = host.strip("[]")
    try:
        ipaddress.ip_address(host)
    except ValueError as exc:
        raise TargetError(f"{text!r} is not an IP address or IP:PORT") from exc
    port = default_port
    if port_text:
        if not port_text.isdigit() or not 0 < int(port_text) < 65536:
            raise TargetError(f"{text!r} has an invalid port {port_text!r}")
        port = int(port_text)
    return Target(host, port)


def expand_cidr(text: str, port: int = DEFAULT_PORT) -> Iterator[Target]:
    """Every host address of a CIDR (a /32 is its one address); TargetError when it is not one."""
    try:
        net = ipaddress.ip_network(text.strip(), strict=False)
    except ValueError as exc:
        raise TargetError(f"{text!r} is not a CIDR range") from exc
    if net.num_addresses > MAX_CIDR_HOSTS:
        raise TargetError(f"{text!r} has {net.num_addresses} addresses (the limit is {MAX_CIDR_HOSTS})")
    hosts = list(net.hosts()) if net.num_addresses > 2 else list(net)
    for addr in hosts:
        yield Target(str(addr), port)


def _parse_one(text: str) -> list[Target]:
    if "/" in text:
        return list(expand_cidr(text))
    return [parse_address(text)]


def _from_json(path: Path, text: str) -> list[Target]:
    try:
        rows = json.loads(text)
    except ValueError as exc:
        raise TargetError(f"{path}: not valid JSON ({exc})") from exc
    if isinstance(rows, dict) and isinstance(rows.get("devices"), list):
        rows = rows["devices"]
    if not isinstance(rows, list):
        raise TargetError(f"{path}: expected a JSON list of devices with 'ip' and 'port'")
    found: list[Target] = []
    for index, row in enumerate(rows):
        if not isinstance(row, dict) or not isinstance(row.get("ip"), str):
            raise TargetError(f"{path}: entry {index} has no 'ip'")
        port = row.get("port", DEFAULT_PORT)
        if not isinstance(port, int):
            raise TargetError(f"{path}: entry {index} has a non-integer 'port'")
        found.append(parse_address(row["ip"], port))
    return found


def read_target_file(path: Path) -> list[Target]:
    """Targets from a file: a JSON scan output, or one IP[:PORT]/CIDR per line."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise TargetError(f"cannot read target file {path}: {exc.strerror or exc}") from exc
    if text.lstrip().startswith(("[", "{")):
        return _from_json(path, text)
    found: list[Target] = []
    for number, line in enumerate(text.splitlines(), start=1):
        entry = line.split("#", 1)[0].strip()
        if not entry:
            continue
        try:
            found.extend(_parse_one(entry))
        except TargetError as exc:
            raise TargetError(f"{path}:{number}: {exc}") from exc
    return found


def parse_targets(items: Iterable[str]) -> list[Target]:
    """All the targets named by CLI arguments, deduplicated, in input order."""
    seen: set[Target] = set()
    ordered: list[Target] = []
    for item in items:
        batch = read_target_file(Path(item[1:])) if item.startswith("@") else _parse_one(item)
        for target in batch:
            if target not in seen:
                seen.add(target)
                ordered.append(target)
    return ordered
