"""Repository demand forecasts (Appendix P): per Repository user, a run of days, per time band

Revision ID: 0017_demand_forecasts
Revises: 0012_reports
Create Date: 2026-12-03
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0017_demand_forecasts"
down_revision = "0012_reports"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "ra_repository_demand_forecast",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("organisation_id", sa.Integer(), nullable=False),
        sa.Column("person_id", sa.Integer(), nullable=False),
        sa.Column("repository_user", sa.String(length=128), nullable=False),
        sa.Column("first_day", sa.Date(), nullable=False),
        sa.Column("last_day", sa.Date(), nullable=False),
        sa.Column("submission_id", sa.Integer(), nullable=True),
        sa.Column("submitted_by", sa.Integer(), nullable=True),
        sa.Column("submitted_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["organisation_id"], ["ra_organisation.id"],
                                name=op.f("fk_ra_repository_demand_forecast_organisation_id_ra_organisation")),
        sa.ForeignKeyConstraint(["person_id"], ["ra_person.id"],
                                name=op.f("fk_ra_repository_demand_forecast_person_id_ra_person")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ra_repository_demand_forecast")),
    )
    for column in ("organisation_id", "repository_user", "first_day", "last_day"):
        op.create_index(op.f(f"ix_ra_repository_demand_forecast_{column}"), "ra_repository_demand_forecast",
                        [column])
    op.create_table(
        "ra_repository_demand_forecast_band",
        sa.Column("forecast_id", sa.Integer(), nullable=False),
        sa.Column("band", sa.String(length=32), nullable=False),
        sa.Column("portal", sa.Integer(), nullable=False),
        sa.Column("web_service", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["forecast_id"], ["ra_repository_demand_forecast.id"], ondelete="CASCADE",
                                name=op.f("fk_ra_repository_demand_forecast_band_forecast_id_"
                                          "ra_repository_demand_forecast")),
        sa.PrimaryKeyConstraint("forecast_id", "band", name=op.f("pk_ra_repository_demand_forecast_band")),
    )


def downgrade() -> None:
    op.drop_table("ra_repository_demand_forecast_band")
    for column in ("organisation_id", "repository_user", "first_day", "last_day"):
        op.drop_index(op.f(f"ix_ra_repository_demand_forecast_{column}"), table_name="ra_repository_demand_forecast")
    op.drop_table("ra_repository_demand_forecast")
