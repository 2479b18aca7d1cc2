"""The USITC HTS fetch (respx stands in for the remote service) and the candidate layer it writes.

The response bodies follow the record shape of USITC's own JSON export of the HTS (fields htsno,
indent, description, superior, units, general, special, other, footnotes, quotaQuantity,
additionalDuties; statistical-suffix lines with an empty general rate).
"""

from __future__ import annotations

import argparse
import hashlib
import inspect
import io
import json
from dataclasses import replace
from datetime import date
from decimal import Decimal
from importlib import resources
from pathlib import Path

import httpx
import pytest
import respx
from test_supplychain_tariffs import CASES

from fleetmon.cli import supplychain as supplychain_cli
from fleetmon.supplychain import usitc
from fleetmon.supplychain.errors import HtsFetchError, SupplyChainError
from fleetmon.supplychain.tariffs import load_schedules, rate, shipped_schedule
from fleetmon.supplychain.usitc import (
    HtsNotFoundError,
    HtsTimeoutError,
    HtsUnavailableError,
    MfnRate,
    NotAdValoremError,
    candidate_layer_toml,
    fetch_mfn,
    superseded_mfn_layer,
)

SEARCH = "https://hts.usitc.gov/reststop/search"
QUERY_URL = f"{SEARCH}?keyword=8543.70.99"
TIMEOUT = httpx.Timeout(connect=2.0, read=5.0, write=2.0, pool=1.0)
SPECIAL = "Free (A,AU,B,BH,CA,CL,CO,D,E,IL,JO,KR,MA,OM,P,PA,PE,S,SG)"


def record(
    htsno: str, indent: str, description: str, general: str = "", **extra: object
) -> dict[str, object]:
    base: dict[str, object] = {
        "htsno": htsno,
        "indent": indent,
        "description": description,
        "superior": None,
        "units": [],
        "general": general,
        "special": "",
        "other": "",
        "footnotes": [],
        "quotaQuantity": None,
        "additionalDuties": None,
    }
    base.update(extra)
    return base


def heading_8543_70_99(general: str = "2.6%") -> list[dict[str, object]]:
    """What a keyword search for 8543.70.99 answers: the rate line, its statistical lines, and a
    chapter 99 line that mentions the number (which must not be mistaken for it)."""
    return [
        record("8543.70", "1", "Other machines and apparatus:", superior="true"),
        record(
            "8543.70.99",
            "2",
            "Other",
            general,
            special=SPECIAL,
            other="35%",
            footnotes=[{"columns": ["general"], "value": "See 9903.88.02. ", "type": "endnote"}],
        ),
        record("8543.70.99.50", "3", "Electric luminescent lamps and other lighting", units=["No."]),
        record("8543.70.99.60", "3", "Other", units=["No."]),
        record(
            "9903.88.02",
            "1",
            "Articles the product of China, as provided for in U.S. note 20(d) to this subchapter "
            "and as provided for in the subheadings enumerated in U.S. note 20(c) (8543.70.99)",
            "The duty provided in the applicable subheading + 25%",
        ),
    ]


def search_route(router: respx.MockRouter, keyword: str = "8543.70.99") -> respx.Route:
    return router.get(SEARCH, params={"keyword": keyword})


# ------------------------------------------------------------------------------------------- fetch_mfn


async def test_statistical_line_takes_the_rate_of_its_8_digit_line() -> None:
    with respx.mock(assert_all_called=True) as router:
        route = search_route(router).respond(json=heading_8543_70_99())
        found = await fetch_mfn("8543.70.9960", timeout=TIMEOUT)
    assert route.call_count == 1
    assert found.rate == Decimal("0.026")
    assert (found.htsno, found.description, found.general_text) == ("8543.70.99", "Other", "2.6%")
    assert found.source_url == QUERY_URL
    assert (found.special_text, found.other_text) == (SPECIAL, "35%")


async def test_eight_digit_code_reads_its_own_line() -> None:
    with respx.mock(assert_all_called=True) as router:
        search_route(router).respond(json=heading_8543_70_99())
        found = await fetch_mfn("85437099", timeout=TIMEOUT)
    assert (found.htsno, found.rate) == ("8543.70.99", Decimal("0.026"))


async def test_a_statistical_line_with_its_own_rate_wins_over_its_parent() -> None:
    body = heading_8543_70_99()
    body[3]["general"] = "Free"
    with respx.mock() as router:
        search_route(router).respond(json=body)
        found = await fetch_mfn("8543.70.9960", timeout=TIMEOUT)
    assert (found.htsno, found.rate) == ("8543.70.99.60", Decimal(0))


