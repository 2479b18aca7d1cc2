"""The dashboard in a real browser: Debian's chromium, headless, driven by Playwright, against a live
service over a simulated fleet (the harness of the API tests: polled once, snapshot fixed, so the API
and the pages read the same numbers).

Each test logs in through the form, waits until the page script says it has rendered
(`body[data-ready="1"]`), fails on any console error or page error, compares what is shown with the
API's answer for the same route, and saves a screenshot to artifacts/screenshots/ (or
$FLEETMON_ARTIFACTS/screenshots/).
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import fleet_samples
import pytest
from conftest import services_required
from headless_chromium import CHROMIUM_ARGS, screenshot_dir
from service_harness import LiveService, live_service

from fleetmon.web.readable import hashrate_text

playwright_sync = pytest.importorskip("playwright.sync_api")

RENDER_TIMEOUT_MS = 30_000


def chromium_path() -> str:
    """Debian's chromium; skips (fails under FLEETMON_REQUIRE_SERVICES=1) when it is not installed."""
    found = shutil.which("chromium") or ("/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None)
    if found is None:
        message = "chromium is not installed (apt-get install chromium)"
        if services_required():
            pytest.fail(message + " and FLEETMON_REQUIRE_SERVICES=1")
        pytest.skip(message)
    return found


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveService]:
    tmp = tmp_path_factory.mktemp("web")
    with live_service(fleet_samples.sqlite_url(tmp), tmp, devices=40, seed=11) as service:
        yield service


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    executable = chromium_path()
    with playwright_sync.sync_playwright() as pw:
        instance = pw.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        yield instance
        instance.close()


class Tab:
    """One browser context and page that records console errors and page errors."""

    def __init__(self, browser: Any, live: LiveService) -> None:
        self.live = live
        self.context = browser.new_context(base_url=live.base_url, viewport={"width": 1360, "height": 900})
        self.page = self.context.new_page()
        self.problems: list[str] = []
        self.page.on(
            "console",
            lambda msg: (
                self.problems.append(f"console {msg.type}: {msg.text}") if msg.type == "error" else None
            ),
        )
        self.page.on("pageerror", lambda exc: self.problems.append(f"page error: {exc}"))

    def _console(self, msg: Any) -> None:
        if msg.type == "error":
            self.problems.append(f"console {msg.type}: {msg.text}")

    def login(self, role: str) -> None:
        self.page.goto("/login")
        self.page.fill("input[name=key]", self.live.keys[role])
        self.page.click("button[type=submit]")
        self.page.wait_for_url(f"{self.live.base_url}/")

    def open(self, path: str) -> Any:
        """Go to `path` and wait until its script rendered; no console or page error allowed."""
        self.page.goto(path)
        self.page.wait_for_selector("body[data-ready]", timeout=RENDER_TIMEOUT_MS)
        assert self.page.get_attribute("body", "data-ready") == "1", self.page.inner_text("#load-error")
        assert not self.problems, self.problems
        return self.page

    def shoot(self, name: str) -> None:
        self.page.screenshot(path=str(screenshot_dir() / f"{name}.png"), full_page=True)

    def close(self) -> None:
        self.context.close()


@pytest.fixture
def tab(browser: Any, live: LiveService) -> Iterator[Tab]:
    t = Tab(browser, live)
    yield t
    t.close()


def api(live: LiveService, path: str, role: str = "admin") -> Any:
    with live.client(live.keys[role]) as client:
        response = client.get(path)
    response.raise_for_status()
    return response.json()


def values(page: Any, selector: str) -> list[str]:
    return [str(v) for v in page.eval_on_selector_all(selector, "nodes => nodes.map(n => n.dataset.value)")]


def pct(share: float) -> str:
    return f"{100 * share:,.1f}%"


def test_unauthenticated_page_goes_to_the_login_form(tab: Tab) -> None:
    tab.page.goto("/supply-chain")
    assert tab.page.url.endswith("/login?next=/supply-chain")
    tab.page.fill("input[name=key]", "fm_000000000000_wrong")
    tab.page.click("button[type=submit]")
    assert "not valid" in tab.page.inner_text("[role=alert]")
    tab.shoot("login-refused")


