"""Alias resolution, origin resolution and inventory CSV parsing."""

from __future__ import annotations

from datetime import date

import fleet_samples
import pytest

from fleetmon.storage.engine import make_engine
from fleetmon.storage.inventory import load_inventory, store_inventory
from fleetmon.supplychain.catalog import shipped_catalog
from fleetmon.supplychain.errors import CatalogDataError, InventoryError
from fleetmon.supplychain.fleet import build_unit
from fleetmon.supplychain.origin import OriginBasis, default_origin, parse_defaults, parse_inventory_csv


@pytest.mark.parametrize(
    ("reported", "make", "expected"),
    [
        ("Antminer S19 Pro", None, "Antminer S19 Pro"),
        ("S19 Pro", None, "Antminer S19 Pro"),
        ("antminer   s19j pro", None, "Antminer S19j Pro"),
        ("Antminer S19 XP (140T)", None, "Antminer S19 XP"),
        ("Antminer S19k Pro", None, "Antminer S19k Pro"),
        ("Antminer S21", None, "Antminer S21"),
        ("Antminer S21 Pro", None, "Antminer S21 Pro"),
        ("S21 XP", "antminer", "Antminer S21 XP"),
        ("Antminer T21 vnish 1.2", None, "Antminer T21"),
        ("Antminer S19\nV1.3.58", None, "Antminer S19"),
        ("M30S", None, "Whatsminer M30S"),
        ("M30S+_VE40", None, "Whatsminer M30S+"),
        ("M30S+VE40", "whatsminer", "Whatsminer M30S+"),
        ("M30S++_VG30", None, "Whatsminer M30S++"),
        ("WhatsMiner M50", None, "Whatsminer M50"),
        ("M60S", None, "Whatsminer M60S"),
        ("AvalonMiner 1566", None, "Avalon A1566"),
        ("1566", "avalon", "Avalon A1566"),
        ("15-194", None, "Avalon A1566"),
        ("AvalonMiner 15-194", None, "Avalon A1566"),
        ("1246", None, "Avalon A1246"),
        ("Avalon A1366", None, "Avalon A1366"),
    ],
)
def test_reported_model_strings_resolve_to_catalog_rows(
    reported: str, make: str | None, expected: str
) -> None:
    spec = shipped_catalog().resolve(reported, make)
    assert spec is not None
    assert spec.model == expected


@pytest.mark.parametrize(
    ("reported", "make"),
    [("Antminer S9", None), ("M21SV20", None), ("Antminer Z11", None), ("", None), ("S19 Pro", "whatsminer")],
)
def test_unknown_or_conflicting_model_strings_resolve_to_none(reported: str, make: str | None) -> None:
    assert shipped_catalog().resolve(reported, make) is None


def test_every_alias_points_at_a_row_with_a_source() -> None:
    catalog = shipped_catalog()
    for maker, model in catalog.aliases.values():
        spec = catalog.model(maker, model)
        assert spec is not None and spec.source


def test_canaan_hq_is_singapore_with_china_as_former_hq() -> None:
    canaan = shipped_catalog().manufacturer("avalon")
    assert canaan is not None
    assert (canaan.name, canaan.hq_country, canaan.former_hq_country) == ("Canaan", "SG", "CN")


def test_a_maker_whose_hq_no_source_names_is_unknown_not_guessed() -> None:
    catalog = shipped_catalog()
    elphapex = catalog.manufacturer("elphapex")
    assert elphapex is not None and elphapex.name == "Elphapex"
    assert elphapex.hq_country is None and elphapex.sources
    spec = catalog.resolve("DG1+", "elphapex")
    assert spec is not None and spec.maker == "Elphapex"


def test_bitmain_default_origin_is_inferred_with_low_confidence() -> None:
    origin = default_origin("Bitmain", "Antminer S21", 2024)
    assert origin.basis is OriginBasis.INFERRED
    assert origin.country == "MY"
    assert 0 < origin.confidence < 0.5
    assert "TH" in origin.reasoning and origin.sources


def test_microbt_default_origin_is_unknown_not_guessed() -> None:
    origin = default_origin("MicroBT", "Whatsminer M30S+", 2021)
    assert origin.basis is OriginBasis.UNKNOWN
    assert origin.country is None
    assert "unnamed" in origin.reasoning or "not name" in origin.reasoning


def test_inventory_evidence_beats_default_and_sets_confidence() -> None:
    parsed = parse_inventory_csv(
        "serial,model,assembly_country,origin_evidence,customs_value_usd,entry_date\n"
        "S1,Antminer S21,us,customs_entry,2800,2025-09-01\n"
    )
    unit = build_unit(
        {"serial": "S1", "model": "Antminer S21", "make": "antminer"}, inventory=parsed.by_serial()
    )
    assert unit.origin.country == "US"
    assert unit.origin.basis is OriginBasis.DECLARED
    assert unit.origin.evidence == "customs_entry"
    assert unit.origin.confidence == pytest.approx(0.9)
    assert unit.customs_value_usd == 2800
    assert unit.entry_date == date(2025, 9, 1)


def test_unreachable_unit_has_no_measured_hashrate_not_zero() -> None:
    unit = build_unit({"serial": "x", "model": "S19 Pro", "state": "unreachable", "hashrate_ths": 0})
    assert unit.hashrate_ths is None
    assert unit.nominal_hashrate_ths == 110


