"""RA: the audit chain's head row exists from the start, so every appender can lock it

Appenders serialise on ``SELECT ... FOR UPDATE`` of the one head row (PostgreSQL); a head that does not
exist yet cannot be locked, and two first appenders would race to create it. The head of an empty chain
is sequence number 0 with the genesis hash, which ``smki audit verify`` accepts as an intact empty chain.

Revision ID: 0007_ra_hardening
Revises: 0003_ra
Create Date: 2026-12-03
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007_ra_hardening"
down_revision = "0003_ra"
branch_labels = None
depends_on = None

GENESIS = "0" * 64


def upgrade() -> None:
    # Only an empty chain gets a genesis head: a chain with records but no head has been cut, and a new
    # head would hide that from verification.
    op.execute(sa.text(
        "INSERT INTO ra_audit_head (id, seq, hash) SELECT 1, 0, :genesis "
        "WHERE NOT EXISTS (SELECT 1 FROM ra_audit_head) AND NOT EXISTS (SELECT 1 FROM ra_audit)"
    ).bindparams(genesis=GENESIS))


def downgrade() -> None:
    op.execute(sa.text("DELETE FROM ra_audit_head WHERE seq = 0 AND hash = :genesis").bindparams(genesis=GENESIS))
