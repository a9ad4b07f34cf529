"""``sync``, ``plan``, ``status``, ``audit``, ``duplicates`` and ``doctor``."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from contextlib import nullcontext
from datetime import date
from pathlib import Path
from typing import Any

import click
from rich.markup import escape

from connector.app import SyncReport, records, reports
from connector.app.doctor import doctor
from connector.cli._common import (
    EXIT_ERROR,
    EXIT_OK,
    EXIT_SAFETY,
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
from connector.errors import ConfigError, ConnectorError, SourceError


def _run_sync(config_path: Path, as_json: bool, report_file: Path | None, dry_run: bool,
              accept_snapshot: bool, by: str | None, list_ops: bool, accept_departures: bool = False,
              no_skip: bool = False) -> None:
    with opened(config_path, as_json) as app:
        accepted = accept_snapshot or accept_departures
        actor = f"leerdossier sync (accepted by {by})" if accepted and by else "leerdossier sync"
        options = app.sync_options(actor, dry_run=dry_run, accept_snapshot=accept_snapshot,
                                   accept_departures=accept_departures, list_operations=list_ops,
                                   skip_unchanged=not no_skip)
        update, bar = progress_bar(not as_json and err_console.is_terminal)
        try:
            with bar or nullcontext():
                report = app.sync_once(options, update)
        except (ConfigError, SourceError) as exc:
            fail(str(exc), as_json)
        data = report.as_dict()
        if not list_ops:
            data.pop("operations")
        if report_file:
            report_file.write_text(json.dumps(data, indent=2, default=str) + "\n", encoding="utf-8")
        if as_json:
            click.echo(json.dumps(data, indent=2, default=str))
        else:
            _summary(report, list_ops)
        if report.stopped_by:
            sys.exit(EXIT_SAFETY)
        if report.failed or report.halted_by:
            sys.exit(EXIT_ERROR)


def _summary(r: SyncReport, list_ops: bool) -> None:
    c = out_console
    title = "Plan" if r.dry_run else "Sync"
    if r.stopped_by:
        c.print(f"[bold red]{title} stopped by safety rail {r.stopped_by}[/]: {escape(str(r.message))}",
                highlight=False, markup=True)
        c.print(f"  pupil records seen: {r.pupils_seen}; nothing was changed in the DMS.")
        return
    verb = "to be " if r.dry_run else ""
    if r.dry_run:
        c.print(f"[bold]{title}[/], school {escape(str(r.school))}: nothing was written (a plan)", highlight=False,
                markup=True)
    else:
        c.print(f"[bold]{title}[/] run {r.run_id}, school {escape(str(r.school))}", highlight=False, markup=True)
    rows = [("pupil records seen", r.pupils_seen), ("  of which unchanged", r.records_unchanged),
            (f"dossiers {verb}created", r.dossiers_created), (f"dossiers {verb}updated", r.dossiers_updated)]
    if not r.dry_run:
        rows.append(("DMS writes", r.dms_writes))
    for label, value in rows:
        c.print(f"  {label + ':':<30}{value}")
    if r.access and (r.access["parts_changed"] or r.access["missing_accounts"]):
        c.print(f"  access applied: {r.access['parts_changed']} dossier parts changed; "
                f"{r.access['missing_accounts']} rights wait for a linked DMS account")
    if r.halted_by:
        c.print(f"  [red]halted ({r.halted_by})[/]: {r.deferred} operations wait in the journal for the next run",
                highlight=False, markup=True)
    if r.unchanged:
        c.print("  the LAS reports no changes since the last applied run; nothing to do")
    if r.resumed_read:
        c.print(f"  records taken over from an interrupted run: {r.resumed_read}")
    if r.resumed:
        c.print(f"  finished from an earlier run: {r.resumed}")
    for w in r.warnings:
        c.print(f"  [yellow]warning[/]: {escape(w)}", highlight=False, markup=True)
    if r.rejected:
        c.print(f"  [yellow]rejected records: {len(r.rejected)}[/] (skipped; everything else went on)", markup=True)
        for x in r.rejected[:20]:
            c.print(f"    {x['record']}: {x['field']}: {x['reason']}", highlight=False)
    if r.vanished:
        c.print(f"  [yellow]vanished without departure date: {len(r.vanished)}[/] (dossiers kept; "
                "record a departure only when a person has confirmed it)", markup=True)
        for v in r.vanished[:20]:
            c.print(f"    {v['record']} missing since {v['since']}", highlight=False)
    if r.suspected_duplicates:
        c.print(f"  [yellow]suspected duplicates: {len(r.suspected_duplicates)}[/] (never merged by the connector; "
                "a person decides)", markup=True)
        for d in r.suspected_duplicates[:20]:
            _suspicion(d)
    for x in r.linked:
        c.print(f"  linked by its {x['basis']}: {x['record']} is a new key of the dossier of {x['dossier']}",
                highlight=False)
    if r.guardian_disagreements:
        c.print(f"  [yellow]guardians where the LAS now differs from a person's record: "
                f"{len(r.guardian_disagreements)}[/] (the more restrictive reading holds until a person records "
                "it again with 'leerdossier guardian set')", markup=True)
        for g in r.guardian_disagreements[:20]:
            c.print(f"    {g['record']} {g['guardian']}: {g['disagreement']}", highlight=False)
    if r.failed:
        c.print(f"  [red]failed operations: {len(r.failed)}[/] (kept in the journal; retried next run)", markup=True)
        for f in r.failed[:20]:
            c.print(f"    {f['record']}: {f['operation']}: {f['error']}", highlight=False)
    if list_ops:
        for op in r.operations:
            c.print(f"    {op['operation']} {op['record']} {' '.join(op['changed'])}", highlight=False)


def _suspicion(d: dict[str, Any]) -> None:
    """One suspected duplicate, and what a person can do about it."""
    c = out_console
    held = " (new dossier held)" if d.get("held") else ""
    if d.get("group"):
        c.print(f"    a group of {d['group']} pupils sharing one {d['basis']} (a placeholder value in the "
                f"export?), {d['a']} and others{held}: correct the value in the LAS", highlight=False)
        return
    c.print(f"    {d['a']} ~ {d['b']} by {d['basis']}{held}", highlight=False)
    a, b, dossier = d["a"], d["b"], d.get("dossier")
    if dossier is not None:
        other = b if dossier == a else a
        c.print(f"      the same child:      leerdossier duplicates link {dossier} {other} --by NAME", highlight=False)
    c.print(f"      different children:  leerdossier duplicates dismiss {a} {b} --by NAME", highlight=False)


NO_SKIP = ("Map every record again, also those identical to the ones their dossiers were last made from "
           "(the outcome is the same; for comparison and after a doubt).")


@click.command("sync")
@config_option
@click.option("--dry-run", is_flag=True, help="Read and plan, change nothing.")
@click.option("--report", "report_file", type=click.Path(path_type=Path, dir_okay=False),
              help="Also write the run's report as JSON to this file.")
@click.option("--accept-snapshot", is_flag=True,
              help="Accept a snapshot that is much smaller than the last good one (audited).")
@click.option("--accept-departures", is_flag=True,
              help="Accept a snapshot in which many pupils gain a departure date at once (audited).")
@click.option("--by", help="Who accepts (with --accept-snapshot or --accept-departures).")
@click.option("--no-skip", is_flag=True, help=NO_SKIP)
@json_option
def sync_cmd(config_path: Path, dry_run: bool, report_file: Path | None, accept_snapshot: bool,
             accept_departures: bool, by: str | None, no_skip: bool, as_json: bool) -> None:
    """Make every pupil's dossier current in the DMS."""
    if (accept_snapshot or accept_departures) and not by:
        fail("--accept-snapshot and --accept-departures need --by NAME: the person who decided the snapshot "
              "is right", as_json)
    _run_sync(config_path, as_json, report_file, dry_run, accept_snapshot, by, list_ops=False,
              accept_departures=accept_departures, no_skip=no_skip)


