"""``destruction``: lists, approvals, execution, certificates and the purge."""

from __future__ import annotations

import sys
from datetime import date
from pathlib import Path

import click
from rich.markup import escape

from connector.app import lists
from connector.cli._common import (
    DATE,
    EXIT_ERROR,
    EXIT_OK,
    EXIT_SAFETY,
    acting,
    acting_user,
    config_option,
    echo,
    fail,
    json_option,
    opened,
    out_console,
)
from connector.errors import ConnectorError


@click.group("destruction")
def destruction_group() -> None:
    """Destroy what is due: a list, an approval by a named person, execution, a certificate."""


@destruction_group.group("list")
def dlist_group() -> None:
    """Destruction lists."""


@dlist_group.command("create")
@config_option
@click.option("--today", type=DATE, help="Preview: the list as it would be on this later date (YYYY-MM-DD). A preview "
                              "can never be approved.")
@acting
@json_option
def dlist_create(config_path: Path, today: date | None, as_name: str, secret_ref: str | None, as_json: bool) -> None:
    """Select what is due and write a list (JSON, HTML, PDF). Nothing is destroyed."""
    with opened(config_path, as_json) as app:
        user = acting_user(app, as_name, secret_ref, as_json, "list.create")
        try:
            made = lists.create_list(app, user, today)
        except (ConnectorError, ValueError) as exc:
            fail(str(exc), as_json)
    list_id, n, files, as_of = made.list_id, made.items, made.files, made.as_of

    def human() -> None:
        if made.status == "preview":
            out_console.print(f"preview {list_id}: {n} document(s) would be due on {as_of}; nothing destroyed, "
                              f"and a preview cannot be approved. {files['pdf']}", highlight=False)
        elif not n:
            out_console.print(f"destruction list {list_id}: nothing is due; nothing destroyed", highlight=False)
        else:
            out_console.print(f"destruction list {list_id}: {n} document(s) due; nothing destroyed. Review "
                              f"{files['pdf']}; another person approves with: leerdossier destruction list "
                              f"approve {list_id} --as USER", highlight=False)

    echo({"ok": True, "list": list_id, "items": n, "status": made.status, "files": files}, as_json, human)


@dlist_group.command("show")
@config_option
@click.argument("list_id", type=int)
@json_option
def dlist_show(config_path: Path, list_id: int, as_json: bool) -> None:
    """Show a list, its approvals and its items."""
    with opened(config_path, as_json) as app:
        try:
            shown = lists.show_list(app, list_id)
        except ConnectorError as exc:
            fail(str(exc), as_json)
    head, given = shown["list"], shown["approvals"]

    def human() -> None:
        out_console.print(f"list {list_id} ({head['kind']}, {head['status']}), as of {head['as_of']}, made by "
                          f"{head['created_by']}; approvals {len(given)} of {head['required_approvals']}: "
                          f"{', '.join(a['approver'] for a in given) or '-'}", highlight=False)
        for i in shown["items"]:
            out_console.print(f"  {i['id']}: {i['pseudonym']} {i['part']} {i['doc_class']} {i['category']} "
                              f"due {i['due']} {i['decision']} {i['status']}", highlight=False)

    echo(shown, as_json, human)


@dlist_group.command("approve")
@config_option
@click.argument("list_id", type=int)
@acting
@click.option("--role", help="Your function (e.g. directeur, functionaris gegevensbescherming).")
@click.option("--reject", "rejects", multiple=True, metavar="ITEM=REASON",
              help="Leave an item out, with the reason. Repeatable.")
@json_option
def dlist_approve(config_path: Path, list_id: int, as_name: str, secret_ref: str | None, role: str | None,
                  rejects: tuple[str, ...], as_json: bool) -> None:
    """Approve list LIST_ID (signed, bound to its digest), optionally rejecting items. The maker
    of a list never approves it; [destruction] approvals asks for more than one approver."""
    reject: dict[int, str] = {}
    for r in rejects:
        item, _, reason = r.partition("=")
        if not item.isdigit() or not reason.strip():
            fail(f"--reject {r!r}: use ITEM=REASON", as_json)
        reject[int(item)] = reason.strip()
    with opened(config_path, as_json) as app:
        user = acting_user(app, as_name, secret_ref, as_json, "list.approve")
        try:
            result = lists.approve_list(app, user, list_id, role, reject)
        except ConnectorError as exc:
            fail(str(exc), as_json)

    def human() -> None:
        if result["status"] == "approving":
            out_console.print(f"list {list_id}: approval {result['approvals']} of {result['required']} by "
                              f"{user.name}; another approver is needed", highlight=False)
        else:
            out_console.print(f"list {list_id} {result['status']} ({result['approvals']} approval(s), last by "
                              f"{user.name}): {result['approved']} item(s), {result['rejected']} rejected",
                              highlight=False)

    echo(result | {"ok": True}, as_json, human)


