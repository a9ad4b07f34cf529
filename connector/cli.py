"""The ``leerdossier`` command. Thin: builds the parts from the config and calls the core.

Exit codes: 0 ok; 1 error (bad config, unreadable input, failed DMS operations); 3 stopped by a
safety rail (nothing was changed).
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any, NoReturn

import click
from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

import adapters
from connector import config as config_mod
from connector import mapping as mapping_mod
from connector.audit import AuditLog
from connector.errors import ConfigError, ConnectorError, SourceError
from connector.identity import Identity
from connector.mapping import Mapping
from connector.ports import DocumentStore, PupilSource, SourceContext
from connector.state import StateStore
from connector.sync import SyncOptions, SyncReport, sync

EXIT_OK, EXIT_ERROR, EXIT_SAFETY = 0, 1, 3
log = logging.getLogger("leerdossier")
err_console = Console(stderr=True, soft_wrap=True)
out_console = Console(soft_wrap=True)


class _Formatter(logging.Formatter):
    """``time level logger: message key=value ...``; extras hold pseudonyms, never names."""

    _std = set(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message", "asctime"}

    def format(self, record: logging.LogRecord) -> str:
        base = super().format(record)
        extras = {k: v for k, v in record.__dict__.items() if k not in self._std}
        return base + "".join(f" {k}={v}" for k, v in sorted(extras.items()))


def _setup_logging(level: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger("leerdossier")
    root.handlers[:] = [handler]
    root.setLevel(level)
    root.propagate = False


@dataclass
class App:
    loaded: config_mod.LoadedConfig
    identity: Identity
    mapping: Mapping
    state: StateStore
    audit: AuditLog

    def source(self) -> PupilSource:
        context = SourceContext(pseudonymize=self.identity.pseudonym_of, base=self.loaded.base)
        return adapters.build_source(self.loaded, context)

    def store(self) -> DocumentStore:
        return adapters.build_store(self.loaded)


def _fail(message: str, as_json: bool, code: int = EXIT_ERROR) -> NoReturn:
    if as_json:
        click.echo(json.dumps({"ok": False, "error": message}))
    else:
        err_console.print(f"[red]error:[/red] {message}", highlight=False, markup=True)
    sys.exit(code)


@contextmanager
def _app(config_path: Path, as_json: bool) -> Iterator[App]:
    try:
        loaded = config_mod.load(config_path)
        cfg = loaded.config
        _setup_logging(cfg.logging.level)
        secret = loaded.secret(cfg.identity.secret, ["identity", "secret"], create=cfg.identity.create_secret)
        identity = Identity(secret, cfg.identity.key)
        mapping = mapping_mod.load(cfg.mapping.preset, base=loaded.base)
        state = StateStore(loaded.state_url())
    except ConnectorError as exc:
        _fail(str(exc), as_json)
    try:
        yield App(loaded, identity, mapping, state, AuditLog(state, identity.audit_key))
    finally:
        state.close()


config_option = click.option(
    "--config", "config_path", type=click.Path(path_type=Path, dir_okay=False), required=True,
    envvar="LEERDOSSIER_CONFIG", help="Configuration file (TOML). Env: LEERDOSSIER_CONFIG.",
)
json_option = click.option("--json", "as_json", is_flag=True, help="Machine-readable JSON on stdout.")


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="leerdossier-connector")
def main() -> None:
    """Keep one pupil dossier per pupil in the school's DMS, from the LAS."""


def _progress(enabled: bool) -> tuple[Callable[[str, int], None], Progress | None]:
    if not enabled:
        return (lambda _p, _n: None), None
    bar = Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(),
                   TextColumn("{task.completed} records"), TimeElapsedColumn(), console=err_console,
                   transient=True)
    tasks: dict[str, Any] = {}

    def update(phase: str, n: int) -> None:
        if phase not in tasks:
            label = {"read": "reading the export", "write": "updating dossiers"}.get(phase, phase)
            tasks[phase] = bar.add_task(label, total=None)
        bar.update(tasks[phase], completed=n)

    return update, bar


