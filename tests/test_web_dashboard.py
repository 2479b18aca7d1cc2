"""The dashboard operators live in (issue 19): search, sort, CSV export, refresh without reload, chart
time ranges with hover values, readable units, the worst-devices list without sleeping miners, and the
device page's actions behind a confirmation naming the device, with its audit log.

Browser tests drive Debian's chromium through Playwright (as tests/test_web_browser.py does) against a
live service over a simulated fleet on 127.41.0.0/16; the API half is checked over HTTP against the
same service; the page script's unit scaling runs the table of cases of tests/test_dashboard_figures.py.

The action tests run against a second, collecting service (it polls its own simulated fleet and runs
the action jobs, as `fleetmon serve` with targets does), so a confirmed press reaches the miner.
"""

from __future__ import annotations

import csv
import io
import re
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import fleet_samples
import pytest
from service_harness import LiveService, live_service
from test_dashboard_figures import HASHRATE_CASES, POWER_CASES
from test_web_browser import RENDER_TIMEOUT_MS, Tab, api, chromium_path

from collectors.sample import State
from collectors.simulator.device import SimState
from fleetmon.config import ActionSettings
from fleetmon.storage.engine import make_engine
from fleetmon.storage.fleet import recent_samples
from fleetmon.storage.rollups import rollup_hourly
from fleetmon.storage.writer import SampleStore, SiteSample
from fleetmon.web.readable import hashrate_text, power_text

playwright_sync = pytest.importorskip("playwright.sync_api")

SUBNET = "127.41.1.0/24"

# ---- the API half: search, sort, CSV over a live service ------------------------------------------


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveService]:
    tmp = tmp_path_factory.mktemp("dashboard")
    with live_service(fleet_samples.sqlite_url(tmp), tmp, devices=60, seed=19, subnet=SUBNET) as service:
        yield service


def all_devices(live: LiveService, query: str = "") -> list[dict[str, Any]]:
    return list(api(live, f"/api/v1/devices?limit=1000&{query}")["items"])


def test_search_finds_a_miner_by_address_serial_mac_or_model(live: LiveService) -> None:
    devices = all_devices(live)
    target = next(d for d in devices if d["serial"] and d["mac"])
    for needle in (
        target["ip"],
        target["serial"][-6:].lower(),
        target["mac"].upper(),
        target["mac"].replace(":", ""),  # a MAC typed without separators
        target["mac"].replace(":", "-"),
    ):
        found = all_devices(live, f"q={quote(needle)}")
        assert target["id"] in [d["id"] for d in found], needle
        assert all(_matches(needle, d) for d in found), needle
        assert len(found) < len(devices), needle
    model = target["model"]
    by_model = all_devices(live, f"q={quote(model)}")
    assert {d["id"] for d in by_model} >= {d["id"] for d in devices if d["model"] == model}
    assert all_devices(live, "q=no-such-miner-anywhere") == []


def _matches(needle: str, d: dict[str, Any]) -> bool:
    wanted = needle.lower()
    fields = [f.lower() for f in (d["ip"], d["serial"], d["model"], d["hostname"], d["mac"]) if f]
    bare = re.sub("[-:. ]", "", wanted)
    mac = re.sub("[-:. ]", "", (d["mac"] or "").lower())
    return any(wanted in f for f in fields) or (bool(bare) and bare in mac)


def test_sort_orders_numbers_as_numbers_addresses_as_addresses_and_missing_last(live: LiveService) -> None:
    devices = all_devices(live)
    for order in ("asc", "desc"):
        shown = all_devices(live, f"sort=hashrate_ths&order={order}")
        known = [d["hashrate_ths"] for d in shown if d["hashrate_ths"] is not None]
        assert known == sorted(known, reverse=order == "desc")
        missing = [d for d in shown if d["hashrate_ths"] is None]
        assert shown[len(known) :] == missing, "devices without a reading come last either way"
        assert len(shown) == len(devices)
    by_ip = [d["ip"] for d in all_devices(live, "sort=ip")]
    assert by_ip == sorted(by_ip, key=lambda ip: tuple(int(part) for part in ip.split(".")))
    assert by_ip != sorted(by_ip), "the fleet has addresses whose text order differs (…9 before …10)"