def test_overview_shows_the_api_totals_states_worst_devices_and_racks(tab: Tab, live: LiveService) -> None:
    tab.login("viewer")
    page = tab.open("/")
    summary = api(live, "/api/v1/fleet/summary")
    racks = api(live, "/api/v1/fleet/racks")
    for metric in ("hashrate_ths", "expected_hashrate_ths", "up", "power_w"):
        shown = page.get_attribute(f".kpi[data-metric={metric}]", "data-value")
        assert float(shown) == pytest.approx(summary[metric], rel=1e-12), metric
    shown_hashrate = page.inner_text(".kpi[data-metric=hashrate_ths] .value")
    assert shown_hashrate == hashrate_text(summary["hashrate_ths"])  # the server's rule, on the page
    states = {
        li.get_attribute("data-key"): int(li.get_attribute("data-value"))
        for li in page.query_selector_all("#state-legend li")
    }
    assert states == summary["devices_by_state"]
    worst_ids = [
        int(i) for i in page.eval_on_selector_all("#worst tbody tr", "r => r.map(x => x.dataset.deviceId)")
    ]
    assert worst_ids == [d["id"] for d in summary["worst_performers"]]
    assert worst_ids, "the simulated fleet has devices below nominal"
    ratios = [float(v) for v in values(page, "#worst td.ratio")]
    assert ratios == pytest.approx([d["performance_ratio"] for d in summary["worst_performers"]])
    cells = page.eval_on_selector_all("svg.heat rect", "r => r.map(x => [x.dataset.rack, x.dataset.temp])")
    assert [c[0] for c in cells] == [r["rack"] for r in racks["racks"]]
    assert [float(c[1]) if c[1] else None for c in cells] == [r["temp_max_c"] for r in racks["racks"]]
    assert int(page.get_attribute("#device-count", "data-value")) == summary["devices"]
    tab.shoot("overview")


def test_overview_filters_narrow_the_device_table_like_the_api(tab: Tab, live: LiveService) -> None:
    tab.login("viewer")
    page = tab.open("/")
    page.select_option("#filters select[name=state]", "mining")
    page.click("#filters button[type=submit]")
    expected = api(live, "/api/v1/devices?state=mining&limit=1")["total"]
    page.wait_for_function(f"document.querySelector('#device-count').dataset.value === '{expected}'")
    assert set(page.eval_on_selector_all("#devices [data-state]", "b => b.map(x => x.dataset.state)")) <= {
        "mining"
    }
    assert not tab.problems, tab.problems


def test_device_page_shows_identity_history_boards_and_pools(tab: Tab, live: LiveService) -> None:
    tab.login("viewer")
    summary = api(live, "/api/v1/fleet/summary")
    device_id = summary["worst_performers"][0]["id"]
    page = tab.open(f"/devices/{device_id}")
    detail = api(live, f"/api/v1/devices/{device_id}?samples=120&hours=168")
    latest = detail["recent_samples"][0]
    now = {
        dt.inner_text(): dt.evaluate("n => n.nextElementSibling.dataset.value")
        for dt in page.query_selector_all("#now dt")
    }
    assert float(now["Hashrate"]) == detail["device"]["hashrate_ths"]
    assert now["State"] == detail["device"]["state"]
    assert page.locator("#chart-hashrate svg.line path").count() == 4
    assert page.locator("#chart-temp svg.line").count() == 1
    has_power = any(s["power_w"] is not None for s in detail["recent_samples"]) or any(
        h["power_avg_w"] is not None for h in detail["history"]
    )
    assert page.locator("#chart-power svg.line").count() == (1 if has_power else 0)
    boards = [float(v) if v else None for v in values(page, "#boards tbody td[data-value]")]
    assert boards == [b["hashrate_ths"] for b in latest["boards"]]
    assert page.locator("#pools tbody tr").count() == max(1, len(latest["pools"]))
    tab.shoot("device")


def test_supply_chain_page_needs_procurement_or_admin(tab: Tab) -> None:
    tab.login("operator")
    response = tab.page.goto("/supply-chain")
    assert response.status == 403
    assert "procurement" in tab.page.inner_text("main")
    tab.shoot("supply-chain-forbidden")
    assert tab.problems == [
        "console error: Failed to load resource: the server responded with a status of 403 (Forbidden)"
    ]
    tab.problems.clear()
    tab.open("/")
    assert "Supply chain" not in tab.page.inner_text("nav.links")


