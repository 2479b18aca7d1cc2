"""Properties of the analytics, exposure figures and scenarios on generated and hand-made fleets."""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fleetmon.supplychain.analytics import Basis, Dimension, china_dependency, hash_share, hhi
from fleetmon.supplychain.exposure import RefundStatus, fleet_exposure, refund_status, unit_exposure
from fleetmon.supplychain.fleet import FleetUnit
from fleetmon.supplychain.origin import Origin, OriginBasis
from fleetmon.supplychain.scenarios import (
    Resourcing,
    Scenario,
    apply_to_schedule,
    parse_scenario,
    run_scenario,
)
from fleetmon.supplychain.tariffs import shipped_schedule

SCHEDULE = shipped_schedule()
MODELS = [
    ("Bitmain", "Antminer S19 Pro"),
    ("Bitmain", "Antminer S21"),
    ("MicroBT", "Whatsminer M30S+"),
    ("Canaan", "Avalon A1566"),
    (None, None),
]
COUNTRIES = ["CN", "MY", "TH", "VN", "SG", "US", None]


def make_unit(
    i: int,
    maker: str | None,
    model: str | None,
    country: str | None,
    measured: float | None,
    nominal: float | None,
    value: float | None = None,
    entry: date | None = None,
    firmware: str | None = "stock",
    basis: OriginBasis | None = None,
    confidence: float = 0.8,
) -> FleetUnit:
    origin = Origin(
        country=country,
        basis=basis or (OriginBasis.DECLARED if country else OriginBasis.UNKNOWN),
        confidence=confidence if country else 0.0,
    )
    return FleetUnit(
        serial=f"SN{i:04d}",
        model=model,
        manufacturer=maker,
        catalog_model=model,
        firmware_vendor=firmware,
        hashrate_ths=measured,
        nominal_hashrate_ths=nominal,
        origin=origin,
        customs_value_usd=value,
        entry_date=entry,
    )


ths = st.one_of(st.none(), st.floats(min_value=0.0, max_value=1000.0, allow_nan=False))
unit_strategy = st.tuples(
    st.sampled_from(MODELS),
    st.sampled_from(COUNTRIES),
    ths,
    ths,
    st.one_of(st.none(), st.floats(min_value=0.0, max_value=50_000.0)),
    st.one_of(st.none(), st.dates(min_value=date(2019, 1, 1), max_value=date(2026, 11, 1))),
    st.sampled_from(["stock", "braiins", "luxos", None]),
    st.floats(min_value=0.0, max_value=1.0),
)
fleets = st.lists(unit_strategy, min_size=1, max_size=40).map(
    lambda rows: [
        make_unit(i, m[0], m[1], c, meas, nom, val, ent, fw, confidence=conf)
        for i, (m, c, meas, nom, val, ent, fw, conf) in enumerate(rows)
    ]
)
dims = st.lists(st.sampled_from(list(Dimension)), min_size=1, max_size=3, unique=True)


@settings(max_examples=200, deadline=None)
@given(fleets, dims, st.sampled_from(list(Basis)))
def test_shares_sum_to_one_and_hhi_is_bounded(
    units: list[FleetUnit], by: list[Dimension], basis: Basis
) -> None:
    result = hash_share(units, by, basis)
    if result.total_ths > 0:
        assert sum(g.share for g in result.groups) == pytest.approx(1.0, abs=1e-9)
        assert result.hhi is not None
        n = len(result.groups)
        assert 10_000 / n - 1e-6 <= result.hhi <= 10_000 + 1e-6
    assert result.devices_counted + result.devices_without_hashrate == len(units)
    assert sum(g.devices for g in result.groups) == result.devices_counted


@settings(max_examples=150, deadline=None)
@given(
    fleets,
    st.sampled_from([lay.id for lay in SCHEDULE.layers]),
    st.decimals(min_value=Decimal("0.001"), max_value=Decimal("2"), places=3),
    st.dates(min_value=date(2019, 1, 1), max_value=date(2026, 11, 1)),
)
def test_score_never_falls_when_a_rate_rises(
    units: list[FleetUnit], layer_id: str, rise: Decimal, as_of: date
) -> None:
    layer = SCHEDULE.layer(layer_id)
    assert layer is not None
    higher = apply_to_schedule(SCHEDULE, Scenario("up", rate_overrides={layer_id: layer.rate + rise}))
    before = fleet_exposure(units, SCHEDULE, as_of).score
    after = fleet_exposure(units, higher, as_of).score
    assert 0.0 <= before.score <= 100.0
    assert after.score >= before.score - 1e-9
    for key, value in before.components.items():
        assert 0.0 <= value <= 1.0
        if key in ("effective_rate", "risk_adjusted_rate"):
            assert after.components[key] >= value - 1e-12