def test_csv_has_every_matching_device_in_the_list_order(live: LiveService) -> None:
    query = "state=mining&sort=power_w&order=desc"
    with live.client(live.keys["viewer"]) as client:
        response = client.get(f"/api/v1/devices/export.csv?{query}")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    assert "attachment" in response.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(response.text)))
    listed = all_devices(live, query)
    assert len(listed) > 1
    assert [int(r["id"]) for r in rows] == [d["id"] for d in listed]
    assert [r["serial"] for r in rows] == [d["serial"] or "" for d in listed]
    assert [float(r["power_w"]) if r["power_w"] else None for r in rows] == [d["power_w"] for d in listed]


def test_a_bad_sort_field_is_refused_with_a_reason(live: LiveService) -> None:
    with live.client(live.keys["viewer"]) as client:
        response = client.get("/api/v1/devices?sort=password")
    assert response.status_code == 422
    assert "hashrate_ths" in response.text  # the error lists the fields one may sort by


# ---- in the browser -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from headless_chromium import CHROMIUM_ARGS

    executable = chromium_path()
    with playwright_sync.sync_playwright() as pw:
        instance = pw.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        yield instance
        instance.close()


@pytest.fixture
def tab(browser: Any, live: LiveService) -> Iterator[Tab]:
    t = Tab(browser, live)
    yield t
    t.close()


def table_ids(page: Any) -> list[int]:
    return [
        int(i) for i in page.eval_on_selector_all("#devices tbody tr", "r => r.map(x => x.dataset.deviceId)")
    ]


def wait_for_query(page: Any, fragment: str) -> None:
    page.wait_for_function(
        "f => (document.querySelector('#devices').dataset.query || '').includes(f)",
        arg=fragment,
        timeout=RENDER_TIMEOUT_MS,
    )


def test_page_script_scales_units_exactly_like_the_server(tab: Tab) -> None:
    tab.login("viewer")
    page = tab.open("/")
    cases = [[v, t] for v, t in HASHRATE_CASES]
    shown = page.evaluate("cases => cases.map(([v]) => hashrateText(v))", cases)
    assert shown == [t for _, t in HASHRATE_CASES]
    shown = page.evaluate("cases => cases.map(([v]) => powerText(v))", [[v, t] for v, t in POWER_CASES])
    assert shown == [t for _, t in POWER_CASES]


def test_figures_on_the_overview_are_in_readable_units(tab: Tab, live: LiveService) -> None:
    tab.login("viewer")
    page = tab.open("/")
    summary = api(live, "/api/v1/fleet/summary")
    assert page.inner_text(".kpi[data-metric=hashrate_ths] .value") == hashrate_text(summary["hashrate_ths"])
    assert page.inner_text(".kpi[data-metric=power_w] .value") == power_text(summary["power_w"])
    assert summary["power_w"] >= 1000 and page.inner_text(".kpi[data-metric=power_w] .value").endswith(" kW")
    first = all_devices(live)[0]
    row = page.locator(f"#devices tbody tr[data-device-id='{first['id']}']")
    cells = row.locator("td").all_inner_texts()
    assert hashrate_text(first["hashrate_ths"]) in cells
    assert power_text(first["power_w"]) in cells


def test_search_box_narrows_the_table_as_one_types(tab: Tab, live: LiveService) -> None:
    tab.login("viewer")
    page = tab.open("/")
    target = next(d for d in all_devices(live) if d["serial"])
    page.fill("#filters input[name=q]", target["serial"])
    wait_for_query(page, f"q={target['serial']}")
    assert table_ids(page) == [d["id"] for d in all_devices(live, f"q={target['serial']}")]
    assert target["id"] in table_ids(page)
    assert page.get_attribute("#device-count", "data-value") == str(len(table_ids(page)))
    assert f"q={target['serial']}" in page.url  # the search is in the address: a link to share
    page.fill("#filters input[name=q]", "")
    page.wait_for_function(
        "n => document.querySelector('#device-count').dataset.value === String(n)",
        arg=api(live, "/api/v1/devices?limit=1")["total"],
    )
    assert not tab.problems, tab.problems


