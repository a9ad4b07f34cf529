"""Drop the journal's index on run_id: no query reads the journal by run, and every row version
(a journal row has three: new, sent, done) paid an entry in it.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25 02:40:00
"""

from __future__ import annotations

from alembic import op

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # a store adopted from before migrations may have made its journal without the index
    op.drop_index('ix_journal_run_id', table_name='journal', if_exists=True)


def downgrade() -> None:
    op.create_index('ix_journal_run_id', 'journal', ['run_id'], unique=False)
