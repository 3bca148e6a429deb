"""Drills: the host's index of drill runs, their steps and the devices they affected

Revision ID: 0019_drills
Revises:
Create Date: 2026-12-03
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0019_drills"
down_revision = None
branch_labels = ("drills",)
depends_on = None

_WHEN = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "drill_run",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("scenario", sa.String(length=40), nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("seed", sa.Integer(), nullable=False),
        sa.Column("options", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("pause_requested", sa.Boolean(), nullable=False),
        sa.Column("world_dir", sa.Text(), nullable=False),
        sa.Column("world_schema", sa.String(length=40), nullable=True),
        sa.Column("started_by", sa.String(length=128), nullable=False),
        sa.Column("created_at", _WHEN, nullable=False),
        sa.Column("started_at", _WHEN, nullable=True),
        sa.Column("ended_at", _WHEN, nullable=True),
        sa.Column("lease_token", sa.String(length=64), nullable=True),
        sa.Column("lease_until", _WHEN, nullable=True),
        sa.Column("phase", sa.String(length=16), nullable=True),
        sa.Column("step_id", sa.String(length=40), nullable=True),
        sa.Column("devices_total", sa.Integer(), nullable=False),
        sa.Column("devices_done", sa.Integer(), nullable=False),
        sa.Column("devices_started_at", _WHEN, nullable=True),
        sa.Column("progress_at", _WHEN, nullable=True),
        sa.Column("context", sa.JSON(), nullable=False),
        sa.Column("error_code", sa.String(length=16), nullable=True),
        sa.Column("error_text", sa.Text(), nullable=True),
        sa.Column("document_id", sa.String(length=64), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_drill_run")),
    )
    op.create_index(op.f("ix_drill_run_scenario"), "drill_run", ["scenario"])
    op.create_index(op.f("ix_drill_run_status"), "drill_run", ["status"])
    op.create_table(
        "drill_step",
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("step_id", sa.String(length=40), nullable=False),
        sa.Column("phase", sa.String(length=16), nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("actor_role", sa.String(length=16), nullable=False),
        sa.Column("actor", sa.String(length=200), nullable=True),
        sa.Column("action", sa.String(length=32), nullable=False),
        sa.Column("confidence", sa.String(length=1), nullable=False),
        sa.Column("target_minutes", sa.Float(), nullable=True),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("started_at", _WHEN, nullable=True),
        sa.Column("ended_at", _WHEN, nullable=True),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.Column("artefacts", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(["run_id"], ["drill_run.id"], name=op.f("fk_drill_step_run_id_drill_run")),
        sa.PrimaryKeyConstraint("run_id", "position", name=op.f("pk_drill_step")),
    )
    op.create_table(
        "drill_device",
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("device_id", sa.String(length=16), nullable=False),
        sa.Column("device_type", sa.String(length=16), nullable=False),
        sa.Column("party", sa.String(length=200), nullable=True),
        sa.Column("faults", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("codes", sa.JSON(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("cells_before", sa.JSON(), nullable=False),
        sa.Column("cells_after", sa.JSON(), nullable=False),
        sa.Column("recovered_at", _WHEN, nullable=True),
        sa.ForeignKeyConstraint(["run_id"], ["drill_run.id"], name=op.f("fk_drill_device_run_id_drill_run")),
        sa.PrimaryKeyConstraint("run_id", "device_id", name=op.f("pk_drill_device")),
    )
    op.create_index(op.f("ix_drill_device_status"), "drill_device", ["status"])


def downgrade() -> None:
    op.drop_table("drill_device")
    op.drop_table("drill_step")
    op.drop_table("drill_run")