async def test_free_is_a_zero_rate() -> None:
    body = [
        record("8471.50", "1", "Processing units other than those of subheading 8471.41 or 8471.49"),
        record("8471.50.01", "2", "Processing units", "Free", other="35%"),
        record("8471.50.01.50", "3", "Other", units=["No."]),
    ]
    with respx.mock() as router:
        search_route(router, "8471.50.01").respond(json=body)
        found = await fetch_mfn("8471.50.0150", timeout=TIMEOUT)
    assert (found.htsno, found.rate, found.general_text) == ("8471.50.01", Decimal(0), "Free")


@pytest.mark.parametrize("general", ["7.7¢/kg", "$1.035/kg", "2.6% + 7.7¢/kg", "4.4¢/kg + 6%", "25¢ each"])
async def test_specific_or_compound_rate_cannot_become_a_layer(general: str) -> None:
    with respx.mock() as router:
        search_route(router).respond(json=heading_8543_70_99(general))
        with pytest.raises(NotAdValoremError) as caught:
            await fetch_mfn("8543.70.9960", timeout=TIMEOUT)
    message = str(caught.value)
    assert general in message and "8543.70.99" in message
    assert "cannot be expressed as an ad-valorem layer" in message


async def test_empty_answer_is_not_found() -> None:
    with respx.mock() as router:
        search_route(router).respond(json=[])
        with pytest.raises(HtsNotFoundError, match=r"no line for 8543\.70\.9960"):
            await fetch_mfn("8543.70.9960", timeout=TIMEOUT)


async def test_only_other_headings_in_the_answer_is_not_found() -> None:
    with respx.mock() as router:
        search_route(router).respond(json=heading_8543_70_99()[4:])
        with pytest.raises(HtsNotFoundError):
            await fetch_mfn("8543.70.9960", timeout=TIMEOUT)


async def test_lines_without_any_general_rate_are_not_found() -> None:
    with respx.mock() as router:
        search_route(router).respond(json=heading_8543_70_99(general=""))
        with pytest.raises(HtsNotFoundError, match="carry no general rate"):
            await fetch_mfn("8543.70.9960", timeout=TIMEOUT)


async def test_http_500_is_unavailable_with_the_status() -> None:
    with respx.mock() as router:
        search_route(router).respond(500, text="Internal Server Error")
        with pytest.raises(HtsUnavailableError, match="HTTP 500") as caught:
            await fetch_mfn("8543.70.9960", timeout=TIMEOUT)
    assert not isinstance(caught.value, HtsTimeoutError)


@pytest.mark.parametrize("timeout_kind", [httpx.ConnectTimeout, httpx.ReadTimeout, httpx.PoolTimeout])
async def test_timeouts_become_hts_timeout_with_the_cause(timeout_kind: type[httpx.TimeoutException]) -> None:
    with respx.mock() as router:
        search_route(router).mock(side_effect=timeout_kind("deadline"))
        with pytest.raises(HtsTimeoutError) as caught:
            await fetch_mfn("8543.70.9960", timeout=TIMEOUT)
    assert isinstance(caught.value.__cause__, timeout_kind)
    assert isinstance(caught.value, SupplyChainError)


async def test_connection_failure_is_unavailable_with_the_cause() -> None:
    with respx.mock() as router:
        search_route(router).mock(side_effect=httpx.ConnectError("name or service not known"))
        with pytest.raises(HtsUnavailableError, match="cannot reach") as caught:
            await fetch_mfn("8543.70.9960", timeout=TIMEOUT)
    assert isinstance(caught.value.__cause__, httpx.ConnectError)


@pytest.mark.parametrize(
    "body",
    [b"<html><body>Service maintenance</body></html>", b'{"HTSDataSet": []}', b'[{"htsno": 8543}]'],
)
async def test_an_answer_we_cannot_read_is_a_fetch_error(body: bytes) -> None:
    with respx.mock() as router:
        search_route(router).respond(200, content=body)
        with pytest.raises(HtsFetchError) as caught:
            await fetch_mfn("8543.70.9960", timeout=TIMEOUT)
    assert type(caught.value) is HtsFetchError


async def test_given_client_gets_the_explicit_timeout_and_stays_open() -> None:
    with respx.mock() as router:
        route = search_route(router).respond(json=heading_8543_70_99())
        async with httpx.AsyncClient(timeout=httpx.Timeout(60.0)) as client:
            await fetch_mfn("8543.70.9960", client=client, timeout=TIMEOUT)
            assert not client.is_closed
    assert route.calls.last.request.extensions["timeout"] == TIMEOUT.as_dict()


