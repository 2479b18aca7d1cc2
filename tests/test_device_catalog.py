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


# ---- 2025-2026 machines (issue 18): recognised by the strings their firmware sends ----------------


@pytest.mark.parametrize(
    ("wire", "make", "name", "algorithm", "nominal_ths"),
    [
        # Bitmain's Type strings end "Hyd." (256foundation/asic-rs aliases); inventories say Hydro.
        ("Antminer S21 XP Hyd.", None, "Antminer S21 XP Hyd", SHA256, 473),
        ("Antminer S21j XP Hyd.", None, "Antminer S21j XP Hyd", SHA256, 495),
        ("Antminer S21e XP Hyd.", None, "Antminer S21e XP Hyd", SHA256, 430),
        ("ANTMINER L11", None, "Antminer L11", "Scrypt", 0.02),  # 20 GH/s in tera-units of Scrypt
        ("ANTMINER S23", None, "Antminer S23", SHA256, 318),
        ("M70SVM30", "Whatsminer", "Whatsminer M70S", SHA256, 248),
        ("M73S+VM40", "Whatsminer", "Whatsminer M73S+", SHA256, None),  # no consistent source: unknown
        ("M79SVM30", "Whatsminer", "Whatsminer M79S", SHA256, None),  # sources disagree (930 / 1350 TH/s)
        ("NANO3S", "Avalon", "Avalon Nano 3S", SHA256, 6),
        ("Q", "Avalon", "Avalon Q", SHA256, 90),
        ("AH3880", "Auradine", "Auradine AH3880", SHA256, 600),
        ("SEALMINER A3 Pro Hyd", "SealMiner", "SealMiner A3 Pro Hyd", SHA256, 660),
        ("DG1+", "Elphapex", "Elphapex DG1+", "Scrypt", 0.014),
        ("DG1-Home", "Elphapex", "Elphapex DG Home 1", "Scrypt", 0.0021),
    ],
)
def test_new_models_are_recognised_by_their_wire_names(
    wire: str, make: str | None, name: str, algorithm: str, nominal_ths: float | None
) -> None:
    spec = lookup(wire, make)
    assert spec is not None and spec.name == name
    assert spec.algorithm == algorithm
    assert spec.nominal_ths == nominal_ths
    # A figure only with its source; none where no source gives one (unknown, never a guess).
    assert bool(spec.figures_source) == (nominal_ths is not None)


def test_scrypt_rows_leave_efficiency_empty_rather_than_mix_units() -> None:
    for row in catalog().models:
        if row.algorithm != SHA256 and row.efficiency_jth is not None:
            pytest.fail(f"{row.name}: a J/TH figure on a {row.algorithm} row")


def test_new_hydro_models_read_their_sourced_hardware() -> None:
    xp = lookup("Antminer S21 XP Hyd.")
    assert xp is not None and (xp.boards, xp.chips_per_board, xp.fans) == (3, None, 0)
    l11 = lookup("Antminer L11")
    assert l11 is not None and (l11.boards, l11.chips_per_board, l11.fans) == (3, 88, 4)


@pytest.mark.parametrize(
    ("wire", "make", "name", "nominal_ths", "efficiency_jth"),
    [
        ("Antminer S23 Hyd.", None, "Antminer S23 Hyd", 580, 9.5),  # the Type string's period
        # The M70 itself is the line's 14.5 J/TH class (MicroBT's shop); ~12.5 J/TH is the M70S+ class.
        ("M70VM30", "Whatsminer", "Whatsminer M70", 220, 14.5),
        ("Avalon A16 XP", "Avalon", "Avalon A16 XP", 300, 12.8),
    ],
)
def test_2025_2026_models_with_sourced_figures_read_them_from_their_wire_names(
    wire: str, make: str | None, name: str, nominal_ths: float | None, efficiency_jth: float
) -> None:
    spec = lookup(wire, make)
    assert spec is not None and spec.name == name
    assert (spec.nominal_ths, spec.efficiency_jth) == (nominal_ths, efficiency_jth)


def test_hyd_with_a_period_is_hyd_and_nothing_else_changes() -> None:
    assert lookup("Antminer S21+ Hyd.") == lookup("Antminer S21+ Hydro") == lookup("Antminer S21+ Hyd")
    assert lookup("Antminer S21 XP Hyd.") != lookup("Antminer S21 XP")
    assert lookup("Antminer S21 XP+ Hyd.") is None or lookup("Antminer S21 XP+ Hyd.") != lookup(
        "Antminer S21 XP Hyd."
    )
