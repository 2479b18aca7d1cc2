"""Initial schema: sites, devices, samples, origin records and the two rollup tables.

Revision ID: 0001
Revises:
Create Date: 2026-11-24 23:43:43.638199
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:

    op.create_table(
        "origin_records",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("serial", sa.String(length=128), nullable=False),
        sa.Column("assembly_country", sa.String(length=64), nullable=True),
        sa.Column("origin_evidence", sa.String(length=64), nullable=True),
        sa.Column("confidence", sa.Float(), nullable=True),
        sa.Column("customs_value_usd", sa.Float(), nullable=True),
        sa.Column("entry_date", sa.Date(), nullable=True),
        sa.Column("hts_code", sa.String(length=16), nullable=True),
        sa.Column("source_file", sa.String(length=512), nullable=True),
        sa.Column("imported_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("serial"),
    )
    op.create_table(
        "sites",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("name"),
    )
    op.create_table(
        "devices",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("site_id", sa.Integer(), nullable=False),
        sa.Column("ip", sa.String(length=64), nullable=False),
        sa.Column("port", sa.Integer(), nullable=False),
        sa.Column("make", sa.String(length=64), nullable=True),
        sa.Column("manufacturer", sa.String(length=64), nullable=True),
        sa.Column("model", sa.String(length=128), nullable=True),
        sa.Column("firmware_vendor", sa.String(length=64), nullable=True),
        sa.Column("firmware_version", sa.String(length=128), nullable=True),
        sa.Column("serial", sa.String(length=128), nullable=True),
        sa.Column("mac", sa.String(length=32), nullable=True),
        sa.Column("hostname", sa.String(length=255), nullable=True),
        sa.Column("rack", sa.String(length=64), nullable=True),
        sa.Column("position", sa.String(length=64), nullable=True),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("first_seen", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["site_id"],
            ["sites.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("site_id", "ip", "port", name="uq_devices_site_ip_port"),
    )
    with op.batch_alter_table("devices", schema=None) as batch_op:
        batch_op.create_index("ix_devices_firmware_vendor", ["firmware_vendor"], unique=False)
        batch_op.create_index("ix_devices_make_model", ["make", "model"], unique=False)
        batch_op.create_index("ix_devices_serial", ["serial"], unique=False)
        batch_op.create_index("ix_devices_site_state", ["site_id", "state"], unique=False)

    op.create_table(
        "rollup_group_daily",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("site_id", sa.Integer(), nullable=False),
        sa.Column("make", sa.String(length=64), nullable=False),
        sa.Column("model", sa.String(length=128), nullable=False),
        sa.Column("devices", sa.Integer(), nullable=False),
        sa.Column("samples", sa.Integer(), nullable=False),
        sa.Column("up_fraction", sa.Float(), nullable=False),
        sa.Column("hashrate_total_avg_ths", sa.Float(), nullable=True),
        sa.Column("power_total_avg_w", sa.Float(), nullable=True),
        sa.Column("temp_max_c", sa.Float(), nullable=True),
        sa.ForeignKeyConstraint(
            ["site_id"],
            ["sites.id"],
        ),
        sa.PrimaryKeyConstraint("day", "site_id", "make", "model"),
    )
    with op.batch_alter_table("rollup_group_daily", schema=None) as batch_op:
        batch_op.create_index("ix_rollup_group_daily_day", ["day"], unique=False)

    op.create_table(
        "rollup_device_hourly",
        sa.Column("device_id", sa.Integer(), nullable=False),
        sa.Column("hour", sa.DateTime(timezone=True), nullable=False),
        sa.Column("samples", sa.Integer(), nullable=False),
        sa.Column("up_samples", sa.Integer(), nullable=False),
        sa.Column("up_fraction", sa.Float(), nullable=False),
        sa.Column("hashrate_avg_ths", sa.Float(), nullable=True),
        sa.Column("hashrate_min_ths", sa.Float(), nullable=True),
        sa.Column("hashrate_max_ths", sa.Float(), nullable=True),
        sa.Column("power_avg_w", sa.Float(), nullable=True),
        sa.Column("temp_max_avg_c", sa.Float(), nullable=True),
        sa.ForeignKeyConstraint(
            ["device_id"],
            ["devices.id"],
        ),
        sa.PrimaryKeyConstraint("device_id", "hour"),
    )
    op.create_table(
        "samples",
        sa.Column("device_id", sa.Integer(), nullable=False),
        sa.Column("ts", sa.DateTime(timezone=True), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("hashrate_ths", sa.Float(), nullable=True),
        sa.Column("expected_hashrate_ths", sa.Float(), nullable=True),
        sa.Column("temp_max_c", sa.Float(), nullable=True),
        sa.Column("temp_avg_c", sa.Float(), nullable=True),
        sa.Column("power_w", sa.Float(), nullable=True),
        sa.Column("efficiency_jth", sa.Float(), nullable=True),
        sa.Column("uptime_s", sa.BigInteger(), nullable=True),
        sa.Column("boards", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=False),
        sa.Column("fans_rpm", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=False),
        sa.Column("pools", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=False),
        sa.Column("errors", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=False),
        sa.Column("make", sa.String(length=64), nullable=True),
        sa.Column("model", sa.String(length=128), nullable=True),
        sa.Column("firmware_vendor", sa.String(length=64), nullable=True),
        sa.Column("firmware_version", sa.String(length=128), nullable=True),
        sa.Column("serial", sa.String(length=128), nullable=True),
        sa.Column("mac", sa.String(length=32), nullable=True),
        sa.Column("hostname", sa.String(length=255), nullable=True),
        sa.ForeignKeyConstraint(
            ["device_id"],
            ["devices.id"],
        ),
        sa.PrimaryKeyConstraint("device_id", "ts"),
    )
    with op.batch_alter_table("samples", schema=None) as batch_op:
        batch_op.create_index("ix_samples_ts", ["ts"], unique=False, postgresql_using="brin")


def downgrade() -> None:

    with op.batch_alter_table("samples", schema=None) as batch_op:
        batch_op.drop_index("ix_samples_ts", postgresql_using="brin")

    op.drop_table("samples")
    op.drop_table("rollup_device_hourly")
    with op.batch_alter_table("rollup_group_daily", schema=None) as batch_op:
        batch_op.drop_index("ix_rollup_group_daily_day")

    op.drop_table("rollup_group_daily")
    with op.batch_alter_table("devices", schema=None) as batch_op:
        batch_op.drop_index("ix_devices_site_state")
        batch_op.drop_index("ix_devices_serial")
        batch_op.drop_index("ix_devices_make_model")
        batch_op.drop_index("ix_devices_firmware_vendor")

    op.drop_table("devices")
    op.drop_table("sites")
    op.drop_table("origin_records")
