"""The real snmpsim agent serving tests/snmp/*.snmprec on a free UDP port, for every test that reads PDUs.

One community per recording (the community is the file name: `apc`, `raritan`, `servertech`), plus
`notapdu`, an agent that is not a PDU. `start_agent()` is a context manager; test modules wrap it in a
fixture of the scope they need.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from collectors.snmp import PduTimeoutError, SnmpTarget, SnmpTimeouts, read_pdu

RECORDINGS = Path(__file__).resolve().parent / "snmp"

# snmpsim drops root privileges after binding, then imports dbm backends and codecs lazily while it
# indexes the recordings. Our interpreter lives under /root, which `nobody` cannot read, so those
# late imports fail ("no dbm clone found", "unknown encoding: Latin-1"). Importing them before the
# privilege drop, then running the real responder's main(), avoids that without touching /root.
_BOOTSTRAP = """
import importlib, sys
for name in ("dbm", "dbm.dumb", "dbm.gnu", "dbm.ndbm", "encodings.latin_1", "encodings.ascii",
             "encodings.utf_8", "encodings.idna"):
    try:
        importlib.import_module(name)
    except ImportError:
        pass
from snmpsim.commands.responder import main
sys.argv[0] = "snmpsim-command-responder"
sys.exit(main())
"""

NOT_A_PDU = "1.3.6.1.2.1.1.1.0|4|Linux core-sw-01 5.10.0\n1.3.6.1.2.1.1.2.0|6|1.3.6.1.4.1.8072.3.2.10\n"


@dataclass(frozen=True)
class Agent:
    host: str
    port: int
    log: Path

    def target(self, community: str) -> SnmpTarget:
        return SnmpTarget(self.host, self.port, community)


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _missing(message: str) -> None:
    if os.environ.get("FLEETMON_REQUIRE_SERVICES") == "1":  # as tests/conftest.py: CI never skips
        pytest.fail(message + " and FLEETMON_REQUIRE_SERVICES=1")
    pytest.skip(message)


async def _answers(port: int) -> bool:
    try:
        await read_pdu(SnmpTarget("127.0.0.1", port, "apc"), SnmpTimeouts(timeout_s=0.3, retries=0))
    except PduTimeoutError:
        return False
    return True


@contextlib.contextmanager
def start_agent() -> Iterator[Agent]:
    """snmpsim on 127.0.0.1:<free port>, one community per recording (community = file name)."""
    if importlib.util.find_spec("snmpsim") is None or importlib.util.find_spec("pysmi") is None:
        _missing("snmpsim (and its pysmi dependency) is not installed")
    # Not under pytest's tmp_path: /tmp/pytest-of-root is 0700, so `nobody` could not reach it.
    root = Path(tempfile.mkdtemp(prefix="fleetmon-snmpsim-"))
    data, cache = root / "data", root / "cache"
    data.mkdir()
    cache.mkdir()
    for recording in RECORDINGS.glob("*.snmprec"):
        shutil.copy(recording, data / recording.name)
    (data / "notapdu.snmprec").write_text(NOT_A_PDU)
    command = [
        sys.executable,
        "-c",
        _BOOTSTRAP,
        f"--data-dir={data}",
        f"--cache-dir={cache}",
        f"--agent-udpv4-endpoint=127.0.0.1:{(port := free_udp_port())}",
        "--logging-method=stderr",
    ]
    if os.geteuid() == 0:  # snmpsim refuses to keep running as root
        for path in (root, data, cache, *data.iterdir()):
            shutil.chown(path, user="nobody", group="nogroup")
            path.chmod(0o755 if path.is_dir() else 0o644)
        command += ["--process-user=nobody", "--process-group=nogroup"]
    log = root / "snmpsim.log"
    with log.open("wb") as sink:
        process = subprocess.Popen(command, stdout=sink, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while not asyncio.run(_answers(port)):
            if process.poll() is not None:
                pytest.fail(f"snmpsim exited with {process.returncode}:\n{log.read_text()[-3000:]}")
            if time.monotonic() > deadline:
                pytest.fail(f"snmpsim did not answer within 60 s:\n{log.read_text()[-3000:]}")
        yield Agent("127.0.0.1", port, log)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        shutil.rmtree(root, ignore_errors=True)
