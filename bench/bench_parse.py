"""CPU cost of turning one device's decoded replies into its Sample: driver parse, the value checks at
the wire border and `build_sample`, per firmware family, on the real captures.

No sockets: the replies are decoded once, then parsed `--rounds` times per repeat; the figure is the
minimum over `--repeats` (the machine is shared, the minimum is the least disturbed run) in microseconds
per device, and what that costs a 10,000-device cycle.

    .venv/bin/python bench/bench_parse.py
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from collectors.drivers.antminer import AntminerDriver
from collectors.drivers.avalon import AvalonDriver
from collectors.drivers.base import Driver, build_sample
from collectors.drivers.braiins import BraiinsDriver
from collectors.drivers.whatsminer import WhatsminerDriver
from collectors.framing import Reply, decode_reply
from collectors.identify import classify
from collectors.models import lookup

CAPTURES = Path(__file__).resolve().parent.parent / "tests" / "captures" / "device-responses"
CASES: tuple[tuple[str, Driver, str, str, tuple[str, ...]], ...] = (
    (
        "stock Antminer S19 Pro",
        AntminerDriver(),
        "antminer",
        "s19pro",
        ("version", "stats", "summary", "pools"),
    ),
    ("Whatsminer M30S", WhatsminerDriver(), "whatsminer", "m30s-new-firmware", ("summary", "edevs", "pools")),
    (
        "Avalon A1566",
        AvalonDriver(),
        "avalon",
        "avalon1566",
        ("version", "summary", "stats", "devs", "pools"),
    ),
    ("Braiins OS S9", BraiinsDriver(), "braiins-os", "s9-bos", ("summary", "devs", "fans", "pools")),
)


def _replies(make: str, prefix: str, commands: tuple[str, ...]) -> dict[str, Reply]:
    found: dict[str, Reply] = {}
    for command in commands:
        for suffix in (".json", ".raw.txt"):
            path = CAPTURES / make / f"{prefix}_{command}{suffix}"
            if path.exists():
                found[command] = decode_reply(path.read_bytes())
                break
    return found


def main() -> None:
    """Print microseconds per device for each family."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    for label, driver, make, prefix, commands in CASES:
        replies = _replies(make, prefix, commands)
        if not replies:
            print(f"{label:<24} no capture")
            continue
        identity = classify(replies.get("version"), None, replies, host="bench", port=4028)
        spec = lookup(identity.model, identity.make)
        best = float("inf")
        for _ in range(args.repeats):
            started = time.perf_counter()
            for _ in range(args.rounds):
                build_sample("bench", 4028, identity, driver.parse(identity, replies, spec), spec)
            best = min(best, time.perf_counter() - started)
        per_device_us = best / args.rounds * 1e6
        print(
            f"{label:<24} {per_device_us:8.1f} us/device   "
            f"{per_device_us * 10_000 / 1e6:6.2f} s CPU per 10,000-device cycle"
        )


if __name__ == "__main__":
    main()
