"""The people who act on dossiers, their roles, and what each role may do.

Users live in the state store. A person proves who they are with a secret, stored only as a
slow hash (scrypt from the standard library: memory-hard, no extra dependency); the coming web
page logs the same users in, with a password or through OpenID Connect (``oidc_issuer`` and
``oidc_subject`` link a user to an identity provider's account). Every list, approval,
execution, hold and fact is done as an authenticated user, and the audit log names them.

Roles, and what they may do:

    maker     make destruction lists and transfer lists, record facts, place holds
              (anyone may cancel a list that is not carried out yet: the safe direction)
    approver  approve or reject a list (never one they made), place and lift holds
    executor  execute an approved list, purge the trash after the grace period, place holds
    admin     add and disable users, place and lift holds, record facts
    privacy   the privacy officer (FG): sees everything, read only, and the audit log; may
              cancel a list (the safe direction)
    teacher   a leerkracht who signs in to the web page (through the school's identity
              provider, say): no task here, sees nothing of lists, pupils or the audit log

A person may hold several roles; four eyes are enforced on the list, not by the roles: the
approver of a list is never its maker, and ``[destruction] approvals = 2`` asks for two
different approvers. The service acts as its own system identity (``SERVICE``): it may make
lists and purge what an approved list put in the trash, never approve.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import secrets
from dataclasses import dataclass
from typing import Any, Literal

from connector.audit import AuditLog
from connector.errors import ConfigError, NotFound, NotPermitted
from connector.state import StateStore

Role = Literal["maker", "approver", "executor", "admin", "privacy", "teacher"]
ROLES: tuple[Role, ...] = ("maker", "approver", "executor", "admin", "privacy", "teacher")
_ACTING = frozenset({"maker", "approver", "executor", "admin"})
_READING = _ACTING | {"privacy"}

ACTIONS: dict[str, frozenset[str]] = {
    "list.create": frozenset({"maker"}),
    "list.approve": frozenset({"approver"}),
    "list.execute": frozenset({"executor"}),
    "list.cancel": _READING,
    "list.assign": frozenset({"maker", "admin"}),
    "purge": frozenset({"executor"}),
    "transfer": frozenset({"maker"}),
    "fact.record": frozenset({"maker", "admin"}),
    "hold.add": _ACTING,
    "hold.remove": frozenset({"approver", "admin"}),
    "request.open": _ACTING,
    "request.close": frozenset({"approver", "admin"}),
    "user.manage": frozenset({"admin"}),
    "view.overview": _READING,
    "view.lists": _READING,
    "view.pupil": _READING,
    "view.requests": _READING,
    "view.audit": frozenset({"privacy", "admin"}),
}
"""Action -> the roles that may do it (``view.*``: what a role may see on the web page; the
server refuses a page to a role without it, whatever the page shows or hides)."""

_NAME = re.compile(r"[a-z0-9][a-z0-9._@-]{1,119}")
MIN_SECRET = 12

# scrypt: N=2^15, r=8, p=1 takes 32 MiB and about a tenth of a second per check here; the
# parameters are kept in each hash, so they can be raised later without breaking old ones
_N, _R, _P = 2**15, 8, 1


def hash_secret(secret: str) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(secret.encode(), salt=salt, n=_N, r=_R, p=_P, maxmem=64 * 1024 * 1024, dklen=32)
    return f"scrypt${_N}${_R}${_P}${base64.b64encode(salt).decode()}${base64.b64encode(digest).decode()}"


def check_secret(secret: str, stored: str) -> bool:
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        given = hashlib.scrypt(secret.encode(), salt=base64.b64decode(salt), n=int(n), r=int(r), p=int(p),
                               maxmem=128 * 1024 * 1024, dklen=32)
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(given, base64.b64decode(digest))


@dataclass(frozen=True)
class User:
    """An identified actor: a person from the state store, or the service's own identity."""

    name: str
    roles: frozenset[str]
    display: str | None = None
    system: bool = False
    actions: frozenset[str] | None = None
    """A system identity's own actions (instead of those of roles)."""

    def may(self, action: str) -> bool:
        if self.actions is not None:
            return action in self.actions
        return bool(self.roles & ACTIONS[action])

    def require(self, action: str) -> None:
        if not self.may(action):
            need = " or ".join(sorted(ACTIONS[action]))
            raise NotPermitted(f"user {self.name!r} may not do {action} (needs the role {need})")

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "display": self.display, "roles": sorted(self.roles), "system": self.system}


