"""Destruction behind a list, an approval by identified people and a certificate; and the one
gate every removal of a document from its dossier goes through.

    create  -> a list of what is due (the one due rule, ``retention.not_removable``), with a
               digest over its items; nothing is destroyed. A transfer with removal at the
               source makes the same kind of list (``kind = "transfer"``) of its verified copies.
    approve -> users with the approver role who did not make the list approve it, each approval
               signed with the install key over the list's digest, the user, the time and the
               items they rejected; ``[destruction] approvals`` of them make it approved
    execute -> every approved item goes to the DMS's own delete through the gate, one
               journalled operation at a time; a per-run cap stops an oversized run first
    purge   -> what an approved list put in the DMS trash is emptied once the grace period has
               passed, through the same gate
    certificate -> what the DMS confirmed, on what basis, approved by whom; its scope stated

The gate (``Gate.check``) is asked right before each DMS call, also when a crashed run is
resumed from the journal: the item is on an approved list whose items are those approved; the
approvals are valid, signed, by enough people who are not the maker; the document is in the
state it should be; the pupil's departure is recorded and not followed by a re-enrolment; the
document is due by the clock under today's facts and schedule; no hold covers it; its category
is not blocked; for a purge, the grace period has passed; for a transfer list, the copy was
verified at the destination. Irreversible acts run on the real clock (``connector.clock``).

One destruction run (execute or purge) at a time per state store. Every step is audited, each
removal exactly once. Nothing here decides on missing data: no departure, no due date, no
destruction.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from connector.audit import AuditLog
from connector.clock import SIMULATED, Clock
from connector.errors import ConfigError, InvalidState, NotPermitted, SafetyStop
from connector.execute import Executor, Outcome, RetryPolicy
from connector.model import DocumentRef, Operation, PupilFacts
from connector.ports import DocumentStore
from connector.retention import Schedule, not_removable
from connector.seal import DIGEST_KEYS, Digest, list_digest, sign, valid_approvals
from connector.state import StateStore, now
from connector.users import User


def _stamp(details: dict[str, Any], clock: Clock) -> dict[str, Any]:
    return details | clock.stamp()


# -- the one due rule over the state -------------------------------------------------------------

def due_documents(state: StateStore, schedule: Schedule, today: date, page: int = 10_000,
                  exclude_listed: bool = True) -> Iterator[tuple[Any, Any]]:
    """Every present document the one due rule lets go today: (row, fresh tag). Holds and facts
    are read as they are now. ``exclude_listed``: leave out documents waiting on an open list."""
    held = state.holds_map()
    for candidates, facts in state.due_candidates(today, exclude_listed, page=page):
        for c in candidates:
            reason, fresh = not_removable(facts[c.external_id], c.doc_class, c.part, held.get(c.external_id, set()),
                                          schedule, today)
            if reason is None:
                yield c, fresh


def due_count(state: StateStore, schedule: Schedule, today: date) -> int:
    """Documents the one due rule would let go today (the ``destruction_due_items`` gauge)."""
    return sum(1 for _ in due_documents(state, schedule, today, exclude_listed=False))


# -- lists ---------------------------------------------------------------------------------------

def _close_list(state: StateStore, audit: AuditLog, list_id: int, by: User, as_of: date, status: str,
                digest: str, count: int, categories: Counter[str], extra: dict[str, Any]) -> None:
    with state.transaction() as conn:
        seq = audit.append(conn, by.name, "destruction.list.created", None, {
            "list": list_id, "as_of": as_of.isoformat(), "items": count, "digest": digest,
            "categories": dict(categories), "status": status, **extra,
        })
        _seq, anchor = audit.head(conn)
        state.close_list(conn, list_id, status, digest, seq, anchor)


def create_list(state: StateStore, audit: AuditLog, schedule: Schedule, as_of: date, by: User,
                clock: Clock, required: int = 1, page: int = 10_000) -> tuple[int, int]:
    """Select what is due on ``as_of`` and write a list, a page at a time (memory flat in the
    list's size). A list for a date later than the clock's is a ``preview``: it shows what will be
    due, and can never be approved. Returns (list id, items)."""
    by.require("list.create")
    preview = as_of > clock.today()
    list_id = state.new_list(by.name, as_of, "destruction", None, required)
    digest = Digest(as_of)
    categories: Counter[str] = Counter()
    count = 0
    batch: list[dict[str, Any]] = []
    for c, fresh in due_documents(state, schedule, as_of, page=page):
        item = {"doc_id": c.id, "dossier_id": c.dossier_id, "external_id": c.external_id,
                "pseudonym": c.pseudonym, "school": c.school, "part": c.part, "doc_class": c.doc_class,
                "category": fresh.category, "basis": fresh.basis, "due": fresh.due}
        digest.add(item)
        categories[fresh.category] += 1
        batch.append(dict(item, list_id=list_id))
        if len(batch) >= page:
            state.add_list_items(batch)
            count += len(batch)
            batch = []
    if batch:
        state.add_list_items(batch)
        count += len(batch)
    status = "preview" if preview else ("draft" if count else "empty")
    _close_list(state, audit, list_id, by, as_of, status, digest.hexdigest(), count, categories,
                clock.stamp() | ({"preview": True} if preview else {}))
    return list_id, count


def create_transfer_list(state: StateStore, audit: AuditLog, schedule: Schedule, external_id: str,
                         verified: dict[str, str], receiving: str, by: User, clock: Clock,
                         required: int = 1) -> tuple[int | None, list[dict[str, str]]]:
    """A transfer list: of the documents copied and verified at ``receiving`` (doc id -> SHA-256
    of the copy read back there), those the one due rule lets go today, for removal at the
    source once approved. Returns (list id or None when nothing can go, documents kept with why)."""
    by.require("transfer")
    today = clock.today()
    kept: list[dict[str, str]] = []
    facts = state.facts_for(external_id, state.dossier_departure(external_id))
    held = state.holds_map().get(external_id, set())
    rows = {r.id: r for r in state.present_documents_by_id(list(verified))}
    items: list[dict[str, Any]] = []
    for doc_id, sha in sorted(verified.items()):
        r = rows.get(doc_id)
        if r is None:
            kept.append({"document": doc_id, "reason": "not recorded in the state (run tags refresh)"})
            continue
        reason, fresh = not_removable(facts, r.doc_class, r.part, held, schedule, today, cached=False)
        if reason is not None:
            kept.append({"document": doc_id, "reason": reason})
            continue
        items.append({"doc_id": r.id, "dossier_id": r.dossier_id, "external_id": r.external_id,
                      "pseudonym": r.pseudonym, "school": r.school, "part": r.part, "doc_class": r.doc_class,
                      "category": fresh.category, "basis": fresh.basis, "due": fresh.due, "verified": sha})
    if not items:
        return None, kept
    list_id = state.new_list(by.name, today, "transfer", receiving, required)
    digest = Digest(today, "transfer", receiving)
    for item in sorted(items, key=lambda i: str(i["doc_id"])):
        digest.add(item)
    state.add_list_items([dict(i, list_id=list_id) for i in items])
    _close_list(state, audit, list_id, by, today, "draft", digest.hexdigest(), len(items),
                Counter(i["category"] for i in items), {"kind": "transfer", "receiving": receiving} | clock.stamp())
    return list_id, kept


def load_list(state: StateStore, list_id: int) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """A list's head and its items (NotFound when there is no such list)."""
    return state.list_and_items(list_id)


def approvals(state: StateStore, list_id: int) -> list[dict[str, Any]]:
    """A list's approvals, oldest first, with what each rejected."""
    return [r | {"rejected": json.loads(r["rejected"])} for r in state.list_approvals(list_id)]


def approve(state: StateStore, audit: AuditLog, key: bytes, list_id: int, by: User, role: str | None,
            reject: dict[int, str], clock: Clock, required: int = 1, cooling_off_days: int = 0,
            comment: str | None = None) -> dict[str, Any]:
    """One approval of a list by ``by`` (an approver who is not its maker). The list is approved
    once it holds ``required`` valid approvals (or more, if it asked for more when made); an
    item is approved only if no approver rejected it. The final approval records the day from
    which the list may be carried out: ``cooling_off_days`` later (``[destruction]
    cooling_off_days``; 0: no cooling-off period), so that anyone can still cancel it; the gate
    refuses every removal before that day. ``comment`` is kept in the audit entry, with the list's other steps."""
    by.require("list.approve")
    head, items = load_list(state, list_id)
    if head["status"] == "preview":
        raise InvalidState(f"list {list_id} is a preview (made for {head['as_of']}, a date still to come); "
                          "make a list on the day")
    if head["status"] not in ("draft", "approving"):
        raise InvalidState(f"list {list_id} is {head['status']}; only a draft list can be approved")
    if not items:
        raise InvalidState(f"list {list_id} is empty; there is nothing to approve")
    if head["as_of"] > clock.today():
        raise InvalidState(f"list {list_id} is for {head['as_of']}, later than today; it cannot be approved")
    if by.name == head["created_by"]:
        raise NotPermitted(f"{by.name} made list {list_id}; another person approves it (four eyes)")
    digest = list_digest(head, items)
    if digest != head["digest"]:
        raise InvalidState(f"list {list_id} was changed after it was made; make a new list")
    unknown = set(reject) - {i["id"] for i in items}
    if unknown:
        raise InvalidState(f"list {list_id} has no item(s) {sorted(unknown)}")
    if head.get("reviewer") and head["reviewer"] != by.name:
        raise NotPermitted(f"list {list_id} is assigned to {head['reviewer']}, who reviews it next (the maker or an "
                           "admin may reassign it)")
    given = approvals(state, list_id)
    if any(a["approver"] == by.name for a in given):
        raise NotPermitted(f"{by.name} approved list {list_id} already; another person gives the next approval")
    need = max(required, int(head["required_approvals"] or 1))
    at = now()
    rejected = {str(k): v for k, v in sorted(reject.items())}
    signature = sign(key, list_id, digest, by.name, at, rejected)
    with state.transaction() as conn:
        seq = audit.append(conn, by.name, "destruction.list.approved", None, _stamp({
            "list": list_id, "digest": digest, "role": role, "rejected": rejected,
            "approval": len(given) + 1, "of": need, **({"comment": comment} if comment else {}),
        }, clock))
        _seq, anchor = audit.head(conn)
        state.add_approval(conn, list_id, by.name, role, at, digest, json.dumps(rejected), signature, seq, anchor)
        everyone = [*given, {"approver": by.name, "rejected": rejected, "role": role, "at": at}]
        rejected_ids = {int(k) for a in everyone for k in a["rejected"]}
        reasons = {int(k): v for a in everyone for k, v in a["rejected"].items()}
        complete = len(everyone) >= need
        for item in items:
            decision = "rejected" if item["id"] in rejected_ids else ("approved" if complete else "pending")
            state.decide_item(conn, item["id"], decision, reasons.get(item["id"]))
        values: dict[str, Any] = {"status": "approving", "reviewer": None}  # the assignment is used
        if complete:
            left = len(items) - len(rejected_ids)
            values = {"status": "approved" if left else "rejected", "reviewer": None,
                      "approved_digest": digest, "approved_at": at,
                      "approved_by": ", ".join(a["approver"] for a in everyone),
                      "approved_role": ", ".join(str(a["role"]) for a in everyone if a["role"]) or None,
                      "cooling_off_until": clock.today() + timedelta(days=cooling_off_days) if cooling_off_days
                      else None}
        state.update_list(conn, list_id, **values)
    return {"list": list_id, "approved": len(items) - len(rejected_ids) if complete else 0,
            "rejected": len(rejected_ids), "digest": digest, "approvals": len(everyone), "required": need,
            "status": values["status"],
            "cooling_off_until": values["cooling_off_until"].isoformat() if values.get("cooling_off_until") else None}


def assign(state: StateStore, audit: AuditLog, list_id: int, by: User, reviewer: User | None) -> None:
    """Assign a list under review to one approver, who then gives its next approval (None: back
    to any approver). The maker of the list or an admin assigns and reassigns; the maker is
    never the reviewer."""
    by.require("list.assign")
    head, _items = load_list(state, list_id)
    if head["status"] not in ("draft", "approving"):
        raise InvalidState(f"list {list_id} is {head['status']}; only a list under review is assigned")
    if "admin" not in by.roles and by.name != head["created_by"]:
        raise NotPermitted(f"{by.name} did not make list {list_id}; its maker or an admin assigns it")
    if reviewer is not None:
        reviewer.require("list.approve")
        if reviewer.name == head["created_by"]:
            raise NotPermitted(f"{reviewer.name} made list {list_id}; another person reviews it (four eyes)")
    with state.transaction() as conn:
        state.update_list(conn, list_id, reviewer=reviewer.name if reviewer else None)
        audit.append(conn, by.name, "destruction.list.assigned", None,
                     {"list": list_id, "reviewer": reviewer.name if reviewer else None})


def send_back(state: StateStore, audit: AuditLog, list_id: int, by: User, comment: str) -> None:
    """An approver sends a list back with what should change, instead of approving it: the list
    ends (``sent_back``) and its items are offered on the maker's next list."""
    by.require("list.approve")
    head, _items = load_list(state, list_id)
    if head["status"] not in ("draft", "approving"):
        raise InvalidState(f"list {list_id} is {head['status']}; only a list under review can be sent back")
    if not comment.strip():
        raise ConfigError("give what should change on the list")
    if by.name == head["created_by"]:
        raise NotPermitted(f"{by.name} made list {list_id}; another person reviews it (four eyes)")
    if head.get("reviewer") and head["reviewer"] != by.name:
        raise NotPermitted(f"list {list_id} is assigned to {head['reviewer']}, who reviews it next (the maker or an "
                           "admin may reassign it)")
    with state.transaction() as conn:
        state.update_list(conn, list_id, status="sent_back")
        audit.append(conn, by.name, "destruction.list.sent_back", None, {"list": list_id, "comment": comment})


def cancel(state: StateStore, audit: AuditLog, list_id: int, by: User, reason: str) -> None:
    """Withdraw a list that is not carried out (a draft nobody will approve, a list overtaken by
    events): its items are offered again on the next list. Removals already done stay done."""
    by.require("list.cancel")
    head, _items = load_list(state, list_id)
    if head["status"] not in ("draft", "approving", "approved", "preview", "empty"):
        raise InvalidState(f"list {list_id} is {head['status']}; only a list not yet carried out can be cancelled")
    if not reason.strip():
        raise ConfigError("give the reason for cancelling the list")
    with state.transaction() as conn:
        state.update_list(conn, list_id, status="cancelled")
        audit.append(conn, by.name, "destruction.list.cancelled", None, {"list": list_id, "reason": reason})


def cooling_off_until(head: dict[str, Any]) -> date | None:
    """The first day on which an approved list may be carried out (None: a list approved before
    cooling-off periods, or not approved)."""
    value = head.get("cooling_off_until")
    if value is None or isinstance(value, date):
        return value
    return date.fromisoformat(str(value))


# -- the gate ------------------------------------------------------------------------------------

class Gate:
    """The one check before any document leaves its dossier (``check`` is the executor's guard).

    The items of a list are read and their digest checked against its approvals once per list
    (``verify_list``); at each call the item is read again and must be exactly what was
    approved, so a change to the list in between is refused too."""

    def __init__(self, state: StateStore, schedule: Schedule, clock: Clock, key: bytes, required: int,
                 grace_days: int) -> None:
        self.state = state
        self.schedule = schedule
        self.clock = clock
        self.key = key
        self.required = required
        self.grace_days = grace_days
        self._approved: dict[int, dict[int, dict[str, Any]] | str] = {}

    def verify_list(self, list_id: int) -> str | None:
        """Why the list may not be carried out (None: its items are the approved ones)."""
        if list_id not in self._approved:
            self._approved[list_id] = self._verify(list_id)
        found = self._approved[list_id]
        return found if isinstance(found, str) else None

    def _verify(self, list_id: int) -> dict[int, dict[str, Any]] | str:
        try:
            head, items = load_list(self.state, list_id)
        except ConfigError:
            return "the list is no longer recorded"
        if head["status"] not in ("approved", "executed"):
            return f"the list is {head['status']}, not approved"
        until = cooling_off_until(head)
        if until is not None and self.clock.today() < until:
            return f"in its cooling-off period until {until.isoformat()}"
        digest = list_digest(head, items)
        if digest != head["digest"] or digest != head["approved_digest"]:
            return "the list changed after its approval"
        valid, problems = valid_approvals(self.key, head, approvals(self.state, list_id), digest)
        need = max(self.required, int(head["required_approvals"] or 1))
        if len(valid) < need:
            return f"not approved by {need} person(s) other than its maker" + (f" ({problems[0]})" if problems else "")
        rejected = {int(k) for a in valid for k in a["rejected"]}
        return {i["id"]: i for i in items if i["id"] not in rejected}

    def check(self, op: Operation) -> str | None:
        """A reason to leave the document where it is, or None."""
        if op.item_id is None or op.document is None:
            return "not an item of an approved list"
        row = self.state.gate_row(op.item_id)
        if row is None:
            return "the item, its document or its dossier is no longer recorded"
        problem = self.verify_list(row["list_id"])
        if problem:
            return problem
        if row["list_status"] not in ("approved", "executed"):
            return f"the list is {row['list_status']} now"  # cancelled while this run went on
        approved = self._approved[row["list_id"]]
        assert isinstance(approved, dict)
        was = approved.get(row["id"])
        if was is None or row["decision"] != "approved":
            return "not approved (rejected by an approver)"
        if any(str(row[k]) != str(was[k]) for k in (*DIGEST_KEYS, "verified", "dossier_id", "pseudonym")):
            return "the item changed after its approval"
        if op.document.id != row["doc_id"] or op.external_id != row["external_id"]:
            return "the operation does not match the approved item"
        if row["doc_class_now"] != row["doc_class"] or row["part_now"] != row["part"]:
            return "the document was reclassified after the list was made"
        if row["list_kind"] == "transfer" and not row["verified"]:
            return "the copy at the destination was not verified"
        today = self.clock.today()
        if op.kind == "destroy_document":
            if row["doc_status"] != "present":
                return f"document is {row['doc_status']}"
            if row["status"] == "destroyed":
                return "destroyed already"
        else:
            if row["doc_status"] != "trashed" or row["status"] != "destroyed" or row["done_at"] is None:
                return f"not in the trash by this list (document is {row['doc_status']})"
            if row["purged_at"] is not None:
                return "purged already"
            trashed = row["trashed_on"] or datetime.fromisoformat(row["done_at"]).date()
            if trashed + timedelta(days=self.grace_days) > today:
                return f"in the grace period until {(trashed + timedelta(days=self.grace_days)).isoformat()}"
        facts: PupilFacts = self.state.facts_for(row["external_id"], row["las_departure"])
        held = self.state.holds_map_for(row["external_id"])
        reason, fresh = not_removable(facts, row["doc_class"], row["part"], held, self.schedule, today, cached=False)
        if reason is not None:
            return reason
        if fresh.category != row["category"]:
            return "the schedule puts the document in another category now"
        return None


# -- execute ---------------------------------------------------------------------------------------

@dataclass
class ExecuteReport:
    list_id: int
    dry_run: bool
    kind: str = "destruction"
    approved: int = 0
    destroyed: int = 0
    would_destroy: int = 0
    skipped: list[dict[str, str]] = field(default_factory=list)
    failed: list[dict[str, str]] = field(default_factory=list)
    resumed: int = 0
    dms_writes: int = 0
    stopped_by: str | None = None
    message: str | None = None
    clock: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def execute(store: DocumentStore, state: StateStore, audit: AuditLog, schedule: Schedule, list_id: int,
            clock: Clock, max_per_run: int, by: User, key: bytes, required: int = 1, grace_days: int = 0,
            dry_run: bool = False, retry: RetryPolicy | None = None) -> ExecuteReport:
    """Carry out an approved list: every approved item through the gate to the DMS's own delete.
    One destruction run at a time per state store (rail ``single_instance``)."""
    by.require("list.execute")
    report = ExecuteReport(list_id=list_id, dry_run=dry_run, clock=clock.stamp().get("clock"))
    try:
        with state.exclusive("destruction"):
            return _execute(store, state, audit, schedule, list_id, clock, max_per_run, by, key, required,
                            grace_days, dry_run, retry, report)
    except SafetyStop as stop:
        report.stopped_by, report.message = stop.rail, str(stop)
        return report


def _execute(store: DocumentStore, state: StateStore, audit: AuditLog, schedule: Schedule, list_id: int,
             clock: Clock, max_per_run: int, by: User, key: bytes, required: int, grace_days: int, dry_run: bool,
             retry: RetryPolicy | None, report: ExecuteReport) -> ExecuteReport:
    head, items = load_list(state, list_id)
    report.kind = head["kind"]
    if head["status"] not in ("approved", "executed"):
        raise InvalidState(f"list {list_id} is {head['status']}; it must be approved first")
    until = cooling_off_until(head)
    if until is not None and clock.today() < until:
        raise InvalidState(f"list {list_id} is in its cooling-off period until {until.isoformat()}: it can be "
                           "carried out from that day, and anyone may cancel it until then")
    gate = Gate(state, schedule, clock, key, required, grace_days)
    problem = gate.verify_list(list_id)
    if problem:
        raise InvalidState(f"list {list_id}: {problem}; make and approve a new list")
    report.approved = sum(1 for i in items if i["decision"] == "approved")
    if not report.approved:
        raise InvalidState(f"list {list_id} has no approved items; there is nothing to execute")
    todo = [i for i in items if i["decision"] == "approved" and i["status"] in ("listed", "failed", "sent")]
    if len(todo) > max_per_run:
        report.stopped_by = "max_per_run"
        report.message = (f"list {list_id} would remove {len(todo)} documents in one run; the limit is "
                          f"{max_per_run} ([destruction] max_per_run). Nothing was removed.")
        return report
    ops = [Operation(kind="destroy_document", external_id=i["external_id"], pseudonym=i["pseudonym"],
                     document=DocumentRef(id=i["doc_id"], dossier_id=i["dossier_id"], part=i["part"],
                                          doc_class=i["doc_class"], name=i["doc_id"]),
                     item_id=i["id"]) for i in todo]
    if dry_run:
        for op in ops:
            reason = gate.check(op)
            if reason:
                report.skipped.append({"record": op.pseudonym, "item": str(op.item_id), "reason": reason})
            else:
                report.would_destroy += 1
        return report
    executor = Executor(store, state, audit, by.name, retry, guard=gate.check, stamp=clock.stamp(),
                        today=clock.today())
    run_id = state.begin_run("destruction")
    outcome = Outcome()
    # rows a dead run left (the lock says no other run is alive), each through the gate again
    outcome.add(executor.resume(("destroy_document", "purge_document")))
    done = state.list_items_done(list_id)
    outcome.add(executor.run(run_id, [(op, None, None) for op in ops if op.item_id not in done]))
    report.destroyed, report.skipped, report.failed = outcome.destroyed, outcome.skipped, outcome.failed
    report.resumed, report.dms_writes = outcome.resumed, outcome.dms_writes
    with state.transaction() as conn:
        remaining = state.approved_items_open(conn, list_id)
        if not remaining:
            state.list_executed(conn, list_id)  # a list cancelled meanwhile stays cancelled
        audit.append(conn, by.name, "destruction.list.executed", None, _stamp({
            "list": list_id, "kind": head["kind"], "destroyed": report.destroyed, "skipped": len(report.skipped),
            "failed": len(report.failed), "remaining": remaining,
        }, clock))
    state.finish_run(run_id, "ok", None, None, report.as_dict())
    return report


# -- certificate ---------------------------------------------------------------------------------

def certificate(state: StateStore, audit: AuditLog, key: bytes, list_id: int, store_name: str, trash: bool,
                grace_days: int, simulated: bool = False) -> dict[str, Any]:
    """The verklaring van vernietiging (or, for a transfer list, van overbrenging en verwijdering
    bij de bron): only what the DMS confirmed, with the approvals and the log's head at this
    moment, which is recorded with the list as an anchor."""
    head, items = load_list(state, list_id)
    destroyed = [i for i in items if i["status"] == "destroyed"]
    transfer = head["kind"] == "transfer"
    verb = "verwijderd bij de bron na overbrenging" if transfer else "verwijderd"
    method = (f"{verb} met de eigen verwijderfunctie van het DMS ({store_name}); het DMS bewaart "
              f"verwijderde documenten in de prullenbak, die na {grace_days} dagen definitief wordt geleegd"
              if trash else f"{verb} met de eigen verwijderfunctie van het DMS ({store_name})")
    dues = sorted(i["due"] for i in destroyed)
    valid, _problems = valid_approvals(key, head, approvals(state, list_id), head["digest"])
    with state.transaction() as conn:
        seq, anchor = audit.head(conn)
        state.update_list(conn, list_id, certified_seq=seq, certified_hash=anchor)
    cert: dict[str, Any] = {
        "title": "Verklaring van overbrenging en verwijdering" if transfer else "Verklaring van vernietiging",
        "list": list_id,
        "kind": head["kind"],
        "as_of": head["as_of"],
        "made_by": head["created_by"],
        "approved_by": head["approved_by"], "approved_role": head["approved_role"],
        "approved_at": head["approved_at"], "approved_digest": head["approved_digest"],
        "approvals": [{"by": a["approver"], "role": a["role"], "at": a["at"], "signature": a["signature"]}
                      for a in valid],
        "executed_at": head["executed_at"],
        "method": method,
        "scope": ("Deze verklaring betreft de hieronder vermelde documenten in het documentmanagementsysteem. "
                  "Buiten de reikwijdte vallen back-ups, de eigen versiegeschiedenis en logboeken van het DMS "
                  "en kopieën buiten het DMS; die volgen hun eigen bewaartermijnen."),
        "destroyed": [{"record": i["pseudonym"], "document": i["doc_id"], "school": i["school"], "part": i["part"],
                       "class": i["doc_class"], "category": i["category"], "basis": i["basis"],
                       "due": i["due"], "destroyed_at": i["done_at"], "purged_at": i["purged_at"],
                       **({"verified": i["verified"]} if transfer else {})} for i in destroyed],
        "counts": {"destroyed": len(destroyed),
                   "by_category": dict(Counter(i["category"] for i in destroyed)),
                   "pupils": len({i["pseudonym"] for i in destroyed})},
        "due_range": [dues[0], dues[-1]] if dues else None,
        "not_destroyed": [{"record": i["pseudonym"], "category": i["category"], "status": i["status"],
                           "decision": i["decision"], "reason": i["detail"] or i["reason"]}
                          for i in items if i["status"] != "destroyed"],
        "audit_anchor": {"seq": seq, "hash": anchor},
    }
    if transfer:
        cert["receiving"] = head["receiving"]
        cert["verification"] = ("elk document is bij de ontvanger teruggelezen en vergeleken met het origineel "
                                "(SHA-256) voordat het bij de bron werd verwijderd")
    if simulated:
        cert["simulated"] = SIMULATED
    return cert


# -- purge ---------------------------------------------------------------------------------------

@dataclass
class PurgeReport:
    purged: int = 0
    held: list[str] = field(default_factory=list)
    skipped: list[dict[str, str]] = field(default_factory=list)
    failed: list[dict[str, str]] = field(default_factory=list)
    stopped_by: str | None = None
    message: str | None = None
    clock: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def purge(store: DocumentStore, state: StateStore, audit: AuditLog, schedule: Schedule, clock: Clock,
          grace_days: int, by: User, key: bytes, required: int = 1, retry: RetryPolicy | None = None) -> PurgeReport:
    """Empty the DMS trash of what approved lists put there more than ``grace_days`` ago, each
    document through the gate (a hold, a re-enrolment or a changed schedule found now keeps it
    in the trash, where it can still be restored)."""
    by.require("purge")
    report = PurgeReport(clock=clock.stamp().get("clock"))
    try:
        with state.exclusive("destruction"):
            _purge(store, state, audit, schedule, clock, grace_days, by, key, required, retry, report)
    except SafetyStop as stop:
        report.stopped_by, report.message = stop.rail, str(stop)
    return report


def _purge(store: DocumentStore, state: StateStore, audit: AuditLog, schedule: Schedule, clock: Clock,
           grace_days: int, by: User, key: bytes, required: int, retry: RetryPolicy | None,
           report: PurgeReport) -> None:
    # every item in the trash; the gate decides on each (its grace period, holds, facts)
    rows = state.trashed_items()
    last = clock.today() - timedelta(days=grace_days)
    rows = [r for r in rows if (r["trashed_on"] or datetime.fromisoformat(r["done_at"]).date()) <= last]
    gate = Gate(state, schedule, clock, key, required, grace_days)
    executor = Executor(store, state, audit, by.name, retry, guard=gate.check, stamp=clock.stamp(),
                        today=clock.today())
    ops = [Operation(kind="purge_document", external_id=r["external_id"], pseudonym=r["pseudonym"],
                     document=DocumentRef(id=r["doc_id"], dossier_id=r["dossier_id"], part=r["part"],
                                          doc_class=r["doc_class"], name=r["doc_id"]),
                     item_id=r["id"]) for r in rows]
    run_id = state.begin_run("purge")
    outcome = Outcome()
    outcome.add(executor.resume(("destroy_document", "purge_document")))
    outcome.add(executor.run(run_id, [(op, None, None) for op in ops]))
    report.purged, report.failed = outcome.purged, outcome.failed
    for s in outcome.skipped:
        (report.held.append(s["record"]) if s["reason"] == "on hold" else report.skipped.append(s))
    state.finish_run(run_id, "ok", None, None, report.as_dict())
