"""``leerdossier`` commands for access: guardians, grants, the computed access list, and
parents' and pupils' requests. Registered on the main command group by ``connector.cli``.

Every step is audited with who did it; names of guardians are shown only with ``--names``
(to the person linking accounts), never written to a log.
"""

from __future__ import annotations

import sys
from datetime import date
from pathlib import Path
from typing import Any

import click
from rich.markup import escape

from connector.access import AccessEntry, AccessNote
from connector.app import App, DossierRow, register, reports, requests
from connector.app import access as uses
from connector.cli._common import (
    DATE,
    EXIT_ERROR,
    EXIT_OK,
    acting,
    acting_user,
    config_option,
    dossier_of,
    echo,
    fail,
    json_option,
    opened,
    out_console,
    view_options,
)
from connector.errors import ConnectorError

AUTHORITY = click.Choice(["yes", "no", "unknown"])



def _parse_authority(value: str) -> bool | None:
    return None if value == "unknown" else value == "yes"


# -- guardians --------------------------------------------------------------------------------
@click.group("guardian")
def guardian_group() -> None:
    """Parents and carers: from the LAS (OSO, CSV) or recorded here; authority and DMS account."""


@guardian_group.command("list")
@config_option
@click.argument("key")
@click.option("--names", is_flag=True, help="Show the names the source gives (to link accounts).")
@view_options
@json_option
def guardian_list(config_path: Path, key: str, names: bool, by: str, reason: str, as_json: bool) -> None:
    """The guardians of pupil KEY's dossier (a view of personal data: audited)."""
    with opened(config_path, as_json) as app:
        row = dossier_of(app, key, as_json)
        out = uses.guardians(app, by, row, reason, names)

        def show() -> None:
            if not out:
                out_console.print(f"{row.pseudonym}: no guardians known (the LAS source delivers none; "
                                  "record them with 'guardian add')", highlight=False)
            for g in out:
                name = f" {g['name']}" if names else ""
                died = " deceased" if g["deceased"] else ""
                out_console.print(f"{g['guardian']}{name} relation {g['relation'] or '-'} authority "
                                  f"{g['authority']}{died} account {g['account'] or '-'} ({g['source']})",
                                  highlight=False)
                if g["disagreement"]:
                    out_console.print(f"  [yellow]disagreement[/]: {escape(g['disagreement'])}", highlight=False,
                                      markup=True)
        echo({"ok": True, "record": row.pseudonym, "guardians": out}, as_json, show)


@guardian_group.command("add")
@config_option
@click.argument("key")
@click.option("--name", required=True, help="The guardian's name (shown only with --names).")
@click.option("--relation", help="OSO relatietotkind code: 1 vader, 2 moeder, 3 voogd, ...")
@click.option("--authority", type=AUTHORITY, required=True, help="Parental authority.")
@click.option("--by", required=True, help="Who records this.")
@json_option
def guardian_add(config_path: Path, key: str, name: str, relation: str | None, authority: str, by: str,
                 as_json: bool) -> None:
    """Record a guardian of pupil KEY by hand (a source without guardian data)."""
    with opened(config_path, as_json) as app:
        row = dossier_of(app, key, as_json)
        gid = uses.add_guardian(app, by, row, name, relation, _parse_authority(authority), authority)
        applied = _apply_now(app, row, by, as_json)
    echo({"ok": True, "record": row.pseudonym, "guardian": gid, "access": applied}, as_json,
          lambda: out_console.print(f"guardian {gid} recorded for {row.pseudonym}", highlight=False))


@guardian_group.command("set")
@config_option
@click.argument("key")
@click.argument("guardian")
@click.option("--authority", type=click.Choice(["yes", "no"]), help="Parental authority, as a person checked it.")
@click.option("--account", help="The guardian's account in the DMS.")
@click.option("--deceased", is_flag=True, help="The guardian has died.")
@click.option("--reason", required=True, help="Why (e.g. 'court order seen', 'account created').")
@click.option("--by", required=True, help="Who records this.")
@json_option
def guardian_set(config_path: Path, key: str, guardian: str, authority: str | None, account: str | None,
                 deceased: bool, reason: str, by: str, as_json: bool) -> None:
    """Record GUARDIAN's authority, DMS account or death for pupil KEY's dossier."""
    values: dict[str, Any] = {}
    if authority is not None:
        values["authority_recorded"] = authority
    if account is not None:
        values["account"] = account
    if deceased:
        values["deceased_recorded"] = 1  # the person's own column: no sync undoes it
    if not values:
        fail("nothing to set: give --authority, --account or --deceased", as_json)
    with opened(config_path, as_json) as app:
        row = dossier_of(app, key, as_json)
        try:
            uses.set_guardian(app, by, row, guardian, values, authority, reason)
        except ConnectorError as exc:
            fail(str(exc), as_json)
        applied = _apply_now(app, row, by, as_json)
    echo({"ok": True, "record": row.pseudonym, "guardian": guardian, "changed": sorted(values),
           "access": applied}, as_json,
          lambda: out_console.print(f"{guardian} on {row.pseudonym}: {', '.join(sorted(values))} recorded",
                                    highlight=False))


