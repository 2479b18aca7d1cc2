"""The engines of the multi-site end-to-end test (tests/test_e2e_multisite.py), each a real process.

- `Postgres`: a throwaway PostgreSQL cluster (initdb + pg_ctl, as the `postgres` user when run as root)
  on a free port of 127.0.0.1, so the test may stop and restart it without touching the machine's
  shared server on 5432;
- `start_secure_broker`: Mosquitto with the shipped deploy/mosquitto configuration and ACL (adapted the
  way tests/test_mosquitto_acl.py does it), passwords by mosquitto_passwd, a certificate by openssl;
- `Webhook`: the receiver Alertmanager notifies, recording every POST;
- the configuration copies of haproxy, Prometheus, its rules and Alertmanager, moved to the test's
  ports and directories and with their waits shortened, and nothing else changed;
- `Processes`: everything started, each with its own log, stopped in reverse order whatever happens.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
import yaml
from conftest import ROOT, services_required
from service_harness import free_port
from test_mosquitto_acl import PASSWORDS, adapt_config

HOST = "127.0.0.1"
DEPLOY = ROOT / "deploy"
POSTGRES_BIN = sorted(Path("/usr/lib/postgresql").glob("*/bin"))


def tool(name: str) -> str:
    """The path of an installed program, or a skip (a failure where services are required)."""
    path = shutil.which(name) or next(
        (str(p) for p in (Path("/usr/sbin") / name, *(d / name for d in POSTGRES_BIN)) if p.exists()), None
    )
    if path is None:
        message = f"{name} is not installed (see .ci/run for the Debian packages)"
        if services_required():
            pytest.fail(message + " and FLEETMON_REQUIRE_SERVICES=1")
        pytest.skip(message)
    return path


def wait_until(predicate: Callable[[], object], timeout: float, what: str, step: float = 0.25) -> Any:
    """Poll `predicate` until it returns something true (its value); fail naming `what` after `timeout`."""
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while True:
        try:
            value = predicate()
            if value:
                return value
        # A service still starting, a half-written file: try again.
        except (OSError, ValueError, KeyError, httpx.HTTPError, psycopg.Error) as exc:
            last_error = exc
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} within {timeout:.0f} s (last error: {last_error!r})")
        time.sleep(step)


# ---- processes ------------------------------------------------------------------------------------------


@dataclass
class Processes:
    """Every process the test started, by name, with one log file each."""

    directory: Path
    env: Mapping[str, str]
    running: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    def start(self, name: str, argv: Sequence[str], env: Mapping[str, str] | None = None) -> None:
        """Start `argv` as `name` (a name is reused after `stop`), output appended to `name`.log."""
        assert name not in self.running or self.running[name].poll() is not None, f"{name} already runs"
        with (self.directory / f"{name}.log").open("ab") as log:
            self.running[name] = subprocess.Popen(
                list(argv), cwd=ROOT, env={**self.env, **(env or {})}, stdout=log, stderr=subprocess.STDOUT
            )

    def alive(self, name: str) -> bool:
        """True while `name` runs."""
        return name in self.running and self.running[name].poll() is None

    def stop(self, name: str, sig: int = signal.SIGTERM, timeout: float = 20) -> int | None:
        """Signal `name` and wait for it (SIGKILL after `timeout`); its exit status."""
        process = self.running[name]
        if process.poll() is None:
            process.send_signal(sig)
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(10)
        return process.returncode

    def stop_all(self) -> None:
        """Stop everything still running, the last started first."""
        for name in reversed(list(self.running)):
            with contextlib.suppress(Exception):
                self.stop(name, timeout=10)

    def log(self, name: str, tail: int = 3000) -> str:
        """The end of `name`'s log."""
        path = self.directory / f"{name}.log"
        return path.read_text(errors="replace")[-tail:] if path.exists() else ""

    def logs(self, tail: int = 1500) -> str:
        """The end of every log, for a failure message."""
        return "\n".join(f"--- {name}\n{self.log(name, tail)}" for name in self.running)


# ---- PostgreSQL ---------------------------------------------------------------------------------------