@click.command("plan")
@config_option
@click.option("--report", "report_file", type=click.Path(path_type=Path, dir_okay=False),
              help="Also write the plan as JSON to this file.")
@click.option("--no-skip", is_flag=True, help=NO_SKIP)
@json_option
def plan_cmd(config_path: Path, report_file: Path | None, no_skip: bool, as_json: bool) -> None:
    """Show what a sync would do, without doing it."""
    _run_sync(config_path, as_json, report_file, dry_run=True, accept_snapshot=False, by=None,
              list_ops=True, no_skip=no_skip)


@click.command("status")
@config_option
@json_option
def status_cmd(config_path: Path, as_json: bool) -> None:
    """Journal rows pending, failed and done; documents, lists and holds; the last runs."""
    with opened(config_path, as_json) as app:
        overview = reports.status(app, date.today())
        if as_json:
            click.echo(json.dumps(overview, indent=2, default=str))
            return
        journal, unfinished, dossiers, runs = (overview["journal"], overview["unfinished"], overview["dossiers"],
                                               overview["runs"])
        c = out_console
        c.print(f"dossiers recorded: {dossiers}")
        c.print("documents: " + (", ".join(f"{k} {v}" for k, v in sorted(overview["documents"].items())) or "none"))
        c.print("destruction lists: " + (", ".join(f"{k} {v}" for k, v in
                                                 sorted(overview["destruction_lists"].items())) or "none")
                + f"; active holds: {overview['active_holds']}")
        for p in overview["transfer_unfinished"]:
            c.print(f"  [yellow]transfer not finished[/]: {escape(str(p))} (removal at the source was interrupted; "
                    "check it)", highlight=False, markup=True)
        c.print(f"open requests: {overview['requests_open']}")
        for r in overview["requests_attention"]:
            c.print("  [yellow]" + escape(f"request {r['request']} ({r['kind']}) on {r['record']}: {r['state']}, "
                                          f"due {r['due']}") + "[/]", highlight=False, markup=True)
        c.print("journal: " + (", ".join(f"{k} {v}" for k, v in sorted(journal.items())) or "empty"))
        for r in unfinished:
            c.print(f"  unfinished: #{r['id']} {r['operation']} {r['record']} {r['status']} "
                    f"(attempts {r['attempts']})", highlight=False)
        for run in runs:
            c.print(f"  run {run['id']} {run['kind']} {run['status']} started {run['started']} "
                    f"school {run['school']} pupils {run['pupils_seen']}", highlight=False)
        if overview["suspicions"]:
            c.print(f"[yellow]suspected duplicates waiting for a person: {len(overview['suspicions'])}[/]",
                    markup=True)
            for d in overview["suspicions"][:20]:
                _suspicion(d)