@dlist_group.command("cancel")
@config_option
@click.argument("list_id", type=int)
@click.option("--reason", required=True, help="Why the list is withdrawn.")
@acting
@json_option
def dlist_cancel(config_path: Path, list_id: int, reason: str, as_name: str, secret_ref: str | None,
                 as_json: bool) -> None:
    """Withdraw list LIST_ID before it is carried out; its items are offered on the next list."""
    with opened(config_path, as_json) as app:
        user = acting_user(app, as_name, secret_ref, as_json, "list.cancel")
        try:
            files = lists.cancel_list(app, user, list_id, reason)
        except ConnectorError as exc:
            fail(str(exc), as_json)
    echo({"ok": True, "list": list_id, "status": "cancelled", "files": files}, as_json,
          lambda: out_console.print(f"list {list_id} cancelled by {user.name}", highlight=False))


@dlist_group.command("execute")
@config_option
@click.argument("list_id", type=int)
@click.option("--dry-run", is_flag=True, help="Check every item now, destroy nothing.")
@click.option("--today", type=DATE, help="Only on an install marked [testing] simulated_clock: act on this date.")
@acting
@json_option
def dlist_execute(config_path: Path, list_id: int, dry_run: bool, today: date | None, as_name: str,
                  secret_ref: str | None, as_json: bool) -> None:
    """Remove the approved items of LIST_ID that the gate lets go now (a destruction list: to the
    DMS's delete; a transfer list: removal at the source), then write the certificate."""
    with opened(config_path, as_json) as app:
        user = acting_user(app, as_name, secret_ref, as_json, "list.execute")
        try:
            report, files = lists.execute_list(app, user, list_id, today, dry_run)
        except ConnectorError as exc:
            fail(str(exc), as_json)
    data = report.as_dict() | {"certificate": files}

    def human() -> None:
        c = out_console
        if report.stopped_by:
            c.print(f"[bold red]stopped by safety rail {report.stopped_by}[/]: {escape(str(report.message))}",
                    highlight=False, markup=True)
            return
        verb = "would be removed" if dry_run else "removed"
        c.print(f"list {list_id}: {report.would_destroy if dry_run else report.destroyed} document(s) {verb}")
        if report.clock:
            c.print(f"  [yellow]{escape(report.clock)}[/]", highlight=False, markup=True)
        for sk in report.skipped:
            c.print(f"  skipped {sk['record']} (item {sk['item']}): {sk['reason']}", highlight=False)
        for f in report.failed:
            c.print(f"  [red]failed[/] {escape(f['record'])}: {escape(f['error'])}", highlight=False, markup=True)
        if files:
            again = " (unchanged: nothing more was removed)" if files.get("unchanged") else ""
            c.print(f"certificate: {files['pdf']}{again}", highlight=False)

    echo(data, as_json, human)
    if report.stopped_by:
        sys.exit(EXIT_SAFETY)
    sys.exit(EXIT_ERROR if report.failed else EXIT_OK)


@destruction_group.command("certificate")
@config_option
@click.argument("list_id", type=int)
@json_option
def certificate_cmd(config_path: Path, list_id: int, as_json: bool) -> None:
    """(Re)write the certificate of destruction of LIST_ID (JSON, HTML, PDF)."""
    with opened(config_path, as_json) as app:
        try:
            files = lists.certificate(app, list_id)
        except ConnectorError as exc:
            fail(str(exc), as_json)
    echo({"ok": True, "files": files}, as_json, lambda: out_console.print(files["pdf"], highlight=False))


@destruction_group.command("purge")
@config_option
@click.option("--today", type=DATE, help="Only on an install marked [testing] simulated_clock: act on this date.")
@acting
@json_option
def purge_cmd(config_path: Path, today: date | None, as_name: str, secret_ref: str | None, as_json: bool) -> None:
    """Empty the DMS trash of what approved lists put there longer ago than the grace period,
    each document through the destruction gate again (holds, re-enrolment, schedule)."""
    with opened(config_path, as_json) as app:
        user = acting_user(app, as_name, secret_ref, as_json, "purge")
        try:
            report = lists.purge(app, user, today)
        except ConnectorError as exc:
            fail(str(exc), as_json)
    echo(report.as_dict(), as_json, lambda: out_console.print(
        f"purged {report.purged}; kept for holds: {len(report.held)}; kept for other reasons: "
        f"{len(report.skipped)}; failed: {len(report.failed)}" + (f" ({report.clock})" if report.clock else "")))
    if report.stopped_by:
        sys.exit(EXIT_SAFETY)
    sys.exit(EXIT_ERROR if report.failed else EXIT_OK)


# -- OKR and transfers -------------------------------------------------------------------------
