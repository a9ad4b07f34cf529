"""Append-only, hash-chained audit log.

Each entry holds who/what/when/why and an HMAC over the previous entry's hash and its own
content, keyed with a key derived from the per-install secret: an entry cannot be edited,
removed, reordered or forged without breaking the chain, and the chain cannot be recomputed
without the secret. The head (last sequence number and hash) is kept in the same transaction
with a MAC of its own, so it cannot be rewound to an earlier entry without the key.

The head is also anchored outside the log's tables: a head file beside the state (mode 0600)
is rewritten after every transaction that appends, and every destruction list, approval and
certificate records the head at its moment. ``verify`` checks the chain against every anchor it
is given and against the destruction lists and items in the state, so that cutting the log
short (or emptying it) before the last anchor is reported. What it cannot detect: someone who
holds the install key and can write every anchor (the head file, the lists and approvals in the
state, the certificate files) can rewrite the whole log consistently.

Entries name pupils by pseudonymous key only and never hold document content or names.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from connector.model import canonical_json
from connector.state import Connection, StateStore, after_commit, now

GENESIS = "0" * 64


@dataclass(frozen=True)
class Anchor:
    """A record, kept outside the log's tables, of the log's head at some moment."""

    source: str
    seq: int
    hash: str


def write_private(path: Path, data: bytes) -> None:
    """Write a file atomically, readable by its owner only (0600; its folder 0700 when made)."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    tmp = path.parent / f".{path.name}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)


@dataclass(frozen=True)
class VerifyResult:
    ok: bool
    entries: int
    problems: list[str]

    def as_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "entries": self.entries, "problems": self.problems}


