"""Samples keep the hashing algorithm of the machine (SHA-256, Scrypt, ...), so history can tell bitcoin
hashrate from other coins' without the catalog of the day.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-06 21:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Nullable, no default: samples stored before this revision did not say (readers take SHA-256).
    with op.batch_alter_table("samples", schema=None) as batch_op:
        batch_op.add_column(sa.Column("algorithm", sa.String(length=32), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("samples", schema=None) as batch_op:
        batch_op.drop_column("algorithm")
