"""Append-only, hash-chained audit log.

Each entry holds who/what/when/why and an HMAC over the previous entry's hash and its own
content, keyed with a key derived from the per-install secret: an entry cannot be edited,
removed, reordered or forged without breaking the chain, and the chain cannot be recomputed
without the secret. The head (last sequence number and hash) is kept in the same transaction,
so removing entries from the end is detected too. Entries name pupils by pseudonymous key only
and never hold document content or names.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.engine import Connection

from connector.model import canonical_json
from connector.state import StateStore, audit_head, audit_log, insert_many, now

GENESIS = "0" * 64


@dataclass(frozen=True)
class VerifyResult:
    ok: bool
    entries: int
    problems: list[str]

    def as_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "entries": self.entries, "problems": self.problems}


class AuditLog:
    def __init__(self, state: StateStore, key: bytes) -> None:
        self.state = state
        self._key = key

    def _mac(self, prev: str, seq: int, at: str, actor: str, action: str, subject: str | None,
             details: str) -> str:
        body = canonical_json([prev, seq, at, actor, action, subject, details])
        return hmac.new(self._key, body.encode(), hashlib.sha256).hexdigest()

    def append(self, conn: Connection, actor: str, action: str, subject: str | None,
               details: dict[str, Any]) -> int:
        """Add one entry inside the caller's transaction; returns its sequence number."""
        return self.append_many(conn, [(actor, action, subject, details)])

    def append_many(self, conn: Connection, entries: list[tuple[str, str, str | None, dict[str, Any]]]) -> int:
        """Add entries (actor, action, subject, details) in order inside the caller's
        transaction, chained as one by one, written in one insert; returns the last sequence."""
        head = conn.execute(select(audit_head.c.seq, audit_head.c.hash).where(audit_head.c.id == 1)).first()
        seq, prev = (head[0], head[1]) if head else (0, GENESIS)
        if not entries:
            return int(seq)
        at = now()
        rows = []
        for actor, action, subject, details in entries:
            seq += 1
            body = canonical_json(details)
            digest = self._mac(prev, seq, at, actor, action, subject, body)
            rows.append({"seq": seq, "at": at, "actor": actor, "action": action, "subject": subject,
                         "details": body, "prev": prev, "hash": digest})
            prev = digest
        insert_many(conn, audit_log, rows)
        if head:
            conn.execute(update(audit_head).where(audit_head.c.id == 1).values(seq=seq, hash=prev))
        else:
            conn.execute(insert(audit_head).values(id=1, seq=seq, hash=prev))
        return int(seq)

    def record(self, actor: str, action: str, subject: str | None, details: dict[str, Any]) -> int:
        """Add one entry in its own transaction."""
        with self.state.transaction() as conn:
            return self.append(conn, actor, action, subject, details)

    def entries(self, limit: int | None = None, subject: str | None = None) -> list[dict[str, Any]]:
        with self.state.engine.connect() as conn:
            stmt = select(audit_log).order_by(audit_log.c.seq.desc())
            if subject is not None:
                stmt = stmt.where(audit_log.c.subject == subject)
            if limit:
                stmt = stmt.limit(limit)
            rows = conn.execute(stmt).mappings().all()
        return [dict(r) | {"details": json.loads(r["details"])} for r in reversed(rows)]

    def verify(self) -> VerifyResult:
        problems: list[str] = []
        prev = GENESIS
        expected_seq = 1
        count = 0
        with self.state.engine.connect() as conn:
            head = conn.execute(select(audit_head.c.seq, audit_head.c.hash)).first()
            for r in conn.execute(select(audit_log).order_by(audit_log.c.seq)):
                count += 1
                if r.seq != expected_seq:
                    problems.append(f"entry {r.seq}: expected sequence {expected_seq} (entries removed or reordered)")
                if r.prev != prev:
                    problems.append(f"entry {r.seq}: does not follow the entry before it")
                mac = self._mac(r.prev, r.seq, r.at, r.actor, r.action, r.subject, r.details)
                if not hmac.compare_digest(mac, r.hash):
                    problems.append(f"entry {r.seq}: content does not match its hash (edited)")
                prev = r.hash
                expected_seq = r.seq + 1
        if head is None and count:
            problems.append("the log's head record is missing")
        elif head is not None and (head[0] != expected_seq - 1 or head[1] != prev):
            problems.append(f"the log ends at entry {expected_seq - 1} but its head says {head[0]} "
                            "(entries removed from the end)")
        return VerifyResult(ok=not problems, entries=count, problems=problems[:50])


def nen7513(entry: dict[str, Any]) -> dict[str, Any]:
    """One entry in the fields NEN 7513 asks of a log of access to a record: event, time,
    subject (the pupil, pseudonymous), user, the user acted for, and why."""
    details = dict(entry["details"])
    return {
        "event": entry["action"], "time": entry["at"], "subject": entry["subject"], "user": entry["actor"],
        "acting_for": details.pop("on_behalf", None) or details.get("requester"),
        "reason": details.pop("reason", None), "details": details, "seq": entry["seq"],
    }