@settings(max_examples=100, deadline=None)
@given(
    st.sampled_from(["CN", "MY", "VN", "SG", "US"]),
    st.floats(min_value=1.0, max_value=1e6),
    st.floats(min_value=0.0, max_value=100.0),
    st.dates(min_value=date(2019, 1, 1), max_value=date(2026, 3, 1)),
)
def test_exposure_is_linear_in_customs_value(country: str, value: float, factor: float, entry: date) -> None:
    unit = make_unit(1, "Bitmain", "Antminer S21", country, 190.0, 200.0, value, entry)
    base = unit_exposure(unit, SCHEDULE, date(2026, 3, 1))
    scaled = unit_exposure(replace(unit, customs_value_usd=value * factor), SCHEDULE, date(2026, 3, 1))
    for field in ("replacement_duty_usd", "reclassification_liability_usd", "ieepa_paid_usd"):
        a, b = getattr(base, field), getattr(scaled, field)
        assert b == pytest.approx(a * factor, rel=1e-9, abs=1e-6)


def test_hhi_matches_reference_cambridge_shares() -> None:
    # supply-chain.md §1: 82^2 + 15^2 + 2^2 + 1^2 ~ 6,954
    assert hhi([0.82, 0.15, 0.02, 0.01]) == pytest.approx(6954)


def test_unknown_is_its_own_group() -> None:
    units = [
        make_unit(1, "Bitmain", "Antminer S21", "MY", 200.0, 200.0),
        make_unit(2, None, None, None, 100.0, None),
    ]
    result = hash_share(units, [Dimension.MANUFACTURER, Dimension.ASSEMBLY_COUNTRY], Basis.MEASURED)
    assert [(g.key, g.share) for g in result.groups] == [
        ("Bitmain|MY", pytest.approx(2 / 3)),
        ("unknown|unknown", pytest.approx(1 / 3)),
    ]
    assert result.hhi_known == pytest.approx(10_000)


def test_china_dependency_shows_each_part_and_the_overlap() -> None:
    units = [
        make_unit(1, "Bitmain", "Antminer S21", "CN", None, 100.0),  # maker + assembly (overlap)
        make_unit(2, "Bitmain", "Antminer S21", "MY", None, 200.0),  # maker only
        make_unit(3, "Canaan", "Avalon A1566", "MY", None, 50.0),  # former China-HQ maker
        make_unit(4, None, None, "CN", None, 25.0),  # assembled in China, unknown maker
        make_unit(5, None, None, "US", None, 400.0),  # neither
        make_unit(6, None, None, None, None, 10.0),  # origin unknown
    ]
    c = china_dependency(units, Basis.NOMINAL)
    assert c.total_ths == 785.0
    assert c.maker_china_hq_ths == 300.0
    assert c.maker_former_china_hq_ths == 50.0
    assert c.assembled_in_china_ths == 125.0
    assert c.overlap_ths == 100.0
    assert c.dependent_ths == 375.0
    assert c.origin_unknown_ths == 10.0
    assert c.share == pytest.approx(375 / 785)


def test_fleet_exposure_figures_on_a_hand_made_fleet() -> None:
    units = [
        make_unit(1, "Bitmain", "Antminer S19 Pro", "CN", 104.0, 110.0, 2407.0, date(2025, 5, 20)),
        make_unit(2, "Bitmain", "Antminer S21", "MY", 198.0, 200.0, 2800.0, date(2025, 9, 1)),
        make_unit(3, "Bitmain", "Antminer S21", "US", 198.0, 200.0, None, None),  # value from catalog $14/TH
    ]
    exp = fleet_exposure(units, SCHEDULE, date(2026, 3, 1))
    assert exp.replacement_duty_usd == pytest.approx(2407 * 0.376 + 2800 * 0.126 + 0.0)
    assert exp.hashrate_weighted_rate == pytest.approx((110 * 0.376 + 200 * 0.126 + 200 * 0.0) / 510)
    assert exp.reclassification_liability_usd == pytest.approx((0.576 - 0.216) * 2800)
    assert exp.ieepa_refundable_usd == pytest.approx(0.30 * 2407 + 0.19 * 2800)
    us = exp.units[2]
    assert us.value_estimated and us.value_basis == "model_price"
    assert us.customs_value_usd == pytest.approx(2800.0)
    assert exp.usd_per_ths == pytest.approx(exp.replacement_duty_usd / 510)


def test_entries_after_ieepa_ended_have_nothing_refundable() -> None:
    unit = make_unit(1, "Bitmain", "Antminer S21", "CN", None, 200.0, 1000.0, date(2026, 2, 24))
    assert unit_exposure(unit, SCHEDULE, date(2026, 3, 1)).ieepa_paid_usd == 0.0
    unit = replace(unit, entry_date=date(2026, 2, 23))
    assert unit_exposure(unit, SCHEDULE, date(2026, 3, 1)).ieepa_paid_usd == pytest.approx(200.0)


