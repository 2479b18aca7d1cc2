"""The one device catalog (collectors/data/models.csv): its rows, its one normaliser, and the supply
chain reading the same rows through collectors' plain data interface."""

from __future__ import annotations

import pytest

from collectors.models import (
    ALGORITHMS,
    SHA256,
    CatalogError,
    catalog,
    lookup,
    manufacturer_of,
    parse_catalog,
)
from fleetmon.supplychain.catalog import shipped_catalog

HEADER = (
    "name,make,manufacturer,algorithm,boards,chips_per_board,fans,nominal_ths,nominal_w,efficiency_jth,"
    "release_year,typical_price_usd,hardware_source,figures_source,wire_spellings,spellings_source\n"
)


def test_every_row_names_a_known_algorithm_and_the_source_of_its_figures() -> None:
    rows = catalog().models
    assert len(rows) >= 90
    for row in rows:
        assert row.algorithm in ALGORITHMS, row.name
        if row.nominal_ths is not None or row.nominal_w is not None:
            assert row.figures_source or "nominal figures" in row.hardware_source, row.name
        if row.boards is not None:
            assert row.hardware_source, row.name


@pytest.mark.parametrize(
    ("name", "algorithm"),
    [
        ("Antminer L3+", "Scrypt"),
        ("Antminer D3", "X11"),
        ("Antminer E3", "Ethash"),
        ("Antminer Z11", "Equihash"),
        ("Antminer S19 Pro", SHA256),
        ("Whatsminer M30S+", SHA256),
    ],
)
def test_rows_carry_their_algorithm(name: str, algorithm: str) -> None:
    spec = lookup(name)
    assert spec is not None and spec.algorithm == algorithm


def test_supply_chain_models_are_the_device_catalog_rows() -> None:
    """One home per fact: every supply-chain model is a device-catalog row with the same figures."""
    for model in shipped_catalog().models:
        row = lookup(model.model)
        assert row is not None and row.name == model.model
        assert (row.manufacturer, row.nominal_ths, row.nominal_w) == (
            model.maker,
            model.hashrate_ths,
            model.power_w,
        )
        assert row.figures_source == model.source


def test_manufacturer_of_a_make_comes_from_the_catalog() -> None:
    assert manufacturer_of("Antminer") == "Bitmain"
    assert manufacturer_of("whatsminer") == "MicroBT"
    assert manufacturer_of("AvalonMiner") == "Canaan"
    assert manufacturer_of("SealMiner") == "Bitdeer"
    assert manufacturer_of("Nobody") is None and manufacturer_of(None) is None


def test_identification_lookup_is_strict_and_inventory_lookup_is_loose() -> None:
    # An unknown firmware in the Type must stay unknown for identification (it then asks `version`).
    assert lookup("Antminer D3 Blissz v2.06 beta") is None
    assert catalog().lookup("Antminer D3 Blissz v2.06 beta", loose=True) == lookup("Antminer D3")
    assert catalog().lookup("Antminer S19j Pro 104T", loose=True) == lookup("Antminer S19j Pro")


def test_whatsminer_revision_is_its_own_row_for_collectors_and_the_base_model_for_the_supply_chain() -> None:
    row = lookup("M30S+_VE40", "Whatsminer")
    assert row is not None and row.name == "Whatsminer M30S+ VE40" and row.chips_per_board == 156
    model = shipped_catalog().resolve("M30S+_VE40")
    assert model is not None and model.model == "Whatsminer M30S+"
    assert lookup("M30S+_VZ99", "Whatsminer") == lookup("Whatsminer M30S+")  # unknown revision: base row


def test_make_hint_rejects_another_makers_row() -> None:
    assert lookup("S19 Pro", "Whatsminer") is None
    assert lookup("S19 Pro", "bitmain") == lookup("Antminer S19 Pro")


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ("X,Antminer,Bitmain,SHA-257,,,,,,,,,,,,", "unknown algorithm"),
        ("X,Antminer,Bitmain,SHA-256,,,,-5,,,,,,,,", "nominal_ths must be a positive number"),
        ("X,Antminer,Bitmain,SHA-256,,,,lots,,,,,,,,", "nominal_ths 'lots' is not a number"),
        (",Antminer,Bitmain,SHA-256,,,,,,,,,,,,", "'name' is empty"),
        ("X,Antminer,Bitmain,SHA-256,,,,,,,,,,,,,extra", "more fields than the header"),
    ],
)
def test_bad_catalog_rows_are_refused_naming_line_and_column(row: str, message: str) -> None:
    with pytest.raises(CatalogError, match=rf"models\.csv:2: .*{message}"):
        parse_catalog(HEADER + row + "\n")


def test_a_model_named_twice_is_refused() -> None:
    row = "X,Antminer,Bitmain,SHA-256,,,,,,,,,,,,\n"
    with pytest.raises(CatalogError, match=r"models\.csv:3: 'X' appears twice"):
        parse_catalog(HEADER + row + row)
