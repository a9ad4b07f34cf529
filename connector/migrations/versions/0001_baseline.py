"""The state store's schema at the first migration (every table as this version made them).

Revision ID: 0001
Revises: (none: the first)
Create Date: 2026-11-24 16:53:57.093512
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('accounts',
    sa.Column('external_id', sa.String(length=300), nullable=False),
    sa.Column('principal', sa.String(length=40), nullable=False),
    sa.Column('account', sa.String(length=200), nullable=False),
    sa.Column('by', sa.String(length=200), nullable=False),
    sa.Column('at', sa.String(length=40), nullable=False),
    sa.PrimaryKeyConstraint('external_id', 'principal')
    )
    op.create_table('acl_applied',
    sa.Column('external_id', sa.String(length=300), nullable=False),
    sa.Column('part', sa.String(length=32), nullable=False),
    sa.Column('fingerprint', sa.String(length=64), nullable=False),
    sa.Column('principals', sa.Text(), nullable=False),
    sa.Column('applied', sa.String(length=40), nullable=False),
    sa.Column('next_change', sa.Date(), nullable=True),
    sa.Column('waiting', sa.Text(), nullable=True),
    sa.PrimaryKeyConstraint('external_id', 'part')
    )
    with op.batch_alter_table('acl_applied', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_acl_applied_next_change'), ['next_change'], unique=False)

    op.create_table('audit',
    sa.Column('seq', sa.Integer(), nullable=False),
    sa.Column('at', sa.String(length=40), nullable=False),
    sa.Column('actor', sa.String(length=200), nullable=False),
    sa.Column('action', sa.String(length=64), nullable=False),
    sa.Column('subject', sa.String(length=64), nullable=True),
    sa.Column('details', sa.Text(), nullable=False),
    sa.Column('prev', sa.String(length=64), nullable=False),
    sa.Column('hash', sa.String(length=64), nullable=False),
    sa.PrimaryKeyConstraint('seq')
    )
    with op.batch_alter_table('audit', schema=None) as batch_op:
        batch_op.create_index('audit_subject', ['subject'], unique=False)

    op.create_table('audit_head',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('seq', sa.Integer(), nullable=False),
    sa.Column('hash', sa.String(length=64), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_table('cursors',
    sa.Column('key', sa.String(length=120), nullable=False),
    sa.Column('value', sa.Text(), nullable=False),
    sa.Column('updated', sa.String(length=40), nullable=False),
    sa.PrimaryKeyConstraint('key')
    )
    op.create_table('destruction_items',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('list_id', sa.Integer(), nullable=False),
    sa.Column('doc_id', sa.String(length=300), nullable=False),
    sa.Column('dossier_id', sa.String(length=300), nullable=False),
    sa.Column('external_id', sa.String(length=300), nullable=False),
    sa.Column('pseudonym', sa.String(length=40), nullable=False),
    sa.Column('school', sa.String(length=32), nullable=False),
    sa.Column('part', sa.String(length=32), nullable=False),
    sa.Column('doc_class', sa.String(length=64), nullable=True),
    sa.Column('category', sa.String(length=64), nullable=False),
    sa.Column('basis', sa.Text(), nullable=False),
    sa.Column('due', sa.Date(), nullable=False),
    sa.Column('decision', sa.String(length=12), nullable=False),
    sa.Column('reason', sa.Text(), nullable=True),
    sa.Column('status', sa.String(length=12), nullable=False),
    sa.Column('detail', sa.Text(), nullable=True),
    sa.Column('done_at', sa.String(length=40), nullable=True),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('destruction_items', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_destruction_items_list_id'), ['list_id'], unique=False)

    op.create_table('destruction_lists',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('created', sa.String(length=40), nullable=False),
    sa.Column('created_by', sa.String(length=200), nullable=False),
    sa.Column('as_of', sa.Date(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('digest', sa.String(length=64), nullable=False),
    sa.Column('approved_by', sa.String(length=200), nullable=True),
    sa.Column('approved_role', sa.String(length=200), nullable=True),
    sa.Column('approved_at', sa.String(length=40), nullable=True),
    sa.Column('approved_digest', sa.String(length=64), nullable=True),
    sa.Column('executed_at', sa.String(length=40), nullable=True),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_table('documents',
    sa.Column('id', sa.String(length=300), nullable=False),
    sa.Column('external_id', sa.String(length=300), nullable=False),
    sa.Column('dossier_id', sa.String(length=300), nullable=True),
    sa.Column('part', sa.String(length=32), nullable=False),
    sa.Column('doc_class', sa.String(length=64), nullable=True),
    sa.Column('category', sa.String(length=64), nullable=True),
    sa.Column('kind', sa.String(length=8), nullable=True),
    sa.Column('due', sa.Date(), nullable=True),
    sa.Column('blocked', sa.Integer(), nullable=True),
    sa.Column('unclassified', sa.Integer(), nullable=True),
    sa.Column('basis', sa.Text(), nullable=True),
    sa.Column('tag', sa.Text(), nullable=True),
    sa.Column('status', sa.String(length=12), nullable=False),
    sa.Column('updated', sa.String(length=40), nullable=True),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('documents', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_documents_due'), ['due'], unique=False)
        batch_op.create_index(batch_op.f('ix_documents_external_id'), ['external_id'], unique=False)

    op.create_table('dossiers',
    sa.Column('external_id', sa.String(length=300), nullable=False),
    sa.Column('pseudonym', sa.String(length=40), nullable=False),
    sa.Column('school', sa.String(length=32), nullable=False),
    sa.Column('ref_id', sa.String(length=300), nullable=True),
    sa.Column('fingerprint', sa.String(length=64), nullable=True),
    sa.Column('spec', sa.Text(), nullable=True),
    sa.Column('departure', sa.Date(), nullable=True),
    sa.Column('dup_pgn', sa.String(length=64), nullable=True),
    sa.Column('dup_nb', sa.String(length=64), nullable=True),
    sa.Column('vanished_since', sa.Date(), nullable=True),
    sa.Column('updated', sa.String(length=40), nullable=True),
    sa.PrimaryKeyConstraint('external_id')
    )
    with op.batch_alter_table('dossiers', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_dossiers_dup_nb'), ['dup_nb'], unique=False)
        batch_op.create_index(batch_op.f('ix_dossiers_dup_pgn'), ['dup_pgn'], unique=False)
        batch_op.create_index(batch_op.f('ix_dossiers_pseudonym'), ['pseudonym'], unique=False)
        batch_op.create_index(batch_op.f('ix_dossiers_school'), ['school'], unique=False)

    op.create_table('duplicate_dismissals',
    sa.Column('a', sa.String(length=40), nullable=False),
    sa.Column('b', sa.String(length=40), nullable=False),
    sa.Column('by', sa.String(length=200), nullable=False),
    sa.Column('at', sa.String(length=40), nullable=False),
    sa.PrimaryKeyConstraint('a', 'b')
    )
    op.create_table('facts',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('external_id', sa.String(length=300), nullable=False),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('on', sa.Date(), nullable=True),
    sa.Column('by', sa.String(length=200), nullable=False),
    sa.Column('at', sa.String(length=40), nullable=False),
    sa.Column('note', sa.Text(), nullable=True),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('facts', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_facts_external_id'), ['external_id'], unique=False)

    op.create_table('grants',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('external_id', sa.String(length=300), nullable=False),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('grantee', sa.String(length=200), nullable=False),
    sa.Column('parts', sa.Text(), nullable=False),
    sa.Column('basis', sa.String(length=16), nullable=False),
    sa.Column('start', sa.Date(), nullable=False),
    sa.Column('until', sa.Date(), nullable=False),
    sa.Column('revoked', sa.Date(), nullable=True),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('by', sa.String(length=200), nullable=False),
    sa.Column('at', sa.String(length=40), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('grants', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_grants_external_id'), ['external_id'], unique=False)

    op.create_table('guardians',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('guardian_id', sa.String(length=40), nullable=False),
    sa.Column('external_id', sa.String(length=300), nullable=False),
    sa.Column('source', sa.String(length=8), nullable=False),
    sa.Column('display', sa.Text(), nullable=True),
    sa.Column('relation', sa.String(length=8), nullable=True),
    sa.Column('authority', sa.String(length=8), nullable=True),
    sa.Column('authority_recorded', sa.String(length=8), nullable=True),
    sa.Column('deceased', sa.Integer(), nullable=False),
    sa.Column('account', sa.String(length=200), nullable=True),
    sa.Column('by', sa.String(length=200), nullable=True),
    sa.Column('at', sa.String(length=40), nullable=False),
    sa.Column('removed_at', sa.String(length=40), nullable=True),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('guardians', schema=None) as batch_op:
        batch_op.create_index('guardians_current', ['external_id', 'guardian_id', 'removed_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_guardians_external_id'), ['external_id'], unique=False)

    op.create_table('holds',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('external_id', sa.String(length=300), nullable=False),
    sa.Column('pseudonym', sa.String(length=40), nullable=False),
    sa.Column('part', sa.String(length=32), nullable=True),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('by', sa.String(length=200), nullable=False),
    sa.Column('at', sa.String(length=40), nullable=False),
    sa.Column('removed_by', sa.String(length=200), nullable=True),
    sa.Column('removed_at', sa.String(length=40), nullable=True),
    sa.Column('removed_reason', sa.Text(), nullable=True),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('holds', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_holds_external_id'), ['external_id'], unique=False)

    op.create_table('journal',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('run_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('external_id', sa.String(length=300), nullable=False),
    sa.Column('target', sa.String(length=300), nullable=False),
    sa.Column('pseudonym', sa.String(length=40), nullable=False),
    sa.Column('payload', sa.Text(), nullable=False),
    sa.Column('status', sa.String(length=12), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('ref_id', sa.String(length=300), nullable=True),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('dup_pgn', sa.String(length=64), nullable=True),
    sa.Column('dup_nb', sa.String(length=64), nullable=True),
    sa.Column('updated', sa.String(length=40), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('journal', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_journal_run_id'), ['run_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_journal_status'), ['status'], unique=False)
        batch_op.create_index(batch_op.f('ix_journal_target'), ['target'], unique=False)

    op.create_table('meta',
    sa.Column('key', sa.String(length=64), nullable=False),
    sa.Column('value', sa.Text(), nullable=True),
    sa.PrimaryKeyConstraint('key')
    )
    op.create_table('pupil_access',
    sa.Column('external_id', sa.String(length=300), nullable=False),
    sa.Column('pseudonym', sa.String(length=40), nullable=False),
    sa.Column('birth_date', sa.Date(), nullable=True),
    sa.Column('fingerprint', sa.String(length=64), nullable=False),
    sa.Column('updated', sa.String(length=40), nullable=False),
    sa.PrimaryKeyConstraint('external_id')
    )
    op.create_table('requests',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('external_id', sa.String(length=300), nullable=False),
    sa.Column('pseudonym', sa.String(length=40), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('requester', sa.String(length=200), nullable=False),
    sa.Column('received', sa.Date(), nullable=False),
    sa.Column('due', sa.Date(), nullable=False),
    sa.Column('extended_reason', sa.Text(), nullable=True),
    sa.Column('hold_id', sa.Integer(), nullable=True),
    sa.Column('status', sa.String(length=8), nullable=False),
    sa.Column('outcome', sa.String(length=16), nullable=True),
    sa.Column('closed', sa.Date(), nullable=True),
    sa.Column('by', sa.String(length=200), nullable=False),
    sa.Column('at', sa.String(length=40), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('requests', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_requests_external_id'), ['external_id'], unique=False)

    op.create_table('runs',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('school', sa.String(length=32), nullable=True),
    sa.Column('started', sa.String(length=40), nullable=False),
    sa.Column('finished', sa.String(length=40), nullable=True),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('pupils_seen', sa.Integer(), nullable=True),
    sa.Column('report', sa.Text(), nullable=True),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_table('staging',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('run_id', sa.Integer(), nullable=False),
    sa.Column('pseudonym', sa.String(length=40), nullable=False),
    sa.Column('external_id', sa.String(length=300), nullable=True),
    sa.Column('fingerprint', sa.String(length=64), nullable=True),
    sa.Column('spec', sa.Text(), nullable=True),
    sa.Column('dup_pgn', sa.String(length=64), nullable=True),
    sa.Column('dup_nb', sa.String(length=64), nullable=True),
    sa.Column('rejected', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('staging', schema=None) as batch_op:
        batch_op.create_index('staging_dup_nb', ['run_id', 'dup_nb'], unique=False)
        batch_op.create_index('staging_dup_pgn', ['run_id', 'dup_pgn'], unique=False)
        batch_op.create_index('staging_external_id', ['run_id', 'external_id'], unique=False)
        batch_op.create_index('staging_pseudonym', ['run_id', 'pseudonym'], unique=False)

    op.create_table('staging_access',
    sa.Column('run_id', sa.Integer(), nullable=False),
    sa.Column('external_id', sa.String(length=300), nullable=False),
    sa.Column('pseudonym', sa.String(length=40), nullable=False),
    sa.Column('fingerprint', sa.String(length=64), nullable=False),
    sa.Column('payload', sa.Text(), nullable=False)
    )
    with op.batch_alter_table('staging_access', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_staging_access_run_id'), ['run_id'], unique=False)

    op.create_table('transfers',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('external_id', sa.String(length=300), nullable=False),
    sa.Column('pseudonym', sa.String(length=40), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('on', sa.Date(), nullable=False),
    sa.Column('receiving', sa.String(length=64), nullable=True),
    sa.Column('part', sa.String(length=32), nullable=True),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('detail', sa.Text(), nullable=True),
    sa.Column('by', sa.String(length=200), nullable=False),
    sa.Column('at', sa.String(length=40), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('transfers', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_transfers_external_id'), ['external_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('transfers', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_transfers_external_id'))

    op.drop_table('transfers')
    with op.batch_alter_table('staging_access', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_staging_access_run_id'))

    op.drop_table('staging_access')
    with op.batch_alter_table('staging', schema=None) as batch_op:
        batch_op.drop_index('staging_pseudonym')
        batch_op.drop_index('staging_external_id')
        batch_op.drop_index('staging_dup_pgn')
        batch_op.drop_index('staging_dup_nb')

    op.drop_table('staging')
    op.drop_table('runs')
    with op.batch_alter_table('requests', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_requests_external_id'))

    op.drop_table('requests')
    op.drop_table('pupil_access')
    op.drop_table('meta')
    with op.batch_alter_table('journal', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_journal_target'))
        batch_op.drop_index(batch_op.f('ix_journal_status'))
        batch_op.drop_index(batch_op.f('ix_journal_run_id'))

    op.drop_table('journal')
    with op.batch_alter_table('holds', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_holds_external_id'))

    op.drop_table('holds')
    with op.batch_alter_table('guardians', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_guardians_external_id'))
        batch_op.drop_index('guardians_current')

    op.drop_table('guardians')
    with op.batch_alter_table('grants', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_grants_external_id'))

    op.drop_table('grants')
    with op.batch_alter_table('facts', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_facts_external_id'))

    op.drop_table('facts')
    op.drop_table('duplicate_dismissals')
    with op.batch_alter_table('dossiers', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_dossiers_school'))
        batch_op.drop_index(batch_op.f('ix_dossiers_pseudonym'))
        batch_op.drop_index(batch_op.f('ix_dossiers_dup_pgn'))
        batch_op.drop_index(batch_op.f('ix_dossiers_dup_nb'))

    op.drop_table('dossiers')
    with op.batch_alter_table('documents', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_documents_external_id'))
        batch_op.drop_index(batch_op.f('ix_documents_due'))

    op.drop_table('documents')
    op.drop_table('destruction_lists')
    with op.batch_alter_table('destruction_items', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_destruction_items_list_id'))

    op.drop_table('destruction_items')
    op.drop_table('cursors')
    op.drop_table('audit_head')
    with op.batch_alter_table('audit', schema=None) as batch_op:
        batch_op.drop_index('audit_subject')

    op.drop_table('audit')
    with op.batch_alter_table('acl_applied', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_acl_applied_next_change'))

    op.drop_table('acl_applied')
    op.drop_table('accounts')
