"""Start-up time of the `fleetmon` command against a bare `python -c pass` of the same venv.

Each command runs RUNS times as a fresh process (the venv's `fleetmon` script, output discarded); the
figures are medians of the wall time, and each command's ratio to the bare interpreter's median.
Targets from issue 17: `--help` within 5x, `tariffs rate ... --json` within 10x.

    .venv/bin/python bench/bench_startup.py [--runs 5]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
FLEETMON = str(BIN / "fleetmon")
RATE = ["tariffs", "rate", "--origin", "CN", "--hts", "8543.70.9960", "--date", "2025-06-01", "--json"]
CASES: list[tuple[str, list[str], float | None]] = [
    ("python -c pass", [sys.executable, "-c", "pass"], None),
    ("fleetmon --help", [FLEETMON, "--help"], 5.0),
    ("fleetmon tariffs rate --json", [FLEETMON, *RATE], 10.0),
    ("fleetmon probe (unreachable)", [FLEETMON, "probe", "127.69.255.254:9", "--timeout", "1"], None),
    ("fleetmon poll --help", [FLEETMON, "poll", "--help"], None),
]


def median_seconds(argv: list[str], runs: int) -> float:
    """Median wall time of `runs` fresh runs of `argv` (after one unmeasured warm-up run)."""
    subprocess.run(argv, check=False, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=ROOT)
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run(argv, check=False, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=ROOT)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> None:
    """Measure every case and print medians and ratios."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    base = median_seconds(CASES[0][1], args.runs)
    print(f"median of {args.runs} runs each")
    print(f"{base * 1000:8.1f} ms  {CASES[0][0]}")
    for name, argv, target in CASES[1:]:
        seconds = median_seconds(argv, args.runs)
        verdict = ""
        if target is not None:
            verdict = f"  (target {target:.0f}x: {'met' if seconds / base <= target else 'MISSED'})"
        print(f"{seconds * 1000:8.1f} ms  {seconds / base:5.1f}x  {name}{verdict}")


if __name__ == "__main__":
    main()
