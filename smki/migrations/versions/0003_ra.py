"""RA: organisations, people and appointments, credentials, RAPP forms, devices, CSR decisions, audit chain

Revision ID: 0003_ra
Revises: 0001_ca_core
Create Date: 2026-11-22
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003_ra"
down_revision = "0001_ca_core"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('ra_audit',
    sa.Column('seq', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('recorded_at', sa.String(length=40), nullable=False),
    sa.Column('actor', sa.String(length=128), nullable=False),
    sa.Column('action', sa.String(length=64), nullable=False),
    sa.Column('subject', sa.String(length=128), nullable=True),
    sa.Column('detail', sa.Text(), nullable=False),
    sa.Column('prev_hash', sa.String(length=64), nullable=False),
    sa.Column('hash', sa.String(length=64), nullable=False),
    sa.PrimaryKeyConstraint('seq', name=op.f('pk_ra_audit')),
    sa.UniqueConstraint('hash', name=op.f('uq_ra_audit_hash'))
    )
    op.create_index(op.f('ix_ra_audit_action'), 'ra_audit', ['action'])
    op.create_table('ra_audit_head',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('seq', sa.Integer(), nullable=False),
    sa.Column('hash', sa.String(length=64), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_ra_audit_head'))
    )
    op.create_table('ra_csr_decision',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('decided_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('channel', sa.String(length=32), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('csr_sha256', sa.String(length=64), nullable=False),
    sa.Column('subject_id', sa.String(length=16), nullable=True),
    sa.Column('allowed', sa.Boolean(), nullable=False),
    sa.Column('rule', sa.String(length=64), nullable=False),
    sa.Column('code', sa.String(length=10), nullable=True),
    sa.Column('message', sa.Text(), nullable=False),
    sa.Column('person_id', sa.Integer(), nullable=True),
    sa.Column('credential_id', sa.Integer(), nullable=True),
    sa.Column('subscriber_organisation_id', sa.Integer(), nullable=True),
    sa.Column('manufacturer_organisation_id', sa.Integer(), nullable=True),
    sa.Column('manufacturing_flag', sa.Boolean(), nullable=False),
    sa.Column('status', sa.String(length=24), nullable=False),
    sa.Column('serial', sa.String(length=32), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_ra_csr_decision'))
    )
    op.create_index(op.f('ix_ra_csr_decision_decided_at'), 'ra_csr_decision', ['decided_at'])
    op.create_index(op.f('ix_ra_csr_decision_person_id'), 'ra_csr_decision', ['person_id'])
    op.create_index(op.f('ix_ra_csr_decision_serial'), 'ra_csr_decision', ['serial'])
    op.create_index(op.f('ix_ra_csr_decision_subject_id'), 'ra_csr_decision', ['subject_id'])
    op.create_index(op.f('ix_ra_csr_decision_subscriber_organisation_id'), 'ra_csr_decision',
                    ['subscriber_organisation_id'])
    op.create_table('ra_device',
    sa.Column('device_id', sa.String(length=16), nullable=False),
    sa.Column('state', sa.String(length=24), nullable=False),
    sa.Column('responsible_organisation_id', sa.Integer(), nullable=True),
    sa.Column('manufacturer_organisation_id', sa.Integer(), nullable=True),
    sa.Column('dcc_owned', sa.Boolean(), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('device_id', name=op.f('pk_ra_device'))
    )
    op.create_table('ra_form_submission',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('form', sa.String(length=48), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('payload', sa.JSON(), nullable=False),
    sa.Column('submitted_by', sa.Integer(), nullable=True),
    sa.Column('organisation_id', sa.Integer(), nullable=True),
    sa.Column('reason', sa.Text(), nullable=True),
    sa.Column('result', sa.JSON(), nullable=True),
    sa.Column('history', sa.JSON(), nullable=False),
    sa.Column('submitted_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_ra_form_submission'))
    )
    op.create_index(op.f('ix_ra_form_submission_form'), 'ra_form_submission', ['form'])
    op.create_index(op.f('ix_ra_form_submission_organisation_id'), 'ra_form_submission', ['organisation_id'])
    op.create_index(op.f('ix_ra_form_submission_status'), 'ra_form_submission', ['status'])
    op.create_table('ra_organisation',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('company_number', sa.String(length=20), nullable=True),
    sa.Column('registered_address', sa.Text(), nullable=True),
    sa.Column('category', sa.String(length=32), nullable=False),
    sa.Column('is_party', sa.Boolean(), nullable=False),
    sa.Column('is_rdp', sa.Boolean(), nullable=False),
    sa.Column('srept_passed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_ra_organisation')),
    sa.UniqueConstraint('name', name=op.f('uq_ra_organisation_name'))
    )
    op.create_table('ra_authorisation',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('organisation_id', sa.Integer(), nullable=False),
    sa.Column('policy', sa.String(length=16), nullable=False),
    sa.Column('granted_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['organisation_id'],
                            ['ra_organisation.id'], name=op.f('fk_ra_authorisation_organisation_id_ra_organisation')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_ra_authorisation')),
    sa.UniqueConstraint('organisation_id', 'policy', name=op.f('uq_ra_authorisation_organisation_id'))
    )
    op.create_index(op.f('ix_ra_authorisation_organisation_id'), 'ra_authorisation', ['organisation_id'])
    op.create_table('ra_person',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('organisation_id', sa.Integer(), nullable=True),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('email', sa.String(length=200), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['organisation_id'],
                            ['ra_organisation.id'], name=op.f('fk_ra_person_organisation_id_ra_organisation')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_ra_person'))
    )
    op.create_index(op.f('ix_ra_person_organisation_id'), 'ra_person', ['organisation_id'])
    op.create_table('ra_user_id',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('organisation_id', sa.Integer(), nullable=False),
    sa.Column('user_role', sa.String(length=8), nullable=False),
    sa.Column('eui64', sa.String(length=16), nullable=False),
    sa.Column('label', sa.String(length=64), nullable=True),
    sa.ForeignKeyConstraint(['organisation_id'],
                            ['ra_organisation.id'], name=op.f('fk_ra_user_id_organisation_id_ra_organisation')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_ra_user_id')),
    sa.UniqueConstraint('eui64', name=op.f('uq_ra_user_id_eui64'))
    )
    op.create_index(op.f('ix_ra_user_id_organisation_id'), 'ra_user_id', ['organisation_id'])
    op.create_table('ra_appointment',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('person_id', sa.Integer(), nullable=False),
    sa.Column('organisation_id', sa.Integer(), nullable=True),
    sa.Column('role', sa.String(length=16), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('scope_organisation', sa.Boolean(), nullable=False),
    sa.Column('scope_device', sa.Boolean(), nullable=False),
    sa.Column('scope_repository', sa.Boolean(), nullable=False),
    sa.Column('acts_for', sa.JSON(), nullable=False),
    sa.Column('identity_verified', sa.Boolean(), nullable=False),
    sa.Column('screening_passed', sa.Boolean(), nullable=False),
    sa.Column('reason', sa.Text(), nullable=True),
    sa.Column('submission_id', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('decided_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('withdrawn_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['organisation_id'],
                            ['ra_organisation.id'], name=op.f('fk_ra_appointment_organisation_id_ra_organisation')),
    sa.ForeignKeyConstraint(['person_id'], ['ra_person.id'], name=op.f('fk_ra_appointment_person_id_ra_person')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_ra_appointment'))
    )
    op.create_index(op.f('ix_ra_appointment_organisation_id'), 'ra_appointment', ['organisation_id'])
    op.create_index(op.f('ix_ra_appointment_person_id'), 'ra_appointment', ['person_id'])
    op.create_index(op.f('ix_ra_appointment_status'), 'ra_appointment', ['status'])
    op.create_table('ra_credential',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('person_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=24), nullable=False),
    sa.Column('lookup', sa.String(length=96), nullable=False),
    sa.Column('secret_hash', sa.String(length=128), nullable=True),
    sa.Column('label', sa.String(length=128), nullable=True),
    sa.Column('serial', sa.String(length=40), nullable=True),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['person_id'], ['ra_person.id'], name=op.f('fk_ra_credential_person_id_ra_person')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_ra_credential')),
    sa.UniqueConstraint('lookup', name=op.f('uq_ra_credential_lookup'))
    )
    op.create_index(op.f('ix_ra_credential_person_id'), 'ra_credential', ['person_id'])


def downgrade() -> None:
    op.drop_index(op.f('ix_ra_credential_person_id'), table_name='ra_credential')
    op.drop_table('ra_credential')
    op.drop_index(op.f('ix_ra_appointment_status'), table_name='ra_appointment')
    op.drop_index(op.f('ix_ra_appointment_person_id'), table_name='ra_appointment')
    op.drop_index(op.f('ix_ra_appointment_organisation_id'), table_name='ra_appointment')
    op.drop_table('ra_appointment')
    op.drop_index(op.f('ix_ra_user_id_organisation_id'), table_name='ra_user_id')
    op.drop_table('ra_user_id')
    op.drop_index(op.f('ix_ra_person_organisation_id'), table_name='ra_person')
    op.drop_table('ra_person')
    op.drop_index(op.f('ix_ra_authorisation_organisation_id'), table_name='ra_authorisation')
    op.drop_table('ra_authorisation')
    op.drop_table('ra_organisation')
    op.drop_index(op.f('ix_ra_form_submission_status'), table_name='ra_form_submission')
    op.drop_index(op.f('ix_ra_form_submission_organisation_id'), table_name='ra_form_submission')
    op.drop_index(op.f('ix_ra_form_submission_form'), table_name='ra_form_submission')
    op.drop_table('ra_form_submission')
    op.drop_table('ra_device')
    op.drop_index(op.f('ix_ra_csr_decision_subscriber_organisation_id'), table_name='ra_csr_decision')
    op.drop_index(op.f('ix_ra_csr_decision_subject_id'), table_name='ra_csr_decision')
    op.drop_index(op.f('ix_ra_csr_decision_serial'), table_name='ra_csr_decision')
    op.drop_index(op.f('ix_ra_csr_decision_person_id'), table_name='ra_csr_decision')
    op.drop_index(op.f('ix_ra_csr_decision_decided_at'), table_name='ra_csr_decision')
    op.drop_table('ra_csr_decision')
    op.drop_table('ra_audit_head')
    op.drop_index(op.f('ix_ra_audit_action'), table_name='ra_audit')
    op.drop_table('ra_audit')