@click.group("audit")
def audit_group() -> None:
    """The hash-chained audit log."""


@audit_group.command("verify")
@config_option
@json_option
def audit_verify(config_path: Path, as_json: bool) -> None:
    """Check that no audit entry was edited, removed or reordered."""
    with opened(config_path, as_json) as app:
        result = reports.verify_audit(app)
    if as_json:
        click.echo(json.dumps(result.as_dict(), indent=2))
    elif result.ok:
        out_console.print(f"audit log intact: {result.entries} entries")
    else:
        out_console.print(f"[red]audit log NOT intact[/] ({result.entries} entries):", markup=True)
        for p in result.problems:
            out_console.print(f"  {p}", highlight=False)
    sys.exit(EXIT_OK if result.ok else EXIT_ERROR)


@audit_group.command("show")
@config_option
@click.argument("key", required=False)
@click.option("--last", default=20, show_default=True, help="How many entries (0: all).")
@click.option("--by", help="Who looks (with KEY: a pupil's history is a view of their data, and audited).")
@click.option("--reason", help="Why you look (with KEY).")
@json_option
def audit_show(config_path: Path, key: str | None, last: int, by: str | None, reason: str | None,
               as_json: bool) -> None:
    """Print the last audit entries; with KEY, everything done to that pupil's dossier, in the
    NEN 7513 fields (event, time, subject, user, acting for, reason): a data subject's own
    access history. Looking at it is itself an entry (give --by and --reason)."""
    if key is not None and not (by and reason):
        raise click.UsageError("a pupil's history is personal data: give --by (who looks) and --reason (why)")
    with opened(config_path, as_json) as app:
        if key is not None:
            row = dossier_of(app, key, as_json)
            history = reports.pupil_history(app, by or "", row, reason or "", last or None)
            echo({"ok": True, "record": row.pseudonym, "entries": history}, as_json,
                  lambda: _show_history(history))
            return
        entries = reports.audit_entries(app, last or None)
    if as_json:
        click.echo(json.dumps(entries, indent=2, default=str))
        return
    for e in entries:
        out_console.print(f"{e['seq']:>6} {e['at']} {e['actor']}: {e['action']} {e['subject'] or ''} "
                          f"{json.dumps(e['details'], sort_keys=True)}", highlight=False)


