from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from collectors.sample import Board, Sample, State


def test_timestamp_serializes_as_utc_with_microseconds() -> None:
    sample = Sample(ip="127.20.0.1", state=State.MINING, ts=datetime(2026, 1, 2, 3, 4, 5, 6, tzinfo=UTC))
    assert json.loads(sample.to_json())["ts"] == "2026-01-02T03:04:05.000006Z"


def test_round_trip_keeps_every_field() -> None:
    sample = Sample(
        ip="127.20.0.1",
        state=State.DEGRADED,
        hashrate_ths=70.5,
        boards=[Board(index=0, hashrate_ths=35.2, chips=76, expected_chips=76)],
        fans_rpm=[5400, 5520],
    )
    assert Sample.from_json(sample.to_json()) == sample


def test_unknown_field_is_rejected() -> None:
    with pytest.raises(ValidationError):
        Sample.model_validate({"ip": "1.2.3.4", "state": "mining", "hashrate": 1})


def test_missing_values_stay_none_not_zero() -> None:
    sample = Sample(ip="127.20.0.1", state=State.UNREACHABLE)
    data = json.loads(sample.to_json())
    assert data["hashrate_ths"] is None and data["power_w"] is None


def _sample_json(**fields: object) -> str:
    return json.dumps({"ip": "127.20.0.1", "state": "mining", **fields})


def _error_locations(exc: pytest.ExceptionInfo[ValidationError]) -> set[str]:
    return {".".join(str(part) for part in error["loc"]) for error in exc.value.errors()}


@pytest.mark.parametrize(
    ("fields", "location"),
    [
        ({"pools": [{"url": "stratum+tcp://pool\u0000.example:3333"}]}, "pools.0.url"),
        ({"pools": [{"url": "stratum+tcp://p:3333", "user": "w\u0000"}]}, "pools.0.user"),
        ({"hostname": "antminer\u0000"}, "hostname"),
        ({"serial": "\u0000"}, "serial"),
        ({"ip": "127.20.0.1\u0000"}, "ip"),
        ({"errors": [{"code": "x", "message": "bad\u0000"}]}, "errors.0.message"),
    ],
)
def test_nul_character_in_any_string_is_rejected_naming_the_field(
    fields: dict[str, object], location: str
) -> None:
    with pytest.raises(ValidationError, match="NUL character") as exc:
        Sample.from_json(_sample_json(**fields))
    assert _error_locations(exc) == {location}


@pytest.mark.parametrize(
    ("fields", "location"),
    [
        ({"uptime_s": 2**63}, "uptime_s"),
        ({"uptime_s": -(2**63) - 1}, "uptime_s"),
        ({"pools": [{"url": "stratum+tcp://p:3333", "accepted": 2**70}]}, "pools.0.accepted"),
        ({"pools": [{"url": "stratum+tcp://p:3333", "rejected": 2**64}]}, "pools.0.rejected"),
        ({"fans_rpm": [5400, 2**63]}, "fans_rpm.1"),
        ({"boards": [{"index": 0, "chips": 2**63}]}, "boards.0.chips"),
        ({"boards": [{"index": 2**63}]}, "boards.0.index"),
        ({"port": 0}, "port"),
        ({"port": 65536}, "port"),
    ],
)
def test_integer_a_database_cannot_hold_is_rejected(fields: dict[str, object], location: str) -> None:
    with pytest.raises(ValidationError) as exc:
        Sample.from_json(_sample_json(**fields))
    assert _error_locations(exc) == {location}


def test_integers_at_the_64_bit_limits_are_kept() -> None:
    sample = Sample.from_json(_sample_json(uptime_s=2**63 - 1, fans_rpm=[-(2**63)], port=65535))
    assert sample.uptime_s == 2**63 - 1 and sample.fans_rpm == [-(2**63)] and sample.port == 65535


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity"])
@pytest.mark.parametrize("name", ["hashrate_ths", "temp_max_c", "power_w", "efficiency_jth"])
def test_non_finite_float_in_a_payload_is_rejected(name: str, literal: str) -> None:
    payload = _sample_json()[:-1] + f', "{name}": {literal}}}'
    with pytest.raises(ValidationError) as exc:
        Sample.from_json(payload)
    assert _error_locations(exc) == {name}


def test_non_finite_float_in_a_board_is_rejected_in_python_too() -> None:
    with pytest.raises(ValidationError) as exc:
        Board(index=0, temp_c=float("nan"))
    assert _error_locations(exc) == {"temp_c"}
