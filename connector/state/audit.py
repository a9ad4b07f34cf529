"""The audit log's rows and its head, as ``connector.audit`` chains and checks them."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, timedelta
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.engine import Connection, Row

from connector.state.db import Database, insert_many
from connector.state.schema import audit_head, audit_log, destruction_approvals, destruction_items, destruction_lists


class AuditStore(Database):
    @staticmethod
    def audit_head_row(conn: Connection) -> tuple[int, str, str | None] | None:
        """The head (last sequence, its hash, the head's MAC) as this transaction sees it."""
        row = conn.execute(select(audit_head.c.seq, audit_head.c.hash, audit_head.c.mac)
                           .where(audit_head.c.id == 1)).first()
        return (int(row[0]), str(row[1]), row[2]) if row else None

    @staticmethod
    def audit_write(conn: Connection, rows: list[dict[str, Any]], seq: int, digest: str, mac: str,
                    had_head: bool) -> None:
        """Append chained entries and move the head to the last of them, in the caller's transaction."""
        insert_many(conn, audit_log, rows)
        if had_head:
            conn.execute(update(audit_head).where(audit_head.c.id == 1).values(seq=seq, hash=digest, mac=mac))
        else:
            conn.execute(insert(audit_head).values(id=1, seq=seq, hash=digest, mac=mac))

    def audit_entries(self, limit: int | None = None, subject: str | None = None,
                      actions: tuple[str, ...] | None = None, actor: str | None = None,
                      action_prefix: str | None = None, since: date | None = None,
                      until: date | None = None) -> list[dict[str, Any]]:
        """The last LIMIT entries (of SUBJECT; of these ACTIONS; by ACTOR; whose action starts
        with ACTION_PREFIX; from SINCE to UNTIL, both days included), oldest first, their
        details decoded. Every filter is part of the query."""
        with self.engine.connect() as conn:
            stmt = select(audit_log).order_by(audit_log.c.seq.desc())
            if subject is not None:
                stmt = stmt.where(audit_log.c.subject == subject)
            if actions is not None:
                stmt = stmt.where(audit_log.c.action.in_(actions))
            if actor is not None:
                stmt = stmt.where(audit_log.c.actor == actor)
            if action_prefix:
                stmt = stmt.where(audit_log.c.action.startswith(action_prefix, autoescape=True))
            if since is not None:
                stmt = stmt.where(audit_log.c.at >= since.isoformat())
            if until is not None:
                stmt = stmt.where(audit_log.c.at < (until + timedelta(days=1)).isoformat())
            if limit:
                stmt = stmt.limit(limit)
            rows = conn.execute(stmt).mappings().all()
        return [dict(r) | {"details": json.loads(r["details"])} for r in reversed(rows)]

    @contextmanager
    def audit_scan(self) -> Iterator[tuple[tuple[int, str, str | None] | None, Iterator[Row[Any]]]]:
        """The head and every entry in sequence order, streamed from one read (for ``verify``)."""
        with self.engine.connect() as conn:
            yield self.audit_head_row(conn), iter(conn.execute(select(audit_log).order_by(audit_log.c.seq)))

    def destruction_anchors(self) -> tuple[list[Any], list[Any]]:
        """The audit heads lists and approvals recorded: (list rows, approval rows)."""
        with self.engine.connect() as conn:
            lists = list(conn.execute(select(destruction_lists.c.id, destruction_lists.c.anchor_seq,
                                             destruction_lists.c.anchor_hash, destruction_lists.c.certified_seq,
                                             destruction_lists.c.certified_hash)))
            approvals = list(conn.execute(select(destruction_approvals.c.list_id, destruction_approvals.c.approver,
                                                 destruction_approvals.c.anchor_seq,
                                                 destruction_approvals.c.anchor_hash)))
        return lists, approvals

    def destruction_trail(self) -> tuple[list[tuple[str, str]], list[int], list[Any]]:
        """What the destruction checks of ``verify`` compare: the log's destruction entries
        (action, details), the lists past building, and every item's id, status and purge."""
        with self.engine.connect() as conn:
            entries = [(str(a), str(d)) for a, d in conn.execute(
                select(audit_log.c.action, audit_log.c.details).where(audit_log.c.action.in_(
                    ("destruction.list.created", "document.destroyed", "document.purged"))))]
            lists = [int(i) for i in conn.execute(select(destruction_lists.c.id).where(
                destruction_lists.c.status != "building")).scalars()]
            items = list(conn.execute(select(destruction_items.c.id, destruction_items.c.status,
                                             destruction_items.c.purged_at)).all())
        return entries, lists, items
