"""The use cases on the people who act on dossiers: add, list and disable users. The first user
of an install is an admin and needs no one to add them; after that an admin adds users."""

from __future__ import annotations

from typing import Any

from connector import users
from connector.app.context import App
from connector.users import ROLES, User

__all__ = ["ROLES", "add_user", "disable_user", "list_users"]


def add_user(app: App, by: User | None, name: str, roles: list[str], secret: str,
             display: str | None = None) -> User:
    """Add user ``name`` with ``roles`` and their secret (stored as an argon2/scrypt hash)."""
    return users.add(app.state, app.audit, name, roles, secret, by, display)


def list_users(app: App) -> list[dict[str, Any]]:
    """The users and their roles, never their secrets."""
    return users.listing(app.state)


def disable_user(app: App, by: User, name: str) -> None:
    """Disable user ``name``: kept for the record, they can no longer act."""
    users.disable(app.state, app.audit, name, by)
