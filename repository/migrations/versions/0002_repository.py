"""Repository: certificates with status, revocation index, CRL/ARL, extracts, documents, access

Revision ID: 0002_repository
Revises: (the Repository's own branch)
Create Date: 2026-11-22 06:56:34.073145
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0002_repository'
down_revision = None
branch_labels = ('repository',)
depends_on = None


def upgrade() -> None:
    op.create_table('repository_api_key',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('key_sha256', sa.String(length=64), nullable=False),
    sa.Column('prefix', sa.String(length=16), nullable=False),
    sa.Column('holder', sa.String(length=128), nullable=False),
    sa.Column('may_lodge_documents', sa.Boolean(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_repository_api_key')),
    sa.UniqueConstraint('key_sha256', name=op.f('uq_repository_api_key_key_sha256'))
    )
    with op.batch_alter_table('repository_api_key', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_repository_api_key_holder'), ['holder'], unique=False)

    op.create_table('repository_certificate',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('serial', sa.String(length=64), nullable=False),
    sa.Column('issuer', sa.String(length=255), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('status', sa.String(length=1), nullable=False),
    sa.Column('role', sa.Integer(), nullable=True),
    sa.Column('usage', sa.String(length=2), nullable=True),
    sa.Column('subject_eui', sa.String(length=16), nullable=True),
    sa.Column('device_id', sa.String(length=16), nullable=True),
    sa.Column('subject', sa.String(length=255), nullable=False),
    sa.Column('manufacturing_flag', sa.Boolean(), nullable=False),
    sa.Column('not_before', sa.DateTime(timezone=True), nullable=False),
    sa.Column('not_after', sa.DateTime(timezone=True), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('der', sa.LargeBinary(), nullable=False),
    sa.Column('lodged_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('lodged_by', sa.String(length=128), nullable=True),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_repository_certificate')),
    sa.UniqueConstraint('serial', 'issuer', name='uq_repository_certificate_serial_issuer')
    )
    with op.batch_alter_table('repository_certificate', schema=None) as batch_op:
        batch_op.create_index('ix_repository_certificate_device_id_id', ['device_id', 'id'], unique=False)
        batch_op.create_index('ix_repository_certificate_issuer_id', ['issuer', 'id'], unique=False)
        batch_op.create_index('ix_repository_certificate_kind_id', ['kind', 'id'], unique=False)
        batch_op.create_index('ix_repository_certificate_lodged_at', ['lodged_at'], unique=False)
        batch_op.create_index('ix_repository_certificate_not_after', ['not_after'], unique=False)
        batch_op.create_index('ix_repository_certificate_not_before', ['not_before'], unique=False)
        batch_op.create_index('ix_repository_certificate_role_id', ['role', 'id'], unique=False)
        batch_op.create_index('ix_repository_certificate_serial', ['serial'], unique=False)
        batch_op.create_index('ix_repository_certificate_status_id', ['status', 'id'], unique=False)
        batch_op.create_index('ix_repository_certificate_subject_eui_id', ['subject_eui', 'id'], unique=False)
        batch_op.create_index('ix_repository_certificate_updated_at', ['updated_at'], unique=False)
        batch_op.create_index('ix_repository_certificate_usage_id', ['usage', 'id'], unique=False)

    op.create_table('repository_crl',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('revocation_list', sa.String(length=16), nullable=False),
    sa.Column('number', sa.Integer(), nullable=False),
    sa.Column('this_update', sa.DateTime(timezone=True), nullable=False),
    sa.Column('next_update', sa.DateTime(timezone=True), nullable=False),
    sa.Column('entries', sa.Integer(), nullable=False),
    sa.Column('covers_revocation_id', sa.Integer(), nullable=False),
    sa.Column('der', sa.LargeBinary(), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('published_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_repository_crl')),
    sa.UniqueConstraint('revocation_list', 'number', name='uq_repository_crl_list_number')
    )
    op.create_table('repository_document',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('title', sa.String(length=255), nullable=False),
    sa.Column('media_type', sa.String(length=128), nullable=False),
    sa.Column('file_name', sa.String(length=255), nullable=False),
    sa.Column('content', sa.LargeBinary(), nullable=False),
    sa.Column('size', sa.Integer(), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('lodged_by', sa.String(length=128), nullable=False),
    sa.Column('lodged_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_repository_document')),
    sa.UniqueConstraint('name', 'version', name='uq_repository_document_name_version')
    )
    with op.batch_alter_table('repository_document', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_repository_document_name'), ['name'], unique=False)

    op.create_table('repository_extract',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=8), nullable=False),
    sa.Column('since', sa.DateTime(timezone=True), nullable=True),
    sa.Column('until', sa.DateTime(timezone=True), nullable=False),
    sa.Column('file_name', sa.String(length=255), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('records', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_repository_extract'))
    )
    with op.batch_alter_table('repository_extract', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_repository_extract_until'), ['until'], unique=False)

    op.create_table('repository_request',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('audit_reference', sa.String(length=64), nullable=False),
    sa.Column('holder', sa.String(length=128), nullable=True),
    sa.Column('operation', sa.String(length=32), nullable=False),
    sa.Column('response_code', sa.Integer(), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('detail', sa.Text(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_repository_request')),
    sa.UniqueConstraint('audit_reference', name=op.f('uq_repository_request_audit_reference'))
    )
    with op.batch_alter_table('repository_request', schema=None) as batch_op:
        batch_op.create_index('ix_repository_request_holder_at', ['holder', 'at'], unique=False)

    op.create_table('repository_sync_state',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('source', sa.String(length=255), nullable=False),
    sa.Column('as_of', sa.DateTime(timezone=True), nullable=False),
    sa.Column('applied', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_repository_sync_state')),
    sa.UniqueConstraint('source', name=op.f('uq_repository_sync_state_source'))
    )
    op.create_table('repository_user',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('username', sa.String(length=128), nullable=False),
    sa.Column('holder', sa.String(length=128), nullable=False),
    sa.Column('password_hash', sa.String(length=255), nullable=False),
    sa.Column('failures', sa.Integer(), nullable=False),
    sa.Column('failure_window_start', sa.DateTime(timezone=True), nullable=True),
    sa.Column('locked_until', sa.DateTime(timezone=True), nullable=True),
    sa.Column('disabled', sa.Boolean(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_repository_user')),
    sa.UniqueConstraint('username', name=op.f('uq_repository_user_username'))
    )
    with op.batch_alter_table('repository_user', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_repository_user_holder'), ['holder'], unique=False)

    op.create_table('repository_revocation',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('certificate_id', sa.Integer(), nullable=False),
    sa.Column('serial', sa.String(length=64), nullable=False),
    sa.Column('issuer', sa.String(length=255), nullable=False),
    sa.Column('revocation_list', sa.String(length=16), nullable=True),
    sa.Column('reason', sa.String(length=32), nullable=False),
    sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('requested_by', sa.String(length=128), nullable=True),
    sa.Column('recorded_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['certificate_id'], ['repository_certificate.id'],
                            name=op.f('fk_repository_revocation_certificate_id_repository_certificate'),
                            ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_repository_revocation')),
    sa.UniqueConstraint('certificate_id', name=op.f('uq_repository_revocation_certificate_id'))
    )
    with op.batch_alter_table('repository_revocation', schema=None) as batch_op:
        batch_op.create_index('ix_repository_revocation_list_id',
                              ['revocation_list', 'id', 'serial', 'revoked_at', 'reason'], unique=False)
        batch_op.create_index('ix_repository_revocation_recorded_at', ['recorded_at'], unique=False)

    op.create_table('repository_session',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('token_sha256', sa.String(length=64), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['repository_user.id'],
                            name=op.f('fk_repository_session_user_id_repository_user'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_repository_session')),
    sa.UniqueConstraint('token_sha256', name=op.f('uq_repository_session_token_sha256'))
    )
    with op.batch_alter_table('repository_session', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_repository_session_user_id'), ['user_id'], unique=False)


def downgrade() -> None:
    op.drop_table("repository_session")
    op.drop_table("repository_revocation")
    op.drop_table("repository_user")
    op.drop_table("repository_sync_state")
    op.drop_table("repository_request")
    op.drop_table("repository_extract")
    op.drop_table("repository_document")
    op.drop_table("repository_crl")
    op.drop_table("repository_certificate")
    op.drop_table("repository_api_key")
