"""Estate send runs: a CS02b command per device, sent in leased chunks, with each device's outcome

Revision ID: 0020_estate_send_runs
Revises: 0016_estate_pending
Create Date: 2026-12-03
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0020_estate_send_runs"
down_revision = "0016_estate_pending"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "estate_send_run",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("mode", sa.String(length=20), nullable=False),
        sa.Column("roles", sa.Text(), nullable=False),
        sa.Column("placements", sa.Text(), nullable=False),
        sa.Column("counter", sa.BigInteger(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("holder", sa.String(length=10), nullable=False),
        sa.Column("share_k", sa.Integer(), nullable=True),
        sa.Column("share_n", sa.Integer(), nullable=True),
        sa.Column("device_count", sa.Integer(), nullable=False),
        sa.Column("chunk_count", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("requested_by", sa.String(length=128), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_estate_send_run")),
    )
    op.create_index(op.f("ix_estate_send_run_status"), "estate_send_run", ["status"])
    op.create_table(
        "estate_send_chunk",
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("chunk", sa.Integer(), nullable=False),
        sa.Column("first_number", sa.Integer(), nullable=False),
        sa.Column("last_number", sa.Integer(), nullable=False),
        sa.Column("numbers", sa.Text(), nullable=True),
        sa.Column("state", sa.String(length=10), nullable=False),
        sa.Column("lease_token", sa.String(length=64), nullable=True),
        sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("error_code", sa.String(length=10), nullable=True),
        sa.Column("error_text", sa.Text(), nullable=True),
        sa.Column("devices", sa.Integer(), nullable=False),
        sa.Column("summary", sa.Text(), nullable=True),
        sa.Column("done_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["run_id"], ["estate_send_run.id"],
                                name=op.f("fk_estate_send_chunk_run_id_estate_send_run")),
        sa.PrimaryKeyConstraint("run_id", "chunk", name=op.f("pk_estate_send_chunk")),
    )
    op.create_index(op.f("ix_estate_send_chunk_state"), "estate_send_chunk", ["state"])
    op.create_table(
        "estate_send_outcome",
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("device_id", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("code", sa.String(length=10), nullable=True),
        sa.Column("codes", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(["run_id"], ["estate_send_run.id"],
                                name=op.f("fk_estate_send_outcome_run_id_estate_send_run")),
        sa.PrimaryKeyConstraint("run_id", "device_id", name=op.f("pk_estate_send_outcome")),
    )
    op.create_index(op.f("ix_estate_send_outcome_status"), "estate_send_outcome", ["status"])


def downgrade() -> None:
    op.drop_index(op.f("ix_estate_send_outcome_status"), table_name="estate_send_outcome")
    op.drop_table("estate_send_outcome")
    op.drop_index(op.f("ix_estate_send_chunk_state"), table_name="estate_send_chunk")
    op.drop_table("estate_send_chunk")
    op.drop_index(op.f("ix_estate_send_run_status"), table_name="estate_send_run")
    op.drop_table("estate_send_run")
