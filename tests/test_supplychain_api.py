"""The supply-chain API over a live service: tariff rates against the reference table, hash-shares of a
simulated fleet whose inventory is POSTed, checked against sums of the device list, exposure, scenarios,
catalog, inventory errors and CSV exports."""

from __future__ import annotations

import csv
import io
import json
from collections import defaultdict
from collections.abc import Iterator
from datetime import date
from decimal import Decimal
from pathlib import Path

import fleet_samples
import httpx
import pytest
from service_harness import LiveService, live_service
from sqlalchemy import delete
from test_supplychain_cli import run
from test_supplychain_tariffs import CASES

from collectors.simulator.fleet import write_inventory
from fleetmon.service.supplychain import report_cache
from fleetmon.storage.engine import make_engine
from fleetmon.storage.inventory import ORIGINS

AS_OF = "2026-03-01"


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveService]:
    tmp = tmp_path_factory.mktemp("supplychain-api")
    with live_service(fleet_samples.sqlite_url(tmp), tmp, devices=40, seed=11) as live:
        yield live


@pytest.fixture(scope="module")
def procurement(service: LiveService) -> Iterator[httpx.Client]:
    with service.client(service.keys["procurement"]) as client:
        yield client


@pytest.fixture(scope="module")
def imported(
    service: LiveService, procurement: httpx.Client, tmp_path_factory: pytest.TempPathFactory
) -> dict:
    """The fleet's inventory CSV imported through the API, into a database whose records were wiped."""
    engine = make_engine(service.db_url)
    with engine.begin() as conn:
        conn.execute(delete(ORIGINS))
    engine.dispose()
    path = tmp_path_factory.mktemp("inventory") / "inventory.csv"
    listed = write_inventory(service.fleet, path)
    with path.open("rb") as fh:
        first = procurement.post("/api/v1/inventory", files={"file": ("inventory.csv", fh, "text/csv")})
    again = procurement.post(
        "/api/v1/inventory", content=path.read_bytes(), headers={"Content-Type": "text/csv"}
    )
    assert first.status_code == 200, first.text
    return {"listed": listed, "first": first.json(), "again": again.json()}