@pytest.mark.parametrize("code", ["8543.70", "8543.70.996", "85437099601", "not-a-code"])
async def test_code_without_8_or_10_digits_is_refused_before_any_request(code: str) -> None:
    with respx.mock(assert_all_called=False) as router:
        route = router.get(url__startswith=SEARCH).respond(json=[])
        with pytest.raises(ValueError, match="digits"):
            await fetch_mfn(code, timeout=TIMEOUT)
    assert route.call_count == 0


def test_every_usitc_exception_is_under_the_supply_chain_root() -> None:
    classes = [c for _, c in inspect.getmembers(usitc, inspect.isclass) if issubclass(c, BaseException)]
    assert len(classes) >= 5
    assert all(issubclass(c, HtsFetchError) and issubclass(c, SupplyChainError) for c in classes)


# ------------------------------------------------------------------------------------ candidate layer


def fetched(general: str = "2.6%", value: str = "0.026", description: str = "Other") -> MfnRate:
    return MfnRate(
        hts_code="8543.70.9960",
        htsno="8543.70.99",
        description=description,
        general_text=general,
        rate=Decimal(value),
        special_text=SPECIAL,
        other_text="35%",
        source_url=QUERY_URL,
        fetched_on=date(2026, 11, 24),
    )


def write_candidate(tmp_path: Path, found: MfnRate, start: date) -> Path:
    mfn = superseded_mfn_layer(shipped_schedule(), found.htsno, start)
    assert mfn is not None and mfn.id == "mfn"
    path = tmp_path / "candidate.toml"
    path.write_text(candidate_layer_toml(found, start, supersedes=mfn), encoding="utf-8")
    return path


@pytest.mark.parametrize(("origin", "day", "expected"), CASES)
def test_candidate_over_shipped_schedule_reproduces_reference_table(
    tmp_path: Path, origin: str, day: str, expected: Decimal
) -> None:
    schedule = load_schedules([write_candidate(tmp_path, fetched(), date(2019, 1, 1))])
    result = rate(schedule, origin, "8543.70.9960", date.fromisoformat(day))
    assert result.total_rate == expected
    if origin != "US":
        mfn = [lay for lay in result.layers if lay.kind == "mfn"]
        assert [lay.id for lay in mfn] == ["mfn-usitc-20261124"]
        assert QUERY_URL in mfn[0].source and "2026-11-24" in mfn[0].source
        assert mfn[0].flags == frozenset({"U"})


def test_candidate_china_total_on_2025_05_20_is_576_per_mille(tmp_path: Path) -> None:
    schedule = load_schedules([write_candidate(tmp_path, fetched(), date(2025, 1, 1))])
    assert rate(schedule, "CN", "8543.70.9960", date(2025, 5, 20)).total_rate == Decimal("0.576")
    assert schedule.layer("mfn-usitc-20261124") is not None


def test_a_changed_rate_applies_from_its_date_and_the_reviewed_one_before(tmp_path: Path) -> None:
    path = write_candidate(tmp_path, fetched("3.1%", "0.031"), date(2027, 1, 1))
    schedule = load_schedules([path])
    before = rate(schedule, "MY", "8543.70.9960", date(2026, 12, 31))
    after = rate(schedule, "MY", "8543.70.9960", date(2027, 1, 1))
    assert (before.total_rate, after.total_rate) == (Decimal("0.026"), Decimal("0.031"))
    assert [lay.id for lay in before.layers] == ["mfn"]
    assert [lay.id for lay in after.layers] == ["mfn-usitc-20261124"]


def test_candidate_text_survives_quotes_and_backslashes(tmp_path: Path) -> None:
    odd = 'Other "lamps" \\ C:\\path; 9¢ \x7f'
    schedule = load_schedules([write_candidate(tmp_path, fetched(description=odd), date(2025, 1, 1))])
    layer = schedule.layer("mfn-usitc-20261124")
    assert layer is not None and odd in layer.notes


def test_candidate_refuses_to_erase_a_layer_that_starts_later() -> None:
    mfn = shipped_schedule().layer("mfn")
    assert mfn is not None
    later = replace(mfn, effective_from=date(2026, 1, 1))
    with pytest.raises(ValueError, match="later effective-from"):
        candidate_layer_toml(fetched(), date(2025, 1, 1), supersedes=later)


