"""The ``leerdossier`` command. Thin: builds the parts from the config and calls the core.

Exit codes: 0 ok; 1 error (bad config, unreadable input, failed DMS operations); 3 stopped by a
safety rail (nothing was changed).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import sys
from collections.abc import Callable, Iterator
from contextlib import ExitStack, closing, contextmanager, nullcontext
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any, NoReturn

import click
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

import adapters
from connector import acl, destruction, render, rights, tagging, transfer
from connector import config as config_mod
from connector import mapping as mapping_mod
from connector import users as users_mod
from connector.access import AccessPolicy
from connector.audit import Anchor, AuditLog, nen7513
from connector.clock import SIMULATED, Clock, for_irreversible
from connector.errors import ConfigError, ConnectorError, RejectedRecord, SourceError
from connector.identity import Identity
from connector.mapping import Mapping
from connector.model import DocumentRef, DossierRef
from connector.ports import DocumentStore, PupilSource, SourceContext
from connector.retention import Schedule, load_schedule
from connector.state import DossierRow, SharedEngines, StateStore
from connector.sync import SyncOptions, SyncReport, check_departure, sync
from connector.users import User

EXIT_OK, EXIT_ERROR, EXIT_SAFETY = 0, 1, 3
log = logging.getLogger("leerdossier")
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")
"""Control characters, terminal escape sequences' introducers and bidirectional overrides: a
value from an export (a guardian's name in a CSV) must never steer the terminal."""


def clean(text: str) -> str:
    """Text as it may reach a terminal: without control characters (newlines and tabs kept)."""
    return _CONTROL.sub("", text)


class _CleanConsole(Console):
    """A console that prints every string it is given without control characters."""

    def print(self, *objects: Any, **kwargs: Any) -> None:
        super().print(*(clean(o) if isinstance(o, str) else o for o in objects), **kwargs)


err_console = _CleanConsole(stderr=True, soft_wrap=True)
out_console = _CleanConsole(soft_wrap=True, markup=False)
"""Data is printed as it is: a "[" in a name, reason or message is text, never markup. The few
styled lines pass ``markup=True`` and escape every value in them."""


class _Formatter(logging.Formatter):
    """``time level logger: message key=value ...``; extras hold pseudonyms, never names."""

    _std = set(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message", "asctime"}

    def format(self, record: logging.LogRecord) -> str:
        base = super().format(record)
        extras = {k: v for k, v in record.__dict__.items() if k not in self._std}
        return base + "".join(f" {k}={v}" for k, v in sorted(extras.items()))


class _JsonFormatter(_Formatter):
    """One JSON object per line: time, level, logger, message and the extras (pseudonyms and
    counts, never names)."""

    def format(self, record: logging.LogRecord) -> str:
        data = {"time": self.formatTime(record), "level": record.levelname, "logger": record.name,
                "message": record.getMessage()}
        data.update({k: v for k, v in record.__dict__.items() if k not in self._std})
        return json.dumps(data, default=str)


def _setup_logging(level: str, fmt: str = "text") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_JsonFormatter() if fmt == "json"
                         else _Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
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

    def clock(self, today: date | None) -> Clock:
        """The clock of an irreversible act: the real one; ``--today`` only on an install marked
        ``[testing] simulated_clock``."""
        return for_irreversible(today, self.loaded.config.testing.simulated_clock)

    def user(self, name: str, secret_ref: str | None) -> User:
        """The user NAME, authenticated with their secret (by reference, or at a prompt)."""
        if secret_ref is not None:
            secret = read_secret_ref(self.loaded, secret_ref, ["--secret"])
        else:
            secret = click.prompt(f"secret for {name}", hide_input=True, err=True)
        return users_mod.authenticate(self.state, name, secret)

    def schedule(self) -> Schedule:
        cfg = self.loaded.config.retention
        classes = set(self.mapping.classes)
        return load_schedule(cfg.schedule, base=self.loaded.base, overrides=cfg.overrides, classes=classes)

    def dossier(self, key: str) -> DossierRow:
        """A pupil's dossier by pseudonymous key (p-...) or by LAS key."""
        if key.startswith("p-"):
            rows = self.state.find_pupil([key])
        else:
            rows = self.state.find_pupil([self.identity.pseudonym_of(s, key) for s in self.state.schools()])
        # a key as typed may be a BSN or onderwijsnummer: only a pseudonymous key is repeated
        shown = repr(key) if key.startswith("p-") else "given"
        if not rows:
            raise ConfigError(f"no dossier for the pupil key {shown} (give the LAS key or the pseudonymous p-... key)")
        if len(rows) > 1:
            raise ConfigError(f"the pupil key {shown} matches dossiers in several schools; give the p-... key")
        return rows[0]

    def source(self) -> PupilSource:
        context = SourceContext(pseudonymize=self.identity.pseudonym_of, base=self.loaded.base)
        return adapters.build_source(self.loaded, context)

    def access_policy(self) -> AccessPolicy:
        """The ``[access]`` configuration, checked against the mapping's parts and classes."""
        cfg = self.loaded.config.access
        parts = tuple(p.code for p in self.mapping.parts)
        for role, role_parts in cfg.roles.items():
            unknown = sorted(set(role_parts) - set(parts))
            if unknown:
                raise self.loaded.problem(["access", "roles", role], f"unknown part(s) {', '.join(unknown)} "
                                          f"(the mapping has {', '.join(parts)})")
        unknown = sorted(set(cfg.information_classes) - set(self.mapping.classes))
        if unknown:
            raise self.loaded.problem(["access", "information_classes"], f"unknown class(es) {', '.join(unknown)}")
        return AccessPolicy(adult_age=cfg.adult_age, roles={k: tuple(v) for k, v in cfg.roles.items()},
                            parts=parts, information_classes=tuple(cfg.information_classes))

    def apply_access(self, store: DocumentStore, external_ids: list[str] | None, actor: str,
                     force: bool = False, today: date | None = None) -> acl.ApplyReport:
        """Apply access for these dossiers (None: the ones due today and never applied)."""
        day = today or date.today()
        if external_ids is None:
            external_ids = sorted(set(self.state.access_due(day)) | set(self.state.access_unapplied()))
        rows = self.state.dossier_rows(external_ids) if external_ids else []
        return acl.apply(store, self.state, self.audit, self.access_policy(), rows, day, actor, force=force)

    def sync_options(self, actor: str = "leerdossier sync", **overrides: Any) -> SyncOptions:
        cfg = self.loaded.config
        values: dict[str, Any] = {
            "min_snapshot_ratio": cfg.safety.min_snapshot_ratio,
            "max_new_departures": cfg.safety.max_new_departures,
            "max_duplicate_group": cfg.safety.max_duplicate_group,
            "max_departure_future_days": cfg.safety.max_departure_future_days,
            "hold_suspected_duplicates": cfg.safety.hold_suspected_duplicates, "actor": actor,
            "concurrency": cfg.execution.concurrency, "breaker": cfg.execution.breaker,
            "source_key": self.source_key()}
        values.update(overrides)
        return SyncOptions(**values)

    def sync_once(self, options: SyncOptions, progress: Callable[[str, int], None] | None = None,
                  wrap_store: Callable[[DocumentStore], DocumentStore] | None = None,
                  today: date | None = None) -> SyncReport:
        """One sync with what follows it the same day: retag the dossiers whose departure
        changed, and apply access (changed facts, new dossiers, birthdays, grants)."""
        day = today or date.today()
        source = self.source()
        with self.open_store() as opened:
            store = wrap_store(opened) if wrap_store else opened
            schedule = self.schedule()
            report = sync(source, store, self.state, self.audit, self.identity, self.mapping, options, day,
                          progress or (lambda _phase, _n: None))
            if options.dry_run or report.stopped_by or report.halted_by:
                return report
            if report.retag:
                tags = tagging.refresh(store, self.state, self.audit, schedule, self.mapping, report.run_id,
                                       options.actor, external_ids=report.retag)
                report.tags = tags.as_dict()
                report.dms_writes += tags.dms_writes
                report.failed.extend(tags.failed)
            if store.capabilities.acl:
                ids = sorted(set(report.reaccess) | set(self.state.access_due(day))
                             | set(self.state.access_unapplied()))
                applied = self.apply_access(store, ids, options.actor, today=day)
                report.access = applied.as_dict()
                report.dms_writes += applied.parts_changed
                report.failed.extend(applied.failed)
        return report

    def store_document(self, store: DocumentStore, row: DossierRow, doc_class: str, file: Path, by: str,
                       schedule: Schedule, details: dict[str, Any] | None = None) -> tuple[DocumentRef, Any]:
        """Add FILE to the dossier as ``doc_class``, audited, tagged at once and given its part's
        access (the same path for every document the connector itself stores)."""
        part = self.mapping.classes[doc_class][0]
        ref = DossierRef(id=row.ref_id or "", external_id=row.external_id)
        with file.open("rb") as fh:
            doc = store.add_document(ref, part, doc_class, file.name, fh, {"added_by": by})
        self.audit.record(by, "document.added", row.pseudonym,
                          {"document": doc.id, "part": part, "class": doc_class, **(details or {})})
        run_id = self.state.begin_run("document")
        tags = tagging.refresh(store, self.state, self.audit, schedule, self.mapping, run_id, by,
                               external_ids=[row.external_id])
        self.state.finish_run(run_id, "ok", row.school, None, tags.as_dict())
        if store.capabilities.acl:
            self.apply_access(store, [row.external_id], by, force=True)
        return doc, tags

    def source_key(self) -> str:
        """Names the LAS settings with the mapping and identity scheme that turn its pupils into
        dossiers (see SyncOptions.source_key)."""
        cfg = self.loaded.config
        blob = json.dumps({"las": cfg.las.model_dump(), "mapping": self.mapping.fingerprint,
                           "identity": cfg.identity.key}, sort_keys=True, default=str)
        return hashlib.sha256(blob.encode()).hexdigest()[:32]

    def store(self) -> DocumentStore:
        return adapters.build_store(self.loaded, index_key=self.identity.index_key)

    @contextmanager
    def open_store(self) -> Iterator[DocumentStore]:
        """The configured DMS, closed again however the command ends."""
        store = self.store()
        try:
            yield store
        finally:
            store.close()


def _fail(message: str, as_json: bool, code: int = EXIT_ERROR) -> NoReturn:
    if as_json:
        click.echo(json.dumps({"ok": False, "error": message}))
    else:
        # the message is text, not markup: "[state] url" must survive as written
        err_console.print(f"[red]error:[/red] {escape(message)}", highlight=False, markup=True)
    sys.exit(code)


def open_app(config_path: Path, setup_logging: bool = True, shared: SharedEngines | None = None) -> App:
    """Load a school's configuration and open its state store (the caller closes
    ``app.state``), on an engine from ``shared`` where given. Raises ``ConnectorError`` on a bad
    configuration."""
    return app_for(config_mod.load(config_path), setup_logging, shared)


def app_for(loaded: config_mod.LoadedConfig, setup_logging: bool = True, shared: SharedEngines | None = None) -> App:
    """``open_app`` for a configuration already loaded."""
    cfg = loaded.config
    if setup_logging:
        _setup_logging(cfg.logging.level, cfg.logging.format)
    secret = loaded.secret(cfg.identity.secret, ["identity", "secret"], create=cfg.identity.create_secret)
    identity = Identity(secret, cfg.identity.key)
    mapping = mapping_mod.load(cfg.mapping.preset, base=loaded.base)
    state = StateStore(loaded.state_url(), cfg.state.schema_, shared)
    return App(loaded, identity, mapping, state, AuditLog(state, identity.audit_key, loaded.audit_head_file()))


@contextmanager
def _app(config_path: Path, as_json: bool) -> Iterator[App]:
    try:
        app = open_app(config_path)
    except ConnectorError as exc:
        _fail(str(exc), as_json)
    try:
        yield app
    finally:
        app.state.close()


class DateParam(click.ParamType):  # type: ignore[type-arg]
    """Every date a command takes: YYYY-MM-DD, or one clear message (never a traceback)."""

    name = "YYYY-MM-DD"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> date:
        if isinstance(value, date):
            return value
        text = str(value)
        try:
            if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
                raise ValueError(text)
            return date.fromisoformat(text)
        except ValueError:
            self.fail(f"expected YYYY-MM-DD, got {text[:40]!r}", param, ctx)


DATE = DateParam()


def read_secret_ref(loaded: config_mod.LoadedConfig, ref: str, loc: list[str]) -> str:
    """A person's secret given by reference (``env:NAME`` or ``file:PATH``, mode 0600)."""
    kind, _, name = ref.partition(":")
    if kind not in ("env", "file") or not name:
        raise ConfigError(f"{loc[0]}: give the secret by reference, env:NAME or file:PATH")
    if kind == "env":
        value = os.environ.get(name, "")
        if not value:
            raise ConfigError(f"{loc[0]}: environment variable {name} is not set or empty")
        return value
    path = loaded.resolve(name)
    try:
        if path.stat().st_mode & 0o077:
            raise ConfigError(f"{loc[0]}: {path} is readable by others; chmod 600 it")
        return path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise ConfigError(f"{loc[0]}: {path} cannot be read ({exc.strerror})") from None


def acting(f: Callable[..., Any]) -> Callable[..., Any]:
    """``--as USER`` and ``--secret REF``: the authenticated user a command acts as."""
    f = click.option("--secret", "secret_ref", metavar="REF",
                     help="Your secret by reference, env:NAME or file:PATH (mode 0600), for automation; "
                          "without it you are asked at a prompt.")(f)
    return click.option("--as", "as_name", required=True, metavar="USER",
                        help="Who acts: a user of this install ('leerdossier user add'); the audit names them.")(f)


def _acting_user(app: App, as_name: str, secret_ref: str | None, as_json: bool, action: str) -> User:
    try:
        user = app.user(as_name, secret_ref)
        user.require(action)
    except ConnectorError as exc:
        _fail(str(exc), as_json)
    return user


config_option = click.option(
    "--config", "config_path", type=click.Path(path_type=Path, dir_okay=False), required=True,
    envvar="LEERDOSSIER_CONFIG", help="Configuration file (TOML). Env: LEERDOSSIER_CONFIG.",
)
json_option = click.option("--json", "as_json", is_flag=True, help="Machine-readable JSON on stdout.")


def view_options(f: Callable[..., Any]) -> Callable[..., Any]:
    """``--by`` and ``--reason`` on a command that shows a pupil's personal data: every such
    view is an audit entry (who, whose, what, why), as NEN 7513 asks of a log of access."""
    f = click.option("--reason", required=True, help="Why you look (e.g. 'inspection request 12').")(f)
    return click.option("--by", required=True, help="Who looks.")(f)


def record_view(app: App, by: str, pseudonym: str, what: str, reason: str) -> None:
    """The audit entry for one view of a pupil's data (a trace, not a change to the dossier)."""
    app.audit.record(by, "dossier.viewed", pseudonym, {"what": what, "reason": reason})


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="leerdossier-connector")
def main() -> None:
    """Keep one pupil dossier per pupil in the school's DMS, from the LAS."""
    # private by default: whatever the umask of the shell or unit, every file the connector
    # makes (state, DMS store, lists, certificates, exports) is 0600 and every folder 0700
    os.umask(0o077)


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
              accept_snapshot: bool, by: str | None, list_ops: bool, accept_departures: bool = False) -> None:
    with _app(config_path, as_json) as app:
        accepted = accept_snapshot or accept_departures
        actor = f"leerdossier sync (accepted by {by})" if accepted and by else "leerdossier sync"
        options = app.sync_options(actor, dry_run=dry_run, accept_snapshot=accept_snapshot,
                                   accept_departures=accept_departures, list_operations=list_ops)
        update, bar = _progress(not as_json and err_console.is_terminal)
        try:
            with bar or nullcontext():
                report = app.sync_once(options, update)
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
    rows = [("pupil records seen", r.pupils_seen), (f"dossiers {verb}created", r.dossiers_created),
            (f"dossiers {verb}updated", r.dossiers_updated)]
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
        c.print(f"  [yellow]suspected duplicates: {len(r.suspected_duplicates)}[/] (never merged; "
                "dismiss with 'leerdossier duplicates dismiss')", markup=True)
        for d in r.suspected_duplicates[:20]:
            held = " (new dossier held)" if d.get("held") else ""
            if d.get("group"):
                c.print(f"    a group of {d['group']} pupils sharing one {d['basis']} (a placeholder value in the "
                        f"export?), {d['a']} and others{held}", highlight=False)
            else:
                c.print(f"    {d['a']} ~ {d['b']} by {d['basis']}{held}", highlight=False)
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


