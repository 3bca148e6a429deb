"""Reports: the RA's CSR forecasts and exceptional-demand notices, and the reports' runs and renderings

Revision ID: 0012_reports
Revises: 0003_ra
Create Date: 2026-12-03
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012_reports"
down_revision = "0003_ra"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "ra_csr_forecast",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("organisation_id", sa.Integer(), nullable=False),
        sa.Column("quarter", sa.String(length=7), nullable=False),
        sa.Column("submission_id", sa.Integer(), nullable=True),
        sa.Column("submitted_by", sa.Integer(), nullable=True),
        sa.Column("submitted_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["organisation_id"], ["ra_organisation.id"],
                                name=op.f("fk_ra_csr_forecast_organisation_id_ra_organisation")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ra_csr_forecast")),
    )
    op.create_index(op.f("ix_ra_csr_forecast_organisation_id"), "ra_csr_forecast", ["organisation_id"])
    op.create_table(
        "ra_csr_forecast_month",
        sa.Column("forecast_id", sa.Integer(), nullable=False),
        sa.Column("month", sa.String(length=7), nullable=False),
        sa.Column("organisation_id", sa.Integer(), nullable=False),
        sa.Column("device_single", sa.Integer(), nullable=False),
        sa.Column("device_batched", sa.Integer(), nullable=False),
        sa.Column("organisation", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["forecast_id"], ["ra_csr_forecast.id"], ondelete="CASCADE",
                                name=op.f("fk_ra_csr_forecast_month_forecast_id_ra_csr_forecast")),
        sa.PrimaryKeyConstraint("forecast_id", "month", name=op.f("pk_ra_csr_forecast_month")),
    )
    op.create_index(op.f("ix_ra_csr_forecast_month_month"), "ra_csr_forecast_month", ["month"])
    op.create_index(op.f("ix_ra_csr_forecast_month_organisation_id"), "ra_csr_forecast_month", ["organisation_id"])
    op.create_table(
        "ra_demand_notice",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("organisation_id", sa.Integer(), nullable=False),
        sa.Column("month", sa.String(length=7), nullable=False),
        sa.Column("expected_device_csrs", sa.Integer(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("submission_id", sa.Integer(), nullable=True),
        sa.Column("submitted_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["organisation_id"], ["ra_organisation.id"],
                                name=op.f("fk_ra_demand_notice_organisation_id_ra_organisation")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ra_demand_notice")),
    )
    op.create_index(op.f("ix_ra_demand_notice_organisation_id"), "ra_demand_notice", ["organisation_id"])
    op.create_index(op.f("ix_ra_demand_notice_month"), "ra_demand_notice", ["month"])
    op.create_table(
        "report_run",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("report", sa.String(length=32), nullable=False),
        sa.Column("period", sa.String(length=7), nullable=False),
        sa.Column("due_date", sa.Date(), nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("trigger", sa.String(length=12), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("lease_token", sa.String(length=64), nullable=True),
        sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("produced_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("lodged_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("working_days_late", sa.Integer(), nullable=True),
        sa.Column("late", sa.Boolean(), nullable=True),
        sa.Column("summary", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_report_run")),
        sa.UniqueConstraint("report", "period", name=op.f("uq_report_run_report_period")),
    )
    op.create_index(op.f("ix_report_run_status"), "report_run", ["status"])
    op.create_table(
        "report_artifact",
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("edition", sa.String(length=12), nullable=False),
        sa.Column("format", sa.String(length=8), nullable=False),
        sa.Column("media_type", sa.String(length=64), nullable=False),
        sa.Column("content", sa.LargeBinary(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("document", sa.String(length=64), nullable=True),
        sa.Column("document_version", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(["run_id"], ["report_run.id"], ondelete="CASCADE",
                                name=op.f("fk_report_artifact_run_id_report_run")),
        sa.PrimaryKeyConstraint("run_id", "edition", "format", name=op.f("pk_report_artifact")),
    )


def downgrade() -> None:
    op.drop_table("report_artifact")
    op.drop_index(op.f("ix_report_run_status"), table_name="report_run")
    op.drop_table("report_run")
    op.drop_index(op.f("ix_ra_demand_notice_month"), table_name="ra_demand_notice")
    op.drop_index(op.f("ix_ra_demand_notice_organisation_id"), table_name="ra_demand_notice")
    op.drop_table("ra_demand_notice")
    op.drop_index(op.f("ix_ra_csr_forecast_month_organisation_id"), table_name="ra_csr_forecast_month")
    op.drop_index(op.f("ix_ra_csr_forecast_month_month"), table_name="ra_csr_forecast_month")
    op.drop_table("ra_csr_forecast_month")
    op.drop_index(op.f("ix_ra_csr_forecast_organisation_id"), table_name="ra_csr_forecast")
    op.drop_table("ra_csr_forecast")
