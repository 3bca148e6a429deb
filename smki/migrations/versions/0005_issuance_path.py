"""Issuance path: a per-device tally of Device Certificates, and only the ledger indexes a query uses

Revision ID: 0005_issuance_path
Revises: 0001_ca_core
Create Date: 2026-12-03

``device_certificate_tally`` is backfilled from the ledger, so an existing instance keeps its counts.
``ix_issuance_profile`` served no query (every lookup by profile also names the subject, whose index is
the selective one) and is dropped; ``issued_at`` gets the index the lodging reconciliation's window needs.
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005_issuance_path"
down_revision = "0001_ca_core"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "device_certificate_tally",
        sa.Column("device_id", sa.String(length=16), nullable=False),
        sa.Column("issued", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("device_id", name=op.f("pk_device_certificate_tally")),
        sqlite_with_rowid=False,
    )
    op.execute("INSERT INTO device_certificate_tally (device_id, issued) "
               "SELECT subject_id, COUNT(*) FROM issuance "
               "WHERE profile = 'device' AND subject_id IS NOT NULL GROUP BY subject_id")
    op.drop_index("ix_issuance_profile", table_name="issuance")
    op.create_index(op.f("ix_issuance_issued_at"), "issuance", ["issued_at"])


def downgrade() -> None:
    op.drop_index(op.f("ix_issuance_issued_at"), table_name="issuance")
    op.create_index("ix_issuance_profile", "issuance", ["profile"])
    op.drop_table("device_certificate_tally")
