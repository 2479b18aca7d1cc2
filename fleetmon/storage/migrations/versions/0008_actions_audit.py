"""Operator actions: jobs, their per-device tasks, the audit log and idempotency keys (issue 19).

Plain tables on both dialects (none is partitioned: a job or audit row is written per operator request,
not per poll). JSON columns are `json` on PostgreSQL like the samples'.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-06 23:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    ts = sa.DateTime(timezone=True)
    op.create_table(
        "action_jobs",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("action", sa.String(length=32), nullable=False),
        sa.Column("params", sa.JSON(), nullable=False),
        sa.Column("selector", sa.JSON(), nullable=True),
        sa.Column("ramp", sa.JSON(), nullable=True),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("actor_key_id", sa.String(length=32), nullable=False),
        sa.Column("actor_name", sa.String(length=128), nullable=True),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("created_at", ts, nullable=False),
        sa.Column("finished_at", ts, nullable=True),
        sa.Column("steps", sa.JSON(), nullable=False),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_action_jobs_created_at", "action_jobs", ["created_at"])
    op.create_table(
        "action_tasks",
        sa.Column("job_id", sa.String(length=32), nullable=False),
        sa.Column("device_id", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("step", sa.Integer(), nullable=True),
        sa.Column("host", sa.String(length=64), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("power_w_before", sa.Float(), nullable=True),
        sa.Column("error_code", sa.String(length=64), nullable=True),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.Column("started_at", ts, nullable=True),
        sa.Column("finished_at", ts, nullable=True),
        sa.ForeignKeyConstraint(["job_id"], ["action_jobs.id"]),
        sa.PrimaryKeyConstraint("job_id", "device_id"),
    )
    op.create_index("ix_action_tasks_device_id", "action_tasks", ["device_id"])
    op.create_table(
        "audit_log",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("at", ts, nullable=False),
        sa.Column("actor_key_id", sa.String(length=32), nullable=True),
        sa.Column("actor_name", sa.String(length=128), nullable=True),
        sa.Column("role", sa.String(length=16), nullable=True),
        sa.Column("action", sa.String(length=32), nullable=False),
        sa.Column("params", sa.JSON(), nullable=False),
        sa.Column("device_ids", sa.JSON(), nullable=False),
        sa.Column("job_id", sa.String(length=32), nullable=True),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_audit_log_at", "audit_log", ["at"])
    op.create_table(
        "audit_log_devices",
        sa.Column("audit_id", sa.Integer(), nullable=False),
        sa.Column("device_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["audit_id"], ["audit_log.id"]),
        sa.PrimaryKeyConstraint("audit_id", "device_id"),
    )
    op.create_index("ix_audit_log_devices_device_id", "audit_log_devices", ["device_id"])
    op.create_table(
        "idempotency_keys",
        sa.Column("key", sa.String(length=255), nullable=False),
        sa.Column("actor_key_id", sa.String(length=32), nullable=False),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("job_id", sa.String(length=32), nullable=False),
        sa.Column("created_at", ts, nullable=False),
        sa.ForeignKeyConstraint(["job_id"], ["action_jobs.id"]),
        sa.PrimaryKeyConstraint("key", "actor_key_id"),
    )


def downgrade() -> None:
    op.drop_table("idempotency_keys")
    op.drop_index("ix_audit_log_devices_device_id", table_name="audit_log_devices")
    op.drop_table("audit_log_devices")
    op.drop_index("ix_audit_log_at", table_name="audit_log")
    op.drop_table("audit_log")
    op.drop_index("ix_action_tasks_device_id", table_name="action_tasks")
    op.drop_table("action_tasks")
    op.drop_index("ix_action_jobs_created_at", table_name="action_jobs")
    op.drop_table("action_jobs")