def test_candidate_without_superseded_layer_stands_alone(tmp_path: Path) -> None:
    # An HTS code the schedule does not cover: the candidate is the only layer for it.
    free = replace(fetched("Free", "0"), hts_code="8471.50.0150", htsno="8471.50.01")
    path = tmp_path / "free.toml"
    path.write_text(candidate_layer_toml(free, date(2026, 11, 24)), encoding="utf-8")
    schedule = load_schedules([path])
    assert rate(schedule, "CN", "8471.50.0150", date(2026, 12, 1)).total_rate == Decimal(0)
    assert rate(schedule, "CN", "8543.70.9960", date(2025, 5, 20)).total_rate == Decimal("0.576")


# ------------------------------------------------------------------------------------------------ CLI


def run(argv: list[str]) -> tuple[int, str]:
    parser = argparse.ArgumentParser(prog="fleetmon")
    supplychain_cli.register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    out = io.StringIO()
    code = args.handler(args, out)
    return code, out.getvalue()


def shipped_digest() -> str:
    base = resources.files("fleetmon.supplychain") / "data" / "tariffs"
    return hashlib.sha256((base / "us-8543.70.9960.toml").read_bytes()).hexdigest()


def test_cli_fetch_writes_a_candidate_that_tariffs_rate_accepts(tmp_path: Path) -> None:
    before = shipped_digest()
    out_file = tmp_path / "mfn-candidate.toml"
    with respx.mock(assert_all_called=True) as router:
        search_route(router).respond(json=heading_8543_70_99())
        code, out = run(
            ["tariffs", "fetch-hts", "8543.70.9960", "--out", str(out_file), "--effective-from", "2025-01-01"]
        )
    assert code == 0
    assert "2.6%" in out and "8543.70.99" in out and QUERY_URL in out
    assert "schedule layer 'mfn' on 2025-01-01: 0.026 (same)" in out
    assert out_file.exists() and shipped_digest() == before

    code, out = run(
        ["tariffs", "rate", "--origin", "CN", "--date", "2025-05-20", "--json", "--schedule", str(out_file)]
    )
    assert code == 0
    payload = json.loads(out)
    assert payload["total_rate"] == pytest.approx(0.576, abs=1e-12)
    assert any(lay["id"].startswith("mfn-usitc-") and QUERY_URL in lay["source"] for lay in payload["layers"])


def test_cli_fetch_reports_a_rate_that_differs_from_the_schedule() -> None:
    with respx.mock() as router:
        search_route(router).respond(json=heading_8543_70_99("3.1%"))
        code, out = run(["tariffs", "fetch-hts", "8543.70.9960", "--effective-from", "2026-12-01"])
    assert code == 0
    assert "0.031" in out and "DIFFERENT: review" in out


@pytest.mark.parametrize(
    ("mock", "message"),
    [
        ({"status_code": 503}, "HTTP 503"),
        ({"side_effect": httpx.ReadTimeout("deadline")}, "did not answer in time"),
        ({"side_effect": httpx.ConnectError("refused")}, "cannot reach"),
    ],
)
def test_cli_network_failure_exits_2_with_a_message_and_writes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], mock: dict[str, object], message: str
) -> None:
    out_file = tmp_path / "never.toml"
    with respx.mock() as router:
        route = search_route(router)
        if "side_effect" in mock:
            route.mock(side_effect=mock["side_effect"])
        else:
            route.respond(503)
        code, out = run(["tariffs", "fetch-hts", "8543.70.9960", "--out", str(out_file), "--timeout", "2"])
    assert code == 2 and out == ""
    err = capsys.readouterr().err
    assert err.startswith("fleetmon tariffs fetch-hts:") and message in err
    assert not out_file.exists()


def test_cli_compound_rate_exits_2_and_writes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out_file = tmp_path / "never.toml"
    with respx.mock() as router:
        search_route(router).respond(json=heading_8543_70_99("2.6% + 7.7¢/kg"))
        code, _ = run(["tariffs", "fetch-hts", "8543.70.9960", "--out", str(out_file)])
    assert code == 2 and "ad-valorem" in capsys.readouterr().err
    assert not out_file.exists()


def test_cli_refuses_to_write_into_the_shipped_schedule_folder(capsys: pytest.CaptureFixture[str]) -> None:
    # A new name in that folder, so a broken guard would add a file (removed below), not overwrite one.
    target = Path(str(resources.files("fleetmon.supplychain") / "data" / "tariffs")) / "guard-test.toml"
    try:
        with respx.mock() as router:
            search_route(router).respond(json=heading_8543_70_99())
            code, _ = run(["tariffs", "fetch-hts", "8543.70.9960", "--out", str(target)])
        assert code == 2 and "shipped schedule's folder" in capsys.readouterr().err
        assert not target.exists()
    finally:
        target.unlink(missing_ok=True)
