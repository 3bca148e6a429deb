"""Key custody: the Recovery and Contingency keys' custodies, share commitments, PMA decisions, ceremonies

Revision ID: 0018_custody
Revises: 0007_ra_hardening
Create Date: 2026-12-03
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0018_custody"
down_revision = "0007_ra_hardening"
branch_labels = None
depends_on = None

_WHEN = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "rc_custody",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("key_name", sa.String(length=16), nullable=False),
        sa.Column("generation", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("threshold", sa.Integer(), nullable=False),
        sa.Column("share_count", sa.Integer(), nullable=False),
        sa.Column("sealed", sa.JSON(), nullable=False),
        sa.Column("public_key", sa.Text(), nullable=False),
        sa.Column("created_at", _WHEN, nullable=False),
        sa.Column("retired_at", _WHEN, nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_rc_custody")),
        sa.UniqueConstraint("key_name", "generation", name="uq_rc_custody_generation"),
    )
    op.create_index(op.f("ix_rc_custody_status"), "rc_custody", ["status"])
    op.create_table(
        "rc_custodian_share",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("custody_id", sa.Integer(), nullable=False),
        sa.Column("appointment_id", sa.Integer(), nullable=False),
        sa.Column("organisation_id", sa.Integer(), nullable=False),
        sa.Column("custodian_name", sa.String(length=200), nullable=False),
        sa.Column("share_index", sa.Integer(), nullable=False),
        sa.Column("commitment", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(["custody_id"], ["rc_custody.id"],
                                name=op.f("fk_rc_custodian_share_custody_id_rc_custody")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_rc_custodian_share")),
        sa.UniqueConstraint("custody_id", "appointment_id", name="uq_rc_custodian_share_custodian"),
        sa.UniqueConstraint("custody_id", "share_index", name="uq_rc_custodian_share_index"),
    )
    op.create_index(op.f("ix_rc_custodian_share_custody_id"), "rc_custodian_share", ["custody_id"])
    op.create_table(
        "rc_pma_decision",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("key_name", sa.String(length=16), nullable=False),
        sa.Column("purpose", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("decided_by", sa.String(length=128), nullable=False),
        sa.Column("decided_at", _WHEN, nullable=False),
        sa.Column("ceremony_id", sa.Integer(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_rc_pma_decision")),
        sa.UniqueConstraint("ceremony_id", name=op.f("uq_rc_pma_decision_ceremony_id")),
    )
    op.create_table(
        "rc_ceremony",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("custody_id", sa.Integer(), nullable=False),
        sa.Column("decision_id", sa.Integer(), nullable=False),
        sa.Column("purpose", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("opened_by", sa.String(length=128), nullable=False),
        sa.Column("opened_at", _WHEN, nullable=False),
        sa.Column("closed_at", _WHEN, nullable=True),
        sa.Column("outcome", sa.String(length=32), nullable=True),
        sa.Column("steps", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(["custody_id"], ["rc_custody.id"], name=op.f("fk_rc_ceremony_custody_id_rc_custody")),
        sa.ForeignKeyConstraint(["decision_id"], ["rc_pma_decision.id"],
                                name=op.f("fk_rc_ceremony_decision_id_rc_pma_decision")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_rc_ceremony")),
        sa.UniqueConstraint("decision_id", name=op.f("uq_rc_ceremony_decision_id")),
    )
    op.create_index(op.f("ix_rc_ceremony_custody_id"), "rc_ceremony", ["custody_id"])
    op.create_index(op.f("ix_rc_ceremony_status"), "rc_ceremony", ["status"])
    op.create_table(
        "rc_presentation",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("ceremony_id", sa.Integer(), nullable=False),
        sa.Column("share_id", sa.Integer(), nullable=False),
        sa.Column("presented_at", _WHEN, nullable=False),
        sa.ForeignKeyConstraint(["ceremony_id"], ["rc_ceremony.id"],
                                name=op.f("fk_rc_presentation_ceremony_id_rc_ceremony")),
        sa.ForeignKeyConstraint(["share_id"], ["rc_custodian_share.id"],
                                name=op.f("fk_rc_presentation_share_id_rc_custodian_share")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_rc_presentation")),
        sa.UniqueConstraint("ceremony_id", "share_id", name="uq_rc_presentation_share"),
    )
    op.create_index(op.f("ix_rc_presentation_ceremony_id"), "rc_presentation", ["ceremony_id"])


def downgrade() -> None:
    op.drop_table("rc_presentation")
    op.drop_table("rc_ceremony")
    op.drop_table("rc_pma_decision")
    op.drop_table("rc_custodian_share")
    op.drop_table("rc_custody")
