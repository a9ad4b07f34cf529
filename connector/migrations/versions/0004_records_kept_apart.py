"""What a person records about a guardian is kept apart from what the LAS says (a sync writes
only the LAS's columns), and the copies made for data subjects are kept track of so that they
are removed when ``[access] export_days`` have passed.

A death recorded before this version cannot be told from one the LAS gave: every guardian
marked deceased is taken over as recorded by a person (the restrictive reading; a person
clears it by correcting the LAS and recording it again). A person's recorded authority has no
record of what the LAS said then: where the LAS now differs, the more restrictive reading holds
until a person records it again.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-04 03:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None

COLUMNS: dict[str, list[sa.Column[object]]] = {
    "guardians": [sa.Column("authority_seen", sa.String(8)), sa.Column("deceased_recorded", sa.Integer())],
}


def upgrade() -> None:
    bind = op.get_bind()
    inspector = sa.inspect(bind)
    tables = set(inspector.get_table_names())
    for table, columns in COLUMNS.items():
        have = {c["name"] for c in inspector.get_columns(table)}
        for column in columns:
            if column.name not in have:
                op.add_column(table, column)
    op.execute("UPDATE guardians SET deceased_recorded = 1 WHERE deceased = 1 AND deceased_recorded IS NULL")
    if "exports" not in tables:
        op.create_table(
            "exports",
            sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
            sa.Column("external_id", sa.String(300), nullable=False),
            sa.Column("pseudonym", sa.String(40), nullable=False),
            sa.Column("path", sa.Text(), nullable=False),
            sa.Column("made", sa.Date(), nullable=False),
            sa.Column("expires", sa.Date(), nullable=False),
            sa.Column("removed", sa.String(40)),
            sa.Column("by", sa.String(200), nullable=False),
        )
        op.create_index("ix_exports_external_id", "exports", ["external_id"])
        op.create_index("ix_exports_expires", "exports", ["expires"])


def downgrade() -> None:
    op.drop_index("ix_exports_expires", table_name="exports")
    op.drop_index("ix_exports_external_id", table_name="exports")
    op.drop_table("exports")
    for table, columns in COLUMNS.items():
        with op.batch_alter_table(table) as batch:
            for column in columns:
                batch.drop_column(column.name)