def test_resourcing_from_china_to_us_lowers_duty_and_reports_before_after() -> None:
    units = [
        make_unit(1, "Bitmain", "Antminer S21", "CN", None, 200.0, 2800.0, date(2025, 6, 1)),
        make_unit(2, "Bitmain", "Antminer S21", "CN", None, 200.0, 2800.0, date(2025, 6, 1)),
    ]
    scenario = Scenario("onshore", resourcing=(Resourcing("CN", "US", 300.0),))
    result = run_scenario(units, SCHEDULE, date(2026, 3, 1), scenario)
    assert result.moved_ths == pytest.approx(300.0)
    assert result.before.replacement_duty_usd == pytest.approx(2 * 2800 * 0.376)
    # 300 of 400 TH/s moved to US (duty-free); the last unit is split pro rata
    assert result.after.replacement_duty_usd == pytest.approx(2800 * 0.5 * 0.376)
    assert result.delta["replacement_duty_usd"] == pytest.approx(
        result.after.replacement_duty_usd - result.before.replacement_duty_usd
    )
    assert result.after.total_ths == pytest.approx(400.0)


def test_layer_override_scenario_from_json() -> None:
    scenario = parse_scenario(
        {
            "name": "301 on SE Asia",
            "rate_overrides": {"s122-10": "0.15"},
            "add_layers": [
                {
                    "id": "s301-sea",
                    "name": "hypothetical Section 301 on MY",
                    "kind": "section_301",
                    "rate": 0.25,
                    "effective_from": "2026-03-01",
                    "origins": ["MY"],
                    "hts": ["8543.70.99"],
                    "source": "what-if",
                }
            ],
        }
    )
    units = [make_unit(1, "Bitmain", "Antminer S21", "MY", None, 200.0, 2800.0)]
    result = run_scenario(units, SCHEDULE, date(2026, 3, 2), scenario)
    assert result.before.hashrate_weighted_rate == pytest.approx(0.126)
    assert result.after.hashrate_weighted_rate == pytest.approx(0.026 + 0.15 + 0.25)
    assert result.delta["score"] >= 0


# ---------------------------------------------------------- IEEPA refunds by CAPE status (issue 18)


@pytest.mark.parametrize(
    ("liquidation", "as_of", "expected"),
    [
        (date(2026, 6, 1), date(2026, 5, 1), RefundStatus.CAPE_PHASE1),  # not liquidated yet
        (date(2026, 3, 1), date(2026, 5, 20), RefundStatus.CAPE_PHASE1),  # day 80 after liquidation
        (date(2026, 3, 1), date(2026, 5, 21), RefundStatus.FINALLY_LIQUIDATED),  # day 81
    ],
)
def test_refund_status_follows_the_80_day_cape_window(
    liquidation: date, as_of: date, expected: RefundStatus
) -> None:
    assert refund_status(date(2025, 6, 1), liquidation, as_of) == (expected, liquidation, False)


def test_refund_status_without_liquidation_date_estimates_entry_plus_314_days() -> None:
    status, liquidated, estimated = refund_status(date(2025, 5, 20), None, date(2026, 6, 18))
    assert (liquidated, estimated) == (date(2026, 3, 30), True)
    assert status is RefundStatus.CAPE_PHASE1  # 2026-03-30 + 80 days = 2026-06-18
    assert refund_status(date(2025, 5, 20), None, date(2026, 6, 19))[0] is RefundStatus.FINALLY_LIQUIDATED


def test_fleet_ieepa_refund_is_split_by_cape_status() -> None:
    entered = date(2025, 5, 20)  # CN: fentanyl 20% + reciprocal 10% = 30% IEEPA
    finally_liquidated = replace(
        make_unit(1, "Bitmain", "Antminer S19 Pro", "CN", None, 110.0, 1000.0, entered),
        liquidation_date=date(2025, 12, 1),
    )
    estimated = make_unit(2, "Bitmain", "Antminer S19 Pro", "CN", None, 110.0, 2000.0, entered)
    after_ieepa = make_unit(3, "Bitmain", "Antminer S21", "MY", None, 200.0, 2800.0, date(2026, 3, 1))
    exp = fleet_exposure([finally_liquidated, estimated, after_ieepa], SCHEDULE, date(2026, 5, 1))
    assert exp.ieepa_refund_finally_liquidated_usd == pytest.approx(0.30 * 1000)
    assert exp.ieepa_refund_cape_phase1_usd == pytest.approx(0.30 * 2000)
    assert exp.ieepa_refundable_usd == pytest.approx(
        exp.ieepa_refund_cape_phase1_usd + exp.ieepa_refund_finally_liquidated_usd
    )
    assert exp.ieepa_units_liquidation_estimated == 1
    rows = {r.unit: r for r in exp.units}
    assert rows["SN0002"].liquidation_date == date(2026, 3, 30) and rows["SN0002"].liquidation_estimated
    assert rows["SN0003"].refund_status is None  # entered after IEEPA ended: nothing to refund


def test_unit_of_unknown_origin_names_the_default_us_share() -> None:
    from fleetmon.supplychain.origin import default_origin

    unit = replace(
        make_unit(1, "MicroBT", "Whatsminer M60S", None, None, 170.0, 3000.0, date(2025, 3, 1)),
        origin=default_origin("MicroBT", "Whatsminer M60S", 2025),
    )
    notes = unit_exposure(unit, SCHEDULE, date(2026, 3, 1)).notes
    assert any("US 10% [E]" in note for note in notes)