@main.command("sync")
@config_option
@click.option("--dry-run", is_flag=True, help="Read and plan, change nothing.")
@click.option("--report", "report_file", type=click.Path(path_type=Path, dir_okay=False),
              help="Also write the run's report as JSON to this file.")
@click.option("--accept-snapshot", is_flag=True,
              help="Accept a snapshot that is much smaller than the last good one (audited).")
@click.option("--accept-departures", is_flag=True,
              help="Accept a snapshot in which many pupils gain a departure date at once (audited).")
@click.option("--by", help="Who accepts (with --accept-snapshot or --accept-departures).")
@json_option
def sync_cmd(config_path: Path, dry_run: bool, report_file: Path | None, accept_snapshot: bool,
             accept_departures: bool, by: str | None, as_json: bool) -> None:
    """Make every pupil's dossier current in the DMS."""
    if (accept_snapshot or accept_departures) and not by:
        _fail("--accept-snapshot and --accept-departures need --by NAME: the person who decided the snapshot "
              "is right", as_json)
    _run_sync(config_path, as_json, report_file, dry_run, accept_snapshot, by, list_ops=False,
              accept_departures=accept_departures)


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
    """Journal rows pending, failed and done; documents, lists and holds; the last runs."""
    with _app(config_path, as_json) as app:
        journal = app.state.journal_counts()
        unfinished = [{"id": r.id, "run": r.run_id, "operation": r.kind, "status": r.status,
                       "attempts": r.attempts, "record": r.operation.pseudonym} for r in app.state.pending()]
        runs = [{k: v for k, v in run.items() if k != "report"} for run in app.state.last_runs()]
        dossiers = app.state.dossier_count()
        overview = app.state.overview()
        today = date.today()
        warn = app.loaded.config.access.request_warn_days
        requests = rights.request_rows(app.state, "open", warn, today)
        overview["requests_open"] = len(requests)
        overview["requests_attention"] = [r for r in requests if r["state"] != "ok"]
        if as_json:
            data = {"journal": journal, "unfinished": unfinished, "dossiers": dossiers, "runs": runs} | overview
            click.echo(json.dumps(data, indent=2, default=str))
            return
        c = out_console
        c.print(f"dossiers recorded: {dossiers}")
        c.print("documents: " + (", ".join(f"{k} {v}" for k, v in sorted(overview["documents"].items())) or "none"))
        c.print("destruction lists: " + (", ".join(f"{k} {v}" for k, v in
                                                 sorted(overview["destruction_lists"].items())) or "none")
                + f"; active holds: {overview['active_holds']}")
        for p in overview["transfer_unfinished"]:
            c.print(f"  [yellow]transfer not finished[/]: {escape(str(p))} (removal at the source was interrupted; "
                    "check it)", highlight=False, markup=True)
        c.print(f"open requests: {len(requests)}")
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


