"""The firmware catalog and the advisory file: every fact sourced, ranges that mean what they say, build
dates read from the version strings real replies carry."""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path

import pytest

from collectors import firmware
from collectors.firmware import CatalogError, build_date, family_of, parse_advisories, parse_firmware
from collectors.posture import PostureSettings, assess, privileged_open

CAPTURES = Path(__file__).parent / "captures" / "device-responses"
HEADER = "family,name,make,vendor,publisher,hq_country,markers,factory_user,factory_password,sources\n"
ADVISORY_HEADER = "id,family,affected,published,severity,summary,source\n"


def test_catalog_names_every_family_the_issue_lists() -> None:
    names = {f.family for f in firmware.families()}
    assert {
        "bitmain-stock",
        "microbt-stock",
        "canaan-stock",
        "braiins-os",
        "luxos",
        "vnish",
        "hiveon",
        "asicseer",
        "mskminer",
        "marafw",
        "auradine-fluxos",
        "bitdeer-bdminer",
    } <= names


def test_every_fact_in_the_shipped_catalog_has_a_source_url() -> None:
    for family in firmware.families():
        facts = {"publisher": family.publisher, "hq": family.hq_country, "login": family.factory_password}
        for fact, value in facts.items():
            if value is not None:
                assert family.sources.get(fact, "").startswith(("http://", "https://")), (family, fact)


@pytest.mark.parametrize(
    ("cells", "fact"),
    [
        ("Acme,,acme;,,,", "publisher"),
        (",US,acme;,,,", "hq"),
        (",,acme;,root,root,", "login"),
        ("Acme,US,acme;,,,publisher=https://example.org/acme", "hq"),
    ],
)
def test_a_row_with_an_unsourced_fact_is_refused(cells: str, fact: str) -> None:
    row = f"acme,Acme OS,,acme,{cells}\n"
    with pytest.raises(CatalogError, match=f"{fact} .* has no source"):
        parse_firmware(HEADER + row)


def test_a_source_that_is_not_a_url_is_refused() -> None:
    with pytest.raises(CatalogError, match="bad source"):
        parse_firmware(HEADER + "acme,Acme OS,,acme,Acme,,,,,publisher=see the forum\n")


def test_unknown_facts_stay_empty_rather_than_guessed() -> None:
    vnish = family_of("Antminer", "vnish")
    assert vnish is not None and vnish.publisher is None and vnish.hq_country is None
    assert family_of("Antminer", "stock") is not None
    assert family_of("Whatsminer", "stock") != family_of("Antminer", "stock")
    assert family_of("Antminer", "no-such-firmware") is None


def test_an_advisory_without_a_source_is_refused() -> None:
    families = firmware.families()
    row = "X-1,bitmain-stock,build<2020-01-01,2020-02-01,high,something,\n"
    with pytest.raises(CatalogError, match="no source"):
        parse_advisories(ADVISORY_HEADER + row, families)


def test_an_empty_advisory_file_is_valid_and_the_shipped_one_is_sourced() -> None:
    assert parse_advisories(ADVISORY_HEADER, firmware.families()) == ()
    for advisory in firmware.advisories():
        assert advisory.source.startswith("https://"), advisory


@pytest.mark.parametrize(
    "affected", ["build<2020-13-01", "build~2020-01-01", "size<3", "version<", "build<2020-01-01,"]
)
def test_a_malformed_range_is_refused(affected: str) -> None:
    row = f"X-1,bitmain-stock,{affected},2020-02-01,high,something,https://example.org/x\n"
    with pytest.raises(CatalogError):
        parse_advisories(ADVISORY_HEADER + row, firmware.families())


def test_ranges_compare_build_dates_and_dotted_versions() -> None:
    rows = (
        "B-1,bitmain-stock,build<2017-04-27,2017-04-26,high,old builds,https://example.org/b\n"
        "V-1,vnish,version>=1.2.0,version<1.2.6,2024-01-01,medium,some builds,https://example.org/v\n"
    )
    # A comma inside a CSV cell needs quotes; written out so the test reads as the file would.
    text = ADVISORY_HEADER + rows.replace("version>=1.2.0,version<1.2.6", '"version>=1.2.0,version<1.2.6"')
    build_rule, version_rule = parse_advisories(text, firmware.families())
    assert build_rule.affects(None, dt.date(2017, 4, 26))
    assert not build_rule.affects(None, dt.date(2017, 4, 27))
    assert not build_rule.affects("whatever", None)  # an unknown build date matches nothing
    assert version_rule.affects("1.2.5", None)
    assert not version_rule.affects("1.2.6", None)
    assert not version_rule.affects("1.1.9", None)
    assert not version_rule.affects(None, None)


