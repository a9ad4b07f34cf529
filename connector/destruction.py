"""Destruction behind a list, an approval by a named person and a certificate.

    create  -> a list of what is due (maximum period passed, not blocked, not on hold), with a
               digest over its items; nothing is destroyed
    approve -> a named person approves the list (bound to its digest), rejecting items with a
               reason where needed; a list that changed after approval is refused at execution
    execute -> only approved items that are still due and not on hold *at this moment* (checked
               again right before each DMS call, also when a crashed run is resumed) are sent to
               the DMS's own delete; a per-run cap stops an oversized run before it starts
    certificate -> what the DMS confirmed destroyed, on what basis, approved by whom; failures
               and skipped items listed apart; its scope stated

Every step is audited. Nothing here decides on missing data: no departure, no due date, no
destruction.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from sqlalchemy import and_, func, insert, select, update

from connector.audit import AuditLog
from connector.errors import ConfigError, StoreError
from connector.execute import Executor, Guard, Outcome, RetryPolicy
from connector.model import DocumentRef, Operation, RetentionTag, canonical_json
from connector.ports import DocumentStore
from connector.retention import Schedule, is_due, tag, tag_cached
from connector.state import StateStore, destruction_items, destruction_lists, documents, dossiers, now

OPEN_LIST = ("draft", "approved")


_DIGEST_KEYS = ("doc_id", "external_id", "part", "doc_class", "category", "basis", "due")


class _Digest:
    """SHA-256 over the list's date and its items in document-id order, fed item by item."""

    def __init__(self, as_of: date) -> None:
        self._h = hashlib.sha256(as_of.isoformat().encode())

    def add(self, item: dict[str, Any]) -> None:
        self._h.update(b"\n" + canonical_json([str(item[k]) for k in _DIGEST_KEYS]).encode())

    def hexdigest(self) -> str:
        return self._h.hexdigest()


def _digest(as_of: date, items: list[dict[str, Any]]) -> str:
    d = _Digest(as_of)
    for item in sorted(items, key=lambda i: str(i["doc_id"])):
        d.add(item)
    return d.hexdigest()


def current_tag(state: StateStore, schedule: Schedule, external_id: str, las_departure: date | None,
                doc_class: str | None) -> RetentionTag:
    """The tag as the schedule and the facts give it now (not as last written)."""
    return tag(state.facts_for(external_id, las_departure), doc_class, schedule)


def create_list(state: StateStore, audit: AuditLog, schedule: Schedule, today: date, by: str,
                page: int = 10_000) -> tuple[int, int]:
    """Select what is due and write a draft list, a page at a time (memory flat in the list's
    size). Returns (list id, items)."""
    listed = select(destruction_items.c.doc_id).join(
        destruction_lists, destruction_lists.c.id == destruction_items.c.list_id
    ).where(destruction_lists.c.status.in_(OPEN_LIST), destruction_items.c.status.in_(("listed", "failed")),
            destruction_items.c.decision != "rejected")
    held = state.holds_map()
    digest = _Digest(today)
    categories: Counter[str] = Counter()
    count = 0
    with state.transaction() as conn:
        list_id = int(conn.execute(insert(destruction_lists).values(
            created=now(), created_by=by, as_of=today, status="building", digest="",
        )).inserted_primary_key[0])  # type: ignore[index]
    due = (documents.c.kind == "maximum", documents.c.blocked == 0, documents.c.due.is_not(None),
           documents.c.due <= today, documents.c.id.not_in(listed))
    for candidates, facts in state.present_documents(*due, page=page):
        items = []
        for c in candidates:
            fresh = tag_cached(facts[c.external_id], c.doc_class, schedule)
            parts_held = held.get(c.external_id, set())
            if not is_due(fresh, today) or None in parts_held or c.part in parts_held:
                continue  # facts changed since the tag was written, or a hold: not due now
            item = {"doc_id": c.id, "dossier_id": c.dossier_id, "external_id": c.external_id,
                    "pseudonym": c.pseudonym, "school": c.school, "part": c.part, "doc_class": c.doc_class,
                    "category": fresh.category, "basis": fresh.basis, "due": fresh.due}
            digest.add(item)
            categories[fresh.category] += 1
            items.append(dict(item, list_id=list_id))
        if items:
            with state.transaction() as conn:
                conn.execute(insert(destruction_items), items)
            count += len(items)
    with state.transaction() as conn:
        conn.execute(update(destruction_lists).where(destruction_lists.c.id == list_id)
                     .values(status="draft", digest=digest.hexdigest()))
        audit.append(conn, by, "destruction.list.created", None, {
            "list": list_id, "as_of": today.isoformat(), "items": count, "digest": digest.hexdigest(),
            "categories": dict(categories),
        })
    return list_id, count


