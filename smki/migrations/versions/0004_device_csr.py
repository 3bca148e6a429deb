"""Device CSR services: batches, chunks, per-CSR outcomes, ad hoc transactions, usage

Revision ID: 0004_device_csr
Revises: 0001_ca_core
Create Date: 2026-11-22
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004_device_csr"
down_revision = "0001_ca_core"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "device_csr_batch",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("party_id", sa.String(length=64), nullable=False),
        sa.Column("subscriber", sa.Text(), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("reference", sa.String(length=256), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("payload", sa.LargeBinary(), nullable=False),
        sa.Column("payload_sha256", sa.String(length=64), nullable=False),
        sa.Column("csr_count", sa.Integer(), nullable=False),
        sa.Column("chunk_count", sa.Integer(), nullable=False),
        sa.Column("error_code", sa.String(length=10), nullable=True),
        sa.Column("error_text", sa.Text(), nullable=True),
        sa.Column("lease_token", sa.String(length=64), nullable=True),
        sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("submitted_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("parsed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_device_csr_batch")),
    )
    op.create_index(op.f("ix_device_csr_batch_party_id"), "device_csr_batch", ["party_id"])
    op.create_index(op.f("ix_device_csr_batch_status"), "device_csr_batch", ["status"])
    op.create_index(op.f("ix_device_csr_batch_submitted_at"), "device_csr_batch", ["submitted_at"])
    op.create_table(
        "device_csr_chunk",
        sa.Column("batch_id", sa.Integer(), nullable=False),
        sa.Column("chunk", sa.Integer(), nullable=False),
        sa.Column("first_seq", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(length=10), nullable=False),
        sa.Column("lease_token", sa.String(length=64), nullable=True),
        sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("entries", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(["batch_id"], ["device_csr_batch.id"], ondelete="CASCADE",
                                name=op.f("fk_device_csr_chunk_batch_id_device_csr_batch")),
        sa.PrimaryKeyConstraint("batch_id", "chunk", name=op.f("pk_device_csr_chunk")),
    )
    op.create_table(
        "device_csr_outcome",
        sa.Column("batch_id", sa.Integer(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("csr_ref", sa.String(length=255), nullable=False),
        sa.Column("status", sa.String(length=24), nullable=False),
        sa.Column("error_code", sa.String(length=10), nullable=True),
        sa.Column("error_text", sa.Text(), nullable=True),
        sa.Column("serial", sa.String(length=32), nullable=True),
        sa.Column("device_id", sa.String(length=16), nullable=True),
        sa.Column("manufacturing_flag", sa.Boolean(), nullable=False),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["batch_id"], ["device_csr_batch.id"], ondelete="CASCADE",
                                name=op.f("fk_device_csr_outcome_batch_id_device_csr_batch")),
        sa.PrimaryKeyConstraint("batch_id", "seq", name=op.f("pk_device_csr_outcome")),
    )
    op.create_table(
        "device_csr_adhoc",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("party_id", sa.String(length=64), nullable=True),
        sa.Column("request_id", sa.String(length=32), nullable=True),
        sa.Column("status", sa.String(length=24), nullable=False),
        sa.Column("error_code", sa.String(length=10), nullable=True),
        sa.Column("serial", sa.String(length=32), nullable=True),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_device_csr_adhoc")),
    )
    op.create_index(op.f("ix_device_csr_adhoc_party_id"), "device_csr_adhoc", ["party_id"])
    op.create_index(op.f("ix_device_csr_adhoc_received_at"), "device_csr_adhoc", ["received_at"])
    op.create_table(
        "device_csr_usage",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("party_id", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=24), nullable=False),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("exceeded", sa.String(length=64), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_device_csr_usage")),
    )
    op.create_index(op.f("ix_device_csr_usage_party_id"), "device_csr_usage", ["party_id"])
    op.create_index(op.f("ix_device_csr_usage_at"), "device_csr_usage", ["at"])


def downgrade() -> None:
    op.drop_table("device_csr_usage")
    op.drop_table("device_csr_adhoc")
    op.drop_table("device_csr_outcome")
    op.drop_table("device_csr_chunk")
    op.drop_table("device_csr_batch")