def test_column_headers_sort_the_table_and_say_so(tab: Tab, live: LiveService) -> None:
    tab.login("viewer")
    page = tab.open("/")
    page.click("#devices th button[data-sort=hashrate_ths]")
    wait_for_query(page, "sort=hashrate_ths&order=asc")
    header = "#devices th:has(button[data-sort=hashrate_ths])"
    assert page.get_attribute(header, "aria-sort") == "ascending"
    api_order = all_devices(live, "sort=hashrate_ths&order=asc")
    assert table_ids(page) == [d["id"] for d in api_order][:50]
    values = [
        float(v)
        for v in page.eval_on_selector_all(
            "#devices tbody tr td.num[data-value]:nth-child(8)", "c => c.map(x => x.dataset.value)"
        )
        if v
    ]
    assert values == sorted(values) and len(set(values)) > 1
    # Again, with the keyboard: the header is a button, so Enter reverses the order.
    page.focus("#devices th button[data-sort=hashrate_ths]")
    page.keyboard.press("Enter")
    wait_for_query(page, "sort=hashrate_ths&order=desc")
    assert page.get_attribute(header, "aria-sort") == "descending"
    assert table_ids(page) == [d["id"] for d in all_devices(live, "sort=hashrate_ths&order=desc")][:50]
    assert not tab.problems, tab.problems


def test_csv_export_downloads_the_filtered_sorted_list(tab: Tab, live: LiveService) -> None:
    tab.login("viewer")
    page = tab.open("/")
    page.fill("#filters input[name=q]", "127.41.1.")
    page.click("#filters button[type=submit]")
    wait_for_query(page, "q=127.41.1.")
    page.click("#devices th button[data-sort=power_w]")
    wait_for_query(page, "sort=power_w&order=asc")
    page.click("#devices th button[data-sort=power_w]")
    wait_for_query(page, "sort=power_w&order=desc")
    with page.expect_download() as info:
        page.click("#csv")
    download = info.value
    assert download.suggested_filename == "fleetmon-devices.csv"
    rows = list(csv.DictReader(io.StringIO(Path(download.path()).read_text(encoding="utf-8"))))
    expected = all_devices(live, "q=127.41.1.&sort=power_w&order=desc")
    assert len(expected) > 50, "more than one page: the CSV is the whole list, not the page shown"
    assert [int(r["id"]) for r in rows] == [d["id"] for d in expected]
    assert all(r["ip"].startswith("127.41.1.") for r in rows)
    powers = [float(r["power_w"]) for r in rows if r["power_w"]]
    assert powers == sorted(powers, reverse=True)
    assert not tab.problems, tab.problems


def test_refresh_shows_new_figures_without_reloading_the_page(tab: Tab, live: LiveService) -> None:
    tab.login("viewer")
    page = tab.open("/")
    page.evaluate("window.__sameDocument = 'still here'")
    assert page.get_attribute("body", "data-refreshes") == "1"
    runtime = live.runtime
    assert runtime is not None
    view = runtime.live.snapshot.devices[-1]
    before = api(live, "/api/v1/fleet/summary")["devices_by_state"]["sleeping"]
    # The fleet changes under the open page: one miner now reads sleeping (a new snapshot is published
    # the way the runtime does after a cycle; nothing else changes the state in this reader-mode service).
    asleep = view.sample.model_copy(
        update={"state": State.SLEEPING, "hashrate_ths": 0.0, "ts": datetime.now(UTC)}
    )
    runtime.fleet.apply(view.site, asleep, view.device_id)
    runtime.publish()
    page.click("#refresh")
    page.wait_for_selector("body[data-refreshes='2']", timeout=RENDER_TIMEOUT_MS)
    assert page.evaluate("window.__sameDocument") == "still here"
    shown = page.get_attribute("#state-legend li[data-key=sleeping]", "data-value")
    assert int(shown) == before + 1
    worst = page.eval_on_selector_all("#worst tbody tr", "r => r.map(x => x.dataset.deviceId)")
    assert str(view.device_id) not in worst
    assert page.inner_text("#refreshed-at").startswith("updated ")
    assert not tab.problems, tab.problems