@main.group("audit")
def audit_group() -> None:
    """The hash-chained audit log."""


@audit_group.command("verify")
@config_option
@json_option
def audit_verify(config_path: Path, as_json: bool) -> None:
    """Check that no audit entry was edited, removed or reordered."""
    with _app(config_path, as_json) as app:
        result = app.audit.verify(file_anchors(app))
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
    with _app(config_path, as_json) as app:
        if key is not None:
            try:
                row = app.dossier(key)
            except ConfigError as exc:
                _fail(str(exc), as_json)
            history = [nen7513(e) for e in app.audit.entries(last or None, subject=row.pseudonym)]
            record_view(app, by or "", row.pseudonym, "history", reason or "")
            _echo({"ok": True, "record": row.pseudonym, "entries": history}, as_json,
                  lambda: _show_history(history))
            return
        entries = app.audit.entries(last or None)
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
    """Check the config, paths, secrets, file modes, the source and the DMS. A check: it changes
    nothing, here or in the DMS (no key, state store or DMS folder is made; the first sync does)."""
    checks: list[dict[str, Any]] = []

    def check(name: str, fn: Callable[[list[str]], list[str]]) -> list[str]:
        notes: list[str] = []
        try:
            problems = fn(notes)
        except ConnectorError as exc:
            problems = [str(exc)]
        checks.append({"check": name, "ok": not problems, "problems": problems, "notes": notes})
        return problems

    try:
        loaded = config_mod.load(config_path)
    except ConnectorError as exc:
        _fail(str(exc), as_json)
    cfg = loaded.config
    found: dict[str, Any] = {}

    def install_key(notes: list[str]) -> list[str]:
        kind, _, name = cfg.identity.secret.partition(":")
        if kind == "file" and cfg.identity.create_secret and not loaded.resolve(name).exists():
            notes.append(f"{loaded.resolve(name)} is not made yet: the first sync makes it")
            return []
        found["secret"] = loaded.secret(cfg.identity.secret, ["identity", "secret"])
        return []

    def mapping_and_schedule(_notes: list[str]) -> list[str]:
        mapping = mapping_mod.load(cfg.mapping.preset, base=loaded.base)
        load_schedule(cfg.retention.schedule, base=loaded.base, overrides=cfg.retention.overrides,
                      classes=set(mapping.classes))
        found["mapping"] = mapping
        return [] if mapping.parts else ["mapping has no parts"]

    def state_store(notes: list[str]) -> list[str]:
        from connector.state import head_revision, peek

        exists, version = peek(loaded.state_url(), cfg.state.schema_)
        if not exists:
            notes.append("not made yet: the first sync makes it")
        elif version != head_revision():
            notes.append(f"at migration {version or '(none)'}; the next sync brings it to {head_revision()}")
        else:
            found["state"] = True
        return []

    check("config", lambda _: [])
    check("install key", install_key)
    check("mapping and schedule", mapping_and_schedule)
    check("state store", state_store)
    check("file modes", lambda _: _private_problems(loaded))
    identity = Identity(found.get("secret") or os.urandom(32), cfg.identity.key)
    context = SourceContext(pseudonymize=identity.pseudonym_of, base=loaded.base)
    check("LAS source", lambda _: adapters.build_source(loaded, context).check())

    def dms(_notes: list[str]) -> list[str]:
        with closing(adapters.build_store(loaded, index_key=identity.index_key)) as store:
            return store.check()

    check("DMS", dms)
    if found.get("state") and found.get("secret") and found.get("mapping"):
        state = StateStore(loaded.state_url(), cfg.state.schema_, upgrade=False)
        try:
            app = App(loaded, identity, found["mapping"], state,
                      AuditLog(state, identity.audit_key, loaded.audit_head_file()))
            check("audit log", lambda _: app.audit.verify(file_anchors(app)).problems)
        finally:
            state.close()
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


