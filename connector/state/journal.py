"""The journal of DMS operations: ``new`` -> ``sent`` -> ``done`` | ``failed`` (or
``superseded``, ``skipped``), and what a done operation records."""

from __future__ import annotations

from datetime import date
from typing import Any, Protocol

try:
    import fcntl
except ImportError:  # pragma: no cover (not on Windows)
    fcntl = None  # type: ignore[assignment]

from sqlalchemy import and_, bindparam, func, insert, or_, select, text, update
from sqlalchemy.engine import Connection
from sqlalchemy.sql.elements import ColumnElement, TextClause

from connector.errors import InvalidState
from connector.model import DOSSIER_KINDS, GUARDED_KINDS, DocumentRef, Operation, RetentionTag
from connector.state.db import Database, _rows_select, _upsert_many, move, now
from connector.state.rows import JournalRow
from connector.state.schema import (
    OPEN_SQL,
    destruction_items,
    destruction_lists,
    documents,
    dossiers,
    holds,
    journal,
    sources,
)

AuditEntry = tuple[str, str, str | None, dict[str, Any]]
"""An audit entry as the journal hands it on: actor, action, subject (a pseudonym), details."""


class AuditAppender(Protocol):
    """What a journal transition needs of the audit log (``connector.audit.AuditLog``): it
    chains entries inside the transaction that moves the journal rows, so that a row is done
    exactly when its entry is in the log."""

    def append_many(self, conn: Connection, entries: list[AuditEntry]) -> int:
        """Chain ``entries`` in order inside ``conn``'s transaction; the last sequence number."""
        ...