def test_auto_refresh_runs_on_its_interval_until_paused(tab: Tab) -> None:
    tab.login("viewer")
    tab.page.clock.install()
    page = tab.open("/")
    assert page.get_attribute("body", "data-auto-refresh") == "30"
    page.evaluate("window.__sameDocument = 'still here'")
    page.click("#devices th button[data-sort=power_w]")
    wait_for_query(page, "sort=power_w")
    page.focus("#filters input[name=q]")  # someone about to type: a refresh must not take the focus
    page.clock.run_for(31_000)
    page.wait_for_selector("body[data-refreshes='2']", timeout=RENDER_TIMEOUT_MS)
    assert page.evaluate("document.activeElement.name") == "q"
    assert "sort=power_w" in page.get_attribute("#devices", "data-query")
    page.click("#pause")
    assert page.get_attribute("#pause", "aria-pressed") == "true"
    assert page.get_attribute("body", "data-auto-refresh") == "off"
    page.clock.run_for(120_000)
    page.wait_for_timeout(300)  # let any wrongly scheduled refresh land before looking
    assert page.get_attribute("body", "data-refreshes") == "2"
    page.click("#pause")  # resume
    page.select_option("#auto-refresh", "15")
    page.clock.run_for(16_000)
    page.wait_for_selector("body[data-refreshes='3']", timeout=RENDER_TIMEOUT_MS)
    assert page.evaluate("window.__sameDocument") == "still here"
    assert not tab.problems, tab.problems


@pytest.fixture(scope="module")
def history_device(live: LiveService) -> dict[str, Any]:
    """A device given stored history 15 minutes, 3.5 hours, 12 hours and 3 days back, rolled up."""
    device = all_devices(live, "state=mining")[0]
    engine = make_engine(live.db_url)
    try:
        newest = recent_samples(engine, device["id"], 1)[0]
        now = datetime.now(UTC)
        store = SampleStore(engine)
        for hours_back, ths in ((0.25, 91.0), (3.5, 92.0), (12, 93.0), (72, 94.0)):
            when = now - timedelta(hours=hours_back)
            store.write([SiteSample(live.site, newest.model_copy(update={"ts": when, "hashrate_ths": ths}))])
        rollup_hourly(engine, now - timedelta(days=8), now + timedelta(hours=1))
    finally:
        engine.dispose()
    return device


def hourly_points_within(live: LiveService, device_id: int, hours: int) -> int:
    detail = api(live, f"/api/v1/devices/{device_id}?samples=1&hours={hours}")
    last_seen = datetime.fromisoformat(detail["device"]["last_seen"])
    start = max(datetime.now(UTC), last_seen) - timedelta(hours=hours)
    mids = [
        min(datetime.fromisoformat(h["hour"]) + timedelta(minutes=30), last_seen)
        for h in detail["history"]
        if h["hashrate_avg_ths"] is not None
    ]
    return sum(mid >= start for mid in mids)


def test_chart_time_range_switches_without_reloading(
    tab: Tab, live: LiveService, history_device: dict[str, Any]
) -> None:
    tab.login("viewer")
    device_id = history_device["id"]
    page = tab.open(f"/devices/{device_id}")
    assert page.get_attribute(".range button[data-hours='24']", "aria-pressed") == "true"
    page.evaluate("window.__sameDocument = 'still here'")
    counts = {}
    for hours in (1, 6, 24, 168):
        with page.expect_response(lambda r, h=hours: f"hours={h}" in r.url and "/api/v1/devices/" in r.url):
            page.click(f".range button[data-hours='{hours}']")
        page.wait_for_function(
            "h => document.querySelector('#chart-hashrate').dataset.hours === String(h)", arg=hours
        )
        chart = page.locator("#chart-hashrate svg.line")
        span = datetime.fromisoformat(
            chart.get_attribute("data-to").replace("Z", "+00:00")
        ) - datetime.fromisoformat(chart.get_attribute("data-from").replace("Z", "+00:00"))
        assert span == timedelta(hours=hours)
        counts[hours] = int(
            page.get_attribute("#chart-hashrate path[data-series='hourly average']", "data-points")
        )
        assert counts[hours] == hourly_points_within(live, device_id, hours), hours
        assert page.get_attribute(f".range button[data-hours='{hours}']", "aria-pressed") == "true"
    assert counts[1] < counts[6] < counts[24] < counts[168], counts
    assert page.evaluate("window.__sameDocument") == "still here"
    assert "hours=168" in page.url
    assert not tab.problems, tab.problems


