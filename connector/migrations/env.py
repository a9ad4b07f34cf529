"""Alembic environment for the connector's state store: runs on the connection the state store
hands over (``config.attributes["connection"]``), for SQLite and PostgreSQL alike."""

from __future__ import annotations

from alembic import context

from connector.state import metadata

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=metadata, render_as_batch=True,
                  compare_type=True)
with context.begin_transaction():
    context.run_migrations()