def _private_problems(loaded: config_mod.LoadedConfig) -> list[str]:
    """Files and folders of the connector's that others may read: the state (and SQLite's side
    files), the audit head, the install key, the filesystem DMS, lists, certificates and
    exports. Every one should be 0600 (a folder 0700); the connector makes them so."""
    cfg = loaded.config
    roots: list[Path] = []
    url = loaded.state_url()
    if url.startswith("sqlite:///"):
        db = Path(url[len("sqlite:///"):])
        roots += [db, Path(f"{db}-wal"), Path(f"{db}-shm")]
    head = loaded.audit_head_file()
    if head is not None:
        roots.append(head)
    kind, _, name = cfg.identity.secret.partition(":")
    if kind == "file":
        roots.append(loaded.resolve(name))
    dms_root = cfg.dms.settings().get("root")
    if cfg.dms.type == "filesystem" and isinstance(dms_root, str):
        roots.append(loaded.resolve(dms_root))
    roots += [loaded.resolve(cfg.destruction.output), loaded.resolve("var/export")]
    wide: list[str] = []
    for root in roots:
        for path in _walk(root):
            mode = path.stat().st_mode & 0o777
            if mode & 0o077:
                want = "700" if path.is_dir() else "600"
                wide.append(f"{path} is {oct(mode)[2:]}: others may read it (chmod {want})")
                if len(wide) >= 20:
                    return [*wide, "... and perhaps more (the first 20 are shown)"]
    return wide


def _walk(root: Path) -> Iterator[Path]:
    if not root.exists() or root.is_symlink():
        return
    yield root
    if root.is_dir():
        for folder, dirs, files in os.walk(root):
            for n in (*dirs, *files):
                p = Path(folder) / n
                if not p.is_symlink():
                    yield p


@main.group("dms")
def dms_group() -> None:
    """The document-management system."""


@dms_group.command("init")
@config_option
@json_option
def dms_init(config_path: Path, as_json: bool) -> None:
    """Create what the connector needs in the DMS (document type, metadata types); idempotent."""
    with _app(config_path, as_json) as app, app.open_store() as store:
        try:
            init = getattr(store, "init", None)
            result = init() if callable(init) else {"note": "nothing to set up for this DMS"}
        except ConnectorError as exc:
            _fail(str(exc), as_json)
    _echo({"ok": True} | result, as_json, lambda: out_console.print(f"DMS ready: {result}", highlight=False))


# -- retention -------------------------------------------------------------------------------



def _echo(data: Any, as_json: bool, human: Callable[[], None]) -> None:
    if as_json:
        click.echo(json.dumps(data, indent=2, default=str))
    else:
        human()


@main.group("schedule")
def schedule_group() -> None:
    """The retention schedule in force."""