def test_chart_hover_shows_the_value_at_the_nearest_point(
    tab: Tab, live: LiveService, history_device: dict[str, Any]
) -> None:
    tab.login("viewer")
    device_id = history_device["id"]
    page = tab.open(f"/devices/{device_id}?hours=6")
    detail = api(live, f"/api/v1/devices/{device_id}?samples=500&hours=6")
    newest = detail["recent_samples"][0]
    # The mouse at the right edge of the plot: the nearest reading is the newest sample.
    box = page.locator("#chart-hashrate svg.line").bounding_box()
    page.mouse.move(box["x"] + box["width"] - 14, box["y"] + box["height"] / 2)
    tip = page.locator("#chart-hashrate .chart-tip")
    tip.wait_for(state="visible")
    row = tip.locator("li[data-series='recent samples']")
    assert float(row.get_attribute("data-value")) == newest["hashrate_ths"]
    assert hashrate_text(newest["hashrate_ths"]) in row.inner_text()
    # The keyboard reaches the same values: Home goes to the oldest reading of the range, the one stored
    # 3.5 hours back (92.0 TH/s, as a sample and as its hour's average).
    page.focus("#chart-hashrate svg.line")
    page.keyboard.press("Home")
    rows = tip.locator("li[data-series='recent samples'], li[data-series='hourly average']")
    assert rows.count() >= 1
    for i in range(rows.count()):
        assert float(rows.nth(i).get_attribute("data-value")) == pytest.approx(92.0)
        assert "92.0 TH/s" in rows.nth(i).inner_text()
    page.keyboard.press("Escape")
    assert tip.is_hidden()
    tab.shoot("device-chart-hover")
    assert not tab.problems, tab.problems


# ---- actions on the device page -------------------------------------------------------------------
# Against a collecting service (it polls the simulated fleet and runs the action jobs), as `fleetmon
# serve` with targets does: the confirmed action reaches the simulated miner and the next poll shows it.

JOB_ENDED = (
    "() => ['succeeded', 'failed', 'partial', 'cancelled']"
    ".includes(document.querySelector('#action-status').dataset.state)"
)


@pytest.fixture(scope="module")
def acting(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveService]:
    tmp = tmp_path_factory.mktemp("dashboard-actions")
    with live_service(
        fleet_samples.sqlite_url(tmp),
        tmp,
        devices=6,
        seed=23,
        mix="luxos:4,avalon:2,antminer:0,braiins:0,whatsminer:0,vnish:0",
        subnet="127.41.2.0/24",
        collecting=True,
        interval_s=1.0,
        actions=ActionSettings(connect_timeout_s=0.5, read_timeout_s=1.0, timeout_s=3.0),
    ) as service:
        yield service


@pytest.fixture
def acting_tab(browser: Any, acting: LiveService) -> Iterator[Tab]:
    t = Tab(browser, acting)
    yield t
    t.close()


def sim_device(live: LiveService, ip: str) -> Any:
    return next(item.device for item in live.fleet if item.device.ip == ip)


def test_viewer_sees_no_action_buttons(acting_tab: Tab, acting: LiveService) -> None:
    tab = acting_tab
    tab.login("viewer")
    page = tab.open(f"/devices/{all_devices(acting)[0]['id']}")
    assert page.locator(".action-buttons button").count() == 0
    assert page.locator("#confirm-action").count() == 0