def _apply_now(app: App, row: DossierRow, by: str, as_json: bool) -> dict[str, Any] | None:
    """Apply the dossier's access in the DMS at once (a change a person made takes effect now)."""
    try:
        return uses.apply_now(app, row, by)
    except ConnectorError as exc:
        fail(str(exc), as_json)


# -- the computed access list -------------------------------------------------------------------
@click.group("access")
def access_group() -> None:
    """Who may see what, computed from the pupil's facts and the [access] configuration."""


@access_group.command("show")
@config_option
@click.argument("key")
@click.option("--on", "on", type=DATE, help="The day (default: today).")
@view_options
@json_option
def access_show(config_path: Path, key: str, on: Any, by: str, reason: str, as_json: bool) -> None:
    """The access list of pupil KEY's dossier, per part, each entry with its basis (a view of
    personal data: audited)."""
    day = on or date.today()
    with opened(config_path, as_json) as app:
        row = dossier_of(app, key, as_json)
        try:
            entries, notes, differ = uses.access_of(app, by, row, day, reason)
        except ConnectorError as exc:
            fail(str(exc), as_json)
    echo({"ok": True, "record": row.pseudonym, "on": day.isoformat(), "entries": [_entry(e) for e in entries],
           "notes": [n.note for n in notes], "disagreements": differ}, as_json,
          lambda: _show_access(row.pseudonym, day, entries, notes, differ))


def _entry(e: AccessEntry) -> dict[str, Any]:
    data = e.model_dump(mode="json")
    data.pop("kind")
    return data


def _show_access(pseudonym: str, day: date, entries: tuple[AccessEntry, ...], notes: tuple[AccessNote, ...],
                 differ: list[dict[str, Any]]) -> None:
    out_console.print(f"[bold]{escape(pseudonym)}[/] access on {day.isoformat()}", highlight=False, markup=True)
    for e in entries:
        classes = f" ({', '.join(e.classes)})" if e.classes else ""
        until = f" until {e.until.isoformat()}" if e.until else ""
        out_console.print(f"  part {e.part}: {e.principal} {e.right}{classes}{until}: {e.basis}",
                          highlight=False)
    for n in notes:
        out_console.print(f"  [yellow]note[/]: {escape(n.note)}", highlight=False, markup=True)
    for d in differ:
        out_console.print(f"  [yellow]disagreement[/] {escape(d['guardian'])}: {escape(d['disagreement'])}",
                          highlight=False, markup=True)


@access_group.command("apply")
@config_option
@click.argument("key", required=False)
@click.option("--all", "everything", is_flag=True, help="Every dossier, set again in the DMS.")
@click.option("--today", type=DATE, help="The day (default: today).")
@click.option("--by", default="leerdossier access apply", help="Who (or which service) applies it.")
@json_option
def access_apply(config_path: Path, key: str | None, everything: bool, today: Any, by: str, as_json: bool) -> None:
    """Apply access in the DMS: for KEY, for --all, or (default) for dossiers whose access the
    calendar changed today (16th birthdays, grants) and dossiers never applied. Run daily."""
    day = today or date.today()
    with opened(config_path, as_json) as app:
        row = dossier_of(app, key, as_json) if key is not None else None
        try:
            report = uses.apply_access(app, by, row, everything, day)
        except ConnectorError as exc:
            fail(str(exc), as_json)
    data = {"ok": not report.failed, **report.as_dict()}
    echo(data, as_json, lambda: out_console.print(
        f"access applied: {report.dossiers} dossiers, {report.parts_changed} parts changed, "
        f"{report.missing_accounts} rights without a linked account, {len(report.failed)} failed"))
    if report.failed:
        raise SystemExit(1)