def test_supply_chain_shares_and_exposure_equal_the_api(tab: Tab, live: LiveService) -> None:
    tab.login("procurement")
    page = tab.open("/supply-chain")
    for dim in ("manufacturer", "assembly_country"):
        share = api(live, f"/api/v1/supply-chain/hash-share?by={dim}&basis=measured", "procurement")
        rows = page.query_selector_all(f"#table-{dim} tbody tr")
        shown = [(r.get_attribute("data-key"), r.query_selector("td.share").inner_text()) for r in rows]
        assert shown == [(g["key"], pct(g["share"])) for g in share["groups"]], dim
        raw = [float(v) for v in values(page, f"#table-{dim} td.share")]
        assert raw == pytest.approx([g["share"] for g in share["groups"]], rel=1e-12)
    origin = share["origin"]
    assert float(page.get_attribute("#origin-note", "data-value")) == pytest.approx(
        origin["inferred_or_unknown_share"]
    )
    assert origin["inferred_ths"] + origin["unknown_ths"] > 0, "the simulated fleet has inferred origins"
    exposure = api(live, "/api/v1/supply-chain/tariff-exposure?limit=0", "procurement")
    score = float(page.get_attribute("#exposure .kpi[data-metric=score]", "data-value"))
    assert score == pytest.approx(exposure["score"]["score"])
    components = {
        r.get_attribute("data-key"): float(r.query_selector("td[data-value]").get_attribute("data-value"))
        for r in page.query_selector_all("#score tbody tr")
    }
    assert components == pytest.approx(exposure["score"]["components"])
    duty = float(page.get_attribute("#exposure .kpi[data-metric=replacement_duty_usd]", "data-value"))
    assert duty == pytest.approx(exposure["replacement_duty_usd"])
    tab.shoot("supply-chain")


def test_what_if_form_shows_the_scenarios_api_before_and_after(tab: Tab, live: LiveService) -> None:
    tab.login("procurement")
    page = tab.open("/supply-chain")
    source = page.eval_on_selector("#whatif select[name=from]", "s => s.value")
    layer = page.eval_on_selector("#whatif select[name=layer] option:nth-child(2)", "o => o.value")
    page.select_option("#whatif select[name=layer]", layer)
    page.fill("#whatif input[name=rate]", "80")
    page.fill("#whatif input[name=ths]", "500")
    page.select_option("#whatif select[name=to]", "US")
    page.click("#whatif button[type=submit]")
    page.wait_for_selector("#whatif-result[data-ready]")
    assert not tab.problems, tab.problems
    as_of = api(live, "/api/v1/supply-chain/tariff-exposure?limit=0", "procurement")["as_of"]
    body = {
        "name": "dashboard what-if",
        "as_of": as_of,
        "rate_overrides": {layer: 0.8},
        "resourcing": [{"from": source, "to": "US", "ths": 500}],
    }
    with live.client(live.keys["procurement"]) as client:
        result = client.post("/api/v1/supply-chain/scenarios", json=body).json()
    rows = {r.get_attribute("data-key"): r for r in page.query_selector_all("#whatif-result tbody tr")}
    for key, before, after in (
        (
            "replacement_duty_usd",
            result["before"]["replacement_duty_usd"],
            result["after"]["replacement_duty_usd"],
        ),
        ("score", result["before"]["score"]["score"], result["after"]["score"]["score"]),
        (
            "hashrate_weighted_rate",
            result["before"]["hashrate_weighted_rate"],
            result["after"]["hashrate_weighted_rate"],
        ),
    ):
        shown_before = float(rows[key].query_selector("td.before").get_attribute("data-value"))
        shown_after = float(rows[key].query_selector("td.after").get_attribute("data-value"))
        assert (shown_before, shown_after) == pytest.approx((before, after)), key
    assert result["after"]["replacement_duty_usd"] != result["before"]["replacement_duty_usd"]
    assert float(page.get_attribute("#whatif-result", "data-moved-ths")) == pytest.approx(result["moved_ths"])
    tab.shoot("supply-chain-what-if")


def test_supply_chain_page_says_where_the_tariff_sources_end(tab: Tab, live: LiveService) -> None:
    tab.login("procurement")
    page = tab.open("/supply-chain")
    exposure = api(live, "/api/v1/supply-chain/tariff-exposure?limit=0", "procurement")
    assert exposure["sources_end"] == "2026-05-31"
    assert f"sources end {exposure['sources_end']}" in page.inner_text("#tariff-sources")
    assert f"sources end {exposure['sources_end']}" in page.inner_text("#as-of")
    # Today is past the sources' end, so the page says so in the API's words.
    assert exposure["warning"] and page.is_visible("#tariff-warning")
    assert page.inner_text("#tariff-warning") == exposure["warning"]
    page = tab.open("/supply-chain?as_of=2026-03-01")
    assert "sources end 2026-05-31" in page.inner_text("#tariff-sources")
    assert not page.is_visible("#tariff-warning")
    assert not tab.problems, tab.problems
