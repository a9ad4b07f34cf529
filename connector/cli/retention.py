"""Facts that move the retention clocks (``pupil``), documents, tags and holds."""

from __future__ import annotations

import sys
from contextlib import nullcontext
from datetime import date
from pathlib import Path

import click
from rich.markup import escape

from connector.app import pupils, records
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
    progress_bar,
)
from connector.cli.access import pupil_account
from connector.errors import ConnectorError


@click.group("pupil")
def pupil_group() -> None:
    """Facts about a pupil recorded by a named person (retention clocks, the pupil's account)."""


def _fact(config_path: Path, key: str, kind: str, on: date | None, as_name: str, secret_ref: str | None,
          note: str | None, as_json: bool) -> None:
    with opened(config_path, as_json) as app:
        user = acting_user(app, as_name, secret_ref, as_json, "fact.record")
        by = user.name
        row = dossier_of(app, key, as_json)
        try:
            tags = records.record_fact(app, user, row, kind, on, note, date.today())
        except ConnectorError as exc:
            fail(str(exc), as_json)
    data = {"ok": True, "record": row.pseudonym, "fact": kind, "on": on, "by": by, "tags": tags.as_dict()}
    echo(data, as_json, lambda: out_console.print(
        f"recorded {kind} {on or '(withdrawn)'} for {row.pseudonym} by {by}; "
        f"{tags.tagged} document tag(s) updated", highlight=False))


def _fact_command(name: str, kind: str, doc: str) -> None:
    @pupil_group.command(name, help=doc)
    @config_option
    @click.argument("key")
    @click.option("--date", "on", type=DATE, required=False, help="The date (YYYY-MM-DD); omit with --withdraw.")
    @click.option("--withdraw", is_flag=True, help="Withdraw the fact (e.g. consent withdrawn).")
    @acting
    @click.option("--note", help="Why, or the document it rests on (kept in the state, not the audit log).")
    @json_option
    def command(config_path: Path, key: str, on: date | None, withdraw: bool, as_name: str, secret_ref: str | None,
                note: str | None, as_json: bool) -> None:
        if bool(on) == withdraw:
            fail("give either --date or --withdraw", as_json)
        _fact(config_path, key, kind, on, as_name, secret_ref, note, as_json)


_fact_command("left", "departure",
              "Record that a pupil left (for a pupil who vanished from the LAS without a departure date).")
_fact_command("referred", "referred", "Record a referral to (V)SO (samenwerkingsverband, TLV).")
_fact_command("consent", "reunion_consent",
              "Record prior consent to keep name, address and school period for reunions.")
_fact_command("reenrolled", "reenrolled", "Record a re-enrolment after a departure (stops the clock).")
_fact_command("exam-result", "exam_result", "Record the date of the exam result (VO; starts exam-work clocks).")


@pupil_group.command("find")
@config_option
@click.option("--name", "text", required=True, help="Words of the pupil's name (case and accents aside).")
@click.option("--reason", required=True, help="Why you look (audited).")
@acting
@json_option
def pupil_find(config_path: Path, text: str, reason: str, as_name: str, secret_ref: str | None,
               as_json: bool) -> None:
    """Find pupils by name in the LAS: name, birth date, school and keys of at most 25, for a
    user whose role may see pupils' data. Every pupil shown is recorded in the audit log with
    the reason; the search text is not kept."""
    with opened(config_path, as_json) as app:
        user = acting_user(app, as_name, secret_ref, as_json, "view.pupil")
        try:
            found = pupils.find_by_name(app, user, text, reason)
        except ConnectorError as exc:
            fail(str(exc), as_json)

    def human() -> None:
        for p in found["pupils"]:
            kept = "dossier" if p["dossier"] else "no dossier"
            out_console.print(f"{p['pseudonym']}  {p['name']}  born {p['born']}  school {p['school']}  "
                              f"LAS key {p['key']}  ({kept})", highlight=False, markup=False)
        if not found["pupils"]:
            out_console.print("no pupil in the LAS has a name with these words")
        if found["more"]:
            out_console.print("more pupils match: give more of the name")
    echo(found, as_json, human)


