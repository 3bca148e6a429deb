"""Repository lodging: drop the serial index the unique (serial, issuer) index makes redundant

Revision ID: 0006_repository_lodging
Revises: 0002_repository
Create Date: 2026-12-03

Every query by serial (retrieval, the revocation status issuance reads, lodging's ON CONFLICT) uses the
unique (serial, issuer) index, whose first column is the serial; one index fewer to maintain per lodged
certificate.
"""
from __future__ import annotations

from alembic import op

revision = "0006_repository_lodging"
down_revision = "0002_repository"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("repository_certificate", schema=None) as batch_op:
        batch_op.drop_index("ix_repository_certificate_serial")


def downgrade() -> None:
    with op.batch_alter_table("repository_certificate", schema=None) as batch_op:
        batch_op.create_index("ix_repository_certificate_serial", ["serial"], unique=False)
