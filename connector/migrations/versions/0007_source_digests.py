"""An unchanged night costs reads only: each dossier row keeps the keyed digest of the LAS
record it was last made from (with everything that shapes what a record becomes), and the
staged snapshot each record's digest, so that an identical record is staged from the recorded
row instead of being validated and mapped again.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-08 01:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None

COLUMNS: dict[str, sa.Column[object]] = {
    "dossiers": sa.Column("source_digest", sa.String(32)),
    "staging": sa.Column("digest", sa.String(32)),
}


def upgrade() -> None:
    inspector = sa.inspect(op.get_bind())
    for table, column in COLUMNS.items():
        if column.name not in {c["name"] for c in inspector.get_columns(table)}:
            op.add_column(table, column)


def downgrade() -> None:
    for table, column in COLUMNS.items():
        with op.batch_alter_table(table) as batch:
            batch.drop_column(column.name)
