"""The locate light: samples keep it as the read saw it (`Sample.locate`), action tasks as the device
confirmed it (a locate's answer; off after a reboot), so every replica can tell a device's light and
where that came from.

A nullable boolean: NULL where the read did not say (stock Antminer and VNish polls carry no light
state) and for every row stored before this revision. On PostgreSQL `samples` is partitioned by day
(revision 0006): the column is added to the parent, which adds it to every partition, the default one
included. No default is written into existing rows, so the ALTER is a catalogue change, not a rewrite.
`action_tasks.locate` is likewise nullable: NULL for actions that say nothing about the light.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07 00:10:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("samples", schema=None) as batch_op:
        batch_op.add_column(sa.Column("locate", sa.Boolean(), nullable=True))
    with op.batch_alter_table("action_tasks", schema=None) as batch_op:
        batch_op.add_column(sa.Column("locate", sa.Boolean(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("action_tasks", schema=None) as batch_op:
        batch_op.drop_column("locate")
    with op.batch_alter_table("samples", schema=None) as batch_op:
        batch_op.drop_column("locate")