@pupil_group.command("show")
@config_option
@click.argument("key")
@click.option("--reveal", is_flag=True, help="Also show name, birth date and school from the LAS (audited).")
@click.option("--reason", help="Why you look (required with --reveal; audited).")
@click.option("--as", "as_name", metavar="USER", help="Who looks (required with --reveal).")
@click.option("--secret", "secret_ref", metavar="REF", help="Your secret by reference, env:NAME or file:PATH.")
@json_option
def pupil_show(config_path: Path, key: str, reveal: bool, reason: str | None, as_name: str | None,
               secret_ref: str | None, as_json: bool) -> None:
    """What the connector keeps of pupil KEY's dossier (pseudonymous key, school, dates, linked
    keys); with --reveal also who the child is, read from the LAS, by a user whose role may see
    pupils' data, for a reason, recorded in the audit log."""
    if reveal and (not as_name or not reason):
        fail("--reveal needs --as USER and --reason TEXT: every reveal is recorded (who, which pupil, why)",
             as_json)
    with opened(config_path, as_json) as app:
        try:
            if reveal:
                user = acting_user(app, str(as_name), secret_ref, as_json, "view.pupil")
                data = pupils.reveal(app, user, key, str(reason))
            else:
                data = pupils.show(app, key)
        except ConnectorError as exc:
            fail(str(exc), as_json)

    def human() -> None:
        left = data["departure"] or "not left"
        missing = f", missing from the LAS since {data['vanished_since']}" if data["vanished_since"] else ""
        out_console.print(f"{data['pseudonym']}: school {data['school']}, departure {left}{missing}",
                          highlight=False, markup=False)
        for a in data["aliases"]:
            used = "used by a sync" if a["used"] else "not used yet"
            out_console.print(f"  another key of the child: {a['pseudonym']} ({a['kind']}, by {a['by']}, {used})",
                              highlight=False, markup=False)
        for r in data.get("las", []):
            out_console.print(f"  in the LAS: {r['name']}, born {r['born']}, school {r['school']}, LAS key {r['key']}"
                              f" ({r['pseudonym']})", highlight=False, markup=False)
        if reveal and not data.get("las"):
            out_console.print("  not in the LAS export now (left, or a key no longer delivered)")
    echo(data, as_json, human)


@pupil_group.command("facts")
@config_option
@click.argument("key")
@json_option
def pupil_facts(config_path: Path, key: str, as_json: bool) -> None:
    """Show the facts recorded for a pupil and the clock they give."""
    with opened(config_path, as_json) as app:
        row = dossier_of(app, key, as_json)
        facts, history = records.facts_of(app, row)
    data = {"record": row.pseudonym, "las_departure": row.departure, "facts": facts.model_dump(),
            "clock_start": facts.clock_start,
            "history": [{k: h[k] for k in ("kind", "on", "by", "at")} for h in history]}
    labels = {"departure": "departure", "referred": "referred to (V)SO", "reunion_consent": "reunion consent",
              "reenrolled": "re-enrolled", "exam_result": "exam result"}

    def show() -> None:
        las = row.departure.isoformat() if row.departure else "none"
        start = facts.clock_start.isoformat() if facts.clock_start else "not running"
        out_console.print(f"[bold]{escape(row.pseudonym)}[/]: departure in the LAS {las}; retention clock "
                          f"{start}", highlight=False, markup=True)
        for name, label in labels.items():
            value = getattr(facts, name)
            if value is not None:
                out_console.print(f"  {label + ':':<22}{value.isoformat()}", highlight=False)
        for h in history:
            on = h["on"].isoformat() if h["on"] else "withdrawn"
            out_console.print(f"  recorded {h['at']} by {h['by']}: {labels.get(h['kind'], h['kind'])} {on}",
                              highlight=False)
    echo(data, as_json, show)


@click.group("document")
def document_group() -> None:
    """Documents in a pupil's dossier."""


@document_group.command("add")
@config_option
@click.argument("key")
@click.argument("file", type=click.Path(path_type=Path, exists=True, dir_okay=False))
@click.option("--class", "doc_class", required=True, help="Document class from the mapping (e.g. rapport).")
@click.option("--by", default="leerdossier document add", help="Who adds it.")
@json_option
def document_add(config_path: Path, key: str, file: Path, doc_class: str, by: str, as_json: bool) -> None:
    """Store FILE in the dossier of pupil KEY through the configured DMS, tagged at once."""
    with opened(config_path, as_json) as app:
        row = dossier_of(app, key, as_json)
        try:
            doc, part, tags = records.add_document(app, by, row, doc_class, file)
        except ConnectorError as exc:
            fail(str(exc), as_json)
    data = {"ok": True, "record": row.pseudonym, "document": doc.id, "part": part, "class": doc_class,
            "tags": tags.as_dict()}
    echo(data, as_json, lambda: out_console.print(
        f"stored {doc.id} in part {part} of {row.pseudonym} as {doc_class}; tagged", highlight=False))


