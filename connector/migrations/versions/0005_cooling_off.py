"""A cooling-off period between a list's final approval and its execution: the day from which
its documents may be removed is recorded on the list when it is approved (``[destruction]
cooling_off_days``), and the gate refuses every removal before it. Lists approved before this
version have none (they were approved under the rules of their day). A list may also be
assigned to one approver, who then gives its next approval (``reviewer``).

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-04 19:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    have = {c["name"] for c in sa.inspect(op.get_bind()).get_columns("destruction_lists")}
    if "cooling_off_until" not in have:
        op.add_column("destruction_lists", sa.Column("cooling_off_until", sa.Date()))
    if "reviewer" not in have:
        op.add_column("destruction_lists", sa.Column("reviewer", sa.String(200)))


def downgrade() -> None:
    with op.batch_alter_table("destruction_lists") as batch:
        batch.drop_column("reviewer")
        batch.drop_column("cooling_off_until")
