"""SREPT rehearsals: runs, the interactions recorded while a run is open, and the scenarios they counted for

Revision ID: 0021_srept
Revises: (the SREPT area's own branch)
Create Date: 2026-12-03
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0021_srept"
down_revision = None
branch_labels = ("srept",)
depends_on = None

_WHEN = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "srept_run",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("organisation_id", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("opened_by", sa.String(length=128), nullable=False),
        sa.Column("opened_at", _WHEN, nullable=False),
        sa.Column("closed_by", sa.String(length=128), nullable=True),
        sa.Column("closed_at", _WHEN, nullable=True),
        sa.Column("run_key_sha256", sa.String(length=64), nullable=False),
        sa.Column("catalogue_sha256", sa.String(length=64), nullable=False),
        sa.Column("scenarios", sa.JSON(), nullable=False),
        sa.Column("rehearsal_granted", sa.JSON(), nullable=False),
        sa.Column("pass_recorded_by", sa.String(length=128), nullable=True),
        sa.Column("pass_recorded_at", _WHEN, nullable=True),
        sa.Column("pack_sha256", sa.String(length=64), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_srept_run")),
        sa.UniqueConstraint("run_key_sha256", name=op.f("uq_srept_run_run_key_sha256")),
    )
    op.create_index(op.f("ix_srept_run_organisation_id"), "srept_run", ["organisation_id"])
    op.create_index(op.f("ix_srept_run_status"), "srept_run", ["status"])
    op.create_table(
        "srept_interaction",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("at", _WHEN, nullable=False),
        sa.Column("method", sa.String(length=8), nullable=False),
        sa.Column("path", sa.String(length=500), nullable=False),
        sa.Column("query", sa.JSON(), nullable=False),
        sa.Column("credential_kind", sa.String(length=24), nullable=False),
        sa.Column("credential_holder", sa.String(length=160), nullable=True),
        sa.Column("person_id", sa.Integer(), nullable=True),
        sa.Column("declared_scenario", sa.String(length=32), nullable=True),
        sa.Column("http_status", sa.Integer(), nullable=False),
        sa.Column("service_status", sa.String(length=32), nullable=True),
        sa.Column("error_code", sa.String(length=16), nullable=True),
        sa.Column("audit_reference", sa.String(length=80), nullable=True),
        sa.Column("elapsed_ms", sa.Integer(), nullable=False),
        sa.Column("request_type", sa.String(length=128), nullable=True),
        sa.Column("request_body", sa.LargeBinary(), nullable=False),
        sa.Column("request_truncated", sa.Boolean(), nullable=False),
        sa.Column("response_type", sa.String(length=128), nullable=True),
        sa.Column("response_body", sa.LargeBinary(), nullable=False),
        sa.Column("response_truncated", sa.Boolean(), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(["run_id"], ["srept_run.id"], name=op.f("fk_srept_interaction_run_id_srept_run")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_srept_interaction")),
    )
    op.create_index(op.f("ix_srept_interaction_run_id"), "srept_interaction", ["run_id"])
    op.create_table(
        "srept_match",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("scenario_id", sa.String(length=32), nullable=False),
        sa.Column("interaction_id", sa.Integer(), nullable=False),
        sa.Column("passed", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(["run_id"], ["srept_run.id"], name=op.f("fk_srept_match_run_id_srept_run")),
        sa.ForeignKeyConstraint(["interaction_id"], ["srept_interaction.id"],
                                name=op.f("fk_srept_match_interaction_id_srept_interaction")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_srept_match")),
    )
    op.create_index("ix_srept_match_run_scenario", "srept_match", ["run_id", "scenario_id"])
    op.create_index(op.f("ix_srept_match_interaction_id"), "srept_match", ["interaction_id"])


def downgrade() -> None:
    op.drop_table("srept_match")
    op.drop_table("srept_interaction")
    op.drop_table("srept_run")
