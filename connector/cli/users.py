"""``user``: the people who act on dossiers, their roles and secrets."""

from __future__ import annotations

from pathlib import Path

import click

from connector.app import read_secret_ref
from connector.app import users as uses
from connector.cli._common import (
    acting,
    acting_user,
    authenticate,
    config_option,
    echo,
    fail,
    json_option,
    opened,
    out_console,
)
from connector.errors import ConnectorError


@click.group("user")
def user_group() -> None:
    """The people who act on dossiers (lists, approvals, execution, holds, facts) and their roles."""


@user_group.command("add")
@config_option
@click.argument("name")
@click.option("--role", "roles", multiple=True, required=True,
              type=click.Choice(uses.ROLES),
              help="maker, approver, executor, admin, privacy (the FG: read only) or teacher. Repeatable.")
@click.option("--display", help="The person's name as shown on lists and certificates.")
@click.option("--new-secret", "new_secret_ref", metavar="REF",
              help="The new user's secret by reference (env:NAME or file:PATH); without it, asked at a prompt.")
@click.option("--as", "as_name", metavar="USER", help="The admin who adds the user (not for the first user).")
@click.option("--secret", "secret_ref", metavar="REF", help="The admin's secret by reference (else a prompt).")
@json_option
def user_add(config_path: Path, name: str, roles: tuple[str, ...], display: str | None, new_secret_ref: str | None,
             as_name: str | None, secret_ref: str | None, as_json: bool) -> None:
    """Add user NAME with their roles. The first user of an install is an admin and needs no
    --as; after that an admin adds users."""
    with opened(config_path, as_json) as app:
        try:
            by = authenticate(app, as_name, secret_ref) if as_name else None
            if new_secret_ref is not None:
                secret = read_secret_ref(app.loaded, new_secret_ref, ["--new-secret"])
            else:
                secret = click.prompt(f"new secret for {name}", hide_input=True, confirmation_prompt=True, err=True)
            user = uses.add_user(app, by, name, list(roles), secret, display)
        except ConnectorError as exc:
            fail(str(exc), as_json)
    echo({"ok": True, "user": user.as_dict()}, as_json, lambda: out_console.print(
        f"user {name} added with role(s) {', '.join(sorted(user.roles))}", highlight=False))


@user_group.command("list")
@config_option
@json_option
def user_list(config_path: Path, as_json: bool) -> None:
    """The users and their roles (never their secrets)."""
    with opened(config_path, as_json) as app:
        rows = uses.list_users(app)

    def human() -> None:
        for u in rows:
            state = f"disabled {u['disabled_at']} by {u['disabled_by']}" if u["disabled_at"] else "active"
            out_console.print(f"{u['name']}: {', '.join(u['roles'])} ({state})", highlight=False)
        if not rows:
            out_console.print("no users yet: add the first (an admin) with 'leerdossier user add NAME --role admin'")

    echo(rows, as_json, human)


@user_group.command("roles")
@config_option
@click.argument("name")
@click.option("--role", "roles", multiple=True, required=True, type=click.Choice(uses.ROLES),
              help="A role NAME gets (repeat for more); the roles not given are taken away.")
@acting
@json_option
def user_roles(config_path: Path, name: str, roles: tuple[str, ...], as_name: str, secret_ref: str | None,
               as_json: bool) -> None:
    """Give user NAME exactly these roles (an admin; never their own)."""
    with opened(config_path, as_json) as app:
        by = acting_user(app, as_name, secret_ref, as_json, "user.manage")
        try:
            uses.set_roles(app, by, name, list(roles))
        except ConnectorError as exc:
            fail(str(exc), as_json)
    echo({"ok": True, "user": name, "roles": sorted(set(roles))}, as_json,
          lambda: out_console.print(f"user {name}: {', '.join(sorted(set(roles)))}", highlight=False))


@user_group.command("disable")
@config_option
@click.argument("name")
@acting
@json_option
def user_disable(config_path: Path, name: str, as_name: str, secret_ref: str | None, as_json: bool) -> None:
    """Disable user NAME (kept for the record; they can no longer act)."""
    with opened(config_path, as_json) as app:
        by = acting_user(app, as_name, secret_ref, as_json, "user.manage")
        try:
            uses.disable_user(app, by, name)
        except ConnectorError as exc:
            fail(str(exc), as_json)
    echo({"ok": True, "user": name, "disabled": True}, as_json,
          lambda: out_console.print(f"user {name} disabled", highlight=False))


# Commands kept in their own modules register themselves on ``main`` when imported.