class AuditLog:
    def __init__(self, state: StateStore, key: bytes, head_file: Path | None = None) -> None:
        """``head_file``: where the head is anchored outside the database (beside the state)."""
        self.state = state
        self._key = key
        self.head_file = head_file

    def head_mac(self, seq: int, digest: str) -> str:
        return hmac.new(self._key, canonical_json(["head", seq, digest]).encode(), hashlib.sha256).hexdigest()

    def head(self, conn: Connection) -> tuple[int, str]:
        """The log's head (last sequence number and hash) as this transaction sees it."""
        row = self.state.audit_head_row(conn)
        return (row[0], row[1]) if row else (0, GENESIS)

    def _anchor_file(self, seq: int, digest: str) -> None:
        if self.head_file is None:
            return
        body = {"seq": seq, "hash": digest, "mac": self.head_mac(seq, digest), "at": now()}
        write_private(self.head_file, (json.dumps(body, sort_keys=True) + "\n").encode())

    def file_anchor(self) -> tuple[Anchor | None, list[str]]:
        """The head file's anchor, or the problem with it."""
        if self.head_file is None or not self.head_file.exists():
            return None, []
        try:
            data = json.loads(self.head_file.read_text(encoding="utf-8"))
            seq, digest, mac = int(data["seq"]), str(data["hash"]), str(data["mac"])
        except (ValueError, KeyError, TypeError, OSError):
            return None, [f"the head file {self.head_file.name} is unreadable"]
        if not hmac.compare_digest(mac, self.head_mac(seq, digest)):
            return None, [f"the head file {self.head_file.name} does not carry a valid MAC (forged)"]
        return Anchor(f"head file {self.head_file.name}", seq, digest), []

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
        head = self.state.audit_head_row(conn)
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
        self.state.audit_write(conn, rows, seq, prev, self.head_mac(seq, prev), head is not None)
        last_seq, last = int(seq), prev
        after_commit(conn, "audit.head", lambda: self._anchor_file(last_seq, last))
        return int(seq)

    def record(self, actor: str, action: str, subject: str | None, details: dict[str, Any]) -> int:
        """Add one entry in its own transaction."""
        with self.state.transaction() as conn:
            return self.append(conn, actor, action, subject, details)

    def entries(self, limit: int | None = None, subject: str | None = None,
                actions: tuple[str, ...] | None = None, **filters: Any) -> list[dict[str, Any]]:
        """The last ``limit`` entries (None: all), oldest first: of one ``subject`` (a
        pseudonym), of these ``actions``, and by the state's other filters (``actor``,
        ``action_prefix``, ``since``, ``until``)."""
        return self.state.audit_entries(limit, subject, actions, **filters)

    def verify(self, anchors: list[Anchor] | None = None) -> VerifyResult:
        """Check the chain, its keyed head, the head file, the anchors given (certificate and
        list files) and those in the state (lists, approvals, certificates), and that every
        destruction list and every destroyed or purged item has its entry."""
        problems: list[str] = []
        found, file_problems = self.file_anchor()
        problems += file_problems
        given = [*(anchors or []), *self.state_anchors(), *([found] if found else [])]
        by_seq: dict[int, list[Anchor]] = {}
        for a in given:
            by_seq.setdefault(a.seq, []).append(a)
        prev = GENESIS
        expected_seq = 1
        count = 0
        with self.state.audit_scan() as (head, scanned):
            for r in scanned:
                count += 1
                if r.seq != expected_seq:
                    problems.append(f"entry {r.seq}: expected sequence {expected_seq} (entries removed or reordered)")
                if r.prev != prev:
                    problems.append(f"entry {r.seq}: does not follow the entry before it")
                mac = self._mac(r.prev, r.seq, r.at, r.actor, r.action, r.subject, r.details)
                if not hmac.compare_digest(mac, r.hash):
                    problems.append(f"entry {r.seq}: content does not match its hash (edited)")
                for a in by_seq.pop(r.seq, []):
                    if a.hash != r.hash:
                        problems.append(f"entry {r.seq}: differs from what {a.source} recorded (the log was "
                                        "rewritten before that anchor)")
                prev = r.hash
                expected_seq = r.seq + 1
        last = expected_seq - 1
        if head is None and count:
            problems.append("the log's head record is missing")
        elif head is not None:
            if head[0] != last or head[1] != prev:
                problems.append(f"the log ends at entry {last} but its head says {head[0]} "
                                "(entries removed from the end)")
            if head[2] is not None and not hmac.compare_digest(head[2], self.head_mac(head[0], head[1])):
                problems.append("the log's head does not carry a valid MAC (rewound or forged)")
        for seq in sorted(by_seq):
            if seq > last:
                for a in by_seq[seq]:
                    problems.append(f"{a.source} records entry {seq}, but the log ends at entry {last} "
                                    "(entries removed from the end)")
            else:
                for a in by_seq[seq]:
                    problems.append(f"{a.source} records entry {seq}, which the log does not have")
        problems += self._destruction_entries()
        return VerifyResult(ok=not problems, entries=count, problems=problems[:50])

    def state_anchors(self) -> list[Anchor]:
        """The heads recorded by destruction lists, approvals and certificates in the state."""
        out: list[Anchor] = []
        lists, approvals = self.state.destruction_anchors()
        for r in lists:
            if r.anchor_seq is not None:
                out.append(Anchor(f"destruction list {r.id}", r.anchor_seq, r.anchor_hash))
            if r.certified_seq is not None:
                out.append(Anchor(f"the certificate of list {r.id}", r.certified_seq, r.certified_hash))
        for a in approvals:
            if a.anchor_seq is not None:
                out.append(Anchor(f"the approval of list {a.list_id} by {a.approver}", a.anchor_seq, a.anchor_hash))
        return out

    def _destruction_entries(self) -> list[str]:
        """Every destruction list has its 'created' entry; every destroyed item exactly one
        'destroyed' entry, every purged item one 'purged' entry."""
        created: Counter[int] = Counter()
        destroyed: Counter[int] = Counter()
        purged: Counter[int] = Counter()
        entries, lists, items = self.state.destruction_trail()
        for action, details in entries:
            d = json.loads(details)
            if action == "destruction.list.created":
                created[int(d["list"])] += 1
            elif d.get("destruction_item") is not None:
                (destroyed if action == "document.destroyed" else purged)[int(d["destruction_item"])] += 1
        problems = [f"destruction list {i} has no 'created' entry in the log (entries removed)"
                    for i in lists if not created[i]]
        for item_id, status, purged_at in items:
            if status == "destroyed" and destroyed[item_id] != 1:
                problems.append(f"destruction item {item_id} was destroyed but has {destroyed[item_id]} "
                                "'destroyed' entries in the log (expected exactly 1)")
            if purged_at is not None and purged[item_id] != 1:
                problems.append(f"destruction item {item_id} was purged but has {purged[item_id]} "
                                "'purged' entries in the log (expected exactly 1)")
        return problems


def nen7513(entry: dict[str, Any]) -> dict[str, Any]:
    """One entry in the fields NEN 7513 asks of a log of access to a record: event, time,
    subject (the pupil, pseudonymous), user, the user acted for, and why."""
    details = dict(entry["details"])
    return {
        "event": entry["action"], "time": entry["at"], "subject": entry["subject"], "user": entry["actor"],
        "acting_for": details.pop("on_behalf", None) or details.get("requester"),
        "reason": details.pop("reason", None), "details": details, "seq": entry["seq"],
    }
