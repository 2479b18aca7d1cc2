"""`resolve` takes a dotted-quad IPv4 by `inet_pton` before `ipaddress`: the same answer for every
string it accepts, and every other string still goes the `ipaddress` way (leading zeros, brackets,
spaces, IPv6)."""

from __future__ import annotations

import asyncio
import ipaddress
import itertools
import socket

import pytest

from collectors.connection import resolve

PARTS = ["0", "00", "1", "01", "255", "256", "099", "", " 1", "+1", "0x1", "1e1", "\u0661"]


def _by_ipaddress(host: str, port: int) -> tuple[int, tuple[object, ...]]:
    ip = ipaddress.ip_address(host.strip("[]"))
    if ip.version == 6:
        return socket.AF_INET6, (str(ip), port, 0, 0)
    return socket.AF_INET, (str(ip), port)


def _literals() -> list[str]:
    found = [".".join(p) for k in (3, 4, 5) for p in itertools.product(PARTS[:8], repeat=k)]
    return found + [f"1.2.3.{p}" for p in PARTS] + ["[1.2.3.4]", "::1", "[::1]", "1.2.3.4\n", "1.2.3.4\x00"]


def test_literal_addresses_resolve_as_ipaddress_reads_them() -> None:
    async def check() -> int:
        loop = asyncio.get_running_loop()
        literal = 0
        for host in _literals():
            try:
                expected = _by_ipaddress(host, 4028)
            except ValueError:
                with pytest.raises((OSError, ValueError)):  # not a literal: inet_pton refuses it too
                    socket.inet_pton(socket.AF_INET, host)
                continue
            literal += 1
            assert await resolve(loop, host, 4028) == expected
        return literal

    assert asyncio.run(check()) > 50
