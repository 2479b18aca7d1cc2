"""PDU reading over SNMP against the real snmpsim agent serving tests/snmp/*.snmprec.

The expected values are taken from the recordings themselves (OID by OID, with each MIB's documented
scaling written out here a second time), so a wrong OID, column or scale in collectors/snmp fails.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from snmpsim_agent import Agent, free_udp_port, start_agent

from collectors.snmp import (
    OutletBinding,
    OutletState,
    PduAuthError,
    PduConfig,
    PduConnectionError,
    PduError,
    PduProtocolError,
    PduTimeoutError,
    PduUnsupportedError,
    SnmpTarget,
    SnmpTimeouts,
    TotalSource,
    Vendor,
    detect_vendor,
    join_outlets,
    new_engine,
    read_pdu,
    sentry4,
)
from collectors.snmp import errors as snmp_errors
from collectors.snmp.transport import oid
from fleetmon.cli import snmp as snmp_cli

RECORDINGS = Path(__file__).resolve().parent / "snmp"
TIMEOUTS = SnmpTimeouts(timeout_s=1.0, retries=1)


@pytest.fixture(scope="module")
def agent() -> Iterator[Agent]:
    """snmpsim on 127.0.0.1:<free port>, one community per recording (community = file name)."""
    with start_agent() as running:
        yield running


def recording(name: str) -> dict[str, str]:
    """OID -> raw value text of one .snmprec file (format OID|type|value)."""
    values = {}
    for line in (RECORDINGS / f"{name}.snmprec").read_text().splitlines():
        if line.strip():
            key, _type, value = line.split("|", 2)
            values[key] = value
    return values


def test_recordings_are_sorted_by_oid() -> None:
    for path in RECORDINGS.glob("*.snmprec"):
        keys = [oid(line.split("|", 1)[0]) for line in path.read_text().splitlines() if line]
        assert keys == sorted(keys), path.name


def test_every_snmp_exception_is_under_pdu_error() -> None:
    classes = [
        obj for obj in vars(snmp_errors).values() if isinstance(obj, type) and issubclass(obj, Exception)
    ]
    assert len(classes) == 6
    assert all(issubclass(cls, PduError) for cls in classes)
    assert issubclass(PduTimeoutError, PduConnectionError)
    assert issubclass(PduUnsupportedError, PduProtocolError)


async def test_apc_reading_equals_recording(agent: Agent) -> None:
    rec = recording("apc")
    reading = await read_pdu(agent.target("apc"), TIMEOUTS)
    base = "1.3.6.1.4.1.318.1.1.26"
    assert reading.vendor is Vendor.APC
    assert reading.model == rec[f"{base}.2.1.8.1"] == "AP8886"
    assert reading.name == rec["1.3.6.1.2.1.1.5.0"]
    rows = sorted(int(k.rsplit(".", 1)[1]) for k in rec if k.startswith(f"{base}.9.4.3.1.7."))
    assert len(rows) == 6
    switched = {"1": OutletState.OFF, "2": OutletState.ON}
    expected = [
        (
            int(rec[f"{base}.9.4.3.1.4.{r}"]),
            rec[f"{base}.9.4.3.1.3.{r}"],
            float(rec[f"{base}.9.4.3.1.7.{r}"]),  # rPDU2OutletMeteredStatusPower: W
            int(rec[f"{base}.9.4.3.1.6.{r}"]) / 10,  # ...Current: tenths of A
            switched[rec[f"{base}.9.2.3.1.5.{r}"]],
        )
        for r in rows
    ]
    assert [(o.index, o.name, o.power_w, o.current_a, o.state) for o in reading.outlets] == expected
    assert reading.outlets[4].state is OutletState.OFF and reading.outlets[4].power_w == 0.0
    (inlet,) = reading.inlets
    assert inlet.power_w == int(rec[f"{base}.4.3.1.5.1"]) * 10 == 16_870.0  # hundredths of kW
    assert inlet.energy_kwh == int(rec[f"{base}.4.3.1.9.1"]) / 10  # tenths of kWh
    assert reading.total_power_w == inlet.power_w
    assert reading.total_power_source is TotalSource.INLET
    (sensor,) = reading.sensors
    assert sensor.name == rec[f"{base}.10.2.2.1.3.1"]
    assert sensor.temperature_c == int(rec[f"{base}.10.2.2.1.8.1"]) / 10 == 27.2  # tenths of C
    assert sensor.humidity_percent == float(rec[f"{base}.10.2.2.1.10.1"])


async def test_raritan_reading_scales_by_decimal_digits(agent: Agent) -> None:
    rec = recording("raritan")
    reading = await read_pdu(agent.target("raritan"), TIMEOUTS)
    cfg, meas = "1.3.6.1.4.1.13742.6.3", "1.3.6.1.4.1.13742.6.5"
    assert reading.vendor is Vendor.RARITAN
    assert reading.model == rec[f"{cfg}.2.1.1.3.1"]

    def scaled(value_oid: str, digits_oid: str) -> float:
        return int(rec[value_oid]) / 10 ** int(rec[digits_oid])

    states = {"7": OutletState.ON, "8": OutletState.OFF}
    expected = [
        (
            o,
            rec[f"{cfg}.5.3.1.3.1.{o}"],
            scaled(f"{meas}.4.3.1.4.1.{o}.5", f"{cfg}.5.4.1.7.1.{o}.5"),  # activePower
            scaled(f"{meas}.4.3.1.4.1.{o}.1", f"{cfg}.5.4.1.7.1.{o}.1"),  # rmsCurrent
            states[rec[f"{meas}.4.3.1.3.1.{o}.14"]],  # onOff sensor state
        )
        for o in range(1, 9)
    ]
    assert [(o.index, o.name, o.power_w, o.current_a, o.state) for o in reading.outlets] == expected
    assert reading.outlets[0].current_a == 14.296  # 14296 with 3 decimal digits
    (inlet,) = reading.inlets
    assert inlet.power_w == scaled(f"{meas}.2.3.1.4.1.1.5", f"{cfg}.3.4.1.7.1.1.5")
    assert inlet.energy_kwh == scaled(f"{meas}.2.3.1.4.1.1.8", f"{cfg}.3.4.1.7.1.1.8") / 1000  # Wh -> kWh
    assert reading.total_power_w == inlet.power_w == 23_421.0
    assert reading.total_power_source is TotalSource.INLET
    temp, humid = reading.sensors
    assert temp.temperature_c == scaled(f"{meas}.5.3.1.4.1.1", f"{cfg}.6.3.1.17.1.1") == 34.2
    assert temp.name == rec[f"{cfg}.6.3.1.4.1.1"] and temp.humidity_percent is None
    assert humid.humidity_percent == scaled(f"{meas}.5.3.1.4.1.2", f"{cfg}.6.3.1.17.1.2")
    assert humid.temperature_c is None


async def test_servertech_reading_equals_recording(agent: Agent) -> None:
    rec = recording("servertech")
    reading = await read_pdu(agent.target("servertech"), TIMEOUTS)
    st4 = "1.3.6.1.4.1.1718.4.1"
    assert reading.vendor is Vendor.SERVERTECH
    assert reading.model == rec[f"{st4}.2.2.1.5.1"]
    expected = [
        (
            o,
            rec[f"{st4}.8.2.1.3.1.1.{o}"],
            float(rec[f"{st4}.8.3.1.7.1.1.{o}"]),  # st4OutletActivePower: W
            int(rec[f"{st4}.8.3.1.3.1.1.{o}"]) / 100,  # st4OutletCurrent: hundredth A
            OutletState.ON,
        )
        for o in range(1, 7)
    ]
    assert [(o.index, o.name, o.power_w, o.current_a, o.state) for o in reading.outlets] == expected
    (cord,) = reading.inlets
    assert cord.power_w == float(rec[f"{st4}.3.3.1.3.1.1"])
    assert cord.energy_kwh == int(rec[f"{st4}.3.3.1.10.1.1"]) / 10  # tenth kWh
    assert reading.total_power_w == 20_097.0
    # The second temperature probe is notFound(7) with a -41.0 placeholder: not a reading.
    temp, humid = reading.sensors
    assert rec[f"{st4}.9.1.10.0"] == "0"  # celsius
    assert temp.temperature_c == int(rec[f"{st4}.9.3.1.1.1.1"]) / 10 == 23.8
    assert humid.humidity_percent == float(rec[f"{st4}.10.3.1.1.1.1"])


async def test_shared_engine_reads_every_family_and_stays_open(agent: Agent) -> None:
    engine = new_engine()
    try:
        readings = await asyncio.gather(
            *(read_pdu(agent.target(c), TIMEOUTS, engine=engine) for c in ("apc", "raritan", "servertech"))
        )
        assert [r.vendor for r in readings] == [Vendor.APC, Vendor.RARITAN, Vendor.SERVERTECH]
        again = await read_pdu(agent.target("apc"), TIMEOUTS, engine=engine)
        assert again.outlets == readings[0].outlets
    finally:
        engine.close_dispatcher()


def test_sentry4_fahrenheit_readings_are_converted_to_celsius() -> None:
    base = "1.3.6.1.4.1.1718.4.1"
    table = {
        oid(f"{base}.9.1.10.0"): 1,  # fahrenheit
        oid(f"{base}.9.2.1.3.1.1"): "Intake",
        oid(f"{base}.9.3.1.1.1.1"): 815,  # 81.5 F
        oid(f"{base}.9.3.1.2.1.1"): 0,
    }
    (sensor,) = sentry4.parse_sensors(table)
    assert sensor.temperature_c == pytest.approx(27.5)


async def test_silent_port_raises_timeout(agent: Agent) -> None:
    target = SnmpTarget("127.0.0.1", free_udp_port(), "apc")
    with pytest.raises(PduTimeoutError, match="no answer"):
        await read_pdu(target, SnmpTimeouts(timeout_s=0.2, retries=0))


async def test_wrong_community_is_a_timeout_or_auth_error(agent: Agent) -> None:
    with pytest.raises((PduTimeoutError, PduAuthError)) as caught:
        await read_pdu(agent.target("not-a-community"), SnmpTimeouts(timeout_s=0.3, retries=0))
    assert "not-a-community" not in str(caught.value)


async def test_agent_that_is_not_a_pdu_is_unsupported(agent: Agent) -> None:
    with pytest.raises(PduUnsupportedError, match="8072"):
        await read_pdu(agent.target("notapdu"), TIMEOUTS)


def test_vendor_is_detected_from_object_id_then_descr() -> None:
    assert detect_vendor("1.3.6.1.4.1.318.1.3.4.6", None) is Vendor.APC
    assert detect_vendor("1.3.6.1.4.1.13742.6", None) is Vendor.RARITAN
    assert detect_vendor("1.3.6.1.4.1.1718.4", None) is Vendor.SERVERTECH
    assert detect_vendor("1.3.6.1.4.1.3183", None) is None  # prefix of 318 but another enterprise
    assert detect_vendor("1.3.6.1.4.1.8072.3.2.10", "Sentry Switched CDU") is Vendor.SERVERTECH
    assert detect_vendor(None, "Linux core-sw-01") is None


async def test_outlets_join_to_mapped_miners(agent: Agent) -> None:
    config = PduConfig(
        host=agent.host,
        port=agent.port,
        community_env="FLEETMON_TEST_PDU_COMMUNITY",
        outlets=[
            OutletBinding(outlet=1, miner_ip="10.20.7.11"),
            OutletBinding(outlet=5, miner_ip="10.20.7.15"),
            OutletBinding(outlet=9, miner_ip="10.20.7.19"),  # the PDU has no outlet 9
        ],
    )
    reading = await read_pdu(config.target({"FLEETMON_TEST_PDU_COMMUNITY": "apc"}), TIMEOUTS)
    rows = join_outlets(reading, config)
    assert [(str(r.miner_ip), r.power_w, r.outlet_state) for r in rows] == [
        ("10.20.7.11", 3412.0, OutletState.ON),
        ("10.20.7.15", 0.0, OutletState.OFF),
        ("10.20.7.19", None, None),
    ]
    assert rows[0].outlet_name == "S19XP-A07-01"


def test_pdu_config_rejects_an_outlet_mapped_twice() -> None:
    with pytest.raises(ValueError, match="mapped twice"):
        PduConfig(
            host="10.0.0.5",
            community_env="X",
            outlets=[
                OutletBinding(outlet=2, miner_ip="10.0.0.1"),
                OutletBinding(outlet=2, miner_ip="10.0.0.2"),
            ],
        )


def test_pdu_config_names_the_missing_community_variable() -> None:
    config = PduConfig(host="10.0.0.5", community_env="FLEETMON_PDU_COMMUNITY_UNSET")
    with pytest.raises(LookupError, match="FLEETMON_PDU_COMMUNITY_UNSET"):
        config.target({})


def _run_cli(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="fleetmon")
    snmp_cli.register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return int(args.handler(args))


def test_cli_probe_json_is_one_line_with_vendor_outlets_total(
    agent: Agent, capsys: pytest.CaptureFixture[str]
) -> None:
    status = _run_cli(["snmp", "probe", f"{agent.host}:{agent.port}", "--community", "servertech", "--json"])
    out = capsys.readouterr().out
    assert status == 0
    assert out.count("\n") == 1
    doc = json.loads(out)
    assert doc["vendor"] == "servertech"
    assert doc["outlets"][0] == {"index": 1, "name": "L7-C11-01", "power_w": 3365.0}
    assert len(doc["outlets"]) == 6
    assert doc["total_power_w"] == 20097.0


def test_cli_probe_table_lists_outlets(agent: Agent, capsys: pytest.CaptureFixture[str]) -> None:
    assert _run_cli(["snmp", "probe", f"{agent.host}:{agent.port}", "--community", "raritan"]) == 0
    out = capsys.readouterr().out
    assert "raritan" in out and "A1466-B02-07" in out and "23,421" in out


def test_cli_probe_reports_timeout_on_stderr(agent: Agent, capsys: pytest.CaptureFixture[str]) -> None:
    argv = [
        "snmp",
        "probe",
        f"127.0.0.1:{free_udp_port()}",
        "--community",
        "x",
        "--timeout",
        "0.2",
        "--retries",
        "0",
    ]
    assert _run_cli(argv) == 2
    assert "PduTimeoutError" in capsys.readouterr().err


def test_cli_main_module_runs_probe(agent: Agent) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "fleetmon.cli.main",
            "snmp",
            "probe",
            f"{agent.host}:{agent.port}",
            "--community",
            "apc",
            "--json",
        ],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=Path(__file__).resolve().parent.parent,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["total_power_w"] == 16870.0


@pytest.mark.parametrize(
    ("text", "expected"),
    [("10.0.0.5", ("10.0.0.5", 161)), ("pdu-a7:1161", ("pdu-a7", 1161)), ("[fd00::5]:162", ("fd00::5", 162))],
)
def test_cli_parses_host_and_port(text: str, expected: tuple[str, int]) -> None:
    assert snmp_cli.parse_host_port(text) == expected
