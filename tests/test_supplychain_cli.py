"""The supply-chain CLI commands, and the report on a simulated fleet with its inventory imported."""

from __future__ import annotations

import argparse
import csv
import io
import json
from collections import defaultdict
from pathlib import Path

import pytest
from test_supplychain_tariffs import CASES

from collectors.simulator.fleet import build_fleet, manifest_rows, write_inventory
from fleetmon.cli import supplychain


def run(argv: list[str]) -> tuple[int, str]:
    # The command module on its own parser: what main.py registers, without the other groups.
    parser = argparse.ArgumentParser(prog="fleetmon")
    supplychain.register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    out = io.StringIO()
    code = args.handler(args, out)
    return code, out.getvalue()


def test_main_registers_the_supply_chain_commands() -> None:
    from fleetmon.cli import main

    assert "fleetmon.cli.supplychain" in [m.__name__ for m in main._command_modules()]


@pytest.mark.parametrize(("origin", "day", "expected"), CASES)
def test_cli_rate_json_reproduces_reference_table(origin: str, day: str, expected: object) -> None:
    code, out = run(["tariffs", "rate", "--origin", origin, "--hts", "8543.70.9960", "--date", day, "--json"])
    assert code == 0
    payload = json.loads(out)
    assert payload["total_rate"] == pytest.approx(float(str(expected)), abs=1e-12)
    assert all(layer["source"] for layer in payload["layers"])


def test_cli_rate_with_alternative_schedule_file() -> None:
    alt = Path(supplychain.__file__).parent.parent / "supplychain" / "data" / "tariffs"
    code, out = run(
        [
            "tariffs",
            "rate",
            "--origin",
            "CN",
            "--date",
            "2026-03-01",
            "--json",
            "--schedule",
            str(alt / "us-8543.70.9960-s122-15pct.toml"),
        ]
    )
    assert code == 0
    assert json.loads(out)["total_rate"] == pytest.approx(0.426)


def test_cli_rate_rejects_bad_origin(capsys: pytest.CaptureFixture[str]) -> None:
    code, _ = run(["tariffs", "rate", "--origin", "China", "--date", "2025-05-20"])
    assert code == 2
    assert "alpha-2" in capsys.readouterr().err


def test_cli_inventory_import_reports_rejected_lines(tmp_path: Path) -> None:
    path = tmp_path / "inv.csv"
    path.write_text(
        "serial,model,assembly_country,origin_evidence,customs_value_usd,entry_date,hts_code\n"
        "A1,Antminer S21,MY,nameplate,2800,2025-09-01,\nA2,Antminer S21,MY,nameplate,2800,someday,\n",
        encoding="utf-8",
    )
    code, out = run(["inventory", "import", str(path), "--dry-run"])
    assert code == 1
    assert "1 valid records, 1 rejected lines" in out
    assert "line 3" in out and "entry_date" in out
    assert "not stored" in out


@pytest.fixture
def simulated(tmp_path: Path) -> tuple[Path, Path, list[dict[str, object]]]:
    fleet = build_fleet(300, seed=7)
    rows = manifest_rows(fleet)
    units = tmp_path / "manifest.json"
    units.write_text(json.dumps(rows), encoding="utf-8")
    inventory = tmp_path / "inventory.csv"
    write_inventory(fleet, inventory)
    return units, inventory, rows


def test_report_on_simulated_fleet_matches_independent_computation(
    simulated: tuple[Path, Path, list[dict[str, object]]],
) -> None:
    units, inventory, rows = simulated
    code, out = run(
        [
            "report",
            "supply-chain",
            "--units",
            str(units),
            "--inventory",
            str(inventory),
            "--as-of",
            "2026-03-01",
            "--format",
            "json",
        ]
    )
    assert code == 0
    report = json.loads(out)
    # Independent computation straight from the device list: measured TH/s per make.
    maker_of = {"antminer": "Bitmain", "whatsminer": "MicroBT", "avalon": "Canaan"}
    expected: dict[str, float] = defaultdict(float)
    for row in rows:
        if row["state"] not in ("unreachable",):
            expected[maker_of[str(row["make"])]] += float(str(row["hashrate_ths"]))
    total = sum(expected.values())
    share = next(s for s in report["hash_share"] if s["by"] == ["manufacturer"] and s["basis"] == "measured")
    assert share["total_ths"] == pytest.approx(total)
    assert sum(g["share"] for g in share["groups"]) == pytest.approx(1.0)
    for group in share["groups"]:
        assert group["hashrate_ths"] == pytest.approx(expected[group["key"]])
    # Origin: units missing from the inventory are inferred or unknown, and the report says how much.
    with inventory.open(encoding="utf-8") as fh:
        listed = {r["serial"] for r in csv.DictReader(fh)}
    origin = report["origin"]["measured"]
    assert origin["total_ths"] == pytest.approx(total)
    not_listed = sum(float(str(r["hashrate_ths"])) for r in rows if r["serial"] not in listed)
    assert origin["inferred_ths"] + origin["unknown_ths"] == pytest.approx(not_listed)
    assert 0.0 <= report["tariff_exposure"]["score"]["score"] <= 100.0