@schedule_group.command("show")
@config_option
@json_option
def schedule_show(config_path: Path, as_json: bool) -> None:
    """What will be destroyed when: categories, classes, periods, kinds, bases, overrides."""
    with _app(config_path, as_json) as app:
        try:
            sch = app.schedule()
        except ConfigError as exc:
            _fail(str(exc), as_json)
    categories: dict[str, dict[str, Any]] = {
            code: {
                "name": c.name, "trigger": c.trigger, "period": c.period, "kind": c.kind, "blocked": c.blocked,
                "basis": c.basis, "override": c.override,
                "when_referred": c.when_referred.model_dump() if c.when_referred else None,
                "with_consent": c.with_consent.model_dump() if c.with_consent else None,
                "classes": sorted(k for k, v in sch.classes.items() if v == code),
            } for code, c in sch.categories.items()
    }
    data: dict[str, Any] = {
        "schedule": sch.name, "description": sch.description, "file": str(sch.path),
        "overrides_file": str(sch.override_path) if sch.override_path else None,
        "categories": categories, "unclassified": {"gets": sch.longest().name},
    }

    def human() -> None:
        c = out_console
        c.print(f"[bold]{escape(sch.name)}[/]: {escape(sch.description)}", highlight=False, markup=True)
        for code, cat in categories.items():
            when = "blocked: never destroyed" if cat["blocked"] else (
                f"{cat['kind']} {cat['period']} after {cat['trigger']}")
            c.print(f"\n[bold]{escape(code)}[/] {escape(cat['name'])}: {escape(when)}", highlight=False, markup=True)
            c.print(f"  basis: {cat['basis']}", highlight=False)
            if cat["override"]:
                c.print(f"  [yellow]school override[/]: {escape(str(cat['override']))}", highlight=False, markup=True)
            for alt in ("when_referred", "with_consent"):
                if cat[alt]:
                    c.print(f"  {alt.replace('_', ' ')}: {cat[alt]['period']} ({cat[alt]['basis']})",
                            highlight=False)
            c.print(f"  classes: {', '.join(cat['classes']) or '-'}", highlight=False)
        c.print(f"\nunclassified documents get: {data['unclassified']['gets']}", highlight=False)

    _echo(data, as_json, human)


@main.group("pupil")
def pupil_group() -> None:
    """Facts about a pupil recorded by a named person (retention clocks, the pupil's account)."""


