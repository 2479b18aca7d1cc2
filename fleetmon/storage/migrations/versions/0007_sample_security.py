"""Samples keep their security-posture findings (collectors.posture), so `db export-samples` gives back
the sample the collector produced and history can show since when a miner was open.

A JSON list like boards, pools and errors (`json` on PostgreSQL, as they are since revision 0006: the
writer's text is kept as sent). Rows stored before this revision get
the empty list: they were read before posture checks existed, and "no finding" is what they said.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-06 22:10:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    json_type = sa.JSON()
    with op.batch_alter_table("samples", schema=None) as batch_op:
        batch_op.add_column(sa.Column("security", json_type, nullable=False, server_default=sa.text("'[]'")))


def downgrade() -> None:
    with op.batch_alter_table("samples", schema=None) as batch_op:
        batch_op.drop_column("security")