def load_list(state: StateStore, list_id: int) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    with state.engine.connect() as conn:
        head = conn.execute(select(destruction_lists).where(destruction_lists.c.id == list_id)).first()
        if head is None:
            raise ConfigError(f"no destruction list {list_id}")
        rows = conn.execute(select(destruction_items).where(destruction_items.c.list_id == list_id)
                            .order_by(destruction_items.c.id)).all()
    return dict(head._mapping), [dict(r._mapping) for r in rows]


def approve(state: StateStore, audit: AuditLog, list_id: int, by: str, role: str | None,
            reject: dict[int, str]) -> dict[str, Any]:
    head, items = load_list(state, list_id)
    if head["status"] != "draft":
        raise ConfigError(f"list {list_id} is {head['status']}; only a draft list can be approved")
    digest = _digest(head["as_of"], items)
    if digest != head["digest"]:
        raise ConfigError(f"list {list_id} was changed after it was made; make a new list")
    unknown = set(reject) - {i["id"] for i in items}
    if unknown:
        raise ConfigError(f"list {list_id} has no item(s) {sorted(unknown)}")
    with state.transaction() as conn:
        for item in items:
            decision = "rejected" if item["id"] in reject else "approved"
            conn.execute(update(destruction_items).where(destruction_items.c.id == item["id"])
                         .values(decision=decision, reason=reject.get(item["id"])))
        conn.execute(update(destruction_lists).where(destruction_lists.c.id == list_id).values(
            status="approved", approved_by=by, approved_role=role, approved_at=now(), approved_digest=digest))
        audit.append(conn, by, "destruction.list.approved", None, {
            "list": list_id, "digest": digest, "role": role, "approved": len(items) - len(reject),
            "rejected": {str(k): v for k, v in reject.items()},
        })
    return {"list": list_id, "approved": len(items) - len(reject), "rejected": len(reject), "digest": digest}


@dataclass
class ExecuteReport:
    list_id: int
    dry_run: bool
    approved: int = 0
    destroyed: int = 0
    would_destroy: int = 0
    skipped: list[dict[str, str]] = field(default_factory=list)
    failed: list[dict[str, str]] = field(default_factory=list)
    resumed: int = 0
    dms_writes: int = 0
    stopped_by: str | None = None
    message: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def guard(state: StateStore, schedule: Schedule, today: date) -> Guard:
    """The check made right before each destroy is sent: a reason to skip it, or None."""

    def check(op: Operation) -> str | None:
        if op.item_id is None or op.document is None:
            return "not an item of an approved destruction list"
        with state.engine.connect() as conn:
            row = conn.execute(
                select(destruction_items.c.decision, destruction_lists.c.status, destruction_lists.c.digest,
                       destruction_lists.c.approved_digest, documents.c.doc_class, documents.c.status,
                       dossiers.c.departure)
                .join(destruction_lists, destruction_lists.c.id == destruction_items.c.list_id)
                .join(documents, documents.c.id == destruction_items.c.doc_id)
                .join(dossiers, dossiers.c.external_id == destruction_items.c.external_id)
                .where(destruction_items.c.id == op.item_id)
            ).first()
        if row is None:
            return "the item, its document or its dossier is no longer recorded"
        decision, list_status, digest, approved_digest, doc_class, doc_status, departure = row
        if decision != "approved" or list_status not in ("approved", "executed") or digest != approved_digest:
            return "not approved (or the list changed after approval)"
        if doc_status != "present":
            return f"document is {doc_status}"
        if state.on_hold(op.external_id, op.document.part):
            return "on hold"
        fresh = current_tag(state, schedule, op.external_id, departure, doc_class)
        if fresh.blocked:
            return "blocked category"
        if not is_due(fresh, today):
            return f"not due today (due {fresh.due.isoformat() if fresh.due else 'open'})"
        return None

    return check