def _show_history(history: list[dict[str, Any]]) -> None:
    for h in history:
        acting = f" for {h['acting_for']}" if h["acting_for"] else ""
        why = f" because {h['reason']}" if h["reason"] else ""
        out_console.print(f"{h['seq']:>6} {h['time']} {h['user']}{acting}: {h['event']}{why}",
                          highlight=False)


@click.group("duplicates")
def duplicates_group() -> None:
    """Suspected duplicate pupils (two LAS keys that look like one child)."""


@duplicates_group.command("dismiss")
@config_option
@click.argument("a")
@click.argument("b")
@click.option("--by", required=True, help="Who checked that these are two different children.")
@json_option
def duplicates_dismiss(config_path: Path, a: str, b: str, by: str, as_json: bool) -> None:
    """Record that pseudonymous keys A and B are different children (audited); a held dossier
    is then created on the next sync."""
    with opened(config_path, as_json) as app:
        records.dismiss_duplicate(app, by, a, b)
    if as_json:
        click.echo(json.dumps({"ok": True, "a": a, "b": b, "by": by}))
    else:
        out_console.print(f"recorded: {a} and {b} are different pupils (by {by})", highlight=False)


@duplicates_group.command("link")
@config_option
@click.argument("a")
@click.argument("b")
@click.option("--by", required=True, help="Who checked that these are one child.")
@json_option
def duplicates_link(config_path: Path, a: str, b: str, by: str, as_json: bool) -> None:
    """Record that B is the same child as A, whose dossier it is (audited): B's key becomes an
    alias of A's dossier, kept current from B's records from the next sync on. Undone with
    'duplicates unlink' until a sync has used it."""
    _decide(config_path, as_json, records.link_duplicate, by, a, b,
            f"recorded: {b} is the same child as {a}; the next sync keeps the dossier of {a} current from {b}'s "
            f"records (by {by})")


@duplicates_group.command("unlink")
@config_option
@click.argument("a")
@click.argument("b")
@click.option("--by", required=True, help="Who takes the link back.")
@json_option
def duplicates_unlink(config_path: Path, a: str, b: str, by: str, as_json: bool) -> None:
    """Take back a link of B to A's dossier, while no sync has used it (audited)."""
    _decide(config_path, as_json, records.unlink_duplicate, by, a, b,
            f"link taken back: {b} is no longer an alias of the dossier of {a} (by {by})")


def _decide(config_path: Path, as_json: bool, use: Callable[..., dict[str, Any]], by: str, a: str, b: str,
            said: str) -> None:
    """A person's decision on two keys (link or unlink): the use case, a refusal as a clear error,
    the outcome as JSON or in words."""
    with opened(config_path, as_json) as app:
        try:
            result = use(app, by, a, b)
        except ConnectorError as exc:
            fail(str(exc), as_json)
    if as_json:
        click.echo(json.dumps({"ok": True, **result}))
    else:
        out_console.print(said, highlight=False)


@click.command("doctor")
@config_option
@json_option
def doctor_cmd(config_path: Path, as_json: bool) -> None:
    """Check the config, paths, secrets, file modes, the source and the DMS. A check: it changes
    nothing, here or in the DMS (no key, state store or DMS folder is made; the first sync does)."""
    try:
        checks = doctor(config_path)
    except ConnectorError as exc:
        fail(str(exc), as_json)
    ok = all(c["ok"] for c in checks)
    if as_json:
        click.echo(json.dumps({"ok": ok, "checks": checks}, indent=2))
    else:
        for c in checks:
            mark = "[green]ok[/]" if c["ok"] else "[red]FAIL[/]"
            out_console.print(f"{mark}  {escape(c['check'])}", markup=True)
            for p in c["problems"]:
                out_console.print(f"      {p}", highlight=False)
            for n in c["notes"]:
                out_console.print(f"      [dim]{escape(n)}[/]", highlight=False, markup=True)
    sys.exit(EXIT_OK if ok else EXIT_ERROR)
