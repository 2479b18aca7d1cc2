"""A live fleetmon service for tests: a simulated fleet polled into a real database, served by uvicorn on
a free port, all in one background thread with its own event loop (so sync tests, schemathesis and
httpx clients talk to it over a real socket while the simulator keeps answering /probe).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import socket
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import uvicorn
from fastapi import FastAPI
from pydantic import SecretStr

from collectors.poller import Poller
from collectors.simulator.fleet import DEFAULT_MIX, FleetDevice, build_fleet, write_inventory
from collectors.simulator.server import FleetServer
from collectors.targets import Target
from fleetmon.config import (
    ActionSettings,
    CollectorSettings,
    CredentialProfile,
    PduSettings,
    ServiceSettings,
    Settings,
    StorageSettings,
)
from fleetmon.service.app import create_app
from fleetmon.service.auth import Role, create_key, revoke_key
from fleetmon.service.runtime import ServiceRuntime, poller_settings
from fleetmon.storage.engine import make_engine, upgrade
from fleetmon.storage.inventory import store_inventory
from fleetmon.supplychain.origin import parse_inventory_csv

_subnets = iter(range(1, 250))


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def next_subnet(second_octet: int = 22) -> str:
    """A loopback /24 no other harness of this process used."""
    return f"127.{second_octet}.{next(_subnets)}.0/24"


@dataclass
class LiveService:
    """The running service: its URL, database, fleet, and one key per role (plus a revoked one)."""

    base_url: str
    db_url: str
    fleet: list[FleetDevice]
    site: str
    keys: dict[str, str] = field(default_factory=dict)
    runtime: ServiceRuntime | None = None
    app: FastAPI | None = None

    def client(self, key: str | None = None) -> httpx.Client:
        """An HTTP client for the service, authenticated with `key` when given."""
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        return httpx.Client(base_url=self.base_url, headers=headers, timeout=30.0)


def antminer_factory_login(password_env: str) -> Settings:
    """Settings whose collector logs in to the simulated stock Antminers' web UI with their factory
    root/root (the password through `password_env`, set here), for `live_service(settings_base=...)`:
    serials are read and actions reach those miners."""
    os.environ[password_env] = "root"
    return Settings(
        collector=CollectorSettings(credential_profile="antminer"),
        credentials={"antminer": CredentialProfile(username="root", password_env=password_env)},
    )


@contextlib.contextmanager
def live_service(
    db_url: str,
    tmp_path: Path,
    *,
    devices: int = 24,
    seed: int = 7,
    metrics_public: bool = False,
    settings_base: Settings | None = None,
    pdus: Sequence[PduSettings] = (),
    subnet: str | None = None,
    mix: str = DEFAULT_MIX,
    api_open: float = 0.0,
    changed_passwords: float = 0.0,
    collecting: bool = False,
    interval_s: float = 60.0,
    actions: ActionSettings | None = None,
) -> Iterator[LiveService]:
    """Start the fleet, poll it once into `db_url` (inventory imported, rollups run), serve in reader
    mode on a free port; stop everything on exit. `settings_base` lends its credential profiles;
    `pdus` are read in that first cycle (their communities must be in the environment); `subnet`
    (default: a fresh one) fixes the fleet's addresses, which build_fleet derives from it and `seed`;
    `mix` is the simulator's make/firmware mix; `api_open` and `changed_passwords` its posture knobs.
    `collecting` keeps the service in collector mode instead (it polls every `interval_s` and runs
    action jobs, with `actions` settings), as `fleetmon serve` with targets does."""
    engine = make_engine(db_url)
    upgrade(engine)
    site = "test-site"
    fleet = build_fleet(
        devices,
        mix=mix,
        subnet=subnet or next_subnet(),
        seed=seed,
        api_open=api_open,
        changed_passwords=changed_passwords,
    )
    inventory = tmp_path / "inventory.csv"
    write_inventory(fleet, inventory)
    store_inventory(
        engine, parse_inventory_csv(inventory.read_text(), "inventory.csv").records, "inventory.csv"
    )
    keys = {role.value: create_key(engine, role, f"test {role.value}")[1] for role in Role}
    revoked_info, revoked = create_key(engine, Role.ADMIN, "revoked")
    revoke_key(engine, revoked_info.id)
    keys["revoked"] = revoked

    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    listener.listen(128)
    port = int(listener.getsockname()[1])
    settings = Settings(
        storage=StorageSettings(url=SecretStr(db_url)),
        service=ServiceSettings(port=port, metrics_public=metrics_public, snapshot_interval_s=3600),
        collector=CollectorSettings(
            site=site,
            timeout_s=3.0,
            interval_s=interval_s,
            credential_profile=settings_base.collector.credential_profile if settings_base else None,
            vnish_credential_profile=(
                settings_base.collector.vnish_credential_profile if settings_base else None
            ),
        ),
        credentials=settings_base.credentials if settings_base else {},
        pdus=list(pdus),
        actions=actions or ActionSettings(),
    )
    ready = threading.Event()
    failure: list[BaseException] = []
    holder: dict[str, object] = {}

    async def main() -> None:
        server = FleetServer([item.device for item in fleet])
        await server.start()
        try:
            sites = {Target(item.device.ip, server.rpc_port): site for item in fleet}
            runtime = ServiceRuntime.from_settings(settings, engine, sites=sites)
            runtime.poller = Poller(dataclasses.replace(poller_settings(settings), concurrency=50))
            sink = runtime.sink()
            await sink.send(await runtime.poll_cycle())
            await sink.close()
            await runtime.maintain()
            if not collecting:
                runtime.sites = {}  # reader mode from here on: the test controls what gets polled
            holder["runtime"] = runtime
            http = uvicorn.Server(
                uvicorn.Config(create_app(runtime), host="127.0.0.1", port=port, log_level="warning")
            )
            holder["http"] = http
            holder["app"] = http.config.app
            # A socket bound and listening before uvicorn starts: clients that connect early wait in
            # the backlog until the app is up, so nobody polls for readiness.
            serving = asyncio.create_task(http.serve(sockets=[listener]))
            ready.set()
            await serving
        finally:
            await server.close()

    def thread_main() -> None:
        try:
            asyncio.run(main())
        except BaseException as exc:
            failure.append(exc)
        finally:
            ready.set()

    thread = threading.Thread(target=thread_main, name="fleetmon-test-service", daemon=True)
    thread.start()
    ready.wait(120)
    if failure:
        raise failure[0]
    runtime = holder["runtime"]
    assert isinstance(runtime, ServiceRuntime)
    app = holder["app"]
    assert isinstance(app, FastAPI)
    service = LiveService(f"http://127.0.0.1:{port}", db_url, fleet, site, keys, runtime, app)
    try:
        yield service
    finally:
        http = holder.get("http")
        if isinstance(http, uvicorn.Server):
            http.should_exit = True
        thread.join(60)
        engine.dispose()
        if failure:
            raise failure[0]