@click.command("account")
@config_option
@click.argument("key")
@click.option("--account", required=True, help="The pupil's own account in the DMS.")
@click.option("--by", required=True)
@json_option
def pupil_account(config_path: Path, key: str, account: str, by: str, as_json: bool) -> None:
    """Link pupil KEY's own DMS account (used from the pupil's 16th birthday on)."""
    with opened(config_path, as_json) as app:
        row = dossier_of(app, key, as_json)
        uses.link_pupil_account(app, by, row, account)
        applied = _apply_now(app, row, by, as_json)
    echo({"ok": True, "record": row.pseudonym, "access": applied}, as_json,
          lambda: out_console.print(f"account linked for {row.pseudonym}", highlight=False))


# -- grants -----------------------------------------------------------------------------------
@click.group("grant")
def grant_group() -> None:
    """Access by consent or legal duty, recorded by a person, per part, with an end date."""


@grant_group.command("add")
@config_option
@click.argument("key")
@click.option("--kind", type=click.Choice(["third-party", "parent-after-16"]), required=True)
@click.option("--to", "grantee", required=True,
              help="The third party as the DMS knows it, or the guardian (g-...) the pupil consents for.")
@click.option("--parts", required=True, help="Dossier parts, comma-separated (e.g. I,II).")
@click.option("--basis", type=click.Choice(["consent", "legal-duty"]), required=True)
@click.option("--until", type=DATE, required=True, help="Last day of access.")
@click.option("--from", "start", type=DATE, help="First day (default: today).")
@click.option("--reason", required=True, help="What for (the request, the statute).")
@click.option("--by", required=True, help="Who records it.")
@json_option
def grant_add(config_path: Path, key: str, kind: str, grantee: str, parts: str, basis: str, until: Any,
              start: Any, reason: str, by: str, as_json: bool) -> None:
    """Record a grant of access to pupil KEY's dossier."""
    with opened(config_path, as_json) as app:
        row = dossier_of(app, key, as_json)
        wanted = tuple(p.strip() for p in parts.split(",") if p.strip())
        try:
            grant_id = uses.add_grant(app, by, row, kind, grantee, wanted, basis, start or date.today(), until,
                                      reason)
        except ConnectorError as exc:
            fail(str(exc), as_json)
        applied = _apply_now(app, row, by, as_json)
    echo({"ok": True, "grant": grant_id, "record": row.pseudonym, "access": applied}, as_json,
          lambda: out_console.print(f"grant {grant_id} on {row.pseudonym} recorded", highlight=False))


@grant_group.command("revoke")
@config_option
@click.argument("grant_id", type=int)
@click.option("--reason", required=True)
@click.option("--by", required=True)
@json_option
def grant_revoke(config_path: Path, grant_id: int, reason: str, by: str, as_json: bool) -> None:
    """End grant GRANT_ID today (consent withdrawn, duty ended)."""
    with opened(config_path, as_json) as app:
        try:
            applied = uses.revoke_grant(app, by, grant_id, reason, date.today())
        except ConnectorError as exc:
            fail(str(exc), as_json)
    echo({"ok": True, "grant": grant_id, "access": applied}, as_json,
          lambda: out_console.print(f"grant {grant_id} revoked"))


# -- requests ---------------------------------------------------------------------------------
@click.group("request")
def request_group() -> None:
    """Parents' and pupils' requests: inspection, copy, correction, erasure; deadlines and holds."""


@request_group.command("open")
@config_option
@click.argument("key")
@click.option("--kind", type=click.Choice(requests.KINDS), required=True)
@click.option("--requester", required=True, help="Who asks: the guardian (g-...), 'pupil', or a description.")
@click.option("--received", type=DATE, help="Day the request came in (default: today).")
@acting
@json_option
def request_open(config_path: Path, key: str, kind: str, requester: str, received: Any, as_name: str,
                 secret_ref: str | None, as_json: bool) -> None:
    """Register a request about pupil KEY's dossier. The dossier is on hold until it is closed."""
    day = received or date.today()
    with opened(config_path, as_json) as app:
        by = acting_user(app, as_name, secret_ref, as_json, "request.open").name
        row = dossier_of(app, key, as_json)
        request_id, due, hold_id = requests.open_request(app, by, row, kind, requester, day)
    echo({"ok": True, "request": request_id, "record": row.pseudonym, "due": due.isoformat(), "hold": hold_id},
          as_json, lambda: out_console.print(f"request {request_id} ({kind}) on {row.pseudonym}: answer by "
                                             f"{due.isoformat()}; dossier on hold {hold_id}", highlight=False))


