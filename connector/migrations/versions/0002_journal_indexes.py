"""The journal's indexes cost less to write: the index on run_id goes (no query reads the journal
by run), and the index on status holds only the unfinished rows, the ones a run looks for.

A journal row is written three times (new, sent, done) and every version paid an entry in each
index; done and superseded rows, nearly all of a journal kept for years, now have none in
either.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25 02:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None

OPEN = "status IN ('new', 'sent', 'failed')"


def upgrade() -> None:
    # a store adopted from before migrations made its missing tables from the newest model:
    # its journal may lack the old indexes and have the new one already
    op.drop_index('ix_journal_run_id', table_name='journal', if_exists=True)
    op.drop_index('ix_journal_status', table_name='journal', if_exists=True)
    op.create_index('ix_journal_open', 'journal', ['status'], unique=False, if_not_exists=True,
                    postgresql_where=sa.text(OPEN), sqlite_where=sa.text(OPEN))


def downgrade() -> None:
    op.drop_index('ix_journal_open', table_name='journal')
    op.create_index('ix_journal_status', 'journal', ['status'], unique=False)
    op.create_index('ix_journal_run_id', 'journal', ['run_id'], unique=False)
