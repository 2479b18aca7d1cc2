"""A simulated fleet in its own `fleetmon simulate` process, for tests that run fleetmon as subprocesses.

The fleet lives outside the test process so that nothing the test blocks on (subprocess waits,
database queries) can stall the devices and turn into false timeouts. Its manifest is a targets file
(`@manifest.json`) for `fleetmon poll` and `fleetmon collect`.
"""

from __future__ import annotations

import contextlib
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FLEETMON = [sys.executable, "-m", "fleetmon.cli.main"]


def wait_for(predicate: Callable[[], bool], timeout: float, step: float = 0.1) -> bool:
    """Poll `predicate` (blocking) until it holds or `timeout` passes; returns its last value."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(step)
    return predicate()


def stop_process(
    process: subprocess.Popen[bytes], sig: int = signal.SIGINT, timeout: float = 20
) -> int | None:
    """Signal a process we started and wait for it (SIGKILL when it does not go); its exit status."""
    if process.poll() is None:
        process.send_signal(sig)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)
    return process.returncode


@contextlib.contextmanager
def simulated_fleet_process(
    directory: Path, devices: int, subnet: str, seed: int = 1, extra: Sequence[str] = ()
) -> Iterator[Path]:
    """Serve `devices` simulated miners on `subnet` until the block ends; yields the manifest path.
    `extra` are further `fleetmon simulate` flags (`--mix`, `--api-open`, ...)."""
    manifest = directory / "manifest.json"
    log_path = directory / "simulate.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [*FLEETMON, "simulate", "--devices", str(devices), "--subnet", subnet, "--seed", str(seed),
             "--manifest", str(manifest), *extra],
            cwd=ROOT, stdout=log, stderr=log,
        )  # fmt: skip
        try:
            if not wait_for(lambda: manifest.exists() or process.poll() is not None, 60):
                raise RuntimeError("the simulated fleet did not start within 60 s")
            if process.poll() is not None:
                raise RuntimeError(f"fleetmon simulate exited: {log_path.read_text(errors='replace')}")
            yield manifest
        finally:
            stop_process(process)