class Postgres:
    """A private PostgreSQL cluster in a temporary directory, stoppable and restartable on one port."""

    def __init__(self) -> None:
        self.directory = Path(tempfile.mkdtemp(prefix="fleetmon-e2e-pg-"))
        self.data = self.directory / "data"
        self.port = free_port()
        self.url = f"postgresql+psycopg://postgres@{HOST}:{self.port}/fleetmon"
        self._as_postgres = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        if self._as_postgres:
            shutil.chown(self.directory, "postgres", "postgres")
        self._run(tool("initdb"), "-D", str(self.data), "-A", "trust", "-U", "postgres", "-E", "UTF8",
                  "--no-sync")  # fmt: skip
        self.start()
        self._run(tool("createdb"), "-h", HOST, "-p", str(self.port), "-U", "postgres", "fleetmon")

    def _run(self, *argv: str) -> None:
        done = subprocess.run([*self._as_postgres, *argv], capture_output=True, timeout=120, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"{argv[0]} failed:\n{done.stdout.decode()}\n{done.stderr.decode()}")

    def start(self) -> None:
        """Start the cluster and wait until it accepts connections."""
        options = f"-p {self.port} -c listen_addresses={HOST} -k {self.directory} -c fsync=off"
        self._run(tool("pg_ctl"), "-D", str(self.data), "-l", str(self.directory / "postgres.log"),
                  "-o", options, "-w", "-t", "60", "start")  # fmt: skip

    def stop(self) -> None:
        """Stop it the way an operator would (fast shutdown: open sessions are cut)."""
        self._run(tool("pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "-t", "60", "stop")

    def close(self) -> None:
        """Stop it if it runs and delete its files."""
        if (self.data / "postmaster.pid").exists():
            with contextlib.suppress(RuntimeError):
                self.stop()
        shutil.rmtree(self.directory, ignore_errors=True)


# ---- Mosquitto ------------------------------------------------------------------------------------------


@dataclass
class SecureBroker:
    """The shipped broker configuration on the test's ports, and the users of PASSWORDS."""

    directory: Path
    plain_port: int
    tls_port: int
    ca_file: Path

    def url(self, user: str | None, *, tls: bool = False) -> str:
        """A broker URL logged in as `user` (None: anonymous)."""
        scheme, port = ("mqtts", self.tls_port) if tls else ("mqtt", self.plain_port)
        login = f"{user}:{PASSWORDS[user]}@" if user else ""
        return f"{scheme}://{login}{HOST}:{port}"


def start_secure_broker(directory: Path, processes: Processes) -> SecureBroker:
    """deploy/mosquitto's configuration and ACL under `directory`, started as process `mosquitto`."""
    mosquitto, passwd, openssl = tool("mosquitto"), tool("mosquitto_passwd"), tool("openssl")
    (directory / "data").mkdir(parents=True)
    plain_port, tls_port = free_port(), free_port()
    config = adapt_config(
        (DEPLOY / "mosquitto" / "mosquitto.conf").read_text(), directory, plain_port, tls_port, host=HOST
    )
    (directory / "mosquitto.conf").write_text(config)
    shutil.copy(DEPLOY / "mosquitto" / "acl", directory / "acl")
    (directory / "passwd").touch()
    for user, password in PASSWORDS.items():
        subprocess.run([passwd, "-b", str(directory / "passwd"), user, password], check=True, timeout=30)
    subprocess.run(
        [openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
         "-keyout", str(directory / "server.key"), "-out", str(directory / "server.crt"), "-days", "1",
         "-subj", f"/CN={HOST}", "-addext", f"subjectAltName=IP:{HOST}"],
        check=True, capture_output=True, timeout=30,
    )  # fmt: skip
    processes.start("mosquitto", [mosquitto, "-c", str(directory / "mosquitto.conf")])
    for port in (plain_port, tls_port):
        wait_until(lambda port=port: _listening(port), 10, f"mosquitto listening on {port}", step=0.05)
    return SecureBroker(directory, plain_port, tls_port, directory / "server.crt")


def _listening(port: int) -> bool:
    import socket

    with contextlib.suppress(OSError), socket.create_connection((HOST, port), timeout=0.2):
        return True
    return False


# ---- the webhook Alertmanager notifies ----------------------------------------------------------------


class Webhook:
    """A tiny HTTP server on 127.0.0.1 that records every POSTed notification, with its path."""

    def __init__(self) -> None:
        self.received: list[tuple[str, dict[str, Any]]] = []
        self._lock = threading.Lock()
        webhook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with webhook._lock:
                    webhook.received.append((self.path, json.loads(body)))
                self.send_response(200)
                self.end_headers()

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer((HOST, 0), Handler)
        self.port = self.server.server_address[1]
        self.url = f"http://{HOST}:{self.port}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def firing(self, alertname: str) -> list[tuple[str, dict[str, str]]]:
        """(path, labels) of every firing alert named `alertname` notified so far."""
        with self._lock:
            notes = list(self.received)
        return [
            (path, alert["labels"])
            for path, note in notes
            for alert in note.get("alerts", [])
            if alert["labels"].get("alertname") == alertname and alert.get("status") == "firing"
        ]

    def close(self) -> None:
        """Stop serving."""
        self.server.shutdown()
        self.server.server_close()


# ---- configuration copies ------------------------------------------------------------------------------


def haproxy_config(frontend_port: int, replica_ports: Sequence[int]) -> str:
    """deploy/multisite/haproxy.cfg with its frontend and servers on the test's ports."""
    text = (DEPLOY / "multisite" / "haproxy.cfg").read_text()
    text, binds = re.subn(r"^(\s*)bind \S+$", rf"\1bind {HOST}:{frontend_port}", text, flags=re.M)
    servers = "\n".join(
        f"    server api-{n} {HOST}:{port} check" for n, port in enumerate(replica_ports, start=1)
    )
    text, replaced = re.subn(r"(^\s*server api-\d+ .*\n)+", servers + "\n", text, flags=re.M)
    assert binds == 1 and replaced == 1, "deploy/multisite/haproxy.cfg lost its bind or server lines"
    return text


def rules_copy(for_s: int, collector_stale_s: int) -> str:
    """deploy/prometheus/rules with every `for:` set to `for_s` and the collector staleness threshold
    to `collector_stale_s`: the same expressions, on a test's clock."""
    rules = yaml.safe_load((DEPLOY / "prometheus" / "rules" / "fleetmon.rules.yml").read_text())
    for group in rules["groups"]:
        for rule in group["rules"]:
            if "alert" in rule and "for" in rule:
                rule["for"] = f"{for_s}s"
            if rule.get("labels", {}).get("threshold") == "collector_stale_seconds":
                rule["expr"] = f"vector({collector_stale_s})"
    return yaml.safe_dump(rules, sort_keys=False)


def prometheus_config(
    workdir: Path, api_url_host_port: str, alertmanager_port: int, key_file: Path, rules_file: Path
) -> str:
    """deploy/multisite/prometheus.yml with the API behind haproxy as target, 1 s scrapes and rule runs,
    the test's key, rules, target files and Alertmanager."""
    config = yaml.safe_load((DEPLOY / "multisite" / "prometheus.yml").read_text())
    config["global"].update(scrape_interval="1s", scrape_timeout="1s", evaluation_interval="1s")
    config["rule_files"] = [str(rules_file)]
    config["alerting"]["alertmanagers"] = [{"static_configs": [{"targets": [f"{HOST}:{alertmanager_port}"]}]}]
    for job in config["scrape_configs"]:
        job.pop("scrape_interval", None)
        job.pop("scrape_timeout", None)
        job["authorization"]["credentials_file"] = str(key_file)
        if job["job_name"] == "fleetmon":
            job["static_configs"] = [{"targets": [api_url_host_port]}]
        for sd in job.get("file_sd_configs", []):
            sd["refresh_interval"] = "1s"
            sd["files"] = [str(workdir / pattern) for pattern in sd["files"]]
    (workdir / "targets" / "ingest").mkdir(parents=True, exist_ok=True)
    return yaml.safe_dump(config, sort_keys=False)


def alertmanager_config(webhook_url: str, wait: str = "1s") -> str:
    """deploy/alertmanager/alertmanager.yml with its receivers at `webhook_url` and every group's wait
    and interval set to `wait`; the routing and inhibition as shipped."""
    config = yaml.safe_load((DEPLOY / "alertmanager" / "alertmanager.yml").read_text())

    def shorten(route: dict[str, Any]) -> None:
        for key in ("group_wait", "group_interval"):
            if key in route:
                route[key] = wait
        for child in route.get("routes", []):
            shorten(child)

    shorten(config["route"])
    for receiver in config["receivers"]:
        for hook in receiver.get("webhook_configs", []):
            hook["url"] = re.sub(r"^https?://[^/]+", webhook_url, hook["url"])
    return yaml.safe_dump(config, sort_keys=False)


@contextlib.contextmanager
def temporary_directory_for_postgres() -> Iterator[Postgres]:
    """A throwaway PostgreSQL for the block; stopped and deleted after it."""
    postgres = Postgres()
    try:
        yield postgres
    finally:
        postgres.close()
