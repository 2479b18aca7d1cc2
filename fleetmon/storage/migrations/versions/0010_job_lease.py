"""Job ownership: which collecting process runs an action job, and when it last said it still does.

Several collecting processes (one per site) share one database. At start-up a process used to end every
job stored `queued` or `running`, the jobs other, healthy processes were running included. Now a job
names its owner (`actions.instance`) and the owner renews `heartbeat_at` while it runs the job: a process
ends at start the jobs it owns, and any process ends the jobs whose heartbeat went stale (their owner
died). fleetmon.service.jobs has the rules.

Both nullable, no default written: jobs stored before this revision have neither, and count as stale
(whoever ran them stopped long ago or runs code that cannot renew them). On PostgreSQL the ALTERs are
catalogue changes, not rewrites. On SQLite they are plain ALTER TABLE ADD/DROP COLUMN (SQLite 3.35 or
newer for DROP), never a batch rebuild: a rebuild drops `action_jobs`, which `action_tasks` and
`idempotency_keys` reference, and with foreign keys on that DROP fails as soon as a job is stored.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-07 02:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("action_jobs", schema=None, recreate="never") as batch_op:
        batch_op.add_column(sa.Column("owner", sa.String(length=128), nullable=True))
        batch_op.add_column(sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("action_jobs", schema=None, recreate="never") as batch_op:
        batch_op.drop_column("heartbeat_at")
        batch_op.drop_column("owner")