def _run_sync(config_path: Path, as_json: bool, report_file: Path | None, dry_run: bool,
              accept_snapshot: bool, by: str | None, list_ops: bool) -> None:
    with _app(config_path, as_json) as app:
        cfg = app.loaded.config
        actor = f"leerdossier sync (accepted by {by})" if accept_snapshot and by else "leerdossier sync"
        options = SyncOptions(dry_run=dry_run, accept_snapshot=accept_snapshot,
                              min_snapshot_ratio=cfg.safety.min_snapshot_ratio,
                              hold_suspected_duplicates=cfg.safety.hold_suspected_duplicates,
                              actor=actor, list_operations=list_ops)
        update, bar = _progress(not as_json and err_console.is_terminal)
        try:
            source, store = app.source(), app.store()
            try:
                if bar:
                    with bar:
                        report = sync(source, store, app.state, app.audit, app.identity, app.mapping,
                                      options, date.today(), update)
                else:
                    report = sync(source, store, app.state, app.audit, app.identity, app.mapping,
                                  options, date.today(), update)
            finally:
                store.close()
        except (ConfigError, SourceError) as exc:
            _fail(str(exc), as_json)
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
        if report.failed:
            sys.exit(EXIT_ERROR)


def _summary(r: SyncReport, list_ops: bool) -> None:
    c = out_console
    title = "Plan (nothing changed)" if r.dry_run else "Sync"
    if r.stopped_by:
        c.print(f"[bold red]{title} stopped by safety rail {r.stopped_by}[/]: {r.message}", highlight=False)
        c.print(f"  pupil records seen: {r.pupils_seen}; nothing was changed in the DMS.")
        return
    verb = "would be " if r.dry_run else ""
    c.print(f"[bold]{title}[/] run {r.run_id}, school {r.school}", highlight=False)
    rows = [("pupil records seen", r.pupils_seen), (f"dossiers {verb}created", r.dossiers_created),
            (f"dossiers {verb}updated", r.dossiers_updated), ("DMS writes", r.dms_writes)]
    for label, value in rows:
        c.print(f"  {label + ':':<30}{value}")
    if r.resumed:
        c.print(f"  finished from an earlier run: {r.resumed}")
    for w in r.warnings:
        c.print(f"  [yellow]warning[/]: {w}", highlight=False)
    if r.rejected:
        c.print(f"  [yellow]rejected records: {len(r.rejected)}[/] (skipped; everything else went on)")
        for x in r.rejected[:20]:
            c.print(f"    {x['record']}: {x['field']}: {x['reason']}", highlight=False, markup=False)
    if r.vanished:
        c.print(f"  [yellow]vanished without departure date: {len(r.vanished)}[/] (dossiers kept; "
                "record a departure only when a person has confirmed it)")
        for v in r.vanished[:20]:
            c.print(f"    {v['record']} missing since {v['since']}", highlight=False)
    if r.suspected_duplicates:
        c.print(f"  [yellow]suspected duplicates: {len(r.suspected_duplicates)}[/] (never merged; "
                "dismiss with 'leerdossier duplicates dismiss')")
        for d in r.suspected_duplicates[:20]:
            held = " (new dossier held)" if d.get("held") else ""
            c.print(f"    {d['a']} ~ {d['b']} by {d['basis']}{held}", highlight=False)
    if r.failed:
        c.print(f"  [red]failed operations: {len(r.failed)}[/] (kept in the journal; retried next run)")
        for f in r.failed[:20]:
            c.print(f"    {f['record']}: {f['operation']}: {f['error']}", highlight=False, markup=False)
    if list_ops:
        for op in r.operations:
            c.print(f"    {op['operation']} {op['record']} {' '.join(op['changed'])}", highlight=False)


@main.command("sync")
@config_option
@click.option("--dry-run", is_flag=True, help="Read and plan, change nothing.")
@click.option("--report", "report_file", type=click.Path(path_type=Path, dir_okay=False),
              help="Also write the run's report as JSON to this file.")
@click.option("--accept-snapshot", is_flag=True,
              help="Accept a snapshot that is much smaller than the last good one (audited).")
@click.option("--by", help="Who accepts the snapshot (with --accept-snapshot).")
@json_option
def sync_cmd(config_path: Path, dry_run: bool, report_file: Path | None, accept_snapshot: bool,
             by: str | None, as_json: bool) -> None:
    """Make every pupil's dossier current in the DMS."""
    if accept_snapshot and not by:
        _fail("--accept-snapshot needs --by NAME: the person who decided the snapshot is right", as_json)
    _run_sync(config_path, as_json, report_file, dry_run, accept_snapshot, by, list_ops=False)


@main.command("plan")
@config_option
@click.option("--report", "report_file", type=click.Path(path_type=Path, dir_okay=False),
              help="Also write the plan as JSON to this file.")
@json_option
def plan_cmd(config_path: Path, report_file: Path | None, as_json: bool) -> None:
    """Show what a sync would do, without doing it."""
    _run_sync(config_path, as_json, report_file, dry_run=True, accept_snapshot=False, by=None,
              list_ops=True)