@request_group.command("extend")
@config_option
@click.argument("request_id", type=int)
@click.option("--reason", required=True, help="Why more time is needed (tell the requester within the month).")
@acting
@json_option
def request_extend(config_path: Path, request_id: int, reason: str, as_name: str, secret_ref: str | None,
                   as_json: bool) -> None:
    """Extend REQUEST_ID's term by two months (once, before it runs out)."""
    with opened(config_path, as_json) as app:
        by = acting_user(app, as_name, secret_ref, as_json, "request.open").name
        try:
            due = requests.extend_request(app, by, request_id, reason, date.today())
        except ConnectorError as exc:
            fail(str(exc), as_json)
    echo({"ok": True, "request": request_id, "due": due.isoformat()}, as_json,
          lambda: out_console.print(f"request {request_id}: answer by {due.isoformat()}"))


@request_group.command("close")
@config_option
@click.argument("request_id", type=int)
@click.option("--outcome", type=click.Choice(requests.OUTCOMES), required=True)
@click.option("--note", default="", help="What was done (no personal data).")
@click.option("--comment", type=click.Path(path_type=Path, exists=True, dir_okay=False),
              help="A refused correction: the requester's written view, kept in the dossier.")
@click.option("--concerns", metavar="DOCUMENT", help="The disputed document the --comment is about (its id).")
@acting
@json_option
def request_close(config_path: Path, request_id: int, outcome: str, note: str, comment: Path | None,
                  concerns: str | None, as_name: str, secret_ref: str | None, as_json: bool) -> None:
    """Close REQUEST_ID with its outcome; the hold it placed is lifted (an approver or an admin).
    A correction refused (wholly or partly) keeps the requester's written view in the dossier
    (--comment)."""
    with opened(config_path, as_json) as app:
        by = acting_user(app, as_name, secret_ref, as_json, "request.close").name
        try:
            requests.close_request(app, by, request_id, outcome, note, date.today(), comment, concerns)
        except ConnectorError as exc:
            fail(str(exc), as_json)
    echo({"ok": True, "request": request_id, "outcome": outcome}, as_json,
          lambda: out_console.print(f"request {request_id} closed: {outcome}"))


@request_group.command("list")
@config_option
@click.option("--all", "everything", is_flag=True, help="Closed requests too.")
@json_option
def request_list(config_path: Path, everything: bool, as_json: bool) -> None:
    """Requests with their deadlines; four weeks and older are flagged."""
    with opened(config_path, as_json) as app:
        rows = requests.list_requests(app, everything, date.today())

    def show() -> None:
        if not rows:
            out_console.print("no open requests")
        for r in rows:
            flag = {"ok": "", "due soon": " [yellow]due soon[/]", "overdue": " [red]overdue[/]"}[r["state"]] \
                if r["status"] == "open" else escape(f" closed {r['closed']} ({r['outcome']})")
            line = escape(f"{r['request']}: {r['record']} {r['kind']} received {r['received']} due {r['due']}")
            out_console.print(line + flag, highlight=False, markup=True)
    echo({"ok": True, "requests": rows}, as_json, show)



# -- export for the data subject ------------------------------------------------------------------
@click.command("export")
@config_option
@click.argument("key")
@click.option("--for", "purpose", type=click.Choice(["inspection", "copy"]), required=True)
@click.option("--requester", required=True, help="Whose right it is: the guardian (g-...) or 'pupil'.")
@click.option("--request", "request_id", type=int, help="The request this answers.")
@click.option("--to", "folder", type=click.Path(path_type=Path, file_okay=False),
              default=Path(requests.EXPORT_FOLDER), show_default=True, help="Folder for the ZIP.")
@click.option("--by", required=True, help="Who makes the copy.")
@json_option
def export_dossier(config_path: Path, key: str, purpose: str, requester: str, request_id: int | None, folder: Path,
                   by: str, as_json: bool) -> None:
    """Write what REQUESTER may see of pupil KEY's dossier to a ZIP with an index (documents
    holding other people's data or without a class are listed as withheld); the export is
    logged and removed after [access] export_days."""
    with opened(config_path, as_json) as app:
        row = dossier_of(app, key, as_json)
        try:
            exported = requests.export_for(app, by, row, purpose, requester, request_id, folder, date.today())
        except ConnectorError as exc:
            fail(str(exc), as_json)
    result, days = exported.result, exported.days

    def show() -> None:
        out_console.print(f"{result.documents} documents of {row.pseudonym} written to {result.file} "
                          f"(removed after {days} days); {len(result.withheld)} withheld", highlight=False)
        for w in result.withheld:
            out_console.print(f"  withheld {w['document']} (part {w['part']}, class {w['class'] or '-'}): "
                              f"{w['reason']}: a person first classifies or redacts it", highlight=False)
        for c in result.open_corrections:
            out_console.print(f"  [yellow]correction request {c} is open[/]: the export's index says so",
                              highlight=False, markup=True)
    echo({"ok": True, "record": row.pseudonym, **result.as_dict()}, as_json, show)


