"""Dead letters: samples and payloads the database refused, kept raw in rejected_samples.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-24 18:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "rejected_samples",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("site", sa.Text(), nullable=True),
        sa.Column("error", sa.Text(), nullable=False),
        sa.Column("payload", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("rejected_samples", schema=None) as batch_op:
        batch_op.create_index("ix_rejected_samples_received_at", ["received_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("rejected_samples", schema=None) as batch_op:
        batch_op.drop_index("ix_rejected_samples_received_at")
    op.drop_table("rejected_samples")
