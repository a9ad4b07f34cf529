"""The people of an install: their roles, hashed secrets and OIDC identities."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, insert, select, update
from sqlalchemy.engine import Connection

from connector.state.db import Database, now
from connector.state.schema import users


class UsersStore(Database):
    def user_row(self, name: str, active_only: bool = False) -> Any | None:
        """The row of user NAME (with ``active_only``: None when disabled), or None."""
        q = select(users).where(users.c.name == name)
        if active_only:
            q = q.where(users.c.disabled_at.is_(None))
        with self.engine.connect() as conn:
            return conn.execute(q).first()

    def user_rows(self) -> list[Any]:
        """Every user, by name."""
        with self.engine.connect() as conn:
            return list(conn.execute(select(users).order_by(users.c.name)).all())

    def user_count(self) -> int:
        """How many users there are (none: the first one added is an admin)."""
        with self.engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(users)).scalar() or 0)

    def user_exists(self, conn: Connection, name: str) -> bool:
        """Whether a user of that name exists, disabled or not."""
        return conn.execute(select(users.c.name).where(users.c.name == name)).first() is not None

    def insert_user(self, conn: Connection, name: str, display: str | None, roles: str, secret: str | None,
                    created_by: str) -> None:
        """Add a user (roles as JSON, the secret as its hash), inside the caller's transaction."""
        conn.execute(insert(users).values(name=name, display=display, roles=roles, secret=secret,
                                          created_by=created_by, created_at=now()))

    def set_user_roles(self, conn: Connection, name: str, roles: str) -> bool:
        """Give an active user these roles (JSON); False when there is no active user of that name."""
        done = conn.execute(update(users).where(users.c.name == name, users.c.disabled_at.is_(None))
                            .values(roles=roles)).rowcount
        return bool(done)

    def disable_user(self, conn: Connection, name: str, by: str) -> bool:
        """Disable an active user; False when there is none of that name."""
        done = conn.execute(update(users).where(users.c.name == name, users.c.disabled_at.is_(None))
                            .values(disabled_by=by, disabled_at=now())).rowcount
        return bool(done)
