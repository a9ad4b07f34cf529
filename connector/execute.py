"""Runs operations through a DocumentStore, journalled, retried and audited.

For every operation: the journal row is committed (``new``), marked ``sent`` and committed,
the DMS is called, and then, in one transaction, the row is marked ``done``, the dossier's
recorded state is updated and the audit entry is appended. Creates, updates and tags run one
after the other do this for a group of ``GROUP`` at a time (two transactions per group, not two
per operation); destroys, and DMS calls run concurrently, one by one. A process killed
anywhere in between leaves rows that the next run finishes; creates always look the dossier
up by its external id first, so a repeated create never makes a second dossier.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from connector.audit import AuditLog
from connector.errors import PermanentError, StoreError, TransientError
from connector.model import DOSSIER_KINDS, GUARDED_KINDS, DossierRef, Operation
from connector.ports import DocumentStore
from connector.retrying import retrying
from connector.state import JournalRow, StateStore

log = logging.getLogger("leerdossier.execute")


@dataclass
class RetryPolicy:
    attempts: int = 5
    initial: float = 0.5
    maximum: float = 30.0


@dataclass
class Outcome:
    created: int = 0
    updated: int = 0
    tagged: int = 0
    destroyed: int = 0
    purged: int = 0
    skipped: list[dict[str, str]] = field(default_factory=list)
    dms_writes: int = 0
    resumed: int = 0
    failed: list[dict[str, str]] = field(default_factory=list)
    deferred: int = 0
    """Operations journalled but not sent: the run halted (circuit breaker, stop requested);
    the next run finishes them from the journal."""

    def add(self, other: Outcome) -> None:
        self.created += other.created
        self.updated += other.updated
        self.tagged += other.tagged
        self.destroyed += other.destroyed
        self.purged += other.purged
        self.skipped.extend(other.skipped)
        self.dms_writes += other.dms_writes
        self.resumed += other.resumed
        self.failed.extend(other.failed)
        self.deferred += other.deferred


Guard = Callable[[Operation], str | None]
"""Checked right before a destroy is sent (also when resumed): a reason to skip it, or None."""

GROUP = 200
GROUP_SECONDS = 2.0
"""Creates, updates and tags are recorded per transaction up to ``GROUP`` at a time, or what
``GROUP_SECONDS`` of DMS calls did (``Executor._apply_grouped``). Fewer commits leave the shared
PostgreSQL of a fleet more room (``bench/scale_bench.py``); a killed run leaves at most that
many ``sent`` rows for the next to finish."""

_ACTIONS = {"create_dossier": "dossier.created", "update_dossier": "dossier.updated",
            "tag_document": "document.tagged", "destroy_document": "document.destroyed",
            "purge_document": "document.purged"}


class Executor:
    """Applies journalled operations to the DMS.

    A circuit breaker stops hammering a DMS that keeps failing: after ``breaker`` operations in
    a row failed on transient errors (retries exhausted), no more are sent in this run; they
    stay in the journal for the next. ``should_stop`` (a signal asked the service to stop) halts
    the same way between operations.
    """

    def __init__(self, store: DocumentStore, state: StateStore, audit: AuditLog, actor: str,
                 retry: RetryPolicy | None = None, guard: Guard | None = None, concurrency: int = 1,
                 breaker: int | None = None, should_stop: Callable[[], bool] | None = None,
                 stamp: dict[str, str] | None = None, today: date | None = None) -> None:
        """``stamp``: what every audit entry of a removal carries besides (a simulated clock);
        ``today``: the day of the removals by their clock (the trash's grace starts then)."""
        self.store = store
        self.stamp = stamp or {}
        self.today = today
        self.breaker = breaker
        self.should_stop = should_stop
        self.halted_by: str | None = None
        self._failures_in_a_row = 0
        self.state = state
        self.audit = audit
        self.actor = actor
        self.retry = retry or RetryPolicy()
        self.guard = guard
        self.concurrency = max(1, concurrency)
        # DMS calls run concurrently; every state write (journal, recorded state, the audit
        # chain) and the outcome are serialised under this lock
        self._lock = threading.Lock()

    def run(self, run_id: int, ops: list[tuple[Operation, str | None, str | None]]) -> Outcome:
        """Journal a batch of operations, then apply them one by one."""
        if not ops:
            return Outcome()
        with self.state.transaction() as conn:
            ids = self.state.journal_add(conn, run_id, ops)
        outcome = Outcome()
        work = list(zip(ids, ops, strict=True))
        if self.concurrency == 1 and not any(op.kind in GUARDED_KINDS for op, _, _ in ops):
            self._apply_grouped([(op_id, op, dup_pgn, dup_nb, None) for op_id, (op, dup_pgn, dup_nb) in work],
                                outcome)
            return outcome
        if self.concurrency == 1 or len(work) == 1:
            for op_id, (op, dup_pgn, dup_nb) in work:
                self._apply(op_id, op, dup_pgn, dup_nb, outcome)
            return outcome
        with ThreadPoolExecutor(max_workers=self.concurrency, thread_name_prefix="dms") as pool:
            futures = [pool.submit(self._apply, op_id, op, dup_pgn, dup_nb, outcome)
                       for op_id, (op, dup_pgn, dup_nb) in work]
            for future in futures:
                future.result()  # re-raise anything unexpected (a crash stays a crash)
        return outcome

    def resume(self, kinds: tuple[str, ...]) -> Outcome:
        """Finish the journal rows of these kinds that an earlier run left unfinished.
        Destroys and purges are resumed only by an executor with a guard (the destruction gate)."""
        guarded = set(kinds) & set(GUARDED_KINDS)
        if guarded and self.guard is None:
            raise ValueError("destroy and purge operations are resumed only with a guard")
        outcome = Outcome()
        rows = self.state.pending(kinds)
        for row in rows:
            log.debug("resuming journal row",
                      extra={"op": row.id, "status": row.status, "record": row.operation.pseudonym})
        outcome.resumed += len(rows)
        if not guarded:
            self._apply_grouped([(r.id, r.operation, r.dup_pgn, r.dup_nb, r) for r in rows], outcome)
            return outcome
        for row in rows:
            self._apply(row.id, row.operation, row.dup_pgn, row.dup_nb, outcome, resumed=row)
        return outcome

    def halted(self) -> bool:
        if self.halted_by is None and self.should_stop is not None and self.should_stop():
            self.halted_by = "stop_requested"
            log.warning("stop requested: the rest stays in the journal for the next run")
        return self.halted_by is not None

    def _apply_grouped(self, items: list[tuple[int, Operation, str | None, str | None, JournalRow | None]],
                       outcome: Outcome) -> None:
        """Creates, updates and tags one after the other, recorded ``GROUP`` at a time: one
        transaction marks a group ``sent``, the DMS calls follow inside the store's ``group()``
        (which makes them durable together when it ends), one transaction records what they
        did (journal, recorded state, audit chain). A process killed, or a power failure, in between leaves
        ``sent`` rows, which the next run finishes as it finishes any other: creates look the
        dossier up first, updates and tags set what they set again. Destroys never come here."""
        i = 0
        while i < len(items):
            if self.halted():
                break
            group = items[i:i + GROUP]
            self.state.journal_mark_many([item[0] for item in group], "sent")
            done: list[tuple[int, Operation, str | None, str | None, JournalRow | None, DossierRef]] = []
            handled = 0
            started = time.monotonic()
            try:
                with self.store.group():  # durable when the block ends; recorded only after
                    for op_id, op, dup_pgn, dup_nb, resumed in group:
                        if self.halted() or (handled and time.monotonic() - started > GROUP_SECONDS):
                            break  # a slow DMS: record what is done now, the rest in the next group
                        handled += 1
                        try:
                            ref, writes = self._call(op)
                        except StoreError as exc:
                            self._failed(op_id, op, exc, outcome)
                            continue
                        self._failures_in_a_row = 0
                        outcome.dms_writes += writes
                        done.append((op_id, op, dup_pgn, dup_nb, resumed, ref))
            except StoreError as exc:  # the DMS could not make the group's writes durable
                log.warning("the DMS could not make a group's writes durable: its operations failed",
                            extra={"operations": len(done), "error": str(exc)})
                for op_id, op, *_ in done:  # each counts towards the circuit breaker
                    self._failed(op_id, op, exc, outcome, logged=True)
                done = []
            # never handed to the DMS (a halt, a slow DMS): back to new, as if not marked
            self.state.journal_done_group(self.audit, [(op_id, op, ref.id, dup_pgn, dup_nb)
                                                       for op_id, op, dup_pgn, dup_nb, _, ref in done],
                                          [self._entry(op, resumed) for _, op, _, _, resumed, _ in done],
                                          unsent=[item[0] for item in group[handled:]])
            for item in done:
                self._count(item[1], outcome)
            i += handled
        outcome.deferred += len(items) - i

    def _failed(self, op_id: int, op: Operation, exc: StoreError, outcome: Outcome, logged: bool = False) -> None:
        """``logged``: the caller logged the failure once for many operations."""
        kind = "transient (retries exhausted)" if isinstance(exc, TransientError) else "permanent"
        if not logged:
            log.warning("operation failed", extra={"op": op_id, "record": op.pseudonym, "error": str(exc)})
        self.state.journal_mark(op_id, "failed", f"{kind}: {exc}")
        outcome.failed.append({"record": op.pseudonym, "operation": op.kind, "error": f"{kind}: {exc}"})
        if isinstance(exc, TransientError):
            self._failures_in_a_row += 1
            if self.breaker and self._failures_in_a_row >= self.breaker and self.halted_by is None:
                self.halted_by = "circuit_breaker"
                log.warning("circuit breaker open: the DMS keeps failing; the rest stays in the journal",
                            extra={"failures_in_a_row": self._failures_in_a_row})

    def _entry(self, op: Operation, resumed: JournalRow | None) -> tuple[str, str, str | None, dict[str, Any]]:
        """The audit entry of a done operation: actor, action, pseudonym, details."""
        details = _details(op)
        if op.kind in GUARDED_KINDS:
            details |= self.stamp
        if resumed is not None:
            details["resumed_from_run"] = resumed.run_id
        return self.actor, _ACTIONS[op.kind], op.pseudonym, details

    @staticmethod
    def _count(op: Operation, outcome: Outcome) -> None:
        if op.kind == "create_dossier":
            outcome.created += 1
        elif op.kind == "update_dossier":
            outcome.updated += 1
        elif op.kind == "tag_document":
            outcome.tagged += 1
        elif op.kind == "destroy_document":
            outcome.destroyed += 1
        else:
            outcome.purged += 1

    def _apply(self, op_id: int, op: Operation, dup_pgn: str | None, dup_nb: str | None,
               outcome: Outcome, resumed: JournalRow | None = None) -> None:
        with self._lock:
            if self.halted():
                outcome.deferred += 1
                return
            if op.kind in GUARDED_KINDS:
                reason = self.guard(op) if self.guard else "no guard: removals run only from an approved list"
                if reason is not None:
                    self.state.skip(op_id, op, reason)
                    outcome.skipped.append({"record": op.pseudonym, "item": str(op.item_id), "reason": reason})
                    return
            self.state.journal_mark(op_id, "sent")
        try:
            ref, writes = self._call(op)
        except StoreError as exc:
            with self._lock:
                self._failed(op_id, op, exc, outcome)
            return
        with self._lock:
            self._failures_in_a_row = 0
            outcome.dms_writes += writes
            self.state.journal_done(self.audit, op_id, op, ref.id, dup_pgn, dup_nb, self._entry(op, resumed),
                                    trashed=self.store.capabilities.trash, on=self.today)
            self._count(op, outcome)

    def _call(self, op: Operation) -> tuple[DossierRef, int]:
        retry = retrying(TransientError, self.retry.attempts, self.retry.initial, self.retry.maximum)
        for attempt in retry:
            with attempt:
                return self._once(op)
        raise PermanentError("unreachable")  # pragma: no cover

    def _once(self, op: Operation) -> tuple[DossierRef, int]:
        if op.kind in ("tag_document", *GUARDED_KINDS):
            doc = op.document
            if doc is None or (op.kind == "tag_document" and op.tag is None):
                raise PermanentError(f"{op.kind}: journal row without its document")
            if op.kind == "tag_document":
                self.store.tag(doc, op.tag)  # type: ignore[arg-type]
            elif op.kind == "destroy_document":
                self.store.destroy(doc)
            else:
                self.store.purge(doc)
            return DossierRef(id=doc.dossier_id, external_id=op.external_id), 1
        spec = op.dossier_spec()
        if op.kind == "update_dossier" and op.ref_id is not None:
            ref = DossierRef(id=op.ref_id, external_id=op.external_id)
            self.store.update_dossier(ref, spec)
            return ref, 1
        found = self.store.find_dossier(op.external_id)
        if found is not None:
            self.store.update_dossier(found, spec)
            return found, 1
        return self.store.create_dossier(spec), 1


def _details(op: Operation) -> dict[str, Any]:
    """What the audit log keeps of an operation: names of fields, categories, dates; no content."""
    if op.kind in DOSSIER_KINDS:
        return {"school": op.dossier_spec().school, "changed": list(op.changed)}
    doc = op.document
    details: dict[str, Any] = {"document": doc.id if doc else None, "part": doc.part if doc else None}
    if op.tag is not None:
        details |= {"class": op.tag.doc_class, "category": op.tag.category,
                    "due": op.tag.due.isoformat() if op.tag.due else "open", "blocked": op.tag.blocked,
                    "basis": op.tag.basis, "override": op.tag.override, "unclassified": op.tag.unclassified}
    if op.item_id is not None:
        details["destruction_item"] = op.item_id
    return details
