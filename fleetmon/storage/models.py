"""The database schema, as SQLModel tables.

Identity: a device is one (site, ip, port). The serial number is stored and indexed but is not the key,
because unreachable or half-identified devices report no serial and still need their samples stored;
an IP handed to another box therefore continues the same device row (its make/serial columns change).

Samples: one row per device per poll, keyed by (device_id, ts) so a replayed or redelivered sample is
absorbed by `ON CONFLICT DO NOTHING`. Boards, fans, pools, errors and security findings are JSON columns
(json, the text as written, on PostgreSQL; boards and pools as positional arrays: fleetmon.storage.compact)
rather than child rows: a sample is then one INSERT instead of eight or more, which is what
ingest speed depends on, and nobody queries a single board across the fleet without its sample.
The identity strings the collector saw at that instant (make, model, firmware, serial, mac, hostname)
are kept on the sample too, so `db export-samples` rebuilds the exact Sample even after a firmware
upgrade changed the device row.

Timestamps are timezone-aware UTC everywhere (`UTCDateTime`), microsecond precision on both dialects.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    Date,
    DateTime,
    Dialect,
    Index,
    LargeBinary,
    Text,
    UniqueConstraint,
)
from sqlalchemy.types import TypeDecorator
from sqlmodel import Field, SQLModel


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC datetime on both dialects (SQLite stores naive text, so we re-attach UTC)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        """Normalise to UTC; refuse naive values, which would be silently misread."""
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        """Always hand back an aware UTC datetime."""
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _json_column(nullable: bool = False) -> Any:
    # json, not jsonb, on PostgreSQL since migration 0006: the writer's compact text is kept as sent.
    return Field(default_factory=list, sa_column=Column(JSON(), nullable=nullable))


def _ts_column(nullable: bool = False, index: bool = False) -> Any:
    return Field(sa_column=Column(UTCDateTime(), nullable=nullable, index=index))


class Site(SQLModel, table=True):
    """A farm location; collectors name it with `--site`."""

    __tablename__ = "sites"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=64, unique=True)
    created_at: datetime = _ts_column()


class Device(SQLModel, table=True):
    """One miner, keyed by (site, ip, port); its identity and state as of its latest sample."""

    __tablename__ = "devices"
    __table_args__ = (
        UniqueConstraint("site_id", "ip", "port", name="uq_devices_site_ip_port"),
        Index("ix_devices_site_state", "site_id", "state"),
        Index("ix_devices_make_model", "make", "model"),
        Index("ix_devices_firmware_vendor", "firmware_vendor"),
        Index("ix_devices_serial", "serial"),
    )

    id: int | None = Field(default=None, primary_key=True)
    site_id: int = Field(foreign_key="sites.id")
    ip: str = Field(max_length=64)
    port: int
    make: str | None = Field(default=None, max_length=64)
    manufacturer: str | None = Field(default=None, max_length=64)
    model: str | None = Field(default=None, max_length=128)
    firmware_vendor: str | None = Field(default=None, max_length=64)
    firmware_version: str | None = Field(default=None, max_length=128)
    serial: str | None = Field(default=None, max_length=128)
    mac: str | None = Field(default=None, max_length=32)
    hostname: str | None = Field(default=None, max_length=255)
    rack: str | None = Field(default=None, max_length=64)
    position: str | None = Field(default=None, max_length=64)
    state: str = Field(max_length=16)
    first_seen: datetime = _ts_column()
    last_seen: datetime = _ts_column()


class SampleRow(SQLModel, table=True):
    """One poll of one device: the normalized fields of collectors.sample.Sample."""

    __tablename__ = "samples"
    __table_args__ = (
        # Retention and rollups scan by time across all devices. On PostgreSQL a BRIN index: samples
        # arrive in time order, so a few pages of summaries replace a B-tree that every insert updates.
        Index("ix_samples_ts", "ts", postgresql_using="brin"),
    )

    # The natural key is the primary key: it is the idempotency constraint (ON CONFLICT target) and
    # serves "history of one device" and "latest sample of each device" without a surrogate id and
    # its extra index.
    device_id: int = Field(foreign_key="devices.id", primary_key=True)
    ts: datetime = Field(sa_column=Column(UTCDateTime(), primary_key=True))
    state: str = Field(max_length=16)
    hashrate_ths: float | None = None
    expected_hashrate_ths: float | None = None
    temp_max_c: float | None = None
    temp_avg_c: float | None = None
    power_w: float | None = None
    efficiency_jth: float | None = None
    uptime_s: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    boards: list[dict[str, Any]] = _json_column()
    fans_rpm: list[int] = _json_column()
    pools: list[dict[str, Any]] = _json_column()
    errors: list[dict[str, Any]] = _json_column()
    make: str | None = Field(default=None, max_length=64)
    model: str | None = Field(default=None, max_length=128)
    firmware_vendor: str | None = Field(default=None, max_length=64)
    firmware_version: str | None = Field(default=None, max_length=128)
    serial: str | None = Field(default=None, max_length=128)
    mac: str | None = Field(default=None, max_length=32)
    hostname: str | None = Field(default=None, max_length=255)
    algorithm: str | None = Field(default=None, max_length=32)
    security: list[dict[str, Any]] = _json_column()
    locate: bool | None = Field(default=None)  # the locate light as the read saw it; NULL: not said


class OriginRecord(SQLModel, table=True):
    """Where one unit (by serial) was assembled and how it entered the US, with the evidence's source."""

    __tablename__ = "origin_records"

    id: int | None = Field(default=None, primary_key=True)
    serial: str = Field(max_length=128, unique=True)
    assembly_country: str | None = Field(default=None, max_length=64)
    origin_evidence: str | None = Field(default=None, max_length=64)
    confidence: float | None = None
    customs_value_usd: float | None = None
    entry_date: date | None = Field(default=None, sa_column=Column(Date, nullable=True))
    hts_code: str | None = Field(default=None, max_length=16)
    liquidation_date: date | None = Field(default=None, sa_column=Column(Date, nullable=True))
    source_file: str | None = Field(default=None, max_length=512)
    imported_at: datetime = _ts_column()


