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