# -- completeness ------------------------------------------------------------------------------
@click.group("report")
def report_group() -> None:
    """Reports for the school: are the dossiers complete and current, the processing register,
    who can see what."""


@report_group.command("completeness")
@config_option
@click.option("--html", "html_file", type=click.Path(path_type=Path, dir_okay=False), help="Also write an HTML page.")
@json_option
def report_completeness(config_path: Path, html_file: Path | None, as_json: bool) -> None:
    """Per school: the dossiers that miss what the rules require, counts first, then the records."""
    with opened(config_path, as_json) as app:
        result = reports.completeness_report(app, date.today(), html_file)

    def show() -> None:
        for school, data in result["schools"].items():
            out_console.print(f"[bold]{escape(school)}[/]", highlight=False, markup=True)
            for check, label in result["checks"].items():
                out_console.print(f"  {label + ':':<62}{data['counts'][check]}", highlight=False)
            for item in data["items"][:50]:
                out_console.print(f"    {item['record']}: {result['checks'][item['check']]} {item['detail']}",
                                  highlight=False)
            if len(data["items"]) > 50:
                out_console.print(f"    ... {len(data['items']) - 50} more (--json or --html for all)")
    echo({"ok": True, **result}, as_json, show)


@report_group.command("register")
@config_option
@click.option("--html", "html_file", type=click.Path(path_type=Path, dir_okay=False), help="Also write an HTML page.")
@json_option
def report_register(config_path: Path, html_file: Path | None, as_json: bool) -> None:
    """The processing-register entry for the pupil dossier (AVG art. 30), in Dutch: controller and
    FG, purposes, data subjects, data per dossier part, recipients, retention terms with their
    basis and the connector's security measures, from the running configuration and state."""
    with opened(config_path, as_json) as app:
        try:
            result = register.processing_register(app, date.today())
        except ConnectorError as exc:
            fail(str(exc), as_json)
        if html_file is not None:
            register.write_page(register.REGISTER_TITLE, register.register_html(result), html_file)

    def show() -> None:
        out_console.print(f"[bold]{escape(result['verwerking'])}[/]", highlight=False, markup=True)
        for label, rows in (("doeleinden", result["doeleinden"]), ("ontvangers", result["ontvangers"]),
                            ("bewaartermijnen", result["bewaartermijnen"])):
            out_console.print(f"  {label}: {len(rows)}", highlight=False)
        for missing in result["ontbreekt"]:
            out_console.print(f"  [yellow]nog in te vullen[/]: {escape(missing)}", highlight=False, markup=True)
        if html_file is not None:
            out_console.print(f"  written to {html_file}", highlight=False)
    echo({"ok": True, **result}, as_json, show)


@report_group.command("access")
@config_option
@click.option("--html", "html_file", type=click.Path(path_type=Path, dir_okay=False), help="Also write an HTML page.")
@json_option
def report_access(config_path: Path, html_file: Path | None, as_json: bool) -> None:
    """Who can open which dossier parts today, read back from the ACLs the DMS holds: per staff
    role, guardians, the pupil and third parties, how many pupils and why; then every difference
    from what the access rules give today (by pseudonym). Reads only."""
    with opened(config_path, as_json) as app:
        try:
            result = register.effective_access(app, date.today())
        except ConnectorError as exc:
            fail(str(exc), as_json)
        if html_file is not None:
            register.write_page(register.ACCESS_TITLE, register.access_html(result), html_file)

    def show() -> None:
        out_console.print(f"{result['dossiers']} dossiers read back from the DMS", highlight=False)
        for h in result["holders"]:
            what = "whole part" if h["whole_part"] else "classes: " + (", ".join(h["classes"]) or "none")
            out_console.print(f"  {h['holder']:<28} part {h['part']:<4} {what:<40} {h['pupils']} pupils",
                              highlight=False)
        out_console.print(f"differences from the rules: {len(result['differences'])}", highlight=False)
        for d in result["differences"][:50]:
            out_console.print(f"  {d['record']} part {d['part']} {d['holder']}: {d['difference']}", highlight=False)
        for f in result["failed"]:
            out_console.print(f"  [red]not read[/]: {f['record']}: {escape(f['error'])}", highlight=False, markup=True)
    echo({"ok": True, **result}, as_json, show)
    sys.exit(EXIT_ERROR if result["failed"] else EXIT_OK)
