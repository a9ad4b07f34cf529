"""``okr`` (the onderwijskundig rapport) and ``transfer`` (a dossier part to another place)."""

from __future__ import annotations

import sys
from datetime import date
from pathlib import Path

import click
from rich.markup import escape

from connector.app import transfer as uses
from connector.cli._common import (
    DATE,
    EXIT_ERROR,
    EXIT_OK,
    acting,
    acting_user,
    config_option,
    dossier_of,
    echo,
    err_console,
    fail,
    json_option,
    opened,
    out_console,
)
from connector.errors import ConnectorError


@click.group("okr")
def okr_group() -> None:
    """The onderwijskundig rapport: record that it was sent, check the parents were informed."""


@okr_group.command("sent")
@config_option
@click.argument("key")
@click.option("--date", "on", type=DATE, required=True, help="When the LAS sent it (YYYY-MM-DD).")
@click.option("--to", "receiving", required=True, help="BRIN of the receiving school.")
@click.option("--by", required=True, help="Who records it.")
@json_option
def okr_sent(config_path: Path, key: str, on: date, receiving: str, by: str, as_json: bool) -> None:
    """Record that pupil KEY's OKR was sent; incomplete without evidence that parents were informed."""
    with opened(config_path, as_json) as app:
        row = dossier_of(app, key, as_json)
        try:
            result = uses.record_okr(app, by, row, on, receiving)
        except ConnectorError as exc:
            fail(str(exc), as_json)
    def human() -> None:
        if result["status"] == "transferred":
            out_console.print(f"OKR of {row.pseudonym} recorded as sent to {receiving}", highlight=False)
        else:
            out_console.print(f"[yellow]OKR of {row.pseudonym} recorded but INCOMPLETE[/]: "
                              f"{escape(', '.join(result['missing']))}", highlight=False, markup=True)

    echo(result, as_json, human)  # recorded either way (exit 0); 'okr incomplete' lists what is missing


@okr_group.command("incomplete")
@config_option
@json_option
def okr_incomplete(config_path: Path, as_json: bool) -> None:
    """OKRs recorded as sent whose dossier still lacks the OKR or the parents-informed evidence."""
    with opened(config_path, as_json) as app:
        try:
            rows = uses.incomplete_okrs(app)
        except ConnectorError as exc:
            fail(str(exc), as_json)

    def human() -> None:
        for r in rows:
            out_console.print(f"{r['record']} sent {r['sent']} to {r['receiving']}: okr {r['okr_present']}, "
                              f"parents informed {r['parents_informed']}", highlight=False)
        if not rows:
            out_console.print("every recorded OKR has its evidence")

    echo(rows, as_json, human)


@click.command("transfer")
@config_option
@click.argument("key")
@click.option("--part", required=True, help="Dossier part to export (e.g. II).")
@click.option("--to-folder", "folder", type=click.Path(path_type=Path, file_okay=False),
              help="Destination folder (gets a folder per pupil and part with a manifest).")
@click.option("--to-config", "other", type=click.Path(path_type=Path, dir_okay=False, exists=True),
              help="Destination DMS: the [dms] section of this other connector config.")
@click.option("--remove-at-source", is_flag=True,
              help="Also make a transfer list of the verified copies that may go: once another person "
                   "approves it, 'destruction list execute' removes them at the source.")
@click.option("--receiving", help="The receiving party (a BRIN or a name in [transfer.destinations]): "
                                  "its manifest carries what the configuration gives it.")
@acting
@click.option("--today", type=DATE, help="Only on an install marked [testing] simulated_clock: act on this date.")
@json_option
def transfer_cmd(config_path: Path, key: str, part: str, folder: Path | None, other: Path | None,
                 remove_at_source: bool, receiving: str | None, as_name: str, secret_ref: str | None,
                 today: date | None, as_json: bool) -> None:
    """Export a dossier part and verify every copy; removal at the source goes through a transfer
    list, approved and executed like any destruction list."""
    if (folder is None) == (other is None):
        fail("give exactly one destination: --to-folder or --to-config", as_json)
    with opened(config_path, as_json) as app:
        user = acting_user(app, as_name, secret_ref, as_json, "transfer")
        row = dossier_of(app, key, as_json)
        try:
            report = uses.export_part(app, user, row, part, folder, other, remove_at_source, today, receiving)
        except ConnectorError as exc:
            fail(str(exc), as_json)

    def human() -> None:
        out_console.print(f"{report.record} part {part}: {report.copied} copied, {report.verified} verified",
                          highlight=False)
        if report.transfer_list is not None:
            out_console.print(f"transfer list {report.transfer_list}: {report.listed} document(s) to remove at the "
                              f"source once another person approves it (leerdossier destruction list approve "
                              f"{report.transfer_list} --as USER)", highlight=False)
        if report.pupil_not_named:
            err_console.print(f"the manifest does not name the pupil: {report.pupil_not_named}", highlight=False)
        for k in report.kept:
            out_console.print(f"  kept at the source: {k['document']}: {k['reason']}", highlight=False)

    echo(report.as_dict(), as_json, human)
    sys.exit(EXIT_ERROR if report.failed else EXIT_OK)


# -- users -----------------------------------------------------------------------------------------