def test_action_asks_naming_the_device_cancel_sends_nothing_confirm_posts_once(
    acting_tab: Tab, acting: LiveService
) -> None:
    tab = acting_tab
    tab.login("operator")
    device = next(d for d in all_devices(acting, "state=mining") if d["serial"])
    miner = sim_device(acting, device["ip"])
    page = tab.open(f"/devices/{device['id']}")
    posts: list[Any] = []
    page.on("request", lambda r: posts.append(r) if r.method == "POST" and "/actions" in r.url else None)
    assert page.locator(".action-buttons button").count() == 5

    page.click(".action-buttons button[data-action=sleep]")
    dialog = page.locator("#confirm-action")
    dialog.wait_for(state="visible")
    text = dialog.inner_text()
    for fact in (device["ip"], device["serial"], device["model"]):
        assert fact in text, fact
    assert page.evaluate("document.activeElement.textContent") == "Cancel"  # the safe choice has focus
    page.click("#confirm-action button[value=cancel]")
    dialog.wait_for(state="hidden")
    page.click(".action-buttons button[data-action=sleep]")
    dialog.wait_for(state="visible")
    page.keyboard.press("Escape")
    dialog.wait_for(state="hidden")
    page.wait_for_timeout(300)
    assert posts == [], "Cancel and Escape send nothing"
    assert miner.state is SimState.MINING, "nor did anything reach the miner"

    page.click(".action-buttons button[data-action=sleep]")
    dialog.wait_for(state="visible")
    with page.expect_response(lambda r: r.request.method == "POST" and "/actions" in r.url) as answer:
        page.click("#confirm-ok")
    assert answer.value.status == 202
    page.wait_for_function(
        JOB_ENDED,
        timeout=60_000,
    )
    assert len(posts) == 1
    request = posts[0]
    assert request.url.endswith(f"/api/v1/devices/{device['id']}/actions")
    assert request.post_data_json == {"action": "sleep", "params": {}}
    assert uuid.UUID(request.headers["idempotency-key"]).version == 4
    status = page.inner_text("#action-status")
    assert re.search(r"of 1 done", status), status
    assert page.get_attribute("#action-status", "data-state") == "succeeded", status
    assert miner.state is SimState.SLEEPING  # the one POST reached the miner
    page.wait_for_selector("#audit tbody tr[data-action=sleep]", timeout=RENDER_TIMEOUT_MS)
    tab.shoot("device-action-done")
    with acting.client(acting.keys["admin"]) as client:  # leave the fleet as found
        client.post(f"/api/v1/devices/{device['id']}/actions", json={"action": "wake", "params": {}})
    assert not tab.problems, tab.problems


def test_locate_buttons_send_their_on_off_parameter(acting_tab: Tab, acting: LiveService) -> None:
    tab = acting_tab
    tab.login("admin")
    device = all_devices(acting, "state=mining")[1]
    miner = sim_device(acting, device["ip"])
    lights = []
    page = tab.open(f"/devices/{device['id']}")
    sent = []
    page.on(
        "request",
        lambda r: sent.append(r.post_data_json) if r.method == "POST" and "/actions" in r.url else None,
    )
    for on in ("true", "false"):
        page.click(f".action-buttons button[data-action=locate][data-on={on}]")
        page.locator("#confirm-action").wait_for(state="visible")
        assert ("light on" if on == "true" else "light off") in page.inner_text("#confirm-title")
        before = page.get_attribute("#action-status", "data-job-id")
        page.click("#confirm-ok")
        page.wait_for_function(
            "before => document.querySelector('#action-status').dataset.jobId !== before"
            " && !document.querySelector('.action-buttons button').disabled",
            arg=before,
            timeout=60_000,
        )
        page.wait_for_function(JOB_ENDED, timeout=60_000)
        lights.append(miner.locate)
        # The page reads the device again: the light as the device confirmed it.
        page.wait_for_function(
            """on => [...document.querySelectorAll('#now dt')]
                .some(dt => dt.textContent === 'Locate light'
                      && dt.nextElementSibling.textContent.startsWith(on === 'true' ? 'on' : 'off'))""",
            arg=on,
            timeout=RENDER_TIMEOUT_MS,
        )
    assert lights == [True, False]  # each confirmed press reached the miner's light
    assert sent == [
        {"action": "locate", "params": {"on": True}},
        {"action": "locate", "params": {"on": False}},
    ]
    assert not tab.problems, tab.problems


