"""Repository document audience: who may read each lodged document, and the roles of Repository users

Revision ID: 0015_repository_doc_audience
(Not "0015_repository_document_audience": 33 characters, and alembic_version.version_num is VARCHAR(32).)
Revises: 0006_repository_lodging
Create Date: 2026-12-03

A document's ``audience`` is ``all`` or a set of Repository roles (``sec_panel``, ``smki_pma``); every
document lodged before this revision was readable by all and stays so. A user's ``roles`` start as none (NULL).
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0015_repository_doc_audience"
down_revision = "0006_repository_lodging"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("repository_document", schema=None) as batch_op:
        batch_op.add_column(sa.Column("audience", sa.String(length=255), server_default="all", nullable=False))
    with op.batch_alter_table("repository_user", schema=None) as batch_op:
        batch_op.add_column(sa.Column("roles", sa.String(length=255), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("repository_user", schema=None) as batch_op:
        batch_op.drop_column("roles")
    with op.batch_alter_table("repository_document", schema=None) as batch_op:
        batch_op.drop_column("audience")
