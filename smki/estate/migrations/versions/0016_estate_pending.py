"""Future-dated commands a device has accepted and not yet run, kept with the device

Revision ID: 0016_estate_pending
Revises: 0011_estate
Create Date: 2026-12-03
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0016_estate_pending"
down_revision = "0011_estate"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("estate_device") as batch:
        batch.add_column(sa.Column("pending", sa.Text(), nullable=True))
        batch.add_column(sa.Column("next_due_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("alerts_sent", sa.Integer(), server_default="0", nullable=False))
        batch.create_index(batch.f("ix_estate_device_next_due_at"), ["next_due_at"])


def downgrade() -> None:
    with op.batch_alter_table("estate_device") as batch:
        batch.drop_index(batch.f("ix_estate_device_next_due_at"))
        batch.drop_column("alerts_sent")
        batch.drop_column("next_due_at")
        batch.drop_column("pending")
