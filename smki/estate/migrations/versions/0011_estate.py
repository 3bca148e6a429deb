"""The simulated device estate: runs, chunks, anchor certificates, devices with their cells, test keys

Revision ID: 0011_estate
Revises: 0001_ca_core
Create Date: 2026-12-03
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011_estate"
down_revision = "0001_ca_core"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "estate_run",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("device_count", sa.Integer(), nullable=False),
        sa.Column("first_number", sa.Integer(), nullable=False),
        sa.Column("chunk_size", sa.Integer(), nullable=False),
        sa.Column("chunk_count", sa.Integer(), nullable=False),
        sa.Column("plan", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("requested_by", sa.String(length=128), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_estate_run")),
        sa.UniqueConstraint("first_number", name=op.f("uq_estate_run_first_number")),
    )
    op.create_index(op.f("ix_estate_run_status"), "estate_run", ["status"])
    op.create_table(
        "estate_chunk",
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("chunk", sa.Integer(), nullable=False),
        sa.Column("first_number", sa.Integer(), nullable=False),
        sa.Column("device_count", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(length=10), nullable=False),
        sa.Column("lease_token", sa.String(length=64), nullable=True),
        sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("error_code", sa.String(length=10), nullable=True),
        sa.Column("error_text", sa.Text(), nullable=True),
        sa.Column("done_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["run_id"], ["estate_run.id"], name=op.f("fk_estate_chunk_run_id_estate_run")),
        sa.PrimaryKeyConstraint("run_id", "chunk", name=op.f("pk_estate_chunk")),
    )
    op.create_index(op.f("ix_estate_chunk_state"), "estate_chunk", ["state"])
    op.create_table(
        "estate_anchor",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("serial", sa.String(length=40), nullable=False),
        sa.Column("issuer", sa.String(length=200), nullable=False),
        sa.Column("role", sa.SmallInteger(), nullable=False),
        sa.Column("key_usage", sa.String(length=16), nullable=False),
        sa.Column("subject_eui", sa.String(length=16), nullable=True),
        sa.Column("subject_key_identifier", sa.String(length=64), nullable=False),
        sa.Column("party_id", sa.Integer(), nullable=True),
        sa.Column("der", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_estate_anchor")),
        sa.UniqueConstraint("serial", "issuer", name=op.f("uq_estate_anchor_serial")),
    )
    op.create_table(
        "estate_device",
        sa.Column("number", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("device_id", sa.String(length=16), nullable=False),
        sa.Column("device_type", sa.String(length=16), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("supplier_party_id", sa.Integer(), nullable=True),
        sa.Column("network_operator_party_id", sa.Integer(), nullable=True),
        sa.Column("ds_private_key", sa.LargeBinary(), nullable=True),
        sa.Column("ka_private_key", sa.LargeBinary(), nullable=True),
        sa.Column("ds_serial", sa.String(length=40), nullable=True),
        sa.Column("ka_serial", sa.String(length=40), nullable=True),
        sa.Column("counters", sa.Text(), nullable=False),
        sa.Column("faults", sa.Integer(), nullable=False),
        sa.Column("cells", sa.Text(), nullable=False),
        sa.Column("anchor_state", sa.String(length=12), nullable=False),
        sa.Column("installed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("number", name=op.f("pk_estate_device")),
        sa.UniqueConstraint("device_id", name=op.f("uq_estate_device_device_id")),
    )
    op.create_index(op.f("ix_estate_device_anchor_state"), "estate_device", ["anchor_state"])
    op.create_index(op.f("ix_estate_device_device_type"), "estate_device", ["device_type"])
    op.create_index(op.f("ix_estate_device_run_id"), "estate_device", ["run_id"])
    op.create_table(
        "estate_test_key",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("party_id", sa.Integer(), nullable=False),
        sa.Column("role", sa.SmallInteger(), nullable=False),
        sa.Column("key_usage", sa.String(length=16), nullable=False),
        sa.Column("cell_usage", sa.SmallInteger(), nullable=False),
        sa.Column("subject_eui", sa.String(length=16), nullable=False),
        sa.Column("serial", sa.String(length=40), nullable=False),
        sa.Column("private_key", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_estate_test_key")),
        sa.UniqueConstraint("serial", name=op.f("uq_estate_test_key_serial")),
    )
    op.create_index(op.f("ix_estate_test_key_party_id"), "estate_test_key", ["party_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_estate_test_key_party_id"), table_name="estate_test_key")
    op.drop_table("estate_test_key")
    op.drop_index(op.f("ix_estate_device_anchor_state"), table_name="estate_device")
    op.drop_index(op.f("ix_estate_device_run_id"), table_name="estate_device")
    op.drop_index(op.f("ix_estate_device_device_type"), table_name="estate_device")
    op.drop_table("estate_device")
    op.drop_table("estate_anchor")
    op.drop_index(op.f("ix_estate_chunk_state"), table_name="estate_chunk")
    op.drop_table("estate_chunk")
    op.drop_index(op.f("ix_estate_run_status"), table_name="estate_run")
    op.drop_table("estate_run")
