"""Samples the database refuses are isolated and kept as dead letters; the good ones of their batch land.

On SQLite and on the real PostgreSQL. The poison samples bypass the Sample contract (model_copy does not
validate), as a bug or a future field could, and reach the writer as the database would see them.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
from pathlib import Path

import fleet_samples
import pytest
from fleet_process import FLEETMON, ROOT
from fleet_samples import T0, count_rows, fleet_cycle, make_sample

from collectors.sample import Sample
from fleetmon.storage.batch import BatchWriter
from fleetmon.storage.engine import make_engine
from fleetmon.storage.errors import StorageUnavailableError
from fleetmon.storage.export import iter_samples
from fleetmon.storage.rejected import REJECTED, Rejection, is_data_error, iter_rejections
from fleetmon.storage.writer import SampleStore, SiteSample

blank_db_url = fleet_samples.blank_db_url
db_url = fleet_samples.db_url


def _poison(url: str) -> list[Sample]:
    """Three samples of new devices, each with one value this database cannot store."""
    one, two, three = (make_sample(5000 + n, T0) for n in range(3))
    bad_url = [one.pools[0].model_copy(update={"url": "stratum+tcp://pool\x00.example:3333"})]
    if url.startswith("postgresql"):
        # PostgreSQL text and jsonb hold no NUL: one in the samples' jsonb, one in the devices' text.
        return [
            one.model_copy(update={"pools": bad_url}),
            two.model_copy(update={"hostname": "miner\x00"}),
            three.model_copy(update={"uptime_s": 2**70}),
        ]
    # SQLite stores NUL characters; what it cannot hold is an integer past 64 bits.
    return [
        one.model_copy(update={"uptime_s": 2**70}),
        two.model_copy(update={"uptime_s": -(2**64)}),
        three.model_copy(update={"port": 2**70}),
    ]


def test_batch_with_three_poison_samples_stores_the_997_good_and_keeps_the_3(
    db_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    good = fleet_cycle(997, 0)
    poison = _poison(db_url)
    batch = [
        SiteSample("north", s) for s in good[:300] + poison[:1] + good[300:700] + poison[1:] + good[700:]
    ]
    assert len(batch) == 1000
    store = SampleStore(make_engine(db_url))
    with caplog.at_level(logging.ERROR, logger="fleetmon.storage.writer"):
        result = store.write(batch)
    assert (result.received, result.inserted, result.rejected, result.duplicates) == (1000, 997, 3, 0)
    assert count_rows(db_url) == 997
    exported = sorted(s.to_json() for s in iter_samples(make_engine(db_url)))
    assert exported == sorted(s.to_json() for s in good)
    kept = list(iter_rejections(make_engine(db_url)))
    assert len(kept) == 3
    assert {(item.source, item.site) for item in kept} == {("writer", "north")}
    assert sorted(json.loads(item.payload)["ip"] for item in kept) == sorted(s.ip for s in poison)
    assert all(item.error.startswith("database refused sample of ") for item in kept)
    kept_lines = [r for r in caplog.records if "kept in rejected_samples" in r.getMessage()]
    assert len(kept_lines) == 3  # logged once each
    # The store writes on as before, and the refused samples' devices can still be stored clean.
    after = store.write([SiteSample("north", s) for s in [*fleet_cycle(997, 1), make_sample(5000, T0)]])
    assert (after.inserted, after.rejected) == (998, 0)


def test_a_payload_that_is_no_sample_is_kept_raw(db_url: str) -> None:
    raw = b'{"ip": "10.0.0.1", "pools": [{"url": "a\\u0000"}]}\x00\xff'
    store = SampleStore(make_engine(db_url))
    dead = Rejection(source="fleetmon/v1/north/10.0.0.1_4028/sample", payload=raw, error="not a sample\x00")
    result = store.write([dead, SiteSample("north", make_sample(1, T0))])
    assert (result.inserted, result.rejected) == (1, 1)
    (kept,) = iter_rejections(make_engine(db_url))
    assert kept.payload == raw
    assert kept.error == "not a sample\\x00"  # a text column holds no NUL: shown escaped
    assert count_rows(db_url) == 1


async def test_batch_writer_resolves_the_futures_of_dead_lettered_samples(db_url: str) -> None:
    store = SampleStore(make_engine(db_url))
    async with BatchWriter(store, max_batch=100, flush_interval=0.05, retry=False) as writer:
        await writer.write([SiteSample("north", s) for s in fleet_cycle(40, 0) + _poison(db_url)])
    assert (writer.written, writer.rejected) == (40, 3)
    assert count_rows(db_url, REJECTED) == 3


def test_an_outage_is_still_raised_for_retry_not_dead_lettered() -> None:
    store = SampleStore(make_engine("postgresql+psycopg://postgres@127.0.0.1:1/nowhere?connect_timeout=2"))
    with pytest.raises(StorageUnavailableError):
        store.write([SiteSample("north", make_sample(1, T0))])
    with pytest.raises(StorageUnavailableError):  # a dead letter waits for the database like a sample
        store.write([Rejection("fleetmon/v1/north/x/sample", b"x", "not a sample")])


def test_a_missing_table_is_an_outage_not_bad_data(blank_db_url: str) -> None:
    store = SampleStore(make_engine(blank_db_url))  # no migrations: the tables do not exist
    with pytest.raises(StorageUnavailableError):
        store.write([SiteSample("north", make_sample(1, T0))])
    assert not is_data_error(StorageUnavailableError("x"))


def test_db_rejected_lists_the_dead_letters_as_json_lines(db_url: str, tmp_path: Path) -> None:
    store = SampleStore(make_engine(db_url))
    raw = b'{"a":"\\u0000"}\x00'
    store.write([Rejection(source="fleetmon/v1/north/x_4028/sample", payload=raw, error="bad")])
    env = {**os.environ, "FLEETMON_DATA_DIR": str(tmp_path)}
    done = subprocess.run(
        [*FLEETMON, "db", "rejected", "--db", db_url],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    (line,) = done.stdout.splitlines()
    record = json.loads(line)
    assert (record["source"], record["error"]) == ("fleetmon/v1/north/x_4028/sample", "bad")
    assert record["payload"].encode() == raw
