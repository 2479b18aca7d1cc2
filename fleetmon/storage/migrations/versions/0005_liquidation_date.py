"""Inventory records carry the entry's liquidation date (IEEPA refunds split by CBP's CAPE process).

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-06 21:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("origin_records", schema=None) as batch_op:
        batch_op.add_column(sa.Column("liquidation_date", sa.Date(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("origin_records", schema=None) as batch_op:
        batch_op.drop_column("liquidation_date")