def execute(store: DocumentStore, state: StateStore, audit: AuditLog, schedule: Schedule, list_id: int,
            today: date, max_per_run: int, actor: str, dry_run: bool = False,
            retry: RetryPolicy | None = None) -> ExecuteReport:
    head, items = load_list(state, list_id)
    report = ExecuteReport(list_id=list_id, dry_run=dry_run)
    if head["status"] not in ("approved", "executed"):
        raise ConfigError(f"list {list_id} is {head['status']}; it must be approved first")
    if _digest(head["as_of"], items) != head["approved_digest"]:
        raise ConfigError(f"list {list_id} changed after its approval; make and approve a new list")
    check = guard(state, schedule, today)
    executor = Executor(store, state, audit, actor, retry, guard=check)
    todo = [i for i in items if i["decision"] == "approved" and i["status"] in ("listed", "failed", "sent")]
    report.approved = sum(1 for i in items if i["decision"] == "approved")
    if len(todo) > max_per_run:
        report.stopped_by = "max_per_run"
        report.message = (f"list {list_id} would destroy {len(todo)} documents in one run; the limit is "
                          f"{max_per_run} ([destruction] max_per_run). Nothing was destroyed.")
        return report
    ops = [Operation(kind="destroy_document", external_id=i["external_id"], pseudonym=i["pseudonym"],
                     document=DocumentRef(id=i["doc_id"], dossier_id=i["dossier_id"], part=i["part"],
                                          doc_class=i["doc_class"], name=i["doc_id"]),
                     item_id=i["id"]) for i in todo]
    if dry_run:
        for op in ops:
            reason = check(op)
            if reason:
                report.skipped.append({"record": op.pseudonym, "item": str(op.item_id), "reason": reason})
            else:
                report.would_destroy += 1
        return report
    run_id = state.begin_run("destruction")
    outcome = Outcome()
    outcome.add(executor.resume(("destroy_document",)))
    with state.engine.connect() as conn:
        # items the resume just finished are no longer to do
        done = set(conn.execute(select(destruction_items.c.id).where(
            destruction_items.c.list_id == list_id,
            destruction_items.c.status.in_(("destroyed", "skipped")))).scalars())
    outcome.add(executor.run(run_id, [(op, None, None) for op in ops if op.item_id not in done]))
    report.destroyed, report.skipped, report.failed = outcome.destroyed, outcome.skipped, outcome.failed
    report.resumed, report.dms_writes = outcome.resumed, outcome.dms_writes
    with state.transaction() as conn:
        remaining = conn.execute(select(func.count()).select_from(destruction_items).where(and_(
            destruction_items.c.list_id == list_id, destruction_items.c.decision == "approved",
            destruction_items.c.status.in_(("listed", "sent", "failed"))))).scalar()
        if not remaining:
            conn.execute(update(destruction_lists).where(destruction_lists.c.id == list_id)
                         .values(status="executed", executed_at=now()))
        audit.append(conn, actor, "destruction.list.executed", None, {
            "list": list_id, "destroyed": report.destroyed, "skipped": len(report.skipped),
            "failed": len(report.failed), "remaining": remaining,
        })
    state.finish_run(run_id, "ok", None, None, report.as_dict())
    return report


