"""`fleetmon demo`: a simulated mixed fleet, polled into SQLite and served, in one command.

What it does, in order (all in this process, all on loopback):
1. draws a seeded fleet split over four sites, each on its own range of 127.21.0.0/16 (a /24 per site
   while a site fits in 254 addresses, a /20 beyond), and serves it with the simulator;
2. creates a SQLite database in a temporary directory (or --data-dir), imports the fleet's inventory
   CSV into it (origin records), and creates an admin API key (printed, and written to
   --api-key-file with mode 0600);
3. polls every device once and stores the cycle, so the API answers with the whole fleet at once;
4. serves the API and the dashboard on 127.0.0.1:PORT (printing a one-time login link first),
   polling every --interval seconds, until Ctrl-C (SIGINT) or SIGTERM, then stops the server, the
   collector and the simulator, and exits 0.
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import logging
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

from pydantic import SecretStr

from collectors.actions import ActionCredentials
from collectors.poller import PollerSettings
from collectors.simulator.fleet import FleetDevice, build_fleet, write_inventory
from collectors.simulator.server import FleetServer
from collectors.targets import Target
from collectors.web import WebCredentials
from fleetmon.cli.serve import Server, uvicorn_config
from fleetmon.config import CollectorSettings, ServiceSettings, Settings, StorageSettings
from fleetmon.service.app import create_app
from fleetmon.service.auth import Role, create_key
from fleetmon.service.runtime import ServiceRuntime
from fleetmon.storage.engine import make_engine, upgrade
from fleetmon.storage.inventory import store_inventory
from fleetmon.supplychain.origin import parse_inventory_csv
from fleetmon.web.login import one_time_login_link

log = logging.getLogger(__name__)

SITES = ("north", "south", "east", "west")
DEMO_NET = ipaddress.ip_network("127.21.0.0/16")
DEMO_TIMEOUT_S = 3.0
DEMO_CONCURRENCY = 64
"""The simulated devices answer from this process's own event loop: with a few hundred reads in flight
at once, the loop itself becomes the slow network, and healthy devices missed their deadline on the
first cycle. 64 reads at a time keep every read's latency well inside the deadline."""
# Some Antminers on aftermarket firmware; a few APIs left open to writes (`api-allow W:0/0`) and a
# quarter of the web passwords changed, so the posture findings (docs/security.md) have something to show.
DEMO_MIX = "antminer:50,whatsminer:24,avalon:12,braiins:5,luxos:5,vnish:4"
DEMO_API_OPEN = 0.05
DEMO_CHANGED_PASSWORDS = 0.25
# The vendors' factory defaults, which most of the simulator's devices keep (as many real ones do).
ANTMINER_DEFAULT = WebCredentials(profile="antminer-default", username="root", password=SecretStr("root"))
VNISH_DEFAULT = WebCredentials(profile="vnish-default", username="admin", password=SecretStr("admin"))
# Braiins OS's factory login (root, empty password), which the simulated Braiins miners keep.
BRAIINS_DEFAULT = WebCredentials(profile="braiins-default", username="root", password=SecretStr(""))


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the `demo` command."""
    p = subparsers.add_parser(
        "demo",
        help="serve a simulated fleet through the API (one command, nothing to configure)",
        description="Start a simulated mixed fleet over four sites, poll it into SQLite and serve the API "
        "on 127.0.0.1:PORT. Ctrl-C stops everything.",
    )
    p.add_argument("--devices", type=_count, default=500, help="simulated devices (default 500)")
    p.add_argument("--port", type=int, default=8000, help="HTTP port on 127.0.0.1 (default 8000)")
    p.add_argument("--seed", type=int, default=1, help="random seed of the fleet (default 1)")
    p.add_argument("--api-key-file", type=Path, help="also write the admin key to this file (mode 0600)")
    p.add_argument("--interval", type=float, default=15.0, help="seconds between poll cycles (default 15)")
    p.add_argument("--data-dir", type=Path, help="keep the database here (default: a temporary directory)")
    p.set_defaults(handler=run_demo)


def _count(text: str) -> int:
    value = int(text)
    if not 1 <= value <= 4 * 4000:
        raise argparse.ArgumentTypeError("--devices must be between 1 and 16000")
    return value


def site_plan(devices: int) -> list[tuple[str, str, int]]:
    """(site, subnet, devices) for each site: devices split evenly, a /24 each when it fits, else /20."""
    per_site = [devices // len(SITES) + (1 if i < devices % len(SITES) else 0) for i in range(len(SITES))]
    prefix = 24 if max(per_site) <= 254 else 20
    subnets = list(DEMO_NET.subnets(new_prefix=prefix))
    return [
        (site, str(subnets[1 + i]), count)
        for i, (site, count) in enumerate(zip(SITES, per_site, strict=True))
        if count
    ]


def run_demo(args: argparse.Namespace) -> int:
    """Handler: run the demo until interrupted; 0 after a clean stop."""
    workdir = args.data_dir or Path(tempfile.mkdtemp(prefix="fleetmon-demo-"))
    workdir.mkdir(parents=True, exist_ok=True)
    try:
        return asyncio.run(_demo(args, workdir))
    finally:
        if args.data_dir is None:
            shutil.rmtree(workdir, ignore_errors=True)


async def _demo(args: argparse.Namespace, workdir: Path) -> int:
    started = time.monotonic()
    url = f"sqlite:///{workdir / 'fleetmon.db'}"
    settings = Settings(
        storage=StorageSettings(url=SecretStr(url)),
        service=ServiceSettings(host="127.0.0.1", port=args.port, rollup_interval_s=60.0),
        collector=CollectorSettings(site=SITES[0], interval_s=args.interval, timeout_s=DEMO_TIMEOUT_S),
    )
    engine = make_engine(url)
    await asyncio.to_thread(upgrade, engine)

    fleets: dict[str, list[FleetDevice]] = {}
    for index, (site, subnet, count) in enumerate(site_plan(args.devices)):
        fleets[site] = build_fleet(
            count,
            subnet=subnet,
            seed=args.seed + index,
            mix=DEMO_MIX,
            api_open=DEMO_API_OPEN,
            changed_passwords=DEMO_CHANGED_PASSWORDS,
        )
    server = FleetServer([item.device for fleet in fleets.values() for item in fleet])
    await server.start()
    try:
        sites: dict[Target, str] = {}
        imported = 0
        for site, fleet in fleets.items():
            sites.update({Target(item.device.ip, server.rpc_port): site for item in fleet})
            csv_path = workdir / f"inventory-{site}.csv"
            write_inventory(fleet, csv_path)
            parsed = parse_inventory_csv(csv_path.read_text(encoding="utf-8"), csv_path.name)
            imported += await asyncio.to_thread(store_inventory, engine, parsed.records, csv_path.name)
        info, token = await asyncio.to_thread(create_key, engine, Role.ADMIN, "demo admin")
        if args.api_key_file is not None:
            _write_secret(args.api_key_file, token)

        runtime = ServiceRuntime.from_settings(
            settings,
            engine,
            sites=sites,
            polling=PollerSettings(
                concurrency=min(settings.collector.concurrency, DEMO_CONCURRENCY),
                deadline_s=DEMO_TIMEOUT_S,
                credentials=ANTMINER_DEFAULT,
                vnish_credentials=VNISH_DEFAULT,
                braiins_credentials=BRAIINS_DEFAULT,
            ),
            # Actions use the profiles the poll reads with; Whatsminers have none here, so their actions
            # are refused up front with that reason (their factory password refuses writes anyway).
            # Braiins OS miners keep their factory gRPC login, so their actions go through.
            action_credentials=ActionCredentials(
                antminer=ANTMINER_DEFAULT, vnish=VNISH_DEFAULT, braiins=BRAIINS_DEFAULT
            ),
        )
        runtime.spool_dir = workdir / "spool"
        sink = runtime.sink()
        await sink.send(await runtime.poll_cycle())  # the first cycle, before the API answers
        await sink.close()
        await runtime.maintain()

        base = f"http://127.0.0.1:{args.port}"
        app = create_app(runtime)
        # One click logs the browser in; the link works once, so the access log line it leaves is
        # worthless afterwards, and the key itself never travels in a URL.
        login_link = one_time_login_link(app, info.id)
        print(
            f"fleetmon demo: open the dashboard  {base}{login_link}\n"
            f"  (one-time login link; later: {base}/login with the admin key below)\n"
            f"fleetmon demo: {args.devices} simulated devices over {len(fleets)} sites "
            f"({', '.join(f'{s} {len(f)}' for s, f in fleets.items())}), {imported} inventory records, "
            f"first poll stored in {time.monotonic() - started:.1f} s\n"
            f"  database  {workdir / 'fleetmon.db'}\n"
            f"  web       {base}/   {base}/supply-chain\n"
            f"  API       {base}/api/v1/devices   {base}/api/v1/fleet/summary\n"
            f"  docs      {base}/docs\n"
            f"  metrics   {base}/metrics\n"
            f"  admin key {token}\n"
            + (f"            (also in {args.api_key_file})\n" if args.api_key_file else "")
            + f"  try: curl -H 'Authorization: Bearer {token}' {base}/api/v1/fleet/summary\n"
            "Ctrl-C stops the demo.",
            flush=True,
        )
        http = Server(uvicorn_config(app, "127.0.0.1", args.port))
        await http.serve()
        if not http.started:
            print(f"fleetmon demo: could not serve on port {args.port}", file=sys.stderr)
            return 1
    finally:
        await server.close()
        engine.dispose()
    print("fleetmon demo: stopped", flush=True)
    return 0


def _write_secret(path: Path, token: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(token + "\n")
    os.chmod(path, 0o600)
