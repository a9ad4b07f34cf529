"""The application's context for one school's configuration: the loaded configuration, the
identity (pseudonyms, keys), the mapping, the state store and the audit log, and the steps every
front end shares (sync once, apply access, store a document, open the configured DMS)."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import adapters
from connector import acl, logs, tagging
from connector import config as config_mod
from connector import mapping as mapping_mod
from connector import users as users_mod
from connector.access import AccessPolicy
from connector.audit import AuditLog
from connector.clock import Clock, for_irreversible
from connector.errors import ConfigError, NotFound
from connector.identity import Identity
from connector.mapping import Mapping
from connector.model import DocumentRef, DossierRef
from connector.ports import DocumentStore, PupilSource, SourceContext
from connector.retention import Schedule, load_schedule
from connector.state import DossierRow, SharedEngines, StateStore
from connector.sync import SyncOptions, SyncReport, sync
from connector.users import User


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

    def user(self, name: str, secret: str) -> User:
        """The user NAME, authenticated with their secret (a front end asks for it)."""
        return users_mod.authenticate(self.state, name, secret)

    def schedule(self) -> Schedule:
        """The retention schedule with its overrides, checked against the mapping's classes."""
        cfg = self.loaded.config.retention
        classes = set(self.mapping.classes)
        return load_schedule(cfg.schedule, base=self.loaded.base, overrides=cfg.overrides, classes=classes)

    def school_name(self, code: str) -> str | None:
        """The school's name for a school code (``[school] names``, else ``[school] name``)."""
        cfg = self.loaded.config.school
        return cfg.names.get(code) or cfg.name

    def school_names(self, codes: Iterable[str]) -> dict[str, str]:
        """School code -> how people read it: ``name (code)``, or the code alone without a name."""
        out = {}
        for code in codes:
            name = self.school_name(code)
            out[code] = f"{name} ({code})" if name else code
        return out

    def dossier(self, key: str) -> DossierRow:
        """A pupil's dossier by pseudonymous key (p-...) or by LAS key."""
        keys = [key] if key.startswith("p-") else [self.identity.pseudonym_of(s, key) for s in self.state.schools()]
        rows = self.state.find_pupil(keys)
        if not rows:  # another key of a child, linked to its dossier
            rows = self.state.find_pupil(sorted({t.pseudonym for t in self.state.alias_targets(keys).values()}))
        # a key as typed may be a BSN or onderwijsnummer: only a pseudonymous key is repeated
        shown = repr(key) if key.startswith("p-") else "given"
        if not rows:
            raise NotFound(f"no dossier for the pupil key {shown} (give the LAS key or the pseudonymous p-... key)")
        if len(rows) > 1:
            raise ConfigError(f"the pupil key {shown} matches dossiers in several schools; give the p-... key")
        return rows[0]

    def source(self) -> PupilSource:
        """The configured LAS source."""
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
        for role, role_parts in cfg.roles_after_departure.items():
            unknown = sorted(set(role_parts) - set(parts))
            if unknown:
                raise self.loaded.problem(["access", "roles_after_departure", role],
                                          f"unknown part(s) {', '.join(unknown)} (the mapping has {', '.join(parts)})")
        # a role keeps after departure only what it had; a role the school did not configure gets nothing
        after = {k: tuple(p for p in v if p in cfg.roles.get(k, ())) for k, v in cfg.roles_after_departure.items()}
        return AccessPolicy(adult_age=cfg.adult_age, roles={k: tuple(v) for k, v in cfg.roles.items()},
                            parts=parts, information_classes=tuple(cfg.information_classes),
                            roles_after_departure=after)

    def apply_access(self, store: DocumentStore, external_ids: list[str] | None, actor: str,
                     force: bool = False, today: date | None = None) -> acl.ApplyReport:
        """Apply access for these dossiers (None: the ones due today and never applied)."""
        day = today or date.today()
        if external_ids is None:
            external_ids = sorted(set(self.state.access_due(day)) | set(self.state.access_unapplied()))
        rows = self.state.dossier_rows(external_ids) if external_ids else []
        return acl.apply(store, self.state, self.audit, self.access_policy(), rows, day, actor, force=force)

    def sync_options(self, actor: str = "leerdossier sync", **overrides: Any) -> SyncOptions:
        """The options of one sync from the configuration's rails, with ``overrides`` (dry run, accepting a
        snapshot or departures)."""
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
                ids = sorted(set(report.reaccess) | set(report.retag) | set(self.state.access_due(day))
                             | set(self.state.access_unapplied()))
                applied = self.apply_access(store, ids, options.actor, today=day)
                report.access = applied.as_dict()
                report.dms_writes += applied.parts_changed
                report.failed.extend(applied.failed)
        return report

    def store_document(self, store: DocumentStore, row: DossierRow, doc_class: str, file: Path, by: str,
                       schedule: Schedule, details: dict[str, Any] | None = None,
                       metadata: dict[str, str] | None = None) -> tuple[DocumentRef, Any]:
        """Add FILE to the dossier as ``doc_class`` (with ``metadata`` besides who added it), audited,
        tagged at once and given its part's access (the same path for every document the
        connector itself stores)."""
        part = self.mapping.classes[doc_class][0]
        ref = DossierRef(id=row.ref_id or "", external_id=row.external_id)
        with file.open("rb") as fh:
            doc = store.add_document(ref, part, doc_class, file.name, fh, {**(metadata or {}), "added_by": by})
        self.audit.record(by, "document.added", row.pseudonym,
                          {"document": doc.id, "part": part, "class": doc_class, **(details or {})})
        run_id = self.state.begin_run("document")
        tags = tagging.refresh(store, self.state, self.audit, schedule, self.mapping, run_id, by,
                               external_ids=[row.external_id])
        self.state.finish_run(run_id, "ok", row.school, None, tags.as_dict())
        if store.capabilities.acl:
            self.apply_access(store, [row.external_id], by, force=True)
        return doc, tags

    def store_acl(self) -> bool:
        """Whether the configured DMS adapter applies access rights (without connecting to it)."""
        return adapters.store_capabilities(self.loaded).acl

    def store_key(self) -> str:
        """Names the configured DMS (its type and settings), for the cursor of its change feed: a
        store configured otherwise starts its feed anew."""
        blob = json.dumps(self.loaded.config.dms.model_dump(), sort_keys=True, default=str)
        return f"{self.loaded.config.dms.type}:{hashlib.sha256(blob.encode()).hexdigest()[:24]}"

    def source_key(self) -> str:
        """Names the LAS settings with the mapping and identity scheme that turn its pupils into
        dossiers (see SyncOptions.source_key)."""
        cfg = self.loaded.config
        blob = json.dumps({"las": cfg.las.model_dump(), "mapping": self.mapping.fingerprint,
                           "identity": cfg.identity.key}, sort_keys=True, default=str)
        return hashlib.sha256(blob.encode()).hexdigest()[:32]

    def store(self) -> DocumentStore:
        """A new connection to the configured DMS (the caller closes it; see ``open_store``)."""
        return adapters.build_store(self.loaded, index_key=self.identity.index_key)

    @contextmanager
    def open_store(self) -> Iterator[DocumentStore]:
        """The configured DMS, closed again however the command ends."""
        store = self.store()
        try:
            yield store
        finally:
            store.close()


def open_app(config_path: Path, setup_logging: bool = True, shared: SharedEngines | None = None) -> App:
    """Load a school's configuration and open its state store (the caller closes
    ``app.state``), on an engine from ``shared`` where given. Raises ``ConnectorError`` on a bad
    configuration."""
    return app_for(config_mod.load(config_path), setup_logging, shared)


def app_for(loaded: config_mod.LoadedConfig, setup_logging: bool = True, shared: SharedEngines | None = None) -> App:
    """``open_app`` for a configuration already loaded."""
    cfg = loaded.config
    if setup_logging:
        logs.setup_logging(cfg.logging.level, cfg.logging.format)
    secret = loaded.secret(cfg.identity.secret, ["identity", "secret"], create=cfg.identity.create_secret)
    identity = Identity(secret, cfg.identity.key)
    mapping = mapping_mod.load(cfg.mapping.preset, base=loaded.base)
    state = StateStore(loaded.state_url(), cfg.state.schema_, shared)
    return App(loaded, identity, mapping, state, AuditLog(state, identity.audit_key, loaded.audit_head_file()))


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
