"""The use cases on the people who act on dossiers: add, list and disable users. The first user
of an install is an admin and needs no one to add them; after that an admin adds users."""

from __future__ import annotations

from typing import Any

from connector import users
from connector.app.context import App
from connector.errors import NotPermitted
from connector.users import ACTIONS, ROLES, User

__all__ = ["ACTIONS", "ROLES", "add_user", "current_user", "disable_user", "failed_login", "list_users", "log_in",
           "log_in_oidc", "log_out", "set_roles"]


def add_user(app: App, by: User | None, name: str, roles: list[str], secret: str,
             display: str | None = None) -> User:
    """Add user ``name`` with ``roles`` and their secret (stored as an argon2/scrypt hash)."""
    return users.add(app.state, app.audit, name, roles, secret, by, display)


def list_users(app: App) -> list[dict[str, Any]]:
    """The users and their roles, never their secrets."""
    return users.listing(app.state)


def set_roles(app: App, by: User, name: str, roles: list[str]) -> None:
    """Give user ``name`` exactly ``roles`` (an admin, never for themselves); audited with the
    roles before and after."""
    users.set_roles(app.state, app.audit, name, roles, by)


def disable_user(app: App, by: User, name: str) -> None:
    """Disable user ``name``: kept for the record, they can no longer act."""
    users.disable(app.state, app.audit, name, by)


def log_in(app: App, name: str, secret: str, address: str, via: str = "password") -> User:
    """The user, when the secret is theirs; every login and every failed one is an audit entry
    (the name only when it is a user of this install: a password typed into the name field
    never reaches the log). Raises ``NotPermitted`` with one message for every failure."""
    try:
        user = app.user(name, secret)
    except NotPermitted:
        failed_login(app, name, address, via)
        raise
    app.audit.record(user.name, "web.login", None, {"address": address, "via": via})
    return user


def log_out(app: App, user: User, address: str, reason: str = "logout") -> None:
    """The end of a session, in the audit log: ``logout`` by the user, ``idle`` when it expired."""
    app.audit.record(user.name, "web.logout", None, {"address": address, "reason": reason})


def current_user(app: App, name: str) -> User | None:
    """The active user of that name (None: unknown or disabled since the session began)."""
    return users.get(app.state, name)


def log_in_oidc(app: App, name: str | None, address: str, issuer: str) -> User:
    """The user a provider vouched for (its claim ``[web.oidc] claim`` names a user of this
    install), when active; every login and failed one is an audit entry, as with a password.
    Someone the provider knows but this install does not is refused (``NotPermitted``)."""
    user = current_user(app, name) if name else None
    if user is None:
        failed_login(app, name, address, "oidc", issuer=issuer)
        raise NotPermitted("the identity provider's account is not an active user of this install")
    app.audit.record(user.name, "web.login", None, {"address": address, "via": "oidc", "issuer": issuer})
    return user


def failed_login(app: App, name: str | None, address: str, via: str, **details: str) -> None:
    """The audit entry of a failed login: by the name tried when it is a user of this install,
    else ``(onbekend)``, so that a password typed into the name field never reaches the log."""
    known = bool(name) and app.state.user_row(str(name)) is not None
    app.audit.record(str(name) if known else "(onbekend)", "web.login_failed", None,
                     {"address": address, "via": via, **details})