class JournalStore(Database):

    # -- transitions: one call each, one transaction with the audit entries -------------------
    def journal_done(self, audit: AuditAppender, op_id: int, op: Operation, ref_id: str, dup_pgn: str | None,
                     dup_nb: str | None, entry: AuditEntry, trashed: bool = False, on: date | None = None) -> None:
        """``sent`` -> ``done`` for one operation: mark the row, record what the DMS now holds
        (for a removal: the document and its list item), and chain its audit entry, in one
        transaction."""
        with self.transaction() as conn:
            self.record_done(conn, op_id, op, ref_id, dup_pgn, dup_nb, trashed=trashed, on=on)
            audit.append_many(conn, [entry])

    def journal_done_group(self, audit: AuditAppender,
                           done: list[tuple[int, Operation, str, str | None, str | None]],
                           entries: list[AuditEntry], unsent: list[int]) -> None:
        """A group of creates, updates and tags after the DMS made them durable, in one
        transaction: the rows never handed to the DMS (``unsent``) back to ``new``, the done
        ones marked with what the DMS now holds (``record_done_many``), and their audit entries
        chained in order."""
        with self.transaction() as conn:
            if unsent:
                self.journal_unmark(conn, unsent)
            self.record_done_many(conn, done)
            audit.append_many(conn, entries)

    # -- journal ----------------------------------------------------------------------------
    def journal_add(self, conn: Connection, run_id: int,
                    ops: list[tuple[Operation, str | None, str | None]]) -> list[int]:
        """Journal planned operations (status ``new``) with their duplicate keys, in one insert; their ids in
        the order given."""
        if not ops:
            return []
        stamp = now()
        # one batched INSERT ... RETURNING; the ids come back in the order of ``ops``
        result = conn.execute(insert(journal).returning(journal.c.id, sort_by_parameter_order=True), [
            {"run_id": run_id, "kind": op.kind, "external_id": op.external_id, "target": op.target,
             "pseudonym": op.pseudonym, "payload": op.model_dump_json(), "status": "new", "attempts": 0,
             "dup_pgn": dup_pgn, "dup_nb": dup_nb, "updated": stamp} for op, dup_pgn, dup_nb in ops])
        return [int(row[0]) for row in result]

    def journal_mark(self, op_id: int, status: str, error: str | None = None,
                     conn: Connection | None = None) -> None:
        """Move one journal row to ``status`` (``sent`` counts an attempt), in the caller's transaction or one
        of its own."""
        values: dict[str, Any] = {"updated": now(), "error": error}
        if status == "sent":
            values["attempts"] = journal.c.attempts + 1
        if conn is not None:
            move(conn, journal, "journal", status, journal.c.id == op_id, expect=1, **values)
        else:
            with self.transaction() as c:
                move(c, journal, "journal", status, journal.c.id == op_id, expect=1, **values)

    def journal_mark_many(self, op_ids: list[int], status: str) -> None:
        """``journal_mark`` for many rows in one transaction (no error text)."""
        values: dict[str, Any] = {"updated": now(), "error": None}
        if status == "sent":
            values["attempts"] = journal.c.attempts + 1
        with self.transaction() as conn:
            for i in range(0, len(op_ids), 900):
                page = op_ids[i:i + 900]
                move(conn, journal, "journal", status, journal.c.id.in_(page), expect=len(set(page)), **values)

    def journal_unmark(self, conn: Connection, op_ids: list[int]) -> None:
        """Rows marked ``sent`` but never handed to the DMS (the run halted first): back to
        ``new``, their attempt not counted."""
        move(conn, journal, "journal", "new", journal.c.id.in_(op_ids), journal.c.status == "sent",
             attempts=journal.c.attempts - 1, updated=now())

    def pending(self, kinds: tuple[str, ...] | None = None) -> list[JournalRow]:
        """Journal rows not yet done (``new``, ``sent``; ``failed`` ones are retried too)."""
        # the index's own predicate, as literal SQL: a planner proves that a query may use a
        # partial index only from values it can see, not from parameters
        cond: ColumnElement[bool] | TextClause = text(OPEN_SQL)
        if kinds is not None:
            cond = and_(cond, journal.c.kind.in_(kinds))
        with self.engine.connect() as conn:
            rows = conn.execute(select(journal).where(cond)
                                .order_by(journal.c.id)).all()
        return [
            JournalRow(id=r.id, run_id=r.run_id, kind=r.kind, status=r.status, attempts=r.attempts,
                       operation=Operation.model_validate_json(r.payload), dup_pgn=r.dup_pgn,
                       dup_nb=r.dup_nb)
            for r in rows
        ]

    def skip(self, op_id: int, op: Operation, reason: str) -> None:
        """A guarded operation was not sent: record why (journal row and destruction item)."""
        with self.transaction() as conn:
            # a late duplicate's row may be final already: it stays as it is, like its item below
            move(conn, journal, "journal", "skipped", journal.c.id == op_id, error=reason, updated=now())
            if op.item_id is not None and op.kind == "destroy_document":
                # an item done already stays done (a final status): a late duplicate never rewrites it
                move(conn, destruction_items, "item", "skipped", destruction_items.c.id == op.item_id,
                     detail=reason, done_at=now())
            elif op.item_id is not None:  # a purge held back: the document stays in the trash
                conn.execute(update(destruction_items).where(destruction_items.c.id == op.item_id)
                             .values(detail=f"kept in the trash: {reason}"))

    def overview(self) -> dict[str, Any]:
        """Counts an operator checks: documents by status, open destruction lists, active holds,
        and documents whose removal at the source after a transfer did not finish."""
        with self.engine.connect() as conn:
            docs: dict[str, int] = {r[0]: int(r[1]) for r in conn.execute(
                select(documents.c.status, func.count()).group_by(documents.c.status))}
            lists: dict[str, int] = {r[0]: int(r[1]) for r in conn.execute(
                select(destruction_lists.c.status, func.count()).group_by(destruction_lists.c.status))}
            active_holds = conn.execute(select(func.count()).select_from(holds)
                                        .where(holds.c.removed_at.is_(None))).scalar()
            stuck = conn.execute(select(dossiers.c.pseudonym).join(
                documents, documents.c.external_id == dossiers.c.external_id
            ).where(documents.c.status == "transferring").distinct()).scalars().all()
        return {"documents": docs, "destruction_lists": lists,
                "active_holds": int(active_holds or 0), "transfer_unfinished": sorted(stuck)}

    def journal_counts(self) -> dict[str, int]:
        """Journal rows by status."""
        with self.engine.connect() as conn:
            rows = conn.execute(select(journal.c.status, func.count()).group_by(journal.c.status)).all()
        return {r[0]: int(r[1]) for r in rows}

    def record_done(self, conn: Connection, op_id: int, op: Operation, ref_id: str,
                    dup_pgn: str | None, dup_nb: str | None, trashed: bool = False, on: date | None = None) -> None:
        """Mark a journal row done and record what the DMS now holds (inside the caller's
        transaction, together with the audit entry)."""
        if op.kind not in GUARDED_KINDS:
            self.record_done_many(conn, [(op_id, op, ref_id, dup_pgn, dup_nb)])
            return
        stamp = now()
        move(conn, journal, "journal", "done", journal.c.id == op_id, expect=1, ref_id=ref_id, error=None,
             updated=stamp)
        if op.document is None:
            return
        if op.kind == "purge_document":
            move(conn, documents, "document", "destroyed", documents.c.id == op.document.id, updated=stamp)
            if op.item_id is not None:
                conn.execute(update(destruction_items).where(destruction_items.c.id == op.item_id)
                             .values(purged_at=stamp, detail=None))
            return
        move(conn, documents, "document", "trashed" if trashed else "destroyed", documents.c.id == op.document.id,
             updated=stamp)
        if op.item_id is not None:
            move(conn, destruction_items, "item", "destroyed", destruction_items.c.id == op.item_id, done_at=stamp,
                 trashed_on=on or date.today(), detail="in the DMS trash until purged" if trashed else None)

    def record_done_many(self, conn: Connection, done: list[tuple[int, Operation, str, str | None, str | None]]
                         ) -> None:
        """Mark creates, updates and tags done (op id, operation, DMS id, duplicate keys), in
        order, and record what the DMS now holds: a few pipelined statements for the group. An
        older unfinished row for the same dossier or document, of the same family, is superseded:
        it must never be replayed over this newer state."""
        if not done:
            return
        if any(op.kind in GUARDED_KINDS for _, op, *_ in done):
            raise ValueError("destroys and purges are recorded one by one")
        stamp = now()
        marks = [{"id": op_id, "ref_id": ref_id} for op_id, _, ref_id, _, _ in done]
        if conn.dialect.name == "postgresql":  # one UPDATE ... FROM the rows, not one per row
            given = _rows_select(journal, marks).subquery()
            moved = conn.execute(update(journal).where(journal.c.id == given.c.id,
                                                       journal.c.status.in_(sources("journal", "done")))
                                 .values(status="done", ref_id=given.c.ref_id, error=None, updated=stamp)).rowcount
        else:
            sent = or_(*(journal.c.status == s for s in sources("journal", "done")))  # no IN in an executemany
            moved = conn.execute(update(journal).where(journal.c.id == bindparam("oid"), sent)
                                 .values(status="done", ref_id=bindparam("ref"), error=None, updated=stamp),
                                 [{"oid": m["id"], "ref": m["ref_id"]} for m in marks]).rowcount
        if moved not in (-1, len(marks)):  # -1: the driver does not count an executemany
            raise InvalidState(f"journal: {len(marks) - moved} operation(s) recorded done are done or closed already")
        for family in (DOSSIER_KINDS, ("tag_document",)):
            newest: dict[str, int] = {}  # target -> its newest operation done now
            for op_id, op, *_ in done:
                if op.kind in family and op_id > newest.get(op.target, 0):
                    newest[op.target] = op_id
            self._supersede(conn, family, newest, stamp)
        # the last state per dossier and per document wins, as it would one by one
        dossier_rows = {op.external_id: {"external_id": op.external_id, **self._dossier_values(op, ref_id, pgn, nb)}
                        for _, op, ref_id, pgn, nb in done if op.kind in DOSSIER_KINDS}
        _upsert_many(conn, dossiers, list(dossier_rows.values()))
        document_rows = {op.document.id: {"id": op.document.id,
                                          **self._document_values(op.external_id, op.document, op.tag)}
                         for _, op, *_ in done
                         if op.kind == "tag_document" and op.document is not None and op.tag is not None}
        _upsert_many(conn, documents, list(document_rows.values()))

    @staticmethod
    def _supersede(conn: Connection, family: tuple[str, ...], newest: dict[str, int], stamp: str) -> None:
        """Mark ``superseded`` the unfinished rows of this family older than the newest one done
        for their target. One query per few hundred targets finds them (in a sync that resumes
        nothing there are none), instead of one UPDATE per operation that looks for them."""
        targets = list(newest)
        older: list[int] = []
        for i in range(0, len(targets), 900):
            found = conn.execute(select(journal.c.id, journal.c.target).where(
                journal.c.target.in_(targets[i:i + 900]), journal.c.kind.in_(family), text(OPEN_SQL)))
            older += [row.id for row in found if row.id < newest[row.target]]
        for i in range(0, len(older), 900):
            move(conn, journal, "journal", "superseded", journal.c.id.in_(older[i:i + 900]), updated=stamp)

    @staticmethod
    def _dossier_values(op: Operation, ref_id: str, dup_pgn: str | None, dup_nb: str | None) -> dict[str, Any]:
        spec = op.dossier_spec()
        return dict(
            pseudonym=op.pseudonym, school=spec.school, ref_id=ref_id, fingerprint=spec.fingerprint,
            spec=spec.model_dump_json(), departure=spec.departure, dup_pgn=dup_pgn, dup_nb=dup_nb,
            vanished_since=None, updated=now(), source_digest=None,
        )

    @staticmethod
    def _document_values(external_id: str, doc: DocumentRef, tag: RetentionTag) -> dict[str, Any]:
        return dict(
            external_id=external_id, dossier_id=doc.dossier_id, part=doc.part, doc_class=tag.doc_class,
            category=tag.category, kind=tag.kind, due=tag.due, blocked=int(tag.blocked),
            unclassified=int(tag.unclassified), basis=tag.basis, tag=tag.model_dump_json(),
            status="present", updated=now(),
        )

    def record_document(self, conn: Connection, external_id: str, doc: DocumentRef, tag: RetentionTag) -> None:
        """Record a document and its tag as the DMS now holds them, inside the caller's transaction."""
        _upsert_many(conn, documents, [{"id": doc.id, **self._document_values(external_id, doc, tag)}])