# ---- actions on several devices from the overview ---------------------------------------------------


def test_viewer_gets_no_tick_boxes_and_no_action_bar(acting_tab: Tab) -> None:
    tab = acting_tab
    tab.login("viewer")
    page = tab.open("/")
    page.wait_for_selector("#devices tbody tr[data-device-id]", timeout=RENDER_TIMEOUT_MS)
    assert page.locator("#devices input.pick, .fleet-actions, #confirm-action").count() == 0
    assert not tab.problems, tab.problems


def test_ticked_devices_are_confirmed_by_name_and_sent_one_fleet_action(
    acting_tab: Tab, acting: LiveService
) -> None:
    tab = acting_tab
    tab.login("operator")
    targets = [d for d in all_devices(acting, "state=mining") if d["serial"]][:2]
    assert len(targets) == 2
    miners = [sim_device(acting, d["ip"]) for d in targets]
    page = tab.open("/")
    page.wait_for_selector("#devices tbody tr[data-device-id]", timeout=RENDER_TIMEOUT_MS)
    posts: list[Any] = []
    page.on("request", lambda r: posts.append(r) if r.method == "POST" and "/actions" in r.url else None)
    assert page.locator(".fleet-actions button[data-action]:enabled").count() == 0  # nothing ticked yet
    for d in targets:
        page.check(f"#devices input.pick[data-device-id='{d['id']}']")
    assert page.get_attribute("#selected-count", "data-value") == "2"

    page.click(".fleet-actions button[data-action=sleep]")
    dialog = page.locator("#confirm-action")
    dialog.wait_for(state="visible")
    text = dialog.inner_text()
    for d in targets:
        for fact in (d["ip"], d["serial"]):
            assert fact in text, fact
    assert "these 2 devices" in text
    assert page.evaluate("document.activeElement.textContent") == "Cancel"
    page.click("#confirm-action button[value=cancel]")
    dialog.wait_for(state="hidden")
    # Asking is a dry run: it reached no miner, and Cancel sent nothing more.
    assert [r.post_data_json.get("dry_run") for r in posts] == [True]
    assert all(m.state is SimState.MINING for m in miners)

    page.click(".fleet-actions button[data-action=sleep]")
    dialog.wait_for(state="visible")
    with page.expect_response(
        lambda r: r.request.method == "POST" and r.url.endswith("/api/v1/actions") and r.status == 202
    ):
        page.click("#confirm-ok")
    page.wait_for_function(JOB_ENDED, timeout=60_000)
    real = [r for r in posts if not r.post_data_json.get("dry_run")]
    assert len(real) == 1
    body = real[0].post_data_json
    assert body["action"] == "sleep" and body["params"] == {}
    assert sorted(body["selector"]["ids"]) == sorted(d["id"] for d in targets)
    assert uuid.UUID(real[0].headers["idempotency-key"]).version == 4
    status = page.inner_text("#action-status")
    assert page.get_attribute("#action-status", "data-state") == "succeeded", status
    assert "2 of 2 done" in status, status
    assert all(m.state is SimState.SLEEPING for m in miners)  # the one request reached both miners
    assert page.get_attribute("#selected-count", "data-value") == "2"  # kept until cleared
    page.click("#clear-selection")
    assert page.get_attribute("#selected-count", "data-value") == "0"
    assert page.locator("#devices input.pick:checked").count() == 0
    tab.shoot("overview-fleet-action-done")
    with acting.client(acting.keys["admin"]) as client:  # leave the fleet as found
        for d in targets:
            client.post(f"/api/v1/devices/{d['id']}/actions", json={"action": "wake", "params": {}})
    assert not tab.problems, tab.problems
