"""`fleetmon snmp probe HOST[:PORT] --community C [--json]`: read one PDU once and print it."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys

from collectors.snmp import PduError, PduReading, SnmpTarget, SnmpTimeouts, read_pdu

DEFAULT_PORT = 161


def parse_host_port(text: str) -> tuple[str, int]:
    """`host`, `host:port`, `[v6]` or `[v6]:port` -> (host, port)."""
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        port_text = rest.removeprefix(":")
    elif text.count(":") == 1:
        host, _, port_text = text.partition(":")
    else:  # a bare hostname/IPv4, or an unbracketed IPv6 address without a port
        host, port_text = text, ""
    if not host:
        raise argparse.ArgumentTypeError(f"no host in {text!r}")
    try:
        port = int(port_text) if port_text else DEFAULT_PORT
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"bad port in {text!r}") from exc
    if not 0 < port < 65536:
        raise argparse.ArgumentTypeError(f"port out of range in {text!r}")
    return host, port


def _positive(text: str) -> float:
    value = float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError("must be > 0")
    return value


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the `snmp` command group."""
    snmp = subparsers.add_parser("snmp", help="read rack PDUs over SNMP")
    sub = snmp.add_subparsers(dest="snmp_command", metavar="SUBCOMMAND", required=True)
    probe = sub.add_parser("probe", help="read one PDU and print its outlets and total power")
    probe.add_argument("target", type=parse_host_port, metavar="HOST[:PORT]")
    probe.add_argument("--community", required=True, help="SNMPv2c community")
    probe.add_argument("--json", action="store_true", help="one JSON line instead of a table")
    probe.add_argument("--timeout", type=_positive, default=2.0, metavar="S", help="seconds per request (2)")
    probe.add_argument("--retries", type=int, default=1, help="retransmissions per request (1)")
    probe.set_defaults(handler=_probe)


def summary(reading: PduReading) -> dict[str, object]:
    """The probe's JSON document: vendor, outlets (index, name, power_w) and total_power_w."""
    return {
        "host": reading.host,
        "port": reading.port,
        "vendor": reading.vendor.value,
        "model": reading.model,
        "outlets": [{"index": o.index, "name": o.name, "power_w": o.power_w} for o in reading.outlets],
        "total_power_w": reading.total_power_w,
        "total_power_source": reading.total_power_source.value if reading.total_power_source else None,
    }


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f}"


def table(reading: PduReading) -> str:
    """A readable outlet table for a terminal."""
    parts = (f"{reading.host}:{reading.port}", reading.vendor.value, reading.model or "", reading.name or "")
    header = "  ".join(parts)
    lines = [
        header.rstrip(),
        f"{'outlet':>6}  {'name':<24}  {'power W':>9}  state",
    ]
    for o in reading.outlets:
        state = o.state.value if o.state else "-"
        lines.append(f"{o.index:>6}  {(o.name or '-'):<24}  {_fmt(o.power_w):>9}  {state}")
    source = reading.total_power_source.value if reading.total_power_source else "n/a"
    lines.append(f"{'total':>6}  {'(' + source + ')':<24}  {_fmt(reading.total_power_w):>9}")
    return "\n".join(lines)


def _probe(args: argparse.Namespace) -> int:
    host, port = args.target
    timeouts = SnmpTimeouts(timeout_s=args.timeout, retries=args.retries)
    try:
        reading = asyncio.run(read_pdu(SnmpTarget(host, port, args.community), timeouts))
    except PduError as exc:
        print(f"fleetmon snmp probe: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(summary(reading), separators=(",", ":")) if args.json else table(reading))
    return 0
