"""The destruction gate: users with roles, signed approvals (several per list), transfer lists,
the audit head keyed and anchored, and the departure date staged with each snapshot record (for
the mass-departure rail and re-enrolment); a transfer's destination may be longer than a BRIN.

A list approved before this version has no signed approval: the gate refuses it until users of
the install approve it again (and then only as a draft made anew: make a new list). Documents
that an earlier version removed at the source after a transfer (status ``transferred``) stay in
the DMS trash; they are on no approved list, so no purge takes them.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01 22:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None

COLUMNS: dict[str, list[sa.Column[object]]] = {
    "destruction_lists": [
        sa.Column("kind", sa.String(16), nullable=False, server_default="destruction"),
        sa.Column("receiving", sa.Text()),
        sa.Column("required_approvals", sa.Integer(), nullable=False, server_default="1"),
        sa.Column("anchor_seq", sa.Integer()),
        sa.Column("anchor_hash", sa.String(64)),
        sa.Column("certified_seq", sa.Integer()),
        sa.Column("certified_hash", sa.String(64)),
    ],
    "destruction_items": [sa.Column("verified", sa.String(64)), sa.Column("trashed_on", sa.Date()),
                          sa.Column("purged_at", sa.String(40))],
    "staging": [sa.Column("departure", sa.Date())],
    "audit_head": [sa.Column("mac", sa.String(64))],
}


def upgrade() -> None:
    bind = op.get_bind()
    inspector = sa.inspect(bind)
    tables = set(inspector.get_table_names())
    # a store adopted from before migrations made its tables from the newest model already
    for table, columns in COLUMNS.items():
        have = {c["name"] for c in inspector.get_columns(table)}
        for column in columns:
            if column.name not in have:
                op.add_column(table, column)
    # a destination is a folder or another DMS's label, often longer than a BRIN
    receiving = next(c for c in inspector.get_columns("transfers") if c["name"] == "receiving")
    if not isinstance(receiving["type"], sa.Text):
        with op.batch_alter_table("transfers") as batch:
            batch.alter_column("receiving", type_=sa.Text(), existing_type=sa.String(64))
    if "destruction_approvals" not in tables:
        op.create_table(
            "destruction_approvals",
            sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
            sa.Column("list_id", sa.Integer(), nullable=False),
            sa.Column("approver", sa.String(120), nullable=False),
            sa.Column("role", sa.String(200)),
            sa.Column("at", sa.String(40), nullable=False),
            sa.Column("digest", sa.String(64), nullable=False),
            sa.Column("rejected", sa.Text(), nullable=False),
            sa.Column("signature", sa.String(64), nullable=False),
            sa.Column("anchor_seq", sa.Integer()),
            sa.Column("anchor_hash", sa.String(64)),
        )
        op.create_index("ix_destruction_approvals_list_id", "destruction_approvals", ["list_id"])
    if "users" not in tables:
        op.create_table(
            "users",
            sa.Column("name", sa.String(120), primary_key=True),
            sa.Column("display", sa.String(200)),
            sa.Column("roles", sa.Text(), nullable=False),
            sa.Column("secret", sa.Text()),
            sa.Column("oidc_issuer", sa.String(300)),
            sa.Column("oidc_subject", sa.String(300)),
            sa.Column("created_by", sa.String(120), nullable=False),
            sa.Column("created_at", sa.String(40), nullable=False),
            sa.Column("disabled_by", sa.String(120)),
            sa.Column("disabled_at", sa.String(40)),
        )


def downgrade() -> None:
    with op.batch_alter_table("transfers") as batch:
        batch.alter_column("receiving", type_=sa.String(64), existing_type=sa.Text())
    op.drop_table("users")
    op.drop_index("ix_destruction_approvals_list_id", table_name="destruction_approvals")
    op.drop_table("destruction_approvals")
    for table, columns in COLUMNS.items():
        with op.batch_alter_table(table) as batch:
            for column in columns:
                batch.drop_column(column.name)