def _fact(config_path: Path, key: str, kind: str, on: date | None, as_name: str, secret_ref: str | None,
          note: str | None, as_json: bool) -> None:
    with _app(config_path, as_json) as app:
        user = _acting_user(app, as_name, secret_ref, as_json, "fact.record")
        by = user.name
        try:
            row = app.dossier(key)
            schedule = app.schedule()
            if kind in ("departure", "exam_result"):
                born, enrolled = app.state.pupil_dates(row.external_id)
                check_departure(on, born, enrolled, date.today(),
                                app.loaded.config.safety.max_departure_future_days, row.pseudonym,
                                "--date")
        except (ConfigError, RejectedRecord) as exc:
            _fail(str(exc), as_json)
        if kind == "departure" and row.departure is not None and on != row.departure:
            _fail(f"the LAS reports a departure date for {row.pseudonym}; correct it in the LAS", as_json)
        if kind == "departure" and on is not None and row.departure is None and row.vanished_since is None:
            _fail(f"{row.pseudonym} is in the last LAS snapshot without a departure date; record the "
                  "departure in the LAS (a hand-recorded departure is for pupils who vanished from it)", as_json)
        with app.state.transaction() as conn:
            app.state.record_fact(conn, row.external_id, kind, on, by, note)
            app.audit.append(conn, by, f"fact.{kind}" if on else f"fact.{kind}.withdrawn", row.pseudonym,
                             {"on": on.isoformat() if on else None, "note_given": bool(note)})
        with app.open_store() as store:
            run_id = app.state.begin_run("facts")
            tags = tagging.refresh(store, app.state, app.audit, schedule, app.mapping, run_id,
                                   f"leerdossier pupil ({by})", external_ids=[row.external_id])
            app.state.finish_run(run_id, "ok", row.school, None, tags.as_dict())
    data = {"ok": True, "record": row.pseudonym, "fact": kind, "on": on, "by": by, "tags": tags.as_dict()}
    _echo(data, as_json, lambda: out_console.print(
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
            _fail("give either --date or --withdraw", as_json)
        _fact(config_path, key, kind, on, as_name, secret_ref, note, as_json)


_fact_command("left", "departure",
              "Record that a pupil left (for a pupil who vanished from the LAS without a departure date).")
_fact_command("referred", "referred", "Record a referral to (V)SO (samenwerkingsverband, TLV).")
_fact_command("consent", "reunion_consent",
              "Record prior consent to keep name, address and school period for reunions.")
_fact_command("reenrolled", "reenrolled", "Record a re-enrolment after a departure (stops the clock).")
_fact_command("exam-result", "exam_result", "Record the date of the exam result (VO; starts exam-work clocks).")


@pupil_group.command("facts")
@config_option
@click.argument("key")
@json_option
def pupil_facts(config_path: Path, key: str, as_json: bool) -> None:
    """Show the facts recorded for a pupil and the clock they give."""
    with _app(config_path, as_json) as app:
        try:
            row = app.dossier(key)
        except ConfigError as exc:
            _fail(str(exc), as_json)
        facts = app.state.facts_for(row.external_id, row.departure)
        history = app.state.fact_history(row.external_id)
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
    _echo(data, as_json, show)


@main.group("document")
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
    with _app(config_path, as_json) as app:
        if doc_class not in app.mapping.classes:
            _fail(f"unknown class {doc_class!r}; classes: {', '.join(sorted(app.mapping.classes))}", as_json)
        try:
            row = app.dossier(key)
            schedule = app.schedule()
        except ConfigError as exc:
            _fail(str(exc), as_json)
        part = app.mapping.classes[doc_class][0]
        with app.open_store() as store:
            try:
                doc, tags = app.store_document(store, row, doc_class, file, by, schedule)
            except ConnectorError as exc:
                _fail(str(exc), as_json)
    data = {"ok": True, "record": row.pseudonym, "document": doc.id, "part": part, "class": doc_class,
            "tags": tags.as_dict()}
    _echo(data, as_json, lambda: out_console.print(
        f"stored {doc.id} in part {part} of {row.pseudonym} as {doc_class}; tagged", highlight=False))


@main.group("tags")
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
    with _app(config_path, as_json) as app:
        schedule = app.schedule()
        update_, bar = _progress(not as_json and err_console.is_terminal)
        with app.open_store() as store, bar or nullcontext():
            run_id = app.state.begin_run("tags")
            only = tagging.recompute(app.state, schedule).dossiers if from_state else None
            report = tagging.refresh(store, app.state, app.audit, schedule, app.mapping, run_id,
                                     "leerdossier tags refresh", external_ids=only, progress=update_)
            app.state.finish_run(run_id, "ok", None, None, report.as_dict())
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

    _echo(data, as_json, human)
    sys.exit(EXIT_ERROR if report.failed else EXIT_OK)


# -- holds ---------------------------------------------------------------------------------------

@main.group("hold")
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
    with _app(config_path, as_json) as app:
        by = _acting_user(app, as_name, secret_ref, as_json, "hold.add").name
        try:
            row = app.dossier(key)
        except ConfigError as exc:
            _fail(str(exc), as_json)
        if part is not None and part not in {p.code for p in app.mapping.parts}:
            _fail(f"unknown part {part!r}", as_json)
        with app.state.transaction() as conn:
            hold_id = app.state.add_hold(conn, row, part, reason, by)
            app.audit.append(conn, by, "hold.added", row.pseudonym, {"hold": hold_id, "part": part, "reason": reason})
    _echo({"ok": True, "hold": hold_id, "record": row.pseudonym, "part": part}, as_json,
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
    with _app(config_path, as_json) as app:
        by = _acting_user(app, as_name, secret_ref, as_json, "hold.remove").name
        if any(r["hold_id"] == hold_id for r in app.state.requests("open")):
            _fail(f"hold {hold_id} belongs to an open request; it is lifted when the request is closed", as_json)
        with app.state.transaction() as conn:
            removed = app.state.remove_hold(conn, hold_id, by, reason)
            if removed is None:
                _fail(f"no active hold {hold_id}", as_json)
            app.audit.append(conn, by, "hold.removed", removed["pseudonym"], {"hold": hold_id, "reason": reason})
    _echo({"ok": True, "hold": hold_id}, as_json, lambda: out_console.print(f"hold {hold_id} lifted"))


@hold_group.command("list")
@config_option
@json_option
def hold_list(config_path: Path, as_json: bool) -> None:
    """Active holds."""
    with _app(config_path, as_json) as app:
        data = [{k: h[k] for k in ("id", "pseudonym", "part", "reason", "by", "at")} for h in app.state.active_holds()]
    def human() -> None:
        for h in data:
            out_console.print(f"{h['id']}: {h['pseudonym']} {h['part'] or 'whole dossier'}: {h['reason']} "
                              f"({h['by']}, {h['at']})", highlight=False)

    _echo(data, as_json, human)


# -- destruction ---------------------------------------------------------------------------------

@main.group("destruction")
def destruction_group() -> None:
    """Destroy what is due: a list, an approval by a named person, execution, a certificate."""


@destruction_group.group("list")
def dlist_group() -> None:
    """Destruction lists."""


def _output(app: App) -> Path:
    return app.loaded.resolve(app.loaded.config.destruction.output)


def _write_list_files(app: App, list_id: int) -> dict[str, str]:
    head, items = destruction.load_list(app.state, list_id)
    folder = _output(app)
    data = {"list": head, "approvals": [{k: a[k] for k in ("approver", "role", "at", "rejected")}
                                        for a in destruction.approvals(app.state, list_id)],
            "items": _public_items(items)}
    simulated = SIMULATED if app.loaded.config.testing.simulated_clock else None
    if simulated:
        data["simulated"] = simulated
    _private_write(folder / f"list-{list_id}.json", json.dumps(data, indent=2, default=str) + "\n")
    files = render.write_list(head, _public_items(items), folder, simulated)
    _tighten(folder, files)
    return {"json": str(folder / f"list-{list_id}.json"), **files}


def _public_items(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """List items without external ids (which may be a BSN when dossiers are keyed on it)."""
    return [{k: v for k, v in i.items() if k != "external_id"} for i in items]


@dlist_group.command("create")
@config_option
@click.option("--today", type=DATE, help="Preview: the list as it would be on this later date (YYYY-MM-DD). A preview "
                              "can never be approved.")
@acting
@json_option
def dlist_create(config_path: Path, today: date | None, as_name: str, secret_ref: str | None, as_json: bool) -> None:
    """Select what is due and write a list (JSON, HTML, PDF). Nothing is destroyed."""
    with _app(config_path, as_json) as app:
        user = _acting_user(app, as_name, secret_ref, as_json, "list.create")
        simulated = app.loaded.config.testing.simulated_clock
        try:
            as_of = today or date.today()
            clock = Clock(as_of) if simulated and today else Clock()
            list_id, n = destruction.create_list(app.state, app.audit, app.schedule(), as_of, user, clock,
                                                 app.loaded.config.destruction.approvals)
        except (ConnectorError, ValueError) as exc:
            _fail(str(exc), as_json)
        files = _write_list_files(app, list_id)
        head, _items = destruction.load_list(app.state, list_id)

    def human() -> None:
        if head["status"] == "preview":
            out_console.print(f"preview {list_id}: {n} document(s) would be due on {as_of}; nothing destroyed, "
                              f"and a preview cannot be approved. {files['pdf']}", highlight=False)
        elif not n:
            out_console.print(f"destruction list {list_id}: nothing is due; nothing destroyed", highlight=False)
        else:
            out_console.print(f"destruction list {list_id}: {n} document(s) due; nothing destroyed. Review "
                              f"{files['pdf']}; another person approves with: leerdossier destruction list "
                              f"approve {list_id} --as USER", highlight=False)

    _echo({"ok": True, "list": list_id, "items": n, "status": head["status"], "files": files}, as_json, human)


@dlist_group.command("show")
@config_option
@click.argument("list_id", type=int)
@json_option
def dlist_show(config_path: Path, list_id: int, as_json: bool) -> None:
    """Show a list, its approvals and its items."""
    with _app(config_path, as_json) as app:
        try:
            head, items = destruction.load_list(app.state, list_id)
        except ConfigError as exc:
            _fail(str(exc), as_json)
        given = destruction.approvals(app.state, list_id)

    def human() -> None:
        out_console.print(f"list {list_id} ({head['kind']}, {head['status']}), as of {head['as_of']}, made by "
                          f"{head['created_by']}; approvals {len(given)} of {head['required_approvals']}: "
                          f"{', '.join(a['approver'] for a in given) or '-'}", highlight=False)
        for i in items:
            out_console.print(f"  {i['id']}: {i['pseudonym']} {i['part']} {i['doc_class']} {i['category']} "
                              f"due {i['due']} {i['decision']} {i['status']}", highlight=False)

    _echo({"list": head, "approvals": [{k: a[k] for k in ("approver", "role", "at", "rejected")} for a in given],
           "items": _public_items(items)}, as_json, human)


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
            _fail(f"--reject {r!r}: use ITEM=REASON", as_json)
        reject[int(item)] = reason.strip()
    with _app(config_path, as_json) as app:
        user = _acting_user(app, as_name, secret_ref, as_json, "list.approve")
        try:
            result = destruction.approve(app.state, app.audit, app.identity.approval_key, list_id, user, role, reject,
                                         app.clock(None), app.loaded.config.destruction.approvals)
        except ConnectorError as exc:
            _fail(str(exc), as_json)
        files = _write_list_files(app, list_id)

    def human() -> None:
        if result["status"] == "approving":
            out_console.print(f"list {list_id}: approval {result['approvals']} of {result['required']} by "
                              f"{user.name}; another approver is needed", highlight=False)
        else:
            out_console.print(f"list {list_id} {result['status']} ({result['approvals']} approval(s), last by "
                              f"{user.name}): {result['approved']} item(s), {result['rejected']} rejected",
                              highlight=False)

    _echo(result | {"ok": True, "files": files}, as_json, human)


@dlist_group.command("cancel")
@config_option
@click.argument("list_id", type=int)
@click.option("--reason", required=True, help="Why the list is withdrawn.")
@acting
@json_option
def dlist_cancel(config_path: Path, list_id: int, reason: str, as_name: str, secret_ref: str | None,
                 as_json: bool) -> None:
    """Withdraw list LIST_ID before it is carried out; its items are offered on the next list."""
    with _app(config_path, as_json) as app:
        user = _acting_user(app, as_name, secret_ref, as_json, "list.cancel")
        try:
            destruction.cancel(app.state, app.audit, list_id, user, reason)
        except ConnectorError as exc:
            _fail(str(exc), as_json)
        files = _write_list_files(app, list_id)
    _echo({"ok": True, "list": list_id, "status": "cancelled", "files": files}, as_json,
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
    with _app(config_path, as_json) as app:
        user = _acting_user(app, as_name, secret_ref, as_json, "list.execute")
        cfg = app.loaded.config.destruction
        with app.open_store() as store:
            try:
                report = destruction.execute(store, app.state, app.audit, app.schedule(), list_id, app.clock(today),
                                             cfg.max_per_run, user, app.identity.approval_key, cfg.approvals,
                                             cfg.trash_grace_days, dry_run=dry_run)
                existing = _output(app) / f"certificate-{list_id}.json"
                if dry_run or report.stopped_by:
                    files = {}
                elif report.destroyed or not existing.exists():
                    files = _write_certificate(app, list_id, store)
                else:  # nothing more was removed: the certificate already says what was, and stays as it is
                    files = {"json": str(existing), "pdf": str(existing.with_suffix(".pdf")), "unchanged": "yes"}
            except ConnectorError as exc:
                _fail(str(exc), as_json)
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

    _echo(data, as_json, human)
    if report.stopped_by:
        sys.exit(EXIT_SAFETY)
    sys.exit(EXIT_ERROR if report.failed else EXIT_OK)


def _write_certificate(app: App, list_id: int, store: DocumentStore) -> dict[str, str]:
    cfg = app.loaded.config.destruction
    cert = destruction.certificate(app.state, app.audit, app.identity.approval_key, list_id,
                                   app.loaded.config.dms.type, store.capabilities.trash, cfg.trash_grace_days,
                                   simulated=app.loaded.config.testing.simulated_clock)
    folder = _output(app)
    path = folder / f"certificate-{list_id}.json"
    _private_write(path, json.dumps(cert, indent=2, default=str) + "\n")
    files = render.write_certificate(cert, folder)
    _tighten(folder, files)
    app.audit.record("leerdossier destruction", "destruction.certificate", None,
                     {"list": list_id, "destroyed": cert["counts"]["destroyed"]})
    return {"json": str(path), **files}


def _private_write(path: Path, text: str) -> None:
    """A file the connector writes for people (lists, certificates): 0600, its folder 0700."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)
    os.chmod(path, 0o600)


def _tighten(folder: Path, files: dict[str, str]) -> None:
    os.chmod(folder, 0o700)
    for f in files.values():
        os.chmod(f, 0o600)


def file_anchors(app: App) -> list[Anchor]:
    """The audit heads recorded in the list and certificate files of the output folder."""
    out: list[Anchor] = []
    folder = _output(app)
    for path in sorted(folder.glob("*-*.json")) if folder.is_dir() else ():
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            if path.name.startswith("certificate-") and data.get("audit_anchor"):
                anchor = data["audit_anchor"]
                out.append(Anchor(f"certificate file {path.name}", int(anchor["seq"]), str(anchor["hash"])))
            elif path.name.startswith("list-") and data.get("list", {}).get("anchor_seq") is not None:
                head = data["list"]
                out.append(Anchor(f"list file {path.name}", int(head["anchor_seq"]), str(head["anchor_hash"])))
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            continue
    return out


@destruction_group.command("certificate")
@config_option
@click.argument("list_id", type=int)
@json_option
def certificate_cmd(config_path: Path, list_id: int, as_json: bool) -> None:
    """(Re)write the certificate of destruction of LIST_ID (JSON, HTML, PDF)."""
    with _app(config_path, as_json) as app, app.open_store() as store:
        try:
            files = _write_certificate(app, list_id, store)
        except ConfigError as exc:
            _fail(str(exc), as_json)
    _echo({"ok": True, "files": files}, as_json, lambda: out_console.print(files["pdf"], highlight=False))


@destruction_group.command("purge")
@config_option
@click.option("--today", type=DATE, help="Only on an install marked [testing] simulated_clock: act on this date.")
@acting
@json_option
def purge_cmd(config_path: Path, today: date | None, as_name: str, secret_ref: str | None, as_json: bool) -> None:
    """Empty the DMS trash of what approved lists put there longer ago than the grace period,
    each document through the destruction gate again (holds, re-enrolment, schedule)."""
    with _app(config_path, as_json) as app:
        user = _acting_user(app, as_name, secret_ref, as_json, "purge")
        cfg = app.loaded.config.destruction
        with app.open_store() as store:
            try:
                report = destruction.purge(store, app.state, app.audit, app.schedule(), app.clock(today),
                                           cfg.trash_grace_days, user, app.identity.approval_key, cfg.approvals)
            except ConnectorError as exc:
                _fail(str(exc), as_json)
    _echo(report.as_dict(), as_json, lambda: out_console.print(
        f"purged {report.purged}; kept for holds: {len(report.held)}; kept for other reasons: "
        f"{len(report.skipped)}; failed: {len(report.failed)}" + (f" ({report.clock})" if report.clock else "")))
    if report.stopped_by:
        sys.exit(EXIT_SAFETY)
    sys.exit(EXIT_ERROR if report.failed else EXIT_OK)


# -- OKR and transfers -------------------------------------------------------------------------

@main.group("okr")
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
    with _app(config_path, as_json) as app:
        cfg = app.loaded.config.okr
        with app.open_store() as store:
            try:
                row = app.dossier(key)
                result = transfer.record_okr(store, app.state, app.audit, app.mapping, row, on,
                                             receiving, by, cfg.okr_class, cfg.evidence_class)
            except ConnectorError as exc:
                _fail(str(exc), as_json)
    def human() -> None:
        if result["status"] == "transferred":
            out_console.print(f"OKR of {row.pseudonym} recorded as sent to {receiving}", highlight=False)
        else:
            out_console.print(f"[yellow]OKR of {row.pseudonym} recorded but INCOMPLETE[/]: "
                              f"{escape(', '.join(result['missing']))}", highlight=False, markup=True)

    _echo(result, as_json, human)  # recorded either way (exit 0); 'okr incomplete' lists what is missing


@okr_group.command("incomplete")
@config_option
@json_option
def okr_incomplete(config_path: Path, as_json: bool) -> None:
    """OKRs recorded as sent whose dossier still lacks the OKR or the parents-informed evidence."""
    with _app(config_path, as_json) as app:
        cfg = app.loaded.config.okr
        with app.open_store() as store:
            rows = transfer.incomplete_okrs(store, app.state, app.mapping, cfg.okr_class, cfg.evidence_class)

    def human() -> None:
        for r in rows:
            out_console.print(f"{r['record']} sent {r['sent']} to {r['receiving']}: okr {r['okr_present']}, "
                              f"parents informed {r['parents_informed']}", highlight=False)
        if not rows:
            out_console.print("every recorded OKR has its evidence")

    _echo(rows, as_json, human)


@main.command("transfer")
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
@acting
@click.option("--today", type=DATE, help="Only on an install marked [testing] simulated_clock: act on this date.")
@json_option
def transfer_cmd(config_path: Path, key: str, part: str, folder: Path | None, other: Path | None,
                 remove_at_source: bool, as_name: str, secret_ref: str | None, today: date | None,
                 as_json: bool) -> None:
    """Export a dossier part and verify every copy; removal at the source goes through a transfer
    list, approved and executed like any destruction list."""
    if (folder is None) == (other is None):
        _fail("give exactly one destination: --to-folder or --to-config", as_json)
    with _app(config_path, as_json) as app, app.open_store() as store, ExitStack() as stack:
        user = _acting_user(app, as_name, secret_ref, as_json, "transfer")
        try:
            row = app.dossier(key)
            if other is not None:
                dest_store = stack.enter_context(closing(
                    adapters.build_store(config_mod.load(other), index_key=app.identity.index_key)))
                dest: transfer.Destination = transfer.StoreDestination(dest_store, app.state, f"dms:{other.name}")
            else:
                dest = transfer.FolderDestination(folder)  # type: ignore[arg-type]
            report = transfer.export_part(store, app.state, app.audit, app.mapping, row, part, dest,
                                          remove_at_source, user, app.schedule(), app.clock(today),
                                          app.loaded.config.destruction.approvals)
            if report.transfer_list is not None:
                _write_list_files(app, report.transfer_list)
        except ConnectorError as exc:
            _fail(str(exc), as_json)

    def human() -> None:
        out_console.print(f"{report.record} part {part}: {report.copied} copied, {report.verified} verified",
                          highlight=False)
        if report.transfer_list is not None:
            out_console.print(f"transfer list {report.transfer_list}: {report.listed} document(s) to remove at the "
                              f"source once another person approves it (leerdossier destruction list approve "
                              f"{report.transfer_list} --as USER)", highlight=False)
        for k in report.kept:
            out_console.print(f"  kept at the source: {k['document']}: {k['reason']}", highlight=False)

    _echo(report.as_dict(), as_json, human)
    sys.exit(EXIT_ERROR if report.failed else EXIT_OK)


# -- users -----------------------------------------------------------------------------------------

@main.group("user")
def user_group() -> None:
    """The people who act on dossiers (lists, approvals, execution, holds, facts) and their roles."""


@user_group.command("add")
@config_option
@click.argument("name")
@click.option("--role", "roles", multiple=True, required=True,
              type=click.Choice(users_mod.ROLES), help="maker, approver, executor or admin. Repeatable.")
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
    with _app(config_path, as_json) as app:
        try:
            by = app.user(as_name, secret_ref) if as_name else None
            if new_secret_ref is not None:
                secret = read_secret_ref(app.loaded, new_secret_ref, ["--new-secret"])
            else:
                secret = click.prompt(f"new secret for {name}", hide_input=True, confirmation_prompt=True, err=True)
            user = users_mod.add(app.state, app.audit, name, list(roles), secret, by, display)
        except ConnectorError as exc:
            _fail(str(exc), as_json)
    _echo({"ok": True, "user": user.as_dict()}, as_json, lambda: out_console.print(
        f"user {name} added with role(s) {', '.join(sorted(user.roles))}", highlight=False))


@user_group.command("list")
@config_option
@json_option
def user_list(config_path: Path, as_json: bool) -> None:
    """The users and their roles (never their secrets)."""
    with _app(config_path, as_json) as app:
        rows = users_mod.listing(app.state)

    def human() -> None:
        for u in rows:
            state = f"disabled {u['disabled_at']} by {u['disabled_by']}" if u["disabled_at"] else "active"
            out_console.print(f"{u['name']}: {', '.join(u['roles'])} ({state})", highlight=False)
        if not rows:
            out_console.print("no users yet: add the first (an admin) with 'leerdossier user add NAME --role admin'")

    _echo(rows, as_json, human)


@user_group.command("disable")
@config_option
@click.argument("name")
@acting
@json_option
def user_disable(config_path: Path, name: str, as_name: str, secret_ref: str | None, as_json: bool) -> None:
    """Disable user NAME (kept for the record; they can no longer act)."""
    with _app(config_path, as_json) as app:
        by = _acting_user(app, as_name, secret_ref, as_json, "user.manage")
        try:
            users_mod.disable(app.state, app.audit, name, by)
        except ConnectorError as exc:
            _fail(str(exc), as_json)
    _echo({"ok": True, "user": name, "disabled": True}, as_json,
          lambda: out_console.print(f"user {name} disabled", highlight=False))


# Commands kept in their own modules register themselves on ``main`` when imported.
from connector import cli_access, cli_fleet, cli_service  # noqa: E402, F401

if __name__ == "__main__":  # pragma: no cover
    # ``python -m connector.cli``: the command modules registered themselves on the imported
    # module's group, not on this __main__ copy's
    from connector.cli import main as registered

    registered()
