"""One sync run: snapshot in, rails checked, dossiers planned and made current.

    stream the source -> stage the snapshot (state) -> safety rails -> finish earlier journal
    -> plan page by page (pure plan) -> execute (journal, DMS, audit) -> vanished report

Memory stays flat in the number of pupils: the snapshot is staged in the state store in
batches and compared there; only dossiers that need a change are loaded, a page at a time.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date, timedelta
from importlib import metadata
from typing import Any, cast

from connector import acl
from connector.audit import AuditLog
from connector.errors import RejectedRecord, SafetyStop
from connector.execute import Executor, Outcome, RetryPolicy
from connector.identity import Identity
from connector.mapping import Mapping
from connector.model import Operation, Pupil
from connector.plan import SnapshotCheck, check_snapshot, plan
from connector.ports import DocumentStore, PupilSource, SourceRecord
from connector.state import Staged, StateStore, Target

log = logging.getLogger("leerdossier.sync")

BATCH = 2000
PAGE = 1000
Record = Pupil | RejectedRecord | SourceRecord
"""One record as a source gives it: validated, rejected, or not yet validated."""


@dataclass
class SyncOptions:
    dry_run: bool = False
    accept_snapshot: bool = False
    min_snapshot_ratio: float = 0.8
    hold_suspected_duplicates: bool = True
    actor: str = "leerdossier sync"
    retry: RetryPolicy | None = None
    list_operations: bool = False
    concurrency: int = 1
    breaker: int | None = None
    """Transient failures in a row after which the run stops sending (circuit breaker)."""
    should_stop: Callable[[], bool] | None = None
    """Asked between operations: a service told to stop halts cleanly."""
    max_duplicate_group: int = 10
    """More pupils than this sharing one keyed hash are one reported group, not pairs."""
    max_new_departures: int | None = None
    """Rail ``mass_departure``: more pupils than this gaining a departure date in one snapshot stop
    the run (None: 10 % of the school's last good snapshot, at least 25)."""
    accept_departures: bool = False
    """A person checked that this many departures are right (audited)."""
    max_departure_future_days: int = 92
    """A departure date further ahead than this is a rejected record."""
    skip_unchanged: bool = True
    """Stage a record identical to the one its dossier was last made from (by a keyed digest of
    the record with everything that shapes what it becomes) from the recorded row, without
    mapping it again. False (``--no-skip``): map every record; the outcome is the same."""
    source_key: str | None = None
    """Names the source's settings together with the mapping and identity scheme. The cursor
    of the last completely applied run is kept under it; it is offered to the source (to ask
    for changes since) only while the key is the same, since a changed mapping must see the
    whole snapshot again."""


@dataclass
class SyncReport:
    run_id: int
    dry_run: bool
    school: str | None = None
    pupils_seen: int = 0
    dossiers_created: int = 0
    dossiers_updated: int = 0
    dms_writes: int = 0
    resumed: int = 0
    resumed_read: int = 0
    """Records an interrupted run had staged from the same snapshot, taken over unread."""
    unchanged: bool = False
    """The source said nothing changed since the last applied run; nothing was planned."""
    records_unchanged: int = 0
    """Records identical to the ones their dossiers were last made from: counted as seen and
    staged from the recorded rows, not mapped again (``--no-skip`` maps every record)."""
    halted_by: str | None = None
    """``circuit_breaker`` or ``stop_requested``: the run stopped sending; ``deferred``
    operations wait in the journal and the snapshot is not recorded as applied."""
    deferred: int = 0
    rejected: list[dict[str, str]] = field(default_factory=list)
    vanished: list[dict[str, str]] = field(default_factory=list)
    suspected_duplicates: list[dict[str, Any]] = field(default_factory=list)
    linked: list[dict[str, str]] = field(default_factory=list)
    """Records of a new key that an ECK-iD took to a recorded dossier (kept as aliases)."""
    held: list[str] = field(default_factory=list)
    failed: list[dict[str, str]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    operations: list[dict[str, Any]] = field(default_factory=list)
    stopped_by: str | None = None
    message: str | None = None
    tags: dict[str, Any] | None = None
    access: dict[str, Any] | None = None
    access_changed: int = 0
    """Dossiers whose access facts (birth date, guardians) changed in the LAS."""
    guardian_disagreements: list[dict[str, str]] = field(default_factory=list)
    """Among those: guardians where the LAS now differs from what a person recorded (no names)."""
    reaccess: list[str] = field(default_factory=list, repr=False)
    """Their external ids, for recomputing access (internal; never in the report)."""
    retag: list[str] = field(default_factory=list, repr=False)
    """Dossiers whose departure changed: their documents' tags are recomputed (internal; the
    report never carries external ids)."""

    def as_dict(self) -> dict[str, Any]:
        data = dict(self.__dict__)
        data.pop("retag")
        data.pop("reaccess")
        return data


Progress = Callable[[str, int], None]


def _noop(_phase: str, _n: int) -> None:
    return None


def sync(source: PupilSource, store: DocumentStore, state: StateStore, audit: AuditLog,
         identity: Identity, mapping: Mapping, options: SyncOptions, today: date,
         progress: Progress = _noop) -> SyncReport:
    """One run. A writing run holds the state's sync lock throughout: a second one at the same
    time would take the first one's staged snapshot for an interrupted run's."""
    if options.dry_run:
        # a plan is a check: its staging rows and its run row are scratch, gone when it ends
        try:
            return _sync(source, store, state, audit, identity, mapping, options, today, progress)
        finally:
            state.forget_plans()
    try:
        with state.exclusive("sync"):
            return _sync(source, store, state, audit, identity, mapping, options, today, progress)
    except SafetyStop as stop:
        if stop.rail != "single_instance":
            raise
        return SyncReport(run_id=0, dry_run=False, stopped_by=stop.rail, message=str(stop))


def _sync(source: PupilSource, store: DocumentStore, state: StateStore, audit: AuditLog,
          identity: Identity, mapping: Mapping, options: SyncOptions, today: date,
          progress: Progress) -> SyncReport:
    run_id = state.begin_run("plan" if options.dry_run else "sync")
    report = SyncReport(run_id=run_id, dry_run=options.dry_run)
    executor = Executor(store, state, audit, options.actor, options.retry, concurrency=options.concurrency,
                        breaker=options.breaker, should_stop=options.should_stop)
    resumed = Outcome()
    try:
        if not options.dry_run:
            # Finish what an earlier run journalled first: those writes were planned from a
            # snapshot that passed the rails, and the recorded state must include them before
            # this snapshot is compared with it.
            resumed = executor.resume(("create_dossier", "update_dossier", "tag_document"))
            report.resumed, report.dms_writes, report.failed = resumed.resumed, resumed.dms_writes, resumed.failed
        _stage(source, state, identity, mapping, options, run_id, report, progress, today)
        if report.unchanged:
            state.finish_run(run_id, "unchanged", report.school, report.pupils_seen, report.as_dict(),
                             applied=_applied(source, options))
            if not options.dry_run:
                audit.record(options.actor, "sync.unchanged", None, {"run": run_id, "school": report.school})
            return report
        _run(executor, state, audit, options, today, run_id, report, progress, resumed)
        if not options.dry_run and executor.halted_by is None and report.school is not None:
            state.keep_digests(run_id, report.school)
    except SafetyStop as stop:
        report.stopped_by = stop.rail
        report.message = str(stop)
        log.warning("run stopped by a safety rail", extra={"rail": stop.rail, "run": run_id})
        state.finish_run(run_id, "stopped", report.school, report.pupils_seen, report.as_dict())
        return report
    except BaseException:
        state.finish_run(run_id, "failed", report.school, report.pupils_seen, report.as_dict())
        raise
    finally:
        state.drop_staging(run_id)
    report.halted_by = executor.halted_by
    if options.dry_run:
        state.finish_run(run_id, "dry-run", report.school, report.pupils_seen, report.as_dict())
    elif report.halted_by:
        # not "ok": the snapshot is not applied completely, so neither the snapshot rail's last
        # good count nor the source's "changes since" cursor may move on
        state.finish_run(run_id, "halted", report.school, report.pupils_seen, report.as_dict())
    else:
        state.finish_run(run_id, "ok", report.school, report.pupils_seen, report.as_dict(),
                         applied=_applied(source, options))
    return report


def _applied(source: PupilSource, options: SyncOptions) -> tuple[str, str] | None:
    if options.dry_run or options.source_key is None:
        return None
    cursor = source.cursor()
    return (options.source_key, cursor) if cursor is not None else None


def check_departure(on: date | None, born: date | None, enrolled: date | None, today: date, future_days: int,
                    record: str, field: str) -> None:
    """A departure (or exam result) date that makes sense, or a rejected record naming the
    field: never before the birth date or the enrolment, never far in the future."""
    if on is None:
        return
    if born is not None and on < born:
        raise RejectedRecord(record, field, "before the birth date", record)
    if enrolled is not None and on < enrolled:
        raise RejectedRecord(record, field, "before the enrolment date (instroomdatum)", record)
    if on > today + timedelta(days=future_days):
        raise RejectedRecord(record, field, f"more than {future_days} days in the future "
                             "([safety] max_departure_future_days)", record)


def _stage(source: PupilSource, state: StateStore, identity: Identity, mapping: Mapping, options: SyncOptions,
           run_id: int, report: SyncReport, progress: Progress, today: date) -> None:
    """Stream the source into the staging table, a batch per transaction with the source's
    cursor. An interrupted earlier run's staged batches are taken over when the source can
    continue after them (the same snapshot); its source is then not read twice."""
    interrupted = None if options.dry_run else state.interrupted(run_id)
    since = state.applied_cursor(options.source_key) if options.source_key else None
    read = getattr(source, "records", None)  # a source that can give records unvalidated
    items: Iterator[Record] = (read if callable(read) else source.pupils)(
        since=since, resume=interrupted[1] if interrupted else None)
    first = next(items, None)  # the source decides here whether it continues the interrupted read
    if interrupted is not None:
        if source.report.resumed_at and not source.report.unchanged:
            state.adopt_staging(interrupted[0], run_id)
            report.resumed_read = report.pupils_seen = source.report.resumed_at
        else:
            state.drop_staging(interrupted[0])
    aliases = AliasResolver(state, identity) if state.has_identities() else None
    digests = Digests(state, identity, mapping, options)
    batch: list[Staged] = []
    pending: list[Record] = []
    for item in _chain(first, items):
        report.pupils_seen += 1
        pending.append(item)
        if len(pending) >= BATCH:
            batch = _staged(pending, identity, mapping, options, report, today, aliases, digests)
            state.stage(run_id, batch, source.cursor())
            pending = []
            progress("read", report.pupils_seen)
    state.stage(run_id, _staged(pending, identity, mapping, options, report, today, aliases, digests),
                source.cursor())
    progress("read", report.pupils_seen)
    if aliases is not None:
        for own, dossier in state.settle_found(run_id):
            report.held.append(own)
            report.warnings.append(f"{own}: its ECK-iD is that of the dossier of {dossier}, but another record in "
                                   "this export goes to that dossier too; held as a suspected duplicate")
    report.unchanged = source.report.unchanged
    report.warnings.extend(source.report.warnings)
    if source.report.school is not None:
        report.school = source.report.school.code
    for r in report.rejected:
        log.warning("record rejected", extra=r)


class Digests:
    """The keyed digest of each record with everything that shapes what it becomes: the
    connector's version, the mapping, the identity scheme and its aliases, the departure rail,
    the source's settings (``source_key``: a CSV layout, say).
    The source's line number and the export's peildatum shape nothing and are left out."""

    def __init__(self, state: StateStore, identity: Identity, mapping: Mapping, options: SyncOptions) -> None:
        self.state = state
        self.enabled = options.skip_unchanged
        context = json.dumps([DIGEST_SCHEME, _version(), mapping.fingerprint, identity.scheme,
                              options.max_departure_future_days, state.identity_epoch(), options.source_key])
        self._hash = hashlib.blake2b(context.encode(), key=identity.digest_key[:64], digest_size=16)

    def of(self, pupil: Pupil) -> bytes:
        h = self._hash.copy()
        h.update(pupil.model_dump_json(exclude=_SHAPES_NOTHING).encode())
        return h.digest()

    @staticmethod
    def bound(mark: bytes, fingerprint: str | None) -> str:
        """A record's digest bound to the fingerprint of the dossier it makes: what a dossier row
        keeps, so that any later write of the row (a new fingerprint) undoes it."""
        return hashlib.blake2b(mark + (fingerprint or "").encode(), digest_size=16).hexdigest()

    def of_source(self, record: SourceRecord) -> bytes:
        """The digest of a record the source gave unvalidated, from the source's own digest."""
        h = self._hash.copy()
        h.update(b"source\x00" + record.digest)
        return h.digest()

    def kept(self, items: list[Record], identity: Identity) -> tuple[dict[int, bytes], dict[int, Staged]]:
        """Each record's digest, and the records identical to the ones their dossiers were last
        made from, staged from the recorded rows (none when skipping is off)."""
        marks: dict[int, bytes] = {}
        own: dict[int, str] = {}
        for i, item in enumerate(items):
            if isinstance(item, SourceRecord):
                marks[i], own[i] = self.of_source(item), item.pseudonym
            elif isinstance(item, Pupil):
                marks[i] = self.of(item)
        if not self.enabled or not marks:
            return marks, {}
        own.update({i: identity.pseudonym(cast(Pupil, items[i])) for i in marks if i not in own})
        rows = self.state.digested(sorted(set(own.values())))
        return marks, {i: rows[p] for i, p in own.items()
                       if p in rows and rows[p].digest == self.bound(marks[i], rows[p].fingerprint)}


DIGEST_SCHEME = "1"
_SHAPES_NOTHING: Any = {"line": True, "school": {"peildatum"}}


def _version() -> str:
    try:
        return metadata.version("leerdossier-connector")
    except metadata.PackageNotFoundError:  # pragma: no cover (a checkout that is not installed)
        return "unknown"


class AliasResolver:
    """Finds, for a batch of records, those that belong to another key's dossier: a key a person
    linked or a change of LAS mapped to it (an alias), a record of a dossier's own key after
    another key was linked to it (retired: seen, not used), and a record with a new key whose
    ECK-iD is that of exactly one recorded dossier of the school whose own key has no dossier
    (found; kept as an alias once the run is applied, unless another record of the snapshot goes
    to that dossier too). A few indexed queries per batch; nothing by name."""

    def __init__(self, state: StateStore, identity: Identity) -> None:
        self.state, self.identity = state, identity

    def resolve(self, items: list[Pupil | RejectedRecord]) -> dict[int, Target]:
        own: dict[int, str] = {}
        for i, item in enumerate(items):
            if isinstance(item, RejectedRecord):
                if item.pseudonym:
                    own[i] = item.pseudonym
            else:
                own[i] = self.identity.pseudonym(item)
        targets = self.state.alias_targets(sorted(set(own.values())))
        out = {i: targets[p] for i, p in own.items() if p in targets}
        keyed: dict[int, str] = {}
        for i, item in enumerate(items):
            if i not in out and isinstance(item, Pupil):
                try:
                    keyed[i] = self.identity.external_id(item)
                except RejectedRecord:
                    continue
        linked = self.state.linked_dossiers(sorted(set(keyed.values())))
        for i, external_id in keyed.items():
            if external_id in linked:
                out[i] = Target(external_id, own[i], "retired")
        eck: dict[int, tuple[str, str]] = {}
        for i in keyed:
            item = items[i]
            if i not in out and isinstance(item, Pupil) and (h := self.identity.eckid_hash(item)) is not None:
                eck[i] = (h, item.school.code)
        found = self.state.by_eckid(sorted({h for h, _ in eck.values()}))
        candidates: dict[int, tuple[str, str]] = {}
        for i, (h, code) in eck.items():
            same = [(e, p) for e, p, school in found.get(h, []) if school == code]
            if len(same) == 1 and same[0][0] != keyed[i]:
                candidates[i] = same[0]
        recorded = self.state.recorded_dossiers(sorted({keyed[i] for i in candidates}))
        for i, (external_id, pseudonym) in candidates.items():
            if keyed[i] not in recorded:
                out[i] = Target(external_id, pseudonym, "found")
        return out


def _staged(records: list[Record], identity: Identity, mapping: Mapping, options: SyncOptions,
            report: SyncReport, today: date, aliases: AliasResolver | None, digests: Digests) -> list[Staged]:
    """A batch of records as staged: validated, keyed, mapped. Another key of a child that a
    person linked (or a change of LAS mapped, or an ECK-iD found) is taken to that dossier. A
    record identical to the one its dossier was last made from is staged from the recorded row
    (a record the source gave unvalidated is then not validated either)."""
    marks, kept = digests.kept(records, identity)
    report.records_unchanged += len(kept)
    items: list[Pupil | RejectedRecord] = [
        r.build() if isinstance(r, SourceRecord) and i not in kept else cast("Pupil | RejectedRecord", r)
        for i, r in enumerate(records)]
    # a record staged from its own dossier's row is no other key's: the aliases (which change
    # every digest when they change) are looked up for the others only
    rest = [i for i in range(len(items)) if i not in kept]
    found: dict[int, Target] = {}
    if aliases is not None and rest:
        found = {rest[j]: t for j, t in aliases.resolve([items[i] for i in rest]).items()}
    batch: list[Staged] = []
    for i, item in enumerate(items):
        if i in kept:
            batch.append(kept[i])
            continue
        if isinstance(item, RejectedRecord):
            report.rejected.append(item.as_dict())
            if item.pseudonym:
                to = found.get(i)
                batch.append(Staged(pseudonym=to.pseudonym if to is not None else item.pseudonym))
            continue
        own = identity.pseudonym(item)
        to = found.get(i)
        if to is not None and to.kind == "retired":
            report.warnings.append(f"{own}: this key's records are no longer used: its dossier is kept current "
                                   "from another key of the same child (leerdossier duplicates link)")
            batch.append(Staged(pseudonym=own, via=own, via_kind="retired"))
            continue
        pseudonym = to.pseudonym if to is not None else own
        try:
            external_id = to.external_id if to is not None else identity.external_id(item)
            check_departure(item.uitstroomdatum, item.geboortedatum, item.instroomdatum, today,
                            options.max_departure_future_days, own, "uitstroomdatum")
        except RejectedRecord as rej:
            report.rejected.append(rej.as_dict())
            batch.append(Staged(pseudonym=pseudonym))
            continue
        dup_pgn, dup_nb = identity.duplicate_hashes(item)
        mapped = mapping.desired(item, external_id, pseudonym)
        batch.append(Staged(pseudonym=pseudonym, external_id=external_id, spec=mapped,
                            dup_pgn=dup_pgn, dup_nb=dup_nb, dup_eck=identity.eckid_hash(item),
                            access=identity.access_payload(item, external_id),
                            via=own if to is not None else None, via_kind=to.kind if to is not None else None,
                            digest=digests.bound(marks[i], mapped.fingerprint)))
    return batch


def _chain(first: Record | None, rest: Iterator[Record]) -> Iterator[Record]:
    if first is not None:
        yield first
        yield from rest


def _run(executor: Executor, state: StateStore, audit: AuditLog, options: SyncOptions,
         today: date, run_id: int, report: SyncReport, progress: Progress, outcome: Outcome) -> None:
    if report.school is None:
        # without the school, the snapshot cannot be compared with the last good one (an empty
        # CSV export, say): nothing is concluded from it
        raise SafetyStop("no_school", f"the snapshot names no school and holds {report.pupils_seen} pupil "
                         "records; nothing was changed. Check the export (or set the school in the LAS settings).")
    school = report.school
    twice = state.repeated_keys(run_id)
    sharing = [p for p in state.shared_dossier_keys(run_id) if p not in twice]
    repeated = frozenset(twice) | frozenset(sharing)
    for pseudonym in twice:
        report.rejected.append({"record": pseudonym, "field": "@key",
                                "reason": "the same pupil occurs more than once in the export; left unchanged"})
    for pseudonym in sharing:
        report.rejected.append({"record": pseudonym, "field": "dossier key",
                                "reason": "another pupil in the export has the same BSN, onderwijsnummer or ECK-iD "
                                          "(the [identity] key); both left unchanged until the LAS is corrected"})
    if options.accept_snapshot:
        if not options.dry_run:
            audit.record(options.actor, "snapshot.accepted", None,
                         {"school": school, "pupils_seen": report.pupils_seen,
                          "last_good": state.last_good_snapshot(school)})
    else:
        check_snapshot(SnapshotCheck(report.pupils_seen, state.last_good_snapshot(school),
                                     options.min_snapshot_ratio))

    last_good = state.last_good_snapshot(school)
    departing = state.new_departures(run_id)
    limit = options.max_new_departures
    if limit is None:
        limit = max(25, (last_good or report.pupils_seen) // 10)
    if departing > limit:
        if not options.accept_departures:
            raise SafetyStop("mass_departure", f"{departing} pupils gain a departure date in this snapshot; the "
                             f"limit is {limit} ([safety] max_new_departures). Nothing was changed. Check the "
                             "export; when the departures are right, rerun with --accept-departures.")
        if not options.dry_run:
            audit.record(options.actor, "departures.accepted", None, {"school": school, "departures": departing,
                                                                      "limit": limit, "run": run_id})
    ending = [] if options.dry_run else state.departure_ending(run_id)

    suspected = state.suspected_duplicates(run_id, options.max_duplicate_group)
    hold: frozenset[str] = frozenset()
    if options.hold_suspected_duplicates:
        hold = frozenset(p for s in suspected for p in s.pseudonyms())
    report.suspected_duplicates = [s.as_dict() for s in suspected]


    held: set[str] = set()
    after = 0
    while True:
        page = state.changes(run_id, after, PAGE)
        if not page:
            break
        after = page[-1].id
        page = [c for c in page if c.spec.pseudonym not in repeated]
        specs = [c.spec for c in page]
        recorded = {c.spec.external_id: c.recorded for c in page if c.recorded is not None}
        hashes = {c.spec.external_id: (c.dup_pgn, c.dup_nb) for c in page}
        ops = plan(specs, recorded, hold)
        planned = {op.external_id for op in ops}
        held.update(s.pseudonym for s in specs if s.external_id not in planned and s.pseudonym in hold)
        if options.list_operations:
            report.operations.extend(_describe(op) for op in ops)
        report.retag.extend(op.external_id for op in ops
                            if op.kind == "update_dossier" and "departure" in op.changed)
        if options.dry_run:
            outcome.created += sum(op.kind == "create_dossier" for op in ops)
            outcome.updated += sum(op.kind == "update_dossier" for op in ops)
        else:
            outcome.add(executor.run(run_id, [(op, *hashes[op.external_id]) for op in ops]))
        progress("write", outcome.created + outcome.updated)
        if executor.halted():
            break  # what is not journalled yet is planned again from the next snapshot

    if not options.dry_run:
        changed_access = state.apply_access(run_id, skip=repeated)
        report.access_changed = len(changed_access)
        report.reaccess.extend(external_id for external_id, _ in changed_access)
        by_person = state.recorded_guardians([external_id for external_id, _ in changed_access])
        report.guardian_disagreements = [{"record": pseudonym, **d} for external_id, pseudonym in changed_access
                                         for d in acl.disagreements(by_person.get(external_id, []))]
        if state.has_identities():
            with state.transaction() as conn:
                for own, dossier, _ in state.keep_aliases(conn, run_id, options.actor):
                    report.linked.append({"record": own, "dossier": dossier, "basis": "ECK-iD"})
                    audit.append(conn, options.actor, "identity.alias_found", dossier,
                                 {"alias": own, "basis": "ECK-iD", "run": run_id})
    held.update(report.held)  # records an ECK-iD could not decide on (held while staging)
    report.held = sorted(held)
    having = {r.pseudonym for r in state.find_pupil(sorted({p for s in suspected if not s.members
                                                           for p in (s.a, s.b)}))}
    for s, found in zip(report.suspected_duplicates, suspected, strict=True):
        s["held"] = any(p in held for p in found.pseudonyms())
        if not found.members:
            s["dossier"] = found.a if found.a in having else found.b if found.b in having else None
    report.dossiers_created = outcome.created
    report.dossiers_updated = outcome.updated
    report.dms_writes = outcome.dms_writes
    report.resumed = outcome.resumed
    report.failed = outcome.failed
    report.deferred = outcome.deferred
    vanished, _returned = state.refresh_seen(run_id, school, today, write=not options.dry_run)
    for external_id, pseudonym, since in vanished:
        if state.facts_for(external_id, None).departure is None:
            report.vanished.append({"record": pseudonym, "since": since.isoformat(),
                                    "note": "vanished without departure date; dossier kept"})
    for external_id, las_before in ending:
        # in the snapshot without a departure date while a clock ran (from the LAS's departure
        # or one recorded by a person): a re-enrolment, whatever else changed, and the clock
        # stops, also should the LAS later give back a departure from before it (keeping longer
        # is the safe side)
        if state.facts_for(external_id, las_before).clock_start is not None:
            with state.transaction() as conn:
                state.record_fact(conn, external_id, "reenrolled", today, options.actor,
                                  "in the LAS snapshot without a departure date after a recorded departure")
                audit.append(conn, options.actor, "fact.reenrolled", _pseudonym(state, external_id),
                             {"on": today.isoformat(), "by_sync": True})
            report.retag.append(external_id)
    if not options.dry_run:
        audit.record(options.actor, "sync.finished", None, {
            "run": run_id, "school": school, "pupils_seen": report.pupils_seen,
            "created": report.dossiers_created, "updated": report.dossiers_updated,
            "rejected": len(report.rejected), "vanished": len(report.vanished),
            "suspected_duplicates": len(report.suspected_duplicates), "failed": len(report.failed),
            "access_facts_changed": report.access_changed,
        })


def _describe(op: Operation) -> dict[str, Any]:
    return {"operation": op.kind, "record": op.pseudonym, "changed": list(op.changed)}


def _pseudonym(state: StateStore, external_id: str) -> str | None:
    rows = state.dossier_rows([external_id])
    return rows[0].pseudonym if rows else None