class HourlyDeviceRollup(SQLModel, table=True):
    """One device over one UTC hour; kept after the raw samples are deleted."""

    __tablename__ = "rollup_device_hourly"

    device_id: int = Field(foreign_key="devices.id", primary_key=True)
    hour: datetime = Field(sa_column=Column(UTCDateTime(), primary_key=True))
    samples: int
    up_samples: int
    up_fraction: float
    hashrate_avg_ths: float | None = None
    hashrate_min_ths: float | None = None
    hashrate_max_ths: float | None = None
    power_avg_w: float | None = None
    temp_max_avg_c: float | None = None


class DailyGroupRollup(SQLModel, table=True):
    """One fleet group (site x make x model) over one UTC day, built from the hourly rollups.

    Unknown make or model is stored as the empty string so the primary key stays non-null.
    """

    __tablename__ = "rollup_group_daily"
    __table_args__ = (Index("ix_rollup_group_daily_day", "day"),)

    day: date = Field(sa_column=Column(Date, primary_key=True))
    site_id: int = Field(foreign_key="sites.id", primary_key=True)
    make: str = Field(max_length=64, primary_key=True)
    model: str = Field(max_length=128, primary_key=True)
    devices: int
    samples: int
    up_fraction: float
    hashrate_total_avg_ths: float | None = None
    power_total_avg_w: float | None = None
    temp_max_c: float | None = None


class ApiKey(SQLModel, table=True):
    """An API key of the service: only the SHA-256 of its secret part is stored (see service/auth.py)."""

    __tablename__ = "api_keys"

    id: str = Field(primary_key=True, max_length=32)  # the public part of the token, `fm_<id>_...`
    name: str | None = Field(default=None, max_length=128)
    role: str = Field(max_length=16)
    secret_sha256: str = Field(max_length=64)
    created_at: datetime = _ts_column()
    last_used_at: datetime | None = _ts_column(nullable=True)
    revoked_at: datetime | None = _ts_column(nullable=True)