@pytest.mark.parametrize(("origin", "day", "expected"), CASES)
def test_api_rate_reproduces_reference_table(
    procurement: httpx.Client, origin: str, day: str, expected: Decimal
) -> None:
    response = procurement.get(
        "/api/v1/tariffs/rate", params={"origin": origin, "hts": "8543.70.9960", "date": day}
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["total_rate"] == pytest.approx(float(expected), abs=1e-12)
    assert sum(layer["rate"] for layer in body["layers"]) == pytest.approx(body["total_rate"], abs=1e-12)
    assert all(layer["source"] for layer in body["layers"])


def test_api_rate_rejects_uncovered_hts_and_bad_origin(procurement: httpx.Client) -> None:
    uncovered = procurement.get(
        "/api/v1/tariffs/rate", params={"origin": "CN", "hts": "8471.50.0150", "date": AS_OF}
    )
    bad = procurement.get("/api/v1/tariffs/rate", params={"origin": "China", "date": AS_OF})
    assert uncovered.status_code == 404 and "8471.50.0150" in uncovered.json()["detail"]
    assert bad.status_code == 422


def test_inventory_post_stores_new_serials_then_is_idempotent(imported: dict) -> None:
    first, again = imported["first"], imported["again"]
    assert (first["stored"], first["updated"], first["rejected"]) == (imported["listed"], 0, 0)
    assert first["source"] == "inventory.csv" and first["snapshot_refreshed"]
    assert (again["stored"], again["updated"], again["rejected"]) == (0, imported["listed"], 0)


def _independent_shares(items: list[dict], field: str) -> dict[str, float]:
    sums: dict[str, float] = defaultdict(float)
    for item in items:
        if item["hashrate_ths"] is not None:
            sums[item[field] or "unknown"] += item["hashrate_ths"]
    return dict(sums)


@pytest.mark.parametrize(
    ("by", "field"),
    [
        ("manufacturer", "manufacturer"),
        ("manufacturer_country", "manufacturer_country"),
        ("assembly_country", "assembly_country"),
        ("firmware_vendor", "firmware_vendor"),
    ],
)
def test_hash_share_matches_sums_of_the_device_list(
    service: LiveService, procurement: httpx.Client, imported: dict, by: str, field: str
) -> None:
    items = procurement.get("/api/v1/devices", params={"limit": 1000}).json()["items"]
    assert len(items) == len(service.fleet)
    share = procurement.get("/api/v1/supply-chain/hash-share", params={"by": by, "basis": "measured"}).json()
    expected = _independent_shares(items, field)
    total = sum(expected.values())
    assert share["total_ths"] == pytest.approx(total)
    assert {g["key"]: g["hashrate_ths"] for g in share["groups"]} == pytest.approx(expected)
    assert {g["key"]: g["share"] for g in share["groups"]} == pytest.approx(
        {k: v / total for k, v in expected.items()}
    )
    assert sum(g["share"] for g in share["groups"]) == pytest.approx(1.0)
    assert sum(g["devices"] for g in share["groups"]) + share["devices_without_hashrate"] == len(items)


def test_origin_not_backed_by_inventory_is_shown_with_its_hashrate(
    service: LiveService, procurement: httpx.Client, imported: dict
) -> None:
    items = procurement.get("/api/v1/devices", params={"limit": 1000}).json()["items"]
    truth = {item.device.ip: item for item in service.fleet}

    def joined(item: dict) -> bool:  # listed in the inventory, and the device reports that serial
        fact = truth[item["ip"]]
        return fact.in_inventory and item["serial"] == fact.device.serial

    missing = [i for i in items if not joined(i)]
    assert missing, "the simulated fleet must have devices the inventory does not cover"
    assert any(not truth[i["ip"]].in_inventory for i in missing)
    assert all(i["origin_source"] in ("inferred", "unknown") for i in missing)
    for item in filter(joined, items):
        assert item["origin_source"] == "inventory"
        assert item["assembly_country"] == truth[item["ip"]].assembly_country
    share = procurement.get("/api/v1/supply-chain/hash-share", params={"by": "assembly_country"}).json()
    origin = share["origin"]
    not_declared = sum(i["hashrate_ths"] or 0.0 for i in missing)
    assert not_declared > 0
    assert origin["inferred_ths"] + origin["unknown_ths"] == pytest.approx(not_declared)
    assert origin["inferred_or_unknown_share"] == pytest.approx(not_declared / share["total_ths"])
    unknown = sum(i["hashrate_ths"] or 0.0 for i in items if i["assembly_country"] is None)
    groups = {g["key"]: g["hashrate_ths"] for g in share["groups"]}
    assert groups.get("unknown", 0.0) == pytest.approx(unknown)


def test_hash_share_of_a_combination_and_nominal_basis(procurement: httpx.Client, imported: dict) -> None:
    combo = procurement.get(
        "/api/v1/supply-chain/hash-share", params={"by": "manufacturer,assembly_country", "basis": "nominal"}
    ).json()
    assert combo["by"] == ["manufacturer", "assembly_country"] and combo["basis"] == "nominal"
    assert all(set(g["keys"]) == {"manufacturer", "assembly_country"} for g in combo["groups"])
    assert sum(g["share"] for g in combo["groups"]) == pytest.approx(1.0)
    assert 0 < combo["hhi"] <= 10_000
    twice = procurement.get("/api/v1/supply-chain/hash-share", params={"by": "manufacturer,manufacturer"})
    assert twice.json()["by"] == ["manufacturer"]
    assert procurement.get("/api/v1/supply-chain/hash-share", params={"by": "colour"}).status_code == 422


def test_hash_share_csv_has_the_same_groups(procurement: httpx.Client, imported: dict) -> None:
    params = {"by": "manufacturer"}
    json_body = procurement.get("/api/v1/supply-chain/hash-share", params=params).json()
    by_param = procurement.get("/api/v1/supply-chain/hash-share", params={**params, "format": "csv"})
    by_accept = procurement.get(
        "/api/v1/supply-chain/hash-share", params=params, headers={"Accept": "text/csv"}
    )
    assert by_param.headers["content-type"].startswith("text/csv")
    assert by_param.text == by_accept.text
    rows = list(csv.DictReader(io.StringIO(by_param.text)))
    groups = {r["key"]: float(r["hashrate_ths"]) for r in rows if r["section"] == "hash_share"}
    assert groups == pytest.approx({g["key"]: g["hashrate_ths"] for g in json_body["groups"]})
    assert {r["key"] for r in rows if r["section"] == "origin_basis"} == {"declared", "inferred", "unknown"}


def test_tariff_exposure_pages_units_and_is_cached_per_snapshot(
    service: LiveService, procurement: httpx.Client, imported: dict
) -> None:
    first = procurement.get(
        "/api/v1/supply-chain/tariff-exposure", params={"as_of": AS_OF, "limit": 5}
    ).json()
    assert service.runtime is not None
    cache = report_cache(service.runtime.live)
    computed = cache.computed
    second = procurement.get(
        "/api/v1/supply-chain/tariff-exposure", params={"as_of": AS_OF, "limit": 5, "offset": 5}
    ).json()
    assert cache.computed == computed  # same snapshot, same date: nothing recomputed
    assert first["as_of"] == AS_OF and first["units_total"] == len(cache.units)
    duties = [u["replacement_duty_usd"] for u in first["units"] + second["units"]]
    known = [d for d in duties if d is not None]
    assert known == sorted(known, reverse=True)
    assert 0 <= first["score"]["score"] <= 100
    assert set(first["score"]["components"]) == set(first["score"]["weights"])
    assert first["replacement_duty_usd"] > 0
    export = procurement.get("/api/v1/supply-chain/tariff-exposure", params={"as_of": AS_OF, "format": "csv"})
    rows = list(csv.DictReader(io.StringIO(export.text)))
    assert sum(1 for r in rows if r["section"] == "unit_exposure") == len(cache.units)


def test_exposure_figures_equal_those_of_the_snapshot_metrics(
    service: LiveService, procurement: httpx.Client
) -> None:
    assert service.runtime is not None
    snapshot = service.runtime.live.snapshot
    today = procurement.get(
        "/api/v1/supply-chain/tariff-exposure", params={"as_of": date.today().isoformat()}
    ).json()
    assert snapshot.supply_chain.exposure_score == pytest.approx(today["score"]["score"])
    assert snapshot.supply_chain.effective_rate == pytest.approx(today["hashrate_weighted_rate"])
    manufacturer = procurement.get("/api/v1/supply-chain/hash-share", params={"by": "manufacturer"}).json()
    assert snapshot.supply_chain.hash_share["manufacturer"] == pytest.approx(
        {g["key"]: g["share"] for g in manufacturer["groups"]}
    )


def test_scenario_resourcing_to_us_lowers_duty(procurement: httpx.Client, imported: dict) -> None:
    body = {"name": "move to US", "as_of": AS_OF, "resourcing": [{"from": "MY", "to": "US", "ths": 1e6}]}
    result = procurement.post("/api/v1/supply-chain/scenarios", json=body)
    assert result.status_code == 200, result.text
    out = result.json()
    assert out["moved_ths"] > 0
    assert out["after"]["replacement_duty_usd"] < out["before"]["replacement_duty_usd"]
    assert out["delta"]["replacement_duty_usd"] == pytest.approx(
        out["after"]["replacement_duty_usd"] - out["before"]["replacement_duty_usd"]
    )
    override = procurement.post(
        "/api/v1/supply-chain/scenarios", json={"as_of": AS_OF, "rate_overrides": {"s122-10": 0.5}}
    ).json()
    assert override["delta"]["hashrate_weighted_rate"] > 0
    unknown = procurement.post(
        "/api/v1/supply-chain/scenarios", json={"rate_overrides": {"no-such-layer": 0.1}}
    )
    assert unknown.status_code == 409 and "no-such-layer" in unknown.json()["detail"]
    backwards = {"id": "x", "name": "x", "kind": "other", "rate": 0.1, "origins": ["*"], "hts": ["8543"]}
    backwards |= {"source": "test", "effective_from": "2026-02-01", "effective_to": "2026-01-01"}
    refused = procurement.post("/api/v1/supply-chain/scenarios", json={"add_layers": [backwards]})
    assert refused.status_code == 409 and "effective_to" in refused.json()["detail"]
    added = {**backwards, "effective_from": "2026-01-01", "effective_to": "2027-01-01"}
    raised = procurement.post(
        "/api/v1/supply-chain/scenarios", json={"as_of": AS_OF, "add_layers": [added]}
    ).json()
    assert raised["delta"]["hashrate_weighted_rate"] == pytest.approx(0.1)
    export = procurement.post("/api/v1/supply-chain/scenarios", params={"format": "csv"}, json=body)
    assert "scenario_delta" in export.text


def test_whole_report_as_json_and_csv(procurement: httpx.Client, imported: dict) -> None:
    report = procurement.get("/api/v1/supply-chain/report", params={"as_of": AS_OF}).json()
    assert report["as_of"] == AS_OF and report["tariff_exposure"]["as_of"] == AS_OF
    export = procurement.get("/api/v1/supply-chain/report", params={"as_of": AS_OF, "format": "csv"})
    assert export.text.startswith("section,by,basis,key,")
    assert 'filename="supply-chain-2026-03-01.csv"' in export.headers["content-disposition"]


def test_rate_exposure_and_report_name_where_the_tariff_sources_end(
    procurement: httpx.Client, imported: dict
) -> None:
    known = procurement.get("/api/v1/tariffs/rate", params={"origin": "MY", "date": AS_OF}).json()
    assert known["sources_end"] == "2026-05-31" and known["warning"] is None
    late = procurement.get("/api/v1/tariffs/rate", params={"origin": "MY", "date": "2026-08-01"}).json()
    assert late["past_sources_end"] is True and "2026-05-31" in late["warning"]
    assert late["total_rate"] == pytest.approx(0.026)
    exposure = procurement.get(
        "/api/v1/supply-chain/tariff-exposure", params={"as_of": "2026-08-01", "limit": 0}
    ).json()
    assert exposure["sources_end"] == "2026-05-31" and "2026-08-01" in exposure["warning"]
    report = procurement.get("/api/v1/supply-chain/report", params={"as_of": AS_OF}).json()
    assert report["tariff_exposure"]["sources_end"] == "2026-05-31"
    assert report["tariff_exposure"]["warning"] is None
    body = {"as_of": "2026-08-01", "rate_overrides": {"s122-10": 0.2}}
    scenario = procurement.post("/api/v1/supply-chain/scenarios", json=body).json()
    assert scenario["after"]["sources_end"] == scenario["before"]["sources_end"] == "2026-05-31"


def test_catalog_models_for_every_role_with_sources(service: LiveService) -> None:
    with service.client(service.keys["viewer"]) as client:
        models = client.get("/api/v1/catalog/models").json()
        bitmain = client.get("/api/v1/catalog/models", params={"manufacturer": "antminer"}).json()
        nobody = client.get("/api/v1/catalog/models", params={"manufacturer": "nobody"}).json()
    assert len(models) >= 30 and all(m["source"] for m in models)
    assert bitmain and {m["manufacturer"] for m in bitmain} == {"Bitmain"}
    assert {m["manufacturer_country"] for m in bitmain} == {"CN"}
    assert nobody == []


def test_viewer_may_not_read_supply_chain_reports_or_tariffs(service: LiveService) -> None:
    with service.client(service.keys["viewer"]) as client:
        assert client.get("/api/v1/supply-chain/hash-share").status_code == 403
        assert client.get("/api/v1/tariffs/rate", params={"origin": "CN", "date": AS_OF}).status_code == 403
        assert (
            client.post("/api/v1/inventory", content=b"x", headers={"Content-Type": "text/csv"}).status_code
            == 403
        )


def test_inventory_row_errors_name_lines_and_good_rows_are_stored(procurement: httpx.Client) -> None:
    text = (
        "serial,model,assembly_country,origin_evidence,customs_value_usd,entry_date\n"
        "API-GOOD-1,Antminer S21,MY,nameplate,2800,2025-09-01\n"
        "API-BAD-1,Antminer S21,MY,nameplate,2800,someday\n"
        "API-BAD-2,Antminer S21,Malaysia,nameplate,2800,2025-09-01\n"
    )
    out = procurement.post(
        "/api/v1/inventory", params={"source": "test.csv"}, content=text, headers={"Content-Type": "text/csv"}
    ).json()
    assert (out["stored"], out["rejected"]) == (1, 2)
    assert [(e["line"], e["serial"]) for e in out["errors"]] == [(3, "API-BAD-1"), (4, "API-BAD-2")]
    assert "entry_date" in out["errors"][0]["message"]


def test_inventory_that_is_not_an_inventory_is_refused_whole(
    procurement: httpx.Client, tmp_path: Path
) -> None:
    no_columns = procurement.post(
        "/api/v1/inventory", content="a,b\n1,2\n", headers={"Content-Type": "text/csv"}
    )
    wrong_type = procurement.post("/api/v1/inventory", json={"serial": "x"})
    not_utf8 = procurement.post(
        "/api/v1/inventory", content=b"\xff\xfe", headers={"Content-Type": "text/csv"}
    )
    assert no_columns.status_code == 400 and "missing column" in no_columns.json()["detail"]
    assert wrong_type.status_code == 415
    assert not_utf8.status_code == 400


def test_cli_inventory_import_writes_the_database_and_prints_counts(
    service: LiveService, imported: dict, tmp_path: Path
) -> None:
    path = tmp_path / "inventory.csv"
    path.write_text(
        "serial,model,assembly_country,origin_evidence,customs_value_usd,entry_date\n"
        "CLI-NEW-1,Antminer S21,TH,customs_entry,3100,2025-10-01\n"
        "CLI-BAD-1,Antminer S21,TH,customs_entry,lots,2025-10-01\n",
        encoding="utf-8",
    )
    code, first = run(["inventory", "import", str(path), "--db", service.db_url])
    assert code == 1
    code, second = run(["inventory", "import", str(path), "--db", service.db_url])
    assert code == 1
    assert "stored: 1 new, 0 updated; rejected: 1" in first
    assert "stored: 0 new, 1 updated; rejected: 1" in second
    assert "rejected line 3: customs_value_usd" in second


def test_cli_report_from_the_database_equals_the_api(
    service: LiveService, procurement: httpx.Client, imported: dict
) -> None:
    code, out = run(["report", "supply-chain", "--db", service.db_url, "--as-of", AS_OF, "--format", "json"])
    assert code == 0
    report = json.loads(out)
    api = procurement.get("/api/v1/supply-chain/report", params={"as_of": AS_OF}).json()
    assert report["devices"] == api["devices"] == len(service.fleet)
    assert report["hash_share"] == api["hash_share"]
    assert report["origin"] == api["origin"]
    assert report["tariff_exposure"]["score"] == api["tariff_exposure"]["score"]