@pytest.mark.parametrize("fmt", ["table", "csv"])
def test_report_formats_state_inferred_or_unknown_origin(
    simulated: tuple[Path, Path, list[dict[str, object]]], fmt: str
) -> None:
    units, inventory, _ = simulated
    code, out = run(
        ["report", "supply-chain", "--units", str(units), "--inventory", str(inventory), "--format", fmt]
    )
    assert code == 0
    if fmt == "table":
        assert "rests on inferred or unknown origin" in out
    else:
        rows = list(csv.DictReader(io.StringIO(out)))
        assert {r["key"] for r in rows if r["section"] == "origin_basis"} == {
            "declared",
            "inferred",
            "unknown",
        }


def test_report_on_unreadable_units_file_fails_cleanly(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "units.json"
    path.write_text("{not json", encoding="utf-8")
    code, _ = run(["report", "supply-chain", "--units", str(path)])
    assert code == 2
    assert "units.json" in capsys.readouterr().err


def test_cli_rate_names_where_the_sources_end() -> None:
    code, out = run(["tariffs", "rate", "--origin", "MY", "--date", "2026-03-01", "--json"])
    assert code == 0
    payload = json.loads(out)
    assert payload["sources_end"] == "2026-05-31" and payload["warning"] is None
    code, out = run(["tariffs", "rate", "--origin", "MY", "--date", "2026-08-01", "--json"])
    payload = json.loads(out)
    assert payload["past_sources_end"] is True and "2026-05-31" in payload["warning"]
    assert payload["total_rate"] == pytest.approx(0.026)  # still answers with the layers known
    code, text = run(["tariffs", "rate", "--origin", "MY", "--date", "2026-08-01"])
    assert code == 0
    assert "sources end 2026-05-31" in text.splitlines()[0]
    assert "WARNING: 2026-08-01 is after 2026-05-31" in text


@pytest.mark.parametrize("fmt", ["table", "json", "csv"])
def test_report_names_where_the_tariff_sources_end(
    simulated: tuple[Path, Path, list[dict[str, object]]], fmt: str
) -> None:
    units, inventory, _ = simulated
    argv = ["report", "supply-chain", "--units", str(units), "--inventory", str(inventory)]
    code, out = run([*argv, "--as-of", "2026-09-01", "--format", fmt])
    assert code == 0
    if fmt == "json":
        exposure = json.loads(out)["tariff_exposure"]
        assert exposure["sources_end"] == "2026-05-31"
        assert "2026-09-01 is after 2026-05-31" in exposure["warning"]
    elif fmt == "csv":
        rows = [r for r in csv.DictReader(io.StringIO(out)) if r["key"] == "sources_end"]
        assert [r["note"] for r in rows] == ["2026-05-31"]
    else:
        assert "sources end 2026-05-31" in out
        assert "WARNING: 2026-09-01 is after 2026-05-31" in out


def test_cli_rate_under_the_section_301_what_if() -> None:
    argv = ["tariffs", "rate", "--origin", "MY", "--date", "2026-08-01", "--json"]
    code, out = run([*argv, "--scenario", "section-301-excess-capacity"])
    assert code == 0
    payload = json.loads(out)
    assert payload["total_rate"] == pytest.approx(0.276)
    assert any("NOT in force" in note for note in payload["notes"])
    assert payload["sources_end"] == "2026-05-31"
    code, out = run(argv)
    assert json.loads(out)["total_rate"] == pytest.approx(0.026)