@main.command("status")
@config_option
@json_option
def status_cmd(config_path: Path, as_json: bool) -> None:
    """Journal rows pending, failed and done; the last runs."""
    with _app(config_path, as_json) as app:
        journal = app.state.journal_counts()
        unfinished = [{"id": r.id, "run": r.run_id, "operation": r.kind, "status": r.status,
                       "attempts": r.attempts, "record": r.operation.pseudonym} for r in app.state.pending()]
        runs = [{k: v for k, v in run.items() if k != "report"} for run in app.state.last_runs()]
        dossiers = app.state.dossier_count()
        if as_json:
            data = {"journal": journal, "unfinished": unfinished, "dossiers": dossiers, "runs": runs}
            click.echo(json.dumps(data, indent=2, default=str))
            return
        c = out_console
        c.print(f"dossiers recorded: {dossiers}")
        c.print("journal: " + (", ".join(f"{k} {v}" for k, v in sorted(journal.items())) or "empty"))
        for r in unfinished:
            c.print(f"  unfinished: #{r['id']} {r['operation']} {r['record']} {r['status']} "
                    f"(attempts {r['attempts']})", highlight=False)
        for run in runs:
            c.print(f"  run {run['id']} {run['kind']} {run['status']} started {run['started']} "
                    f"school {run['school']} pupils {run['pupils_seen']}", highlight=False)


@main.group("audit")
def audit_group() -> None:
    """The hash-chained audit log."""


@audit_group.command("verify")
@config_option
@json_option
def audit_verify(config_path: Path, as_json: bool) -> None:
    """Check that no audit entry was edited, removed or reordered."""
    with _app(config_path, as_json) as app:
        result = app.audit.verify()
    if as_json:
        click.echo(json.dumps(result.as_dict(), indent=2))
    elif result.ok:
        out_console.print(f"audit log intact: {result.entries} entries")
    else:
        out_console.print(f"[red]audit log NOT intact[/] ({result.entries} entries):")
        for p in result.problems:
            out_console.print(f"  {p}", highlight=False)
    sys.exit(EXIT_OK if result.ok else EXIT_ERROR)


@audit_group.command("show")
@config_option
@click.option("--last", default=20, show_default=True, help="How many entries.")
@json_option
def audit_show(config_path: Path, last: int, as_json: bool) -> None:
    """Print the last audit entries."""
    with _app(config_path, as_json) as app:
        entries = app.audit.entries(last)
    if as_json:
        click.echo(json.dumps(entries, indent=2, default=str))
        return
    for e in entries:
        out_console.print(f"{e['seq']:>6} {e['at']} {e['actor']}: {e['action']} {e['subject'] or ''} "
                          f"{json.dumps(e['details'], sort_keys=True)}", highlight=False, markup=False)


@main.group("duplicates")
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
    with _app(config_path, as_json) as app:
        app.state.dismiss_duplicate(a, b, by)
        app.audit.record(by, "duplicate.dismissed", None, {"a": a, "b": b})
    if as_json:
        click.echo(json.dumps({"ok": True, "a": a, "b": b, "by": by}))
    else:
        out_console.print(f"recorded: {a} and {b} are different pupils (by {by})", highlight=False)


@main.command("doctor")
@config_option
@json_option
def doctor_cmd(config_path: Path, as_json: bool) -> None:
    """Check the config, paths, secrets, the source and the DMS."""
    checks: list[dict[str, Any]] = []

    def check(name: str, fn: Callable[[], list[str]]) -> None:
        try:
            problems = fn()
        except ConnectorError as exc:
            problems = [str(exc)]
        checks.append({"check": name, "ok": not problems, "problems": problems})

    with _app(config_path, as_json) as app:
        check("config and secret", lambda: [])
        check("mapping", lambda: [] if app.mapping.parts else ["mapping has no parts"])
        check("state store", lambda: [] if app.state.dossier_count() >= 0 else ["state store unreadable"])
        check("LAS source", lambda: app.source().check())

        def dms() -> list[str]:
            store = app.store()
            try:
                return store.check()
            finally:
                store.close()

        check("DMS", dms)
        check("audit log", lambda: app.audit.verify().problems)
    ok = all(c["ok"] for c in checks)
    if as_json:
        click.echo(json.dumps({"ok": ok, "checks": checks}, indent=2))
    else:
        for c in checks:
            mark = "[green]ok[/]" if c["ok"] else "[red]FAIL[/]"
            out_console.print(f"{mark}  {c['check']}")
            for p in c["problems"]:
                out_console.print(f"      {p}", highlight=False, markup=False)
    sys.exit(EXIT_OK if ok else EXIT_ERROR)


if __name__ == "__main__":  # pragma: no cover
    main()
