"""Destruction and transfer lists: their items, the signed approvals, the anchors of the audit
log's head, and what the gate reads of an item before each removal."""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy import and_, case, func, insert, select, update
from sqlalchemy.engine import Connection

from connector.errors import NotFound
from connector.state.db import Database, move, now
from connector.state.schema import (
    OPEN_ITEM,
    destruction_approvals,
    destruction_items,
    destruction_lists,
    documents,
    dossiers,
)

_COUNTS = (func.count().label("n"),
           func.sum(case((destruction_items.c.decision == "approved", 1), else_=0)).label("approved"),
           func.sum(case((destruction_items.c.status == "destroyed", 1), else_=0)).label("done"))
"""A list's items counted: all, approved, removed (per list or per category)."""


class DestructionStore(Database):
    def new_list(self, created_by: str, as_of: date, kind: str, receiving: str | None, required: int) -> int:
        """A list in status ``building`` (its items follow; ``close_list`` gives its status)."""
        with self.transaction() as conn:
            return int(conn.execute(insert(destruction_lists).values(
                created=now(), created_by=created_by, as_of=as_of, status="building", digest="", kind=kind,
                receiving=receiving, required_approvals=required,
            )).inserted_primary_key[0])  # type: ignore[index]

    def add_list_items(self, items: list[dict[str, Any]]) -> None:
        """Items of a list being built (each names its ``list_id``), in their own transaction."""
        with self.transaction() as conn:
            conn.execute(insert(destruction_items), items)

    @staticmethod
    def close_list(conn: Connection, list_id: int, status: str, digest: str, anchor_seq: int,
                   anchor_hash: str) -> None:
        """Move a list to its next status with its digest and the audit head it is anchored to."""
        move(conn, destruction_lists, "list", status, destruction_lists.c.id == list_id, expect=1, digest=digest,
             anchor_seq=anchor_seq, anchor_hash=anchor_hash)

    def list_and_items(self, list_id: int) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        """A list's head and its items in order; ``NotFound`` when there is no such list."""
        with self.engine.connect() as conn:
            head = conn.execute(select(destruction_lists).where(destruction_lists.c.id == list_id)).first()
            if head is None:
                raise NotFound(f"no destruction list {list_id}")
            rows = conn.execute(select(destruction_items).where(destruction_items.c.list_id == list_id)
                                .order_by(destruction_items.c.id)).all()
        return dict(head._mapping), [dict(r._mapping) for r in rows]

    def list_head(self, list_id: int) -> dict[str, Any]:
        """A list's head alone; ``NotFound`` when there is no such list."""
        with self.engine.connect() as conn:
            head = conn.execute(select(destruction_lists).where(destruction_lists.c.id == list_id)).first()
        if head is None:
            raise NotFound(f"no destruction list {list_id}")
        return dict(head._mapping)

    def list_page(self, list_id: int, category: str | None, page: int, size: int) -> dict[str, Any]:
        """Page ``page`` (from 1; one past the last shows the last) of a list's items in order, of
        one category or all, with the list's counts per category, of items approved and of items
        removed: what a page shows, without reading every item of a long list."""
        head = self.list_head(list_id)
        with self.engine.connect() as conn:
            per = conn.execute(select(destruction_items.c.category, *_COUNTS)
                               .where(destruction_items.c.list_id == list_id)
                               .group_by(destruction_items.c.category)).mappings().all()
            categories = {str(r["category"]): int(r["n"]) for r in per}
            shown = categories.get(category, 0) if category else sum(categories.values())
            pages = max(1, -(-shown // size))
            page = min(max(1, page), pages)
            where = [destruction_items.c.list_id == list_id]
            if category:
                where.append(destruction_items.c.category == category)
            rows = conn.execute(select(destruction_items).where(*where).order_by(destruction_items.c.id)
                                .offset((page - 1) * size).limit(size)).mappings().all()
        return {"head": head, "items": [dict(r) for r in rows], "categories": categories, "shown": shown,
                "page": page, "pages": pages, "approved": sum(int(r["approved"] or 0) for r in per),
                "done": sum(int(r["done"] or 0) for r in per)}

    def all_lists(self, limit: int = 200) -> list[dict[str, Any]]:
        """The latest lists (newest first) with their item counts: items, approved, done."""
        counts = select(destruction_items.c.list_id, *_COUNTS).group_by(destruction_items.c.list_id).subquery()
        stmt = (select(destruction_lists, counts.c.n, counts.c.approved, counts.c.done)
                .join(counts, counts.c.list_id == destruction_lists.c.id, isouter=True)
                .order_by(destruction_lists.c.id.desc()).limit(limit))
        with self.engine.connect() as conn:
            return [{k: v for k, v in r.items() if k != "n"}
                    | {"items": int(r["n"] or 0), "approved": int(r["approved"] or 0),
                       "done": int(r["done"] or 0)}
                    for r in conn.execute(stmt).mappings()]

    def list_approvals(self, list_id: int) -> list[dict[str, Any]]:
        """The approvals of a list, in the order they were given."""
        with self.engine.connect() as conn:
            return [dict(r) for r in conn.execute(
                select(destruction_approvals).where(destruction_approvals.c.list_id == list_id)
                .order_by(destruction_approvals.c.id)).mappings().all()]

    @staticmethod
    def add_approval(conn: Connection, list_id: int, approver: str, role: str | None, at: str, digest: str,
                     rejected: str, signature: str, anchor_seq: int, anchor_hash: str) -> None:
        """Record one approval (signed, bound to the list's digest and an audit head), inside the caller's
        transaction."""
        conn.execute(insert(destruction_approvals).values(
            list_id=list_id, approver=approver, role=role, at=at, digest=digest, rejected=rejected,
            signature=signature, anchor_seq=anchor_seq, anchor_hash=anchor_hash))

    @staticmethod
    def decide_item(conn: Connection, item_id: int, decision: str, reason: str | None) -> None:
        """Record an approver's decision on one item (approved or rejected, with the reason)."""
        conn.execute(update(destruction_items).where(destruction_items.c.id == item_id)
                     .values(decision=decision, reason=reason))

    @staticmethod
    def list_executed(conn: Connection, list_id: int) -> None:
        """Every approved item is removed or skipped: an approved list is executed now (one
        cancelled while it ran stays cancelled)."""
        move(conn, destruction_lists, "list", "executed", destruction_lists.c.id == list_id, executed_at=now())

    @staticmethod
    def update_list(conn: Connection, list_id: int, **values: Any) -> None:
        """Change a list; a new ``status`` only by a move its status machine allows."""
        status = values.pop("status", None)
        if status is not None:
            move(conn, destruction_lists, "list", status, destruction_lists.c.id == list_id, expect=1, **values)
        elif values:
            conn.execute(update(destruction_lists).where(destruction_lists.c.id == list_id).values(**values))

    def list_items_done(self, list_id: int) -> set[int]:
        """The items of a list that are destroyed or skipped already."""
        with self.engine.connect() as conn:
            return set(conn.execute(select(destruction_items.c.id).where(
                destruction_items.c.list_id == list_id,
                destruction_items.c.status.in_(("destroyed", "skipped")))).scalars())

    @staticmethod
    def approved_items_open(conn: Connection, list_id: int) -> int:
        """How many approved items of a list are still to be removed."""
        return int(conn.execute(select(func.count()).select_from(destruction_items).where(and_(
            destruction_items.c.list_id == list_id, destruction_items.c.decision == "approved",
            destruction_items.c.status.in_(OPEN_ITEM)))).scalar() or 0)

    def gate_row(self, item_id: int) -> dict[str, Any] | None:
        """An item with what the gate compares it with now: its list's kind and status, its
        document's status, class and part, and its dossier's departure in the LAS."""
        with self.engine.connect() as conn:
            row = conn.execute(
                select(destruction_items, destruction_lists.c.kind.label("list_kind"),
                       destruction_lists.c.status.label("list_status"),
                       documents.c.status.label("doc_status"), documents.c.doc_class.label("doc_class_now"),
                       documents.c.part.label("part_now"), dossiers.c.departure.label("las_departure"))
                .join(destruction_lists, destruction_lists.c.id == destruction_items.c.list_id)
                .join(documents, documents.c.id == destruction_items.c.doc_id)
                .join(dossiers, dossiers.c.external_id == destruction_items.c.external_id)
                .where(destruction_items.c.id == item_id)).mappings().first()
        return dict(row) if row is not None else None

    def trashed_items(self) -> list[dict[str, Any]]:
        """Items destroyed into the DMS's trash and not purged yet, oldest first."""
        with self.engine.connect() as conn:
            return [dict(r) for r in conn.execute(
                select(destruction_items).join(documents, documents.c.id == destruction_items.c.doc_id)
                .where(destruction_items.c.status == "destroyed", destruction_items.c.purged_at.is_(None),
                       documents.c.status == "trashed")
                .order_by(destruction_items.c.id)).mappings().all()]

    def dossier_departure(self, external_id: str) -> date | None:
        """The departure the LAS gave, as recorded."""
        with self.engine.connect() as conn:
            value: date | None = conn.execute(select(dossiers.c.departure)
                                              .where(dossiers.c.external_id == external_id)).scalar()
        return value

    def present_documents_by_id(self, doc_ids: list[str]) -> list[Any]:
        """Recorded documents still present, with their dossier's pseudonym and school."""
        with self.engine.connect() as conn:
            return list(conn.execute(
                select(documents.c.id, documents.c.external_id, documents.c.dossier_id, documents.c.part,
                       documents.c.doc_class, dossiers.c.pseudonym, dossiers.c.school)
                .join(dossiers, dossiers.c.external_id == documents.c.external_id)
                .where(documents.c.id.in_(doc_ids), documents.c.status == "present")).all())
