"""Issue 14 through the live service: a clone with the Antminer stats layout and its own type string sits
in the `unknown` group of every maker figure, never in Bitmain's; SealMiner and Auradine machines count
under Bitdeer and Auradine. A simulated fleet (127.64.20.0/24) is polled into SQLite and served."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import fleet_samples
import httpx
import pytest
from service_harness import LiveService, live_service

MIX = "antminer:8,whatsminer:4,clone:5,sealminer:3,auradine:3"


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveService]:
    tmp: Path = tmp_path_factory.mktemp("unknown-make")
    url = fleet_samples.sqlite_url(tmp)
    with live_service(url, tmp, devices=23, seed=14, mix=MIX, subnet="127.64.20.0/24") as live:
        yield live


@pytest.fixture(scope="module")
def client(service: LiveService) -> Iterator[httpx.Client]:
    with service.client(service.keys["procurement"]) as http:
        yield http


@pytest.fixture(scope="module")
def devices(client: httpx.Client) -> list[dict]:
    items = client.get("/api/v1/devices", params={"limit": 1000}).json()["items"]
    assert len(items) == 23
    return items


def _measured(items: list[dict]) -> float:
    return sum(i["hashrate_ths"] or 0.0 for i in items)


def test_clones_are_listed_with_their_type_string_and_no_maker(
    service: LiveService, devices: list[dict]
) -> None:
    truth = {f.device.ip: f.device for f in service.fleet}
    clones = [d for d in devices if truth[d["ip"]].spec.make == "clone"]
    assert len(clones) == 5
    for item in clones:
        assert (item["make"], item["manufacturer"], item["manufacturer_country"]) == (None, None, None)
        assert item["model"] == "ClonerX C1"
    assert _measured(clones) > 0  # read, not dropped: their hashrate is in the fleet total


def test_hash_share_by_manufacturer_puts_clones_in_unknown_never_in_bitmain(
    service: LiveService, client: httpx.Client, devices: list[dict]
) -> None:
    truth = {f.device.ip: f.device for f in service.fleet}

    def of(make: str) -> list[dict]:
        return [d for d in devices if truth[d["ip"]].spec.make == make]

    share = client.get(
        "/api/v1/supply-chain/hash-share", params={"by": "manufacturer", "basis": "measured"}
    ).json()
    groups = {g["key"]: g for g in share["groups"]}
    assert groups["unknown"]["devices"] == len(of("clone"))
    assert groups["unknown"]["hashrate_ths"] == pytest.approx(_measured(of("clone")))
    assert groups["Bitmain"]["hashrate_ths"] == pytest.approx(_measured(of("antminer")))
    assert groups["Bitmain"]["devices"] == len(of("antminer"))
    assert groups["Bitdeer"]["hashrate_ths"] == pytest.approx(_measured(of("sealminer")))
    assert groups["Auradine"]["hashrate_ths"] == pytest.approx(_measured(of("auradine")))
    assert share["total_ths"] == pytest.approx(_measured(devices))


def test_clones_count_as_unknown_in_the_maker_country_and_china_figures(
    service: LiveService, client: httpx.Client, devices: list[dict]
) -> None:
    truth = {f.device.ip: f.device for f in service.fleet}
    clones = _measured([d for d in devices if truth[d["ip"]].spec.make == "clone"])
    by_country = client.get(
        "/api/v1/supply-chain/hash-share", params={"by": "manufacturer_country", "basis": "measured"}
    ).json()
    groups = {g["key"]: g["hashrate_ths"] for g in by_country["groups"]}
    assert groups["unknown"] == pytest.approx(clones)
    assert groups["SG"] == pytest.approx(
        _measured([d for d in devices if truth[d["ip"]].spec.make == "sealminer"])
    )
    china_makers = _measured([d for d in devices if truth[d["ip"]].spec.make in ("antminer", "whatsminer")])
    report = client.get("/api/v1/supply-chain/report").json()
    measured = report["china_dependency"]["measured"]
    assert measured["maker_china_hq_ths"] == pytest.approx(china_makers)
    assert measured["total_ths"] == pytest.approx(_measured(devices))