def certificate(state: StateStore, list_id: int, store_name: str, trash: bool, grace_days: int) -> dict[str, Any]:
    """The verklaring van vernietiging: only what the DMS confirmed destroyed."""
    head, items = load_list(state, list_id)
    destroyed = [i for i in items if i["status"] == "destroyed"]
    method = (f"verwijderd met de eigen verwijderfunctie van het DMS ({store_name}); het DMS bewaart "
              f"verwijderde documenten in de prullenbak, die na {grace_days} dagen definitief wordt geleegd"
              if trash else f"verwijderd met de eigen verwijderfunctie van het DMS ({store_name})")
    dues = sorted(i["due"] for i in destroyed)
    return {
        "title": "Verklaring van vernietiging",
        "list": list_id,
        "as_of": head["as_of"],
        "made_by": head["created_by"],
        "approved_by": head["approved_by"], "approved_role": head["approved_role"],
        "approved_at": head["approved_at"], "approved_digest": head["approved_digest"],
        "executed_at": head["executed_at"],
        "method": method,
        "scope": ("Deze verklaring betreft de hieronder vermelde documenten in het documentmanagementsysteem. "
                  "Buiten de reikwijdte vallen back-ups, de eigen versiegeschiedenis en logboeken van het DMS "
                  "en kopieën buiten het DMS; die volgen hun eigen bewaartermijnen."),
        "destroyed": [{"record": i["pseudonym"], "school": i["school"], "part": i["part"],
                       "class": i["doc_class"], "category": i["category"], "basis": i["basis"],
                       "due": i["due"], "destroyed_at": i["done_at"]} for i in destroyed],
        "counts": {"destroyed": len(destroyed),
                   "by_category": dict(Counter(i["category"] for i in destroyed)),
                   "pupils": len({i["pseudonym"] for i in destroyed})},
        "due_range": [dues[0], dues[-1]] if dues else None,
        "not_destroyed": [{"record": i["pseudonym"], "category": i["category"], "status": i["status"],
                           "decision": i["decision"], "reason": i["detail"] or i["reason"]}
                          for i in items if i["status"] != "destroyed"],
    }


@dataclass
class PurgeReport:
    purged: int = 0
    held: list[str] = field(default_factory=list)
    failed: list[dict[str, str]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def purge(store: DocumentStore, state: StateStore, audit: AuditLog, today: date, grace_days: int,
          actor: str) -> PurgeReport:
    """Empty the DMS trash of documents destroyed more than ``grace_days`` ago. A hold found
    now keeps the document in the trash (it can still be restored there)."""
    report = PurgeReport()
    cutoff = (today - timedelta(days=grace_days)).isoformat()
    with state.engine.connect() as conn:
        rows = conn.execute(select(documents.c.id, documents.c.external_id, documents.c.dossier_id,
                                   documents.c.part, documents.c.doc_class, dossiers.c.pseudonym)
                            .join(dossiers, dossiers.c.external_id == documents.c.external_id)
                            .where(documents.c.status == "trashed", documents.c.updated <= cutoff)).all()
    for r in rows:
        if state.on_hold(r.external_id, r.part):
            report.held.append(r.pseudonym)
            continue
        doc = DocumentRef(id=r.id, dossier_id=r.dossier_id, part=r.part, doc_class=r.doc_class, name=r.id)
        try:
            store.purge(doc)
        except StoreError as exc:
            report.failed.append({"record": r.pseudonym, "document": r.id, "error": str(exc)})
            continue
        with state.transaction() as conn:
            conn.execute(update(documents).where(documents.c.id == r.id).values(status="destroyed", updated=now()))
            audit.append(conn, actor, "document.purged", r.pseudonym, {"document": r.id, "part": r.part})
        report.purged += 1
    return report