class RejectedSample(SQLModel, table=True):
    """A dead letter: a sample or payload that could not be stored, kept raw so nothing is lost.

    Written by the sample writer (fleetmon.storage.rejected) for samples the database refused and
    payloads that are not samples at all; listed by `fleetmon db rejected`. The payload is bytes (BLOB /
    bytea) because it must hold exactly what arrived, NUL characters and invalid UTF-8 included, which
    no text column can; the text columns are unbounded so a dead letter is never refused for its length.
    """

    __tablename__ = "rejected_samples"
    __table_args__ = (Index("ix_rejected_samples_received_at", "received_at"),)

    id: int | None = Field(default=None, primary_key=True)
    received_at: datetime = _ts_column()
    source: str = Field(sa_column=Column(Text, nullable=False))
    site: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    error: str = Field(sa_column=Column(Text, nullable=False))
    payload: bytes = Field(sa_column=Column(LargeBinary, nullable=False))


class ActionJob(SQLModel, table=True):
    """One operator action over one or more devices (fleetmon.service.jobs runs it).

    `params`, `selector` and `ramp` are the request as accepted; `steps` the ramp's steps as they ran
    (a JSON list, rewritten whole when a step changes: a job has a handful of steps, never thousands).
    `owner` is the collecting process running it (`actions.instance`), which renews `heartbeat_at` while
    it does; both NULL for jobs stored before revision 0010.
    """

    __tablename__ = "action_jobs"
    __table_args__ = (Index("ix_action_jobs_created_at", "created_at"),)

    id: str = Field(primary_key=True, max_length=32)
    action: str = Field(max_length=32)
    params: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON(), nullable=False))
    selector: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON(), nullable=True))
    ramp: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON(), nullable=True))
    state: str = Field(max_length=16)
    actor_key_id: str = Field(max_length=32)
    actor_name: str | None = Field(default=None, max_length=128)
    role: str = Field(max_length=16)
    created_at: datetime = _ts_column()
    finished_at: datetime | None = _ts_column(nullable=True)
    steps: list[dict[str, Any]] = _json_column()
    detail: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    owner: str | None = Field(default=None, max_length=128)
    heartbeat_at: datetime | None = _ts_column(nullable=True)


class ActionTask(SQLModel, table=True):
    """One device's part of a job: its state and, when it ended badly, the error code and message."""

    __tablename__ = "action_tasks"
    __table_args__ = (Index("ix_action_tasks_device_id", "device_id"),)

    job_id: str = Field(foreign_key="action_jobs.id", primary_key=True, max_length=32)
    device_id: int = Field(primary_key=True)
    position: int  # order within the job (the ramp's order)
    step: int | None = None  # the ramp step it belongs to, once planned
    host: str = Field(max_length=64)
    state: str = Field(max_length=16)
    power_w_before: float | None = None  # measured power when the job was planned
    error_code: str | None = Field(default=None, max_length=64)
    detail: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    started_at: datetime | None = _ts_column(nullable=True)
    finished_at: datetime | None = _ts_column(nullable=True)
    locate: bool | None = None  # the locate light as the device confirmed it when the task ended


class AuditEntry(SQLModel, table=True):
    """Who asked for what, on which devices, and how it ended; refused attempts included."""

    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_log_at", "at"),)

    id: int | None = Field(default=None, primary_key=True)
    at: datetime = _ts_column()
    actor_key_id: str | None = Field(default=None, max_length=32)
    actor_name: str | None = Field(default=None, max_length=128)
    role: str | None = Field(default=None, max_length=16)
    action: str = Field(max_length=32)
    params: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON(), nullable=False))
    device_ids: list[int] = _json_column()
    job_id: str | None = Field(default=None, max_length=32)
    outcome: str = Field(max_length=16)
    detail: str | None = Field(default=None, sa_column=Column(Text, nullable=True))


class AuditDevice(SQLModel, table=True):
    """Which devices an audit entry names, so `?device_id=` is an indexed lookup, not a JSON scan."""

    __tablename__ = "audit_log_devices"
    __table_args__ = (Index("ix_audit_log_devices_device_id", "device_id"),)

    audit_id: int = Field(foreign_key="audit_log.id", primary_key=True)
    device_id: int = Field(primary_key=True)


class IdempotencyKey(SQLModel, table=True):
    """An `Idempotency-Key` a principal sent, the fingerprint of its request, and the job it created."""

    __tablename__ = "idempotency_keys"

    key: str = Field(primary_key=True, max_length=255)
    actor_key_id: str = Field(primary_key=True, max_length=32)
    fingerprint: str = Field(max_length=64)
    job_id: str = Field(foreign_key="action_jobs.id", max_length=32)
    created_at: datetime = _ts_column()
