"""The tariff engine against every row and country column of supply-chain.md §3, and schedule validation."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

from fleetmon.supplychain.errors import ScenarioError, ScheduleError, SupplyChainError, UnknownHtsError
from fleetmon.supplychain.scenarios import parse_scenario_text
from fleetmon.supplychain.tariffs import apply_schedule_text, load_schedules, rate, shipped_schedule

HTS = "8543.70.9960"
COUNTRIES = ("CN", "MY", "TH", "ID", "VN", "SG", "US")

# Expected totals typed from the reference table (supply-chain.md §3), one date inside each row.
# Columns: China, Malaysia, Thailand, Indonesia, Vietnam, Singapore, US-assembled.
REFERENCE_TABLE: list[tuple[str, str, tuple[str, ...]]] = [
    ("2019 - 3 Feb 2025", "2019-06-01", ("0.276", "0.026", "0.026", "0.026", "0.026", "0.026", "0")),
    (
        "2019 - 3 Feb 2025 (last day)",
        "2025-02-03",
        ("0.276", "0.026", "0.026", "0.026", "0.026", "0.026", "0"),
    ),
    ("4 Feb 2025 fentanyl 10%", "2025-02-20", ("0.376", "0.026", "0.026", "0.026", "0.026", "0.026", "0")),
    ("4 Mar 2025 fentanyl 20%", "2025-03-20", ("0.476", "0.026", "0.026", "0.026", "0.026", "0.026", "0")),
    ("5 Apr 2025 10% baseline", "2025-04-07", ("0.576", "0.126", "0.126", "0.126", "0.126", "0.126", "0")),
    (
        "9-10 Apr 2025 (125% on China)",
        "2025-04-20",
        ("1.726", "0.126", "0.126", "0.126", "0.126", "0.126", "0"),
    ),
    ("14 May 2025 Geneva deal", "2025-06-01", ("0.576", "0.126", "0.126", "0.126", "0.126", "0.126", "0")),
    ("7 Aug 2025 EO of 31 Jul", "2025-08-10", ("0.576", "0.216", "0.216", "0.216", "0.226", "0.126", "0")),
    ("26 Oct 2025 deals", "2025-10-30", ("0.576", "0.216", "0.216", "0.216", "0.226", "0.126", "0")),
    ("10 Nov 2025 fentanyl 10%", "2025-11-15", ("0.476", "0.216", "0.216", "0.216", "0.226", "0.126", "0")),
    (
        "24 Feb 2026 Section 122 10%",
        "2026-03-01",
        ("0.376", "0.126", "0.126", "0.126", "0.126", "0.126", "0"),
    ),
    ("after 24 Jul 2026", "2026-08-01", ("0.276", "0.026", "0.026", "0.026", "0.026", "0.026", "0")),
]

CASES = [
    pytest.param(country, day, Decimal(expected[i]), id=f"{label}-{country}")
    for label, day, expected in REFERENCE_TABLE
    for i, country in enumerate(COUNTRIES)
]


@pytest.mark.parametrize(("origin", "day", "expected"), CASES)
def test_rate_reproduces_reference_table(origin: str, day: str, expected: Decimal) -> None:
    result = rate(shipped_schedule(), origin, HTS, date.fromisoformat(day))
    assert result.total_rate == expected
    assert sum((lay.rate for lay in result.layers), Decimal(0)) == result.total_rate
    assert all(lay.source for lay in result.layers)


@pytest.mark.parametrize(
    ("day", "expected"),
    [
        ("2025-02-04", "0.376"),  # first day of fentanyl 10% (effective_from is inclusive)
        ("2025-03-03", "0.376"),  # last day before fentanyl 20%
        ("2025-03-04", "0.476"),
        ("2025-04-05", "0.576"),
        ("2025-04-09", "1.316"),  # 84% reciprocal for one day (34% superseded the same day)
        ("2025-04-10", "1.726"),
        ("2025-05-13", "1.726"),  # effective_to is exclusive: 13 May still at 125%
        ("2025-05-14", "0.576"),
        ("2025-11-09", "0.576"),
        ("2025-11-10", "0.476"),
        ("2026-02-23", "0.476"),  # last day CBP collected IEEPA duties
        ("2026-02-24", "0.376"),
        ("2026-07-23", "0.376"),
        ("2026-07-24", "0.276"),
    ],
)
def test_china_boundaries_follow_half_open_ranges(day: str, expected: str) -> None:
    assert rate(shipped_schedule(), "CN", HTS, date.fromisoformat(day)).total_rate == Decimal(expected)


def test_alternative_section_122_schedule_replaces_the_10_percent_layer() -> None:
    schedule = shipped_schedule(s122_rate_15=True)
    result = rate(schedule, "MY", HTS, date(2026, 3, 1))
    assert result.total_rate == Decimal("0.176")
    assert [lay.id for lay in result.layers] == ["mfn", "s122-15"]


def test_rate_lists_layers_with_sources_and_flags() -> None:
    result = rate(shipped_schedule(), "cn", "8543.70.99.60", date(2025, 2, 20))
    ids = [lay.id for lay in result.layers]
    assert ids == ["mfn", "s301-list2", "ieepa-fentanyl-cn-10"]
    payload = result.to_json()
    assert payload["total_rate"] == pytest.approx(0.376)
    layers = payload["layers"]
    assert isinstance(layers, list)
    assert "U" in layers[2]["flags"]
    assert layers[1]["source"].startswith("[15]")


def test_origin_outside_modelled_set_is_flagged() -> None:
    result = rate(shipped_schedule(), "JP", HTS, date(2025, 9, 1))
    assert result.total_rate == Decimal("0.126")
    assert any("not modelled" in note for note in result.notes)


def test_uncovered_hts_code_is_unknown_not_duty_free() -> None:
    with pytest.raises(UnknownHtsError):
        rate(shipped_schedule(), "CN", "8471.50.0150", date(2025, 6, 1))


def test_malformed_origin_is_rejected() -> None:
    with pytest.raises(ValueError, match="alpha-2"):
        rate(shipped_schedule(), "China", HTS, date(2025, 6, 1))


LAYER = """
[[layer]]
id = "{id}"
name = "test layer"
kind = "{kind}"
rate = {rate}
effective_from = {start}
origins = ["{origin}"]
hts = ["8543.70.99"]
source = "test"
"""


def _write(tmp_path: Path, header: str, *layers: str) -> Path:
    path = tmp_path / "schedule.toml"
    path.write_text(header + "".join(layers), encoding="utf-8")
    return path


def test_added_schedule_layers_on_top_of_shipped(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        '[schedule]\nname = "s301-sea"\nmode = "add"\n',
        LAYER.format(id="s301-my", kind="section_301", rate="0.25", start="2026-09-01", origin="MY"),
    )
    schedule = load_schedules([path])
    assert rate(schedule, "MY", HTS, date(2026, 9, 2)).total_rate == Decimal("0.276")
    assert rate(schedule, "MY", HTS, date(2026, 8, 31)).total_rate == Decimal("0.026")


def test_replacement_schedule_discards_the_shipped_layers(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        '[schedule]\nname = "mine"\nmode = "replace"\n',
        LAYER.format(id="only", kind="mfn", rate="0.05", start="2020-01-01", origin="CN"),
    )
    schedule = load_schedules([path])
    assert rate(schedule, "CN", HTS, date(2025, 6, 1)).total_rate == Decimal("0.05")
    assert schedule.files == (str(path),)


def test_bad_rate_error_names_file_line_and_layer(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        '[schedule]\nname = "bad"\nmode = "add"\n',
        LAYER.format(id="good", kind="section_301", rate="0.1", start="2027-01-01", origin="VN"),
        LAYER.format(id="broken", kind="section_301", rate='"lots"', start="2027-01-01", origin="TH"),
    )
    with pytest.raises(ScheduleError) as info:
        load_schedules([path])
    message = str(info.value)
    assert str(path) in message
    assert ":15" in message  # the second [[layer]] header is on line 15
    assert "'broken'" in message


def test_overlapping_layers_of_one_kind_are_rejected(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        '[schedule]\nname = "dup"\nmode = "add"\n',
        LAYER.format(id="extra-301", kind="section_301", rate="0.1", start="2020-01-01", origin="CN"),
    )
    with pytest.raises(ScheduleError, match="s301-list2"):
        load_schedules([path])


def test_replacing_an_unknown_layer_id_is_an_error(tmp_path: Path) -> None:
    body = LAYER.format(id="x", kind="other", rate="0.1", start="2020-01-01", origin="CN")
    path = _write(tmp_path, '[schedule]\nname = "r"\nmode = "add"\n', body + 'replaces = ["nope"]\n')
    with pytest.raises(ScheduleError, match="nope"):
        load_schedules([path])


def test_end_before_start_is_rejected(tmp_path: Path) -> None:
    body = LAYER.format(id="x", kind="other", rate="0.1", start="2020-01-01", origin="CN")
    path = _write(tmp_path, '[schedule]\nname = "r"\nmode = "add"\n', body + "effective_to = 2019-01-01\n")
    with pytest.raises(ScheduleError, match="exclusive"):
        load_schedules([path])


def test_invalid_toml_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "broken.toml"
    path.write_text("[schedule\nname=", encoding="utf-8")
    with pytest.raises(ScheduleError, match=r"broken\.toml"):
        load_schedules([path])


def test_schedule_errors_are_under_the_package_root() -> None:
    assert issubclass(ScheduleError, SupplyChainError)
    assert issubclass(UnknownHtsError, SupplyChainError)


# ------------------------------------------------------------------ where the sources end (issue 18)


def test_schedule_names_where_its_sources_end() -> None:
    schedule = shipped_schedule()
    assert schedule.sources_end == date(2026, 5, 31)
    on_the_day = rate(schedule, "MY", HTS, date(2026, 5, 31))
    assert on_the_day.sources_end == date(2026, 5, 31) and on_the_day.warning is None
    payload = on_the_day.to_json()
    assert payload["sources_end"] == "2026-05-31" and payload["past_sources_end"] is False


def test_rate_past_sources_end_answers_with_known_layers_and_a_warning() -> None:
    result = rate(shipped_schedule(), "MY", HTS, date(2026, 7, 1))
    assert result.total_rate == Decimal("0.126")  # the layers known: MFN + Section 122
    assert [lay.id for lay in result.layers] == ["mfn", "s122-10"]
    assert result.warning is not None
    assert "2026-05-31" in result.warning and "Section 122" in result.warning
    payload = result.to_json()
    assert payload["past_sources_end"] is True and payload["warning"] == result.warning


def test_section_122_end_date_and_its_open_question_are_flagged() -> None:
    layer = shipped_schedule().layer("s122-10")
    assert layer is not None
    assert (layer.effective_from, layer.effective_to) == (date(2026, 2, 24), date(2026, 7, 24))
    assert "U" in layer.flags and "not found" in layer.notes
    assert "[39]" in layer.source


@pytest.mark.parametrize("origin", COUNTRIES)
def test_no_ieepa_layer_for_entries_from_24_february_2026(origin: str) -> None:
    kinds = {lay.kind for lay in rate(shipped_schedule(), origin, HTS, date(2026, 2, 24)).layers}
    assert not kinds & {"ieepa_fentanyl", "ieepa_reciprocal"}


def test_section_232_semiconductors_is_named_but_not_added() -> None:
    before = rate(shipped_schedule(), "MY", HTS, date(2026, 1, 14))
    after = rate(shipped_schedule(), "MY", HTS, date(2026, 1, 15))
    assert after.total_rate == before.total_rate == Decimal("0.216")
    assert not any("Section 232" in note for note in before.notes)
    assert any("Section 232" in note and "[U]" in note for note in after.notes)
    assert all(lay.kind != "section_232" for lay in after.layers)


def test_added_file_with_its_own_sources_end_moves_it(tmp_path: Path) -> None:
    header = '[schedule]\nname = "update"\nmode = "add"\nsources_end = 2026-09-30\n'
    path = _write(
        tmp_path, header, LAYER.format(id="x", kind="other", rate=0.01, start="2026-08-01", origin="MY")
    )
    moved = load_schedules([path])
    assert moved.sources_end == date(2026, 9, 30)
    assert rate(moved, "MY", HTS, date(2026, 8, 15)).warning is None
    # An alternative that does not say where its sources end leaves the shipped end in place.
    assert shipped_schedule(s122_rate_15=True).sources_end == date(2026, 5, 31)


def test_replacement_schedule_without_sources_end_warns_of_nothing(tmp_path: Path) -> None:
    header = '[schedule]\nname = "mine"\nmode = "replace"\n'
    path = _write(
        tmp_path, header, LAYER.format(id="a", kind="mfn", rate=0.05, start="2020-01-01", origin="*")
    )
    result = rate(load_schedules([path]), "MY", HTS, date(2030, 1, 1))
    assert result.sources_end is None and result.warning is None


def test_stacks_with_allows_a_deliberate_second_layer_of_one_kind(tmp_path: Path) -> None:
    header = '[schedule]\nname = "second-301"\nmode = "add"\n'
    second = LAYER.format(id="s301-new", kind="section_301", rate=0.1, start="2026-08-01", origin="CN")
    with pytest.raises(ScheduleError, match="s301-list2"):
        load_schedules([_write(tmp_path, header, second)])
    stacked = load_schedules([_write(tmp_path, header, second + 'stacks_with = ["s301-list2"]\n')])
    assert rate(stacked, "CN", HTS, date(2026, 8, 1)).total_rate == Decimal("0.376")


# --------------------------------------------------- Section 301 excess-capacity what-if (issue 18)


def test_section_301_excess_capacity_is_a_named_what_if_not_in_force() -> None:
    from fleetmon.supplychain.scenarios import apply_to_schedule, shipped_scenario, shipped_scenario_names

    assert "section-301-excess-capacity" in shipped_scenario_names()
    scenario = shipped_scenario("section-301-excess-capacity")
    shipped = shipped_schedule()
    assert all(lay.id != "s301-excess-capacity" for lay in shipped.layers)  # not in force
    what_if = apply_to_schedule(shipped, scenario)
    after = date(2026, 8, 1)
    for origin in ("MY", "TH", "ID", "VN", "SG"):
        assert rate(shipped, origin, HTS, after).total_rate == Decimal("0.026")
        assert rate(what_if, origin, HTS, after).total_rate == Decimal("0.276")
    assert rate(what_if, "CN", HTS, after).total_rate == Decimal("0.526")  # on top of List 2
    assert rate(what_if, "JP", HTS, after).total_rate == Decimal("0.026")  # not named in the sources
    assert rate(what_if, "US", HTS, after).total_rate == Decimal("0")
    assert rate(what_if, "MY", HTS, date(2026, 7, 23)).total_rate == Decimal("0.126")
    layer = what_if.layer("s301-excess-capacity")
    assert layer is not None and "E" in layer.flags and "[25]" in layer.source
    assert what_if.sources_end == shipped.sources_end


def test_scenario_file_must_say_it_is_not_in_force(tmp_path: Path) -> None:
    from fleetmon.supplychain.errors import ScenarioError
    from fleetmon.supplychain.scenarios import load_scenario

    path = tmp_path / "mine.toml"
    path.write_text('[scenario]\nname = "mine"\n', encoding="utf-8")
    with pytest.raises(ScenarioError, match="in_force = false"):
        load_scenario(str(path))
    with pytest.raises(ScenarioError, match="section-301-excess-capacity"):
        load_scenario(str(tmp_path / "missing.toml"))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[{kind}\nname = 'x'\n", "not valid TOML"),
        ("title = 'no header'\n", "missing [{kind}] table"),
        ("[{kind}]\nname = 'x'\ncolour = 'red'\n", "[{kind}] has unknown keys ['colour']"),
        ("[{kind}]\nname = 'x'\n[extra]\na = 1\n", "unknown top-level tables ['extra']"),
    ],
)
def test_schedule_and_scenario_files_refuse_a_bad_header_naming_the_file(text: str, message: str) -> None:
    for kind, parse, error in (
        ("schedule", lambda t: apply_schedule_text(None, t, "mine.toml"), ScheduleError),
        ("scenario", lambda t: parse_scenario_text(t, "mine.toml"), ScenarioError),
    ):
        with pytest.raises(error) as caught:
            parse(text.format(kind=kind))
        assert str(caught.value).startswith("mine.toml: ")
        assert message.format(kind=kind) in str(caught.value)