INVENTORY = """serial,model,assembly_country,origin_evidence,customs_value_usd,entry_date,hts_code
A1,Antminer S19 Pro,CN,customs_entry,2407,2025-05-20,8543.70.9960
A2,Antminer S21,MY,nameplate,"2,800",2025-09-01,
A3,Antminer S21,MY,sticker,2800,2025-09-01,
A4,Antminer S21,MY,nameplate,lots,2025-09-01,
A5,Antminer S21,MY,nameplate,2800,2025-13-01,
,Antminer S21,MY,nameplate,2800,2025-09-01,
A1,Antminer S21,MY,nameplate,2800,2025-09-01,
A8,Antminer S21,MYS,nameplate,2800,2025-09-01,
A9,Antminer S21,,nameplate,2800,2025-09-01,
A10,Antminer S21,TH,,,,
A11,Antminer S21,TH,invoice,1,2025-01-01,12AB
"""


def test_inventory_row_errors_name_the_line_and_keep_good_rows() -> None:
    parsed = parse_inventory_csv(INVENTORY, "inv.csv")
    assert [r.serial for r in parsed.records] == ["A1", "A2", "A10"]
    lines = {e.line: e.message for e in parsed.errors}
    assert set(lines) == {4, 5, 6, 7, 8, 9, 10, 12}
    assert "origin_evidence 'sticker'" in lines[4]
    assert "customs_value_usd" in lines[5]
    assert "entry_date" in lines[6]
    assert "serial is empty" in lines[7]
    assert "duplicate serial (first on line 2)" in lines[8]
    assert "alpha-2" in lines[9]
    assert "without assembly_country" in lines[10]
    assert parsed.by_serial()["A2"].customs_value_usd == 2800
    assert parsed.by_serial()["A10"].origin is not None
    assert parsed.by_serial()["A10"].origin.evidence == "operator_record"


def test_inventory_without_required_columns_is_rejected_whole() -> None:
    with pytest.raises(InventoryError, match="assembly_country"):
        parse_inventory_csv("serial,model\nA1,S19\n", "inv.csv")


def test_inventory_liquidation_date_is_optional_and_checked() -> None:
    parsed = parse_inventory_csv(
        "serial,model,assembly_country,origin_evidence,customs_value_usd,entry_date,liquidation_date\n"
        "L1,Antminer S21,CN,customs_entry,2800,2025-05-20,2026-03-27\n"
        "L2,Antminer S21,CN,customs_entry,2800,2025-05-20,\n"
        "L3,Antminer S21,CN,customs_entry,2800,2025-05-20,2025-05-19\n"
        "L4,Antminer S21,CN,customs_entry,2800,2025-05-20,soon\n"
        "L5,Antminer S21,CN,customs_entry,2800,,2026-03-27\n",
        "inv.csv",
    )
    by_serial = parsed.by_serial()
    assert by_serial["L1"].liquidation_date == date(2026, 3, 27)
    assert by_serial["L2"].liquidation_date is None
    errors = {e.line: e.message for e in parsed.errors}
    assert set(errors) == {4, 5, 6}
    assert "before entry_date" in errors[4]
    assert "liquidation_date 'soon'" in errors[5]
    assert "without entry_date" in errors[6]
    unit = build_unit({"serial": "L1", "model": "Antminer S21"}, inventory=by_serial)
    assert unit.liquidation_date == date(2026, 3, 27)


blank_db_url = fleet_samples.blank_db_url
db_url = fleet_samples.db_url


def test_liquidation_date_survives_the_database_on_each_dialect(db_url: str) -> None:
    parsed = parse_inventory_csv(
        "serial,model,assembly_country,origin_evidence,customs_value_usd,entry_date,liquidation_date\n"
        "D1,Antminer S21,CN,customs_entry,2800,2025-05-20,2026-03-27\n"
        "D2,Antminer S21,CN,customs_entry,2800,2025-05-20,\n",
        "inv.csv",
    )
    engine = make_engine(db_url)
    try:
        assert store_inventory(engine, parsed.records, "inv.csv") == 2
        stored = load_inventory(engine)
    finally:
        engine.dispose()
    assert stored["D1"].liquidation_date == date(2026, 3, 27)
    assert stored["D2"].liquidation_date is None


def test_microbt_us_line_is_a_share_from_2024_not_a_default_country() -> None:
    before = default_origin("MicroBT", "Whatsminer M30S+", 2023)
    assert before.shares == () and before.country is None
    origin = default_origin("MicroBT", "Whatsminer M60S", 2025)
    assert origin.country is None and origin.basis is OriginBasis.UNKNOWN  # main plant still unnamed
    assert origin.shares == (("US", 0.1),)
    assert "Pittsburgh" in origin.reasoning and "[U]" in origin.reasoning and "[E]" in origin.reasoning
    assert "[43]" in origin.sources


def test_origin_default_shares_are_validated() -> None:
    header = (
        "maker,model,year_from,year_to,assembly_country,alternatives,confidence,reasoning,sources,shares\n"
    )
    with pytest.raises(CatalogDataError, match="more than 1"):
        parse_defaults(header + "X,,,,,,0,r,s,US:0.6;MY:0.5\n", "d.csv")
    with pytest.raises(CatalogDataError, match="COUNTRY:FRACTION"):
        parse_defaults(header + "X,,,,,,0,r,s,US=0.1\n", "d.csv")