SERVICE = User(name="system:leerdossier-service", roles=frozenset(), system=True,
               actions=frozenset({"list.create", "purge"}))
"""The service's identity: it makes lists and purges what approved lists put in the trash."""


def _row_user(row: Any) -> User:
    return User(name=row.name, roles=frozenset(json.loads(row.roles)), display=row.display)


def get(state: StateStore, name: str) -> User | None:
    """An active user by name (None: unknown or disabled)."""
    row = state.user_row(name, active_only=True)
    return _row_user(row) if row else None


def authenticate(state: StateStore, name: str, secret: str) -> User:
    """The user, when the secret is theirs. One message for every failure: an unknown name,
    a disabled user and a wrong secret look the same from outside."""
    row = state.user_row(name)
    ok = row is not None and row.secret is not None and row.disabled_at is None and check_secret(secret, row.secret)
    if row is None:
        check_secret(secret, hash_secret("-"))  # the same work as a real check: no timing hint
    if not ok or row is None:
        raise NotPermitted(f"user {name!r}: unknown, disabled, or the secret is wrong")
    return _row_user(row)


def listing(state: StateStore) -> list[dict[str, Any]]:
    rows = state.user_rows()
    return [{"name": r.name, "display": r.display, "roles": json.loads(r.roles), "created_by": r.created_by,
             "created_at": r.created_at, "disabled_at": r.disabled_at, "disabled_by": r.disabled_by,
             "password": r.secret is not None, "oidc": r.oidc_subject is not None} for r in rows]


def count(state: StateStore) -> int:
    return state.user_count()


def add(state: StateStore, audit: AuditLog, name: str, roles: list[str], secret: str | None, by: User | None,
        display: str | None = None) -> User:
    """Add a user. The first user of an install must be an admin and is added by nobody; after
    that only an admin adds users."""
    if not _NAME.fullmatch(name):
        raise ConfigError(f"user name {name!r}: 2-120 characters, lower-case letters, digits and . _ @ -")
    unknown = sorted(set(roles) - set(ROLES))
    if unknown or not roles:
        raise ConfigError(f"role(s) {', '.join(unknown) or '(none)'}: give one or more of {', '.join(ROLES)}")
    if secret is not None and len(secret) < MIN_SECRET:
        raise ConfigError(f"the secret must be at least {MIN_SECRET} characters")
    first = count(state) == 0
    if first:
        if "admin" not in roles:
            raise NotPermitted("the first user of an install must have the role admin (who adds the others)")
        actor = "(first user of the install)"
    else:
        if by is None:
            raise NotPermitted("adding a user needs an admin: give --as NAME")
        by.require("user.manage")
        actor = by.name
    with state.transaction() as conn:
        if state.user_exists(conn, name):
            raise ConfigError(f"user {name!r} exists already")
        state.insert_user(conn, name, display, json.dumps(sorted(set(roles))),
                          hash_secret(secret) if secret is not None else None, actor)
        audit.append(conn, actor, "user.added", None, {"user": name, "roles": sorted(set(roles))})
    return User(name=name, roles=frozenset(roles), display=display)


def set_roles(state: StateStore, audit: AuditLog, name: str, roles: list[str], by: User) -> None:
    """Give user ``name`` exactly ``roles`` (an admin; never their own roles, so that no admin
    widens or ends their own powers alone, and an install never loses its last admin)."""
    by.require("user.manage")
    unknown = sorted(set(roles) - set(ROLES))
    if unknown or not roles:
        raise ConfigError(f"role(s) {', '.join(unknown) or '(none)'}: give one or more of {', '.join(ROLES)}")
    if name == by.name:
        raise NotPermitted("an admin does not change their own roles (another admin does)")
    before = get(state, name)
    with state.transaction() as conn:
        if before is None or not state.set_user_roles(conn, name, json.dumps(sorted(set(roles)))):
            raise NotFound(f"no active user {name!r}")
        audit.append(conn, by.name, "user.roles_changed", None,
                     {"user": name, "roles": sorted(set(roles)), "before": sorted(before.roles)})


def disable(state: StateStore, audit: AuditLog, name: str, by: User) -> None:
    by.require("user.manage")
    if name == by.name:
        raise NotPermitted("an admin does not disable themselves (another admin does)")
    with state.transaction() as conn:
        if not state.disable_user(conn, name, by.name):
            raise NotFound(f"no active user {name!r}")
        audit.append(conn, by.name, "user.disabled", None, {"user": name})
