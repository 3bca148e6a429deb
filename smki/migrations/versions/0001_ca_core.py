"""CA core: the issuance ledger and the record of rejected CSRs

Revision ID: 0001_ca_core
Revises:
Create Date: 2026-11-22
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001_ca_core"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "issuance",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("serial", sa.String(length=32), nullable=False),
        sa.Column("profile", sa.String(length=32), nullable=False),
        sa.Column("issuer_name", sa.String(length=64), nullable=False),
        sa.Column("subject_id", sa.String(length=16), nullable=True),
        sa.Column("key_usage", sa.String(length=20), nullable=True),
        sa.Column("role_code", sa.Integer(), nullable=True),
        sa.Column("channel", sa.String(length=32), nullable=False),
        sa.Column("requested_by", sa.String(length=128), nullable=True),
        sa.Column("csr_sha256", sa.String(length=64), nullable=True),
        sa.Column("tbs_sha256", sa.String(length=64), nullable=False),
        sa.Column("certificate_der", sa.LargeBinary(), nullable=False),
        sa.Column("issued_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_issuance")),
        sa.UniqueConstraint("serial", name=op.f("uq_issuance_serial")),
    )
    op.create_index(op.f("ix_issuance_profile"), "issuance", ["profile"])
    op.create_index(op.f("ix_issuance_subject_id"), "issuance", ["subject_id"])
    op.create_table(
        "csr_rejection",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("channel", sa.String(length=32), nullable=False),
        sa.Column("requested_by", sa.String(length=128), nullable=True),
        sa.Column("csr_sha256", sa.String(length=64), nullable=False),
        sa.Column("code", sa.String(length=10), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_csr_rejection")),
    )
    op.create_index(op.f("ix_csr_rejection_received_at"), "csr_rejection", ["received_at"])
    op.create_index(op.f("ix_csr_rejection_code"), "csr_rejection", ["code"])


def downgrade() -> None:
    op.drop_table("csr_rejection")
    op.drop_table("issuance")
