"""Dashboard pages at 10,000 devices: load time of each page in headless chromium, and a screenshot.

The fleet is generated in PostgreSQL by bench_api's fill (10,000 devices over four sites, 7 days of
samples every --interval-min minutes and their hourly rollups), then each site's devices get a
contiguous address range (as a farm numbers its racks) and the latest hours' temperatures vary by
rack, so the heat map has something to show. The real app is served in reader mode on a free port;
chromium logs in through the form, then each page is timed from navigation start to the page script's
`body[data-ready="1"]` (every API call answered and drawn). Each page is loaded --repeat times; the
first load of the overview also pays for the per-snapshot summary and rack aggregation.
Screenshots go to artifacts/screenshots/bench-*.png (or $FLEETMON_ARTIFACTS/screenshots/).
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from bench_api import fill_postgres, scratch_schema
from bench_metrics import serve_in_thread
from headless_chromium import CHROMIUM_ARGS, screenshot_dir
from playwright.sync_api import sync_playwright
from sqlalchemy import text

from fleetmon.config import ServiceSettings, Settings, StorageSettings
from fleetmon.service.app import create_app
from fleetmon.service.auth import Role, create_key
from fleetmon.service.runtime import ServiceRuntime
from fleetmon.storage.engine import make_engine


def realistic_layout(url: str) -> None:
    """Contiguous addresses per site (10.<site>.x.y) and rack-dependent recent temperatures."""
    engine = make_engine(url)
    with engine.begin() as conn:
        conn.execute(
            text(
                "UPDATE devices d SET ip = '10.' || s.site_id || '.' || (s.n / 256) || '.' || (s.n % 256) "
                "FROM (SELECT id, site_id, row_number() OVER (PARTITION BY site_id ORDER BY id) - 1 AS n "
                "FROM devices) s WHERE s.id = d.id"
            )
        )
        conn.execute(
            text(
                "UPDATE samples SET temp_max_c = 56 + ((device_id / 128) % 10) * 3 + (device_id % 5) "
                "WHERE ts > now() - interval '3 hours' AND state <> 'unreachable'"
            )
        )
    with engine.connect() as conn:
        conn.execution_options(isolation_level="AUTOCOMMIT").execute(text("ANALYZE"))
    engine.dispose()


def timed(page: Any, act: Callable[[], None], ready: str) -> float:
    """Milliseconds from `act` until the page says `ready` (a JS expression turning true)."""
    t0 = time.perf_counter()
    act()
    page.wait_for_function(f"() => {ready}", timeout=120_000)  # a function: the CSP forbids eval
    return (time.perf_counter() - t0) * 1000


def interactions(page: Any, device_id: int, repeat: int) -> None:
    """The overview's search, sort, refresh and CSV export, and the device page's range switch, at this
    fleet size: each from the action to the page showing its answer (no reload)."""
    page.goto("/")
    page.wait_for_selector("body[data-ready]", timeout=120_000)
    page.select_option("#auto-refresh", "0")  # only the clicks below refresh
    query = "document.querySelector('#devices').dataset.query"
    results: dict[str, list[float]] = {"search (type 10.2.1.)": [], "sort by hashrate": [], "refresh": []}
    for i in range(repeat):
        page.fill("#filters input[name=q]", "")
        page.wait_for_function(f"() => !{query}.includes('q=')", timeout=120_000)
        results["search (type 10.2.1.)"].append(
            timed(
                page, lambda: page.fill("#filters input[name=q]", "10.2.1."), f"{query}.includes('q=10.2.1.')"
            )
        )
        order = "asc" if i % 2 == 0 else "desc"
        results["sort by hashrate"].append(
            timed(
                page,
                lambda: page.click("#devices th button[data-sort=hashrate_ths]"),
                f"{query}.includes('order={order}')",
            )
        )
        done = int(page.get_attribute("body", "data-refreshes") or "0")
        results["refresh"].append(
            timed(page, lambda: page.click("#refresh"), f"document.body.dataset.refreshes === '{done + 1}'")
        )
    for name, times in results.items():
        print(f"web: overview {name}: median {statistics.median(times):.0f} ms over {len(times)}")
    page.fill("#filters input[name=q]", "")
    page.wait_for_function(f"() => !{query}.includes('q=')", timeout=120_000)
    t0 = time.perf_counter()
    with page.expect_download() as info:
        page.click("#csv")
    path = info.value.path()
    ms = (time.perf_counter() - t0) * 1000
    rows, size = Path(path).read_text(encoding="utf-8").count("\n") - 1, Path(path).stat().st_size
    print(f"web: CSV export of the whole list: {rows:,} rows, {size:,} bytes in {ms:.0f} ms")
    page.goto(f"/devices/{device_id}")
    page.wait_for_selector("body[data-ready]", timeout=120_000)
    for hours in (168, 1, 24):
        ms = timed(
            page,
            lambda h=hours: page.click(f".range button[data-hours='{h}']"),
            f"document.querySelector('#chart-hashrate').dataset.hours === '{hours}'",
        )
        print(f"web: device chart range switch to {hours} h: {ms:.0f} ms")
    box = page.locator("#chart-hashrate svg.line").bounding_box()
    page.mouse.move(box["x"] + box["width"] * 0.6, box["y"] + box["height"] / 2)
    page.screenshot(path=str(screenshot_dir() / "bench-device-hover.png"), full_page=False)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--postgres", default="postgresql+psycopg://postgres@127.0.0.1:5432/test")
    parser.add_argument("--devices", type=int, default=10_000)
    parser.add_argument("--interval-min", type=int, default=30, help="minutes between generated samples")
    parser.add_argument("--repeat", type=int, default=5, help="loads of each page")
    parser.add_argument("--chromium", default=shutil.which("chromium") or "/usr/bin/chromium")
    args = parser.parse_args()
    shots = screenshot_dir()

    with scratch_schema(args.postgres, "bench_web") as url:
        seconds = fill_postgres(url, args.devices, args.interval_min)
        realistic_layout(url)
        print(f"web: {args.devices} devices, 7 days every {args.interval_min} min, filled in {seconds:.0f} s")
        engine = make_engine(url)
        _, key = create_key(engine, Role.ADMIN, "bench")
        settings = Settings(storage=StorageSettings(), service=ServiceSettings(snapshot_interval_s=3600))
        runtime = ServiceRuntime(settings=settings, engine=engine)
        asyncio.run(runtime.refresh())
        ids = [v.device_id for v in runtime.live.snapshot.devices if v.device_id is not None]
        pages = {"overview": "/", "device": f"/devices/{ids[len(ids) // 2]}", "supply-chain": "/supply-chain"}
        with (
            serve_in_thread(create_app(runtime, manage_runtime=False)) as base,
            sync_playwright() as pw,
        ):
            browser = pw.chromium.launch(executable_path=args.chromium, args=CHROMIUM_ARGS)
            context = browser.new_context(base_url=base, viewport={"width": 1360, "height": 900})
            page = context.new_page()
            errors: list[str] = []
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto("/login")
            page.fill("input[name=key]", key)
            t0 = time.perf_counter()
            page.click("button[type=submit]")
            page.wait_for_url(f"{base}/")
            page.wait_for_selector("body[data-ready]", timeout=120_000)
            print(
                f"web: login -> overview rendered, cold (first summary and rack aggregation of the "
                f"snapshot): {(time.perf_counter() - t0) * 1000:.0f} ms"
            )
            for name, path in pages.items():
                times = []
                for i in range(args.repeat):
                    t0 = time.perf_counter()
                    page.goto(path)
                    page.wait_for_selector("body[data-ready]", timeout=120_000)
                    times.append(time.perf_counter() - t0)
                    if i == 0:
                        page.screenshot(path=str(shots / f"bench-{name}.png"), full_page=True)
                state = page.get_attribute("body", "data-ready")
                print(
                    f"web: {name} ({path}) navigation to data rendered: first {times[0] * 1000:.0f} ms, "
                    f"median {statistics.median(times) * 1000:.0f} ms over {len(times)} loads, "
                    f"page state {state!r}"
                )
            interactions(page, ids[len(ids) // 2], args.repeat)
            transferred = page.evaluate(
                "performance.getEntriesByType('resource').reduce((s, e) => s + e.transferSize, 0)"
            )
            print(f"web: bytes fetched by the last page load: {transferred:,}")
            print(f"web: console/page errors: {errors or 'none'}; screenshots in {shots}")
            browser.close()
        engine.dispose()


if __name__ == "__main__":
    main()