def _capture_versions() -> list[str]:
    found = []
    for path in sorted(CAPTURES.glob("*/*version*.json")):
        reply = json.loads(path.read_text())
        for block in reply.get("VERSION", []):
            if isinstance(block, dict) and isinstance(block.get("CompileTime"), str):
                found.append(block["CompileTime"])
    return found


def test_build_dates_are_read_from_real_compile_times() -> None:
    times = _capture_versions()
    assert times, "no captured version reply carries a CompileTime"
    for text in times:
        parsed = build_date(text)
        year = re.search(r"\b(\d{4})\b", text)
        assert year is not None, text
        if year.group(1) == "2000":
            assert parsed is None, text  # LuxOS's placeholder is not a build
        else:
            assert parsed is not None and parsed.year == int(year.group(1)), text
            assert parsed.strftime("%b") in text, text


@pytest.mark.parametrize(
    ("version", "expected"),
    [
        ("Fri Dec 11 17:30:55 CST 2020", dt.date(2020, 12, 11)),
        ("Tue Dec  6 16:12:30 CST 2022", dt.date(2022, 12, 6)),
        ("20210322.22.REL", dt.date(2021, 3, 22)),
        ("2025.4.8.220305-57b389c7", dt.date(2025, 4, 8)),
        ("2023-05.24-0ce5e7cc", dt.date(2023, 5, 24)),
        ("21072802_4ec6bb0_211fc46", dt.date(2021, 7, 28)),
        ("20111201_4ec6bb0_211fc46", dt.date(2020, 11, 12)),
        ("0.1.0-75912fc7", None),
        ("1.2.6", None),
        ("20221399", None),
        ("Mon Jan 01 00:01:01 UTC 2000", None),
        (None, None),
    ],
)
def test_build_date_forms(version: str | None, expected: dt.date | None) -> None:
    assert build_date(version) == expected


def test_privileged_reply_reading() -> None:
    granted = {"STATUS": [{"STATUS": "S", "Code": 46, "Msg": "Privileged access OK"}]}
    denied = {"STATUS": [{"STATUS": "E", "Code": 45, "Msg": "Access denied to 'privileged' command"}]}
    other = {"STATUS": [{"STATUS": "S", "Code": 22, "Msg": "CGMiner versions"}]}
    assert privileged_open(granted) is True
    assert privileged_open(denied) is False
    assert privileged_open(other) is None  # an S that does not say "privileged" grants nothing we know of
    assert privileged_open({"STATUS": "E"}) is None


def _assess(
    version: str, *, api_write_open: bool | None = None, default_login: bool | None = None
) -> list[str]:
    findings = assess(
        make="Antminer",
        firmware_vendor="stock",
        firmware_version=version,
        api_write_open=api_write_open,
        default_login=default_login,
        settings=PostureSettings(firmware_max_age_days=365),
        today=dt.date(2026, 12, 6),
    )
    return [f"{f.code}:{f.severity}:{f.message}" for f in findings]


def test_assess_flags_old_builds_and_advisories_and_nothing_on_a_clean_device() -> None:
    assert _assess("Tue Dec  1 16:12:30 CST 2026", api_write_open=False, default_login=False) == []
    recent_but_open = _assess("Tue Dec  1 16:12:30 CST 2026", api_write_open=True, default_login=True)
    assert [f.split(":")[0] for f in recent_but_open] == ["api_write_open", "default_credentials"]
    old = _assess("Fri Mar 10 10:00:00 CST 2017")
    assert [f.split(":")[0] for f in old] == ["firmware_outdated", "firmware_advisory"]
    assert old[1].startswith("firmware_advisory:high:ANTBLEED")
    # One day inside the limit is not outdated; one day past it is.
    assert _assess("Sun Dec  7 10:00:00 CST 2025") == []
    assert [f.split(":")[0] for f in _assess("Fri Dec  5 10:00:00 CST 2025")] == ["firmware_outdated"]
    with pytest.raises(ValueError, match="firmware_max_age_days"):
        PostureSettings(firmware_max_age_days=0)
