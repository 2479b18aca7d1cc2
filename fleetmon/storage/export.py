"""Reading stored samples back as collectors.sample.Sample, exactly as the collector produced them.

`ip` and `port` come from the device row (the key the sample was stored under, kept as the collector
wrote it), `ts` from the sample row at microsecond precision, so `Sample.to_json()` of an exported
sample is byte-identical to the line the collector wrote.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from sqlalchemy import Engine, Table, select
from sqlalchemy.engine import Row

from collectors.sample import Sample
from fleetmon.storage.compact import boards_from_stored, pools_from_stored
from fleetmon.storage.models import Device, SampleRow, Site

SAMPLES: Table = SampleRow.__table__  # type: ignore[attr-defined]
DEVICES: Table = Device.__table__  # type: ignore[attr-defined]
SITES: Table = Site.__table__  # type: ignore[attr-defined]

SAMPLE_FIELDS = tuple(name for name in Sample.model_fields if name not in ("ip", "port"))
"""The Sample fields that are columns of `samples` (ip and port are the device row's); one list for
every query that reads samples back."""


def row_to_sample(row: Row[Any]) -> Sample:
    """Rebuild the Sample from one joined samples/devices row."""
    mapping = row._mapping
    data: dict[str, Any] = {name: mapping[name] for name in SAMPLE_FIELDS}
    data["boards"] = boards_from_stored(data["boards"])
    data["pools"] = pools_from_stored(data["pools"])
    data["ip"] = mapping["ip"]
    data["port"] = mapping["port"]
    return Sample.model_validate(data)


def iter_samples(engine: Engine, site: str | None = None, chunk: int = 5000) -> Iterator[Sample]:
    """Every stored sample (of one site, if given), ordered by time then device, streamed in chunks."""
    columns = [SAMPLES.c[name] for name in SAMPLE_FIELDS]
    query = (
        select(DEVICES.c.ip, DEVICES.c.port, *columns)
        .select_from(SAMPLES.join(DEVICES, DEVICES.c.id == SAMPLES.c.device_id))
        .order_by(SAMPLES.c.ts, SAMPLES.c.device_id)
    )
    if site is not None:
        query = query.join(SITES, SITES.c.id == DEVICES.c.site_id).where(SITES.c.name == site)
    with engine.connect() as conn:
        result = conn.execution_options(stream_results=True, yield_per=chunk).execute(query)
        for row in result:
            yield row_to_sample(row)
