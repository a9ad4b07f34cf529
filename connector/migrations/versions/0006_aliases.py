"""Another LAS key of the same child: a person links a suspected duplicate to the dossier it
belongs to, a change of LAS maps every old key to its new one, and an ECK-iD a source gives
finds the dossier when the LAS key changed. The ECK-iD is kept only as a keyed hash, as the
other duplicate checks are.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-07 21:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None

COLUMNS: dict[str, list[sa.Column[object]]] = {
    "dossiers": [sa.Column("dup_eck", sa.String(64))],
    "staging": [sa.Column("dup_eck", sa.String(64)), sa.Column("via", sa.String(40)),
                sa.Column("via_kind", sa.String(8))],
}


def upgrade() -> None:
    inspector = sa.inspect(op.get_bind())
    for table, columns in COLUMNS.items():
        have = {c["name"] for c in inspector.get_columns(table)}
        for column in columns:
            if column.name not in have:
                op.add_column(table, column)
    indexes = {i["name"] for i in inspector.get_indexes("dossiers")}
    if "ix_dossiers_dup_eck" not in indexes:
        op.create_index("ix_dossiers_dup_eck", "dossiers", ["dup_eck"])
    if "staging_dup_eck" not in {i["name"] for i in inspector.get_indexes("staging")}:
        op.create_index("staging_dup_eck", "staging", ["run_id", "dup_eck"])
    if "aliases" not in set(inspector.get_table_names()):
        op.create_table(
            "aliases",
            sa.Column("pseudonym", sa.String(40), primary_key=True),
            sa.Column("external_id", sa.String(300), nullable=False),
            sa.Column("kind", sa.String(8), nullable=False),
            sa.Column("by", sa.String(200), nullable=False),
            sa.Column("at", sa.String(40), nullable=False),
            sa.Column("used_run", sa.Integer()),
        )
        op.create_index("ix_aliases_external_id", "aliases", ["external_id"])


def downgrade() -> None:
    op.drop_index("ix_aliases_external_id", table_name="aliases")
    op.drop_table("aliases")
    op.drop_index("staging_dup_eck", table_name="staging")
    op.drop_index("ix_dossiers_dup_eck", table_name="dossiers")
    with op.batch_alter_table("staging") as batch:
        for name in ("via_kind", "via", "dup_eck"):
            batch.drop_column(name)
    with op.batch_alter_table("dossiers") as batch:
        batch.drop_column("dup_eck")