@click.group("tags")
def tags_group() -> None:
    """Retention tags on every document."""


@tags_group.command("refresh")
@config_option
@click.option("--from-state", is_flag=True,
              help="Recompute from the recorded state and touch only dossiers whose tags changed (fast; does "
                   "not look for documents added by other routes).")
@json_option
def tags_refresh(config_path: Path, from_state: bool, as_json: bool) -> None:
    """Recompute every document's tag (also finds documents added by other routes)."""
    with opened(config_path, as_json) as app:
        update_, bar = progress_bar(not as_json and err_console.is_terminal)
        with bar or nullcontext():
            report = records.refresh_tags(app, from_state, update_)
    data = report.as_dict()

    def human() -> None:
        c = out_console
        c.print(f"dossiers {report.dossiers}, documents {report.documents}: {report.tagged} tagged, "
                f"{report.unchanged} unchanged, {report.gone} gone from the DMS")
        if report.unclassified:
            c.print(f"[yellow]unclassified: {len(report.unclassified)}[/] (longest period applied; "
                    "classify them in the DMS or add a rule to the mapping)", markup=True)
            for u in report.unclassified[:20]:
                c.print(f"  {u['record']} document {u['document']}", highlight=False)
        for f in report.failed:
            c.print(f"[red]failed[/]: {escape(f['record'])}: {escape(f['error'])}", highlight=False, markup=True)

    echo(data, as_json, human)
    sys.exit(EXIT_ERROR if report.failed else EXIT_OK)


# -- holds ---------------------------------------------------------------------------------------

@click.group("hold")
def hold_group() -> None:
    """Legal holds: a complaint, dispute or open request stops every destruction path."""


@hold_group.command("add")
@config_option
@click.argument("key")
@click.option("--reason", required=True, help="Why (complaint, dispute, open access request...).")
@acting
@click.option("--part", help="Only this dossier part (e.g. II); default the whole dossier.")
@json_option
def hold_add(config_path: Path, key: str, reason: str, as_name: str, secret_ref: str | None, part: str | None,
             as_json: bool) -> None:
    """Put pupil KEY's dossier (or one part) on hold."""
    with opened(config_path, as_json) as app:
        user = acting_user(app, as_name, secret_ref, as_json, "hold.add")
        row = dossier_of(app, key, as_json)
        try:
            hold_id = records.add_hold(app, user, row, part, reason)
        except ConnectorError as exc:
            fail(str(exc), as_json)
    echo({"ok": True, "hold": hold_id, "record": row.pseudonym, "part": part}, as_json,
          lambda: out_console.print(f"hold {hold_id} on {row.pseudonym} ({part or 'whole dossier'})", highlight=False))


@hold_group.command("remove")
@config_option
@click.argument("hold_id", type=int)
@click.option("--reason", required=True, help="Why the hold ends.")
@acting
@json_option
def hold_remove(config_path: Path, hold_id: int, reason: str, as_name: str, secret_ref: str | None,
                as_json: bool) -> None:
    """Lift hold HOLD_ID (an approver or an admin). A hold an open request placed is lifted by
    closing the request."""
    with opened(config_path, as_json) as app:
        user = acting_user(app, as_name, secret_ref, as_json, "hold.remove")
        try:
            records.remove_hold(app, user, hold_id, reason)
        except ConnectorError as exc:
            fail(str(exc), as_json)
    echo({"ok": True, "hold": hold_id}, as_json, lambda: out_console.print(f"hold {hold_id} lifted"))


@hold_group.command("list")
@config_option
@json_option
def hold_list(config_path: Path, as_json: bool) -> None:
    """Active holds."""
    with opened(config_path, as_json) as app:
        data = records.active_holds(app)
    def human() -> None:
        for h in data:
            out_console.print(f"{h['id']}: {h['pseudonym']} {h['part'] or 'whole dossier'}: {h['reason']} "
                              f"({h['by']}, {h['at']})", highlight=False)

    echo(data, as_json, human)


# -- destruction ---------------------------------------------------------------------------------


pupil_group.add_command(pupil_account)  # an access command, which lives with them
