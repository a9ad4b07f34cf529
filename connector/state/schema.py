"""The state store's tables and the statuses their rows move through."""

from __future__ import annotations

from enum import StrEnum

try:
    import fcntl
except ImportError:  # pragma: no cover (not on Windows)
    fcntl = None  # type: ignore[assignment]

from sqlalchemy import Column, Date, Index, Integer, MetaData, String, Table, Text, text

metadata = MetaData()
"""The schema as this version uses it. Changes go with a migration in connector/migrations/
(``alembic revision --autogenerate`` against a store at the previous head)."""

meta = Table("meta", metadata, Column("key", String(64), primary_key=True), Column("value", Text))

runs = Table(
    "runs", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("kind", String(32), nullable=False),
    Column("school", String(32)),
    Column("started", String(40), nullable=False),
    Column("finished", String(40)),
    Column("status", String(16), nullable=False),  # running | ok | stopped | failed | dry-run
    Column("pupils_seen", Integer),
    Column("report", Text),
)

dossiers = Table(
    "dossiers", metadata,
    Column("external_id", String(300), primary_key=True),
    Column("pseudonym", String(40), nullable=False, index=True),
    Column("school", String(32), nullable=False, index=True),
    Column("ref_id", String(300)),
    Column("fingerprint", String(64)),
    Column("spec", Text),
    Column("departure", Date),
    Column("dup_pgn", String(64), index=True),
    Column("dup_nb", String(64), index=True),
    Column("dup_eck", String(64), index=True),  # keyed hash of the ECK-iD, where a source gave one
    Column("vanished_since", Date),
    Column("updated", String(40)),
    # the keyed digest of the LAS record this row was last made from, set after a run that
    # applied its snapshot completely and cleared by any other write to the row: while it
    # stands, an identical record is staged from this row without being mapped again
    Column("source_digest", String(32)),
)

documents = Table(
    "documents", metadata,
    Column("id", String(300), primary_key=True),
    Column("external_id", String(300), nullable=False, index=True),
    Column("dossier_id", String(300)),
    Column("part", String(32), nullable=False),
    Column("doc_class", String(64)),
    Column("category", String(64)),
    Column("kind", String(8)),
    Column("due", Date, index=True),
    Column("blocked", Integer),
    Column("unclassified", Integer),
    Column("basis", Text),
    Column("tag", Text),  # the tag as last written to the DMS (JSON)
    Column("status", String(12), nullable=False, default="present"),  # DocumentStatus (MOVES["document"])
    Column("updated", String(40)),
)

facts = Table(
    "facts", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("external_id", String(300), nullable=False, index=True),
    Column("kind", String(32), nullable=False),  # departure | referred | reunion_consent | reenrolled
    Column("on", Date),  # None: the fact was withdrawn
    Column("by", String(200), nullable=False),
    Column("at", String(40), nullable=False),
    Column("note", Text),
)

holds = Table(
    "holds", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("external_id", String(300), nullable=False, index=True),
    Column("pseudonym", String(40), nullable=False),
    Column("part", String(32)),  # None: the whole dossier
    Column("reason", Text, nullable=False),
    Column("by", String(200), nullable=False),
    Column("at", String(40), nullable=False),
    Column("removed_by", String(200)),
    Column("removed_at", String(40)),
    Column("removed_reason", Text),
)

transfers = Table(
    "transfers", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("external_id", String(300), nullable=False, index=True),
    Column("pseudonym", String(40), nullable=False),
    Column("kind", String(16), nullable=False),  # okr | export
    Column("on", Date, nullable=False),
    Column("receiving", Text),  # BRIN of the receiving school, or the destination (a folder, a DMS)
    Column("part", String(32)),
    Column("status", String(16), nullable=False),  # transferred | incomplete | failed
    Column("detail", Text),
    Column("by", String(200), nullable=False),
    Column("at", String(40), nullable=False),
)

destruction_lists = Table(
    "destruction_lists", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("created", String(40), nullable=False),
    Column("created_by", String(200), nullable=False),
    Column("as_of", Date, nullable=False),
    Column("status", String(16), nullable=False),  # ListStatus (MOVES["list"])
    Column("digest", String(64), nullable=False),
    Column("approved_by", String(200)),
    Column("approved_role", String(200)),
    Column("approved_at", String(40)),
    Column("approved_digest", String(64)),
    Column("executed_at", String(40)),
    Column("kind", String(16), nullable=False, server_default="destruction"),  # destruction | transfer
    Column("receiving", Text),  # a transfer list: where the copies went
    Column("required_approvals", Integer, nullable=False, server_default="1"),
    Column("anchor_seq", Integer),  # the audit log's head when the list was made
    Column("anchor_hash", String(64)),
    Column("certified_seq", Integer),  # ... and when its certificate was last written
    Column("certified_hash", String(64)),
    Column("cooling_off_until", Date),  # set at the final approval: nothing is removed before this day
    Column("reviewer", String(200)),  # the approver the list is assigned to (None: any approver)
)

destruction_approvals = Table(
    # one row per approval of a list by an identified user, signed with the install key over the
    # list's digest, the user, the time and the items they rejected
    "destruction_approvals", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("list_id", Integer, nullable=False, index=True),
    Column("approver", String(120), nullable=False),
    Column("role", String(200)),
    Column("at", String(40), nullable=False),
    Column("digest", String(64), nullable=False),
    Column("rejected", Text, nullable=False),  # JSON: item id -> reason
    Column("signature", String(64), nullable=False),
    Column("anchor_seq", Integer),
    Column("anchor_hash", String(64)),
)

users = Table(
    # the people (and the service) who act on dossiers: list, approve, execute, hold, record facts
    "users", metadata,
    Column("name", String(120), primary_key=True),
    Column("display", String(200)),
    Column("roles", Text, nullable=False),  # JSON list: maker | approver | executor | admin
    Column("secret", Text),  # a slow hash (scrypt); None: signs in only through OpenID Connect
    Column("oidc_issuer", String(300)),
    Column("oidc_subject", String(300)),
    Column("created_by", String(120), nullable=False),
    Column("created_at", String(40), nullable=False),
    Column("disabled_by", String(120)),
    Column("disabled_at", String(40)),
)

destruction_items = Table(
    "destruction_items", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("list_id", Integer, nullable=False, index=True),
    Column("doc_id", String(300), nullable=False),
    Column("dossier_id", String(300), nullable=False),
    Column("external_id", String(300), nullable=False),
    Column("pseudonym", String(40), nullable=False),
    Column("school", String(32), nullable=False),
    Column("part", String(32), nullable=False),
    Column("doc_class", String(64)),
    Column("category", String(64), nullable=False),
    Column("basis", Text, nullable=False),
    Column("due", Date, nullable=False),
    Column("decision", String(12), nullable=False, default="pending"),  # pending | approved | rejected
    Column("reason", Text),
    Column("status", String(12), nullable=False, default="listed"),  # ItemStatus (MOVES["item"])
    Column("detail", Text),
    Column("done_at", String(40)),
    Column("verified", String(64)),  # a transfer list: SHA-256 of the copy read back at the destination
    Column("trashed_on", Date),  # the day (by the act's clock) the DMS put it in its trash: the grace starts
    Column("purged_at", String(40)),
)

staging = Table(
    "staging", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("run_id", Integer, nullable=False),
    Column("pseudonym", String(40), nullable=False),
    Column("external_id", String(300)),
    Column("fingerprint", String(64)),
    Column("spec", Text),
    Column("dup_pgn", String(64)),
    Column("dup_nb", String(64)),
    Column("dup_eck", String(64)),
    Column("rejected", Integer, nullable=False, default=0),
    Column("departure", Date),
    Column("via", String(40)),  # the record's own pseudonym, when it was taken to a dossier by an alias
    Column("via_kind", String(8)),  # link | rekey | eckid
    Column("digest", String(32)),  # the record's keyed digest (see dossiers.source_digest)
    Index("staging_pseudonym", "run_id", "pseudonym"),
    Index("staging_external_id", "run_id", "external_id"),
    Index("staging_dup_pgn", "run_id", "dup_pgn"),
    Index("staging_dup_nb", "run_id", "dup_nb"),
    Index("staging_dup_eck", "run_id", "dup_eck"),
)

pupil_access = Table(
    # what a dossier's access rights are computed from, as last applied from the LAS
    "pupil_access", metadata,
    Column("external_id", String(300), primary_key=True),
    Column("pseudonym", String(40), nullable=False),
    Column("birth_date", Date),
    Column("fingerprint", String(64), nullable=False),
    Column("updated", String(40), nullable=False),
)

guardians = Table(
    # parents and carers: from the LAS (source "las", replaced by each sync) or recorded by a
    # person (source "manual"); authority and DMS account may be recorded by a person for both
    "guardians", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("guardian_id", String(40), nullable=False),
    Column("external_id", String(300), nullable=False, index=True),
    Column("source", String(8), nullable=False),
    Column("display", Text),  # name as the source gives it, for the person linking an account
    Column("relation", String(8)),
    Column("authority", String(8)),  # yes | no | None (unknown), as the source says
    Column("authority_recorded", String(8)),  # yes | no, recorded by a person (see connector.acl.authority)
    Column("authority_seen", String(8)),  # what the source said when the person recorded it
    Column("deceased", Integer, nullable=False, default=0),  # as the source says (a sync rewrites it)
    Column("deceased_recorded", Integer),  # 1: a person recorded the death; no sync touches it
    Column("account", String(200)),  # the guardian's account in the DMS, linked by a person
    Column("by", String(200)),
    Column("at", String(40), nullable=False),
    Column("removed_at", String(40)),
    Index("guardians_current", "external_id", "guardian_id", "removed_at"),
)

grants = Table(
    "grants", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("external_id", String(300), nullable=False, index=True),
    Column("kind", String(32), nullable=False),  # parent_after_adult_age | third_party
    Column("grantee", String(200), nullable=False),
    Column("parts", Text, nullable=False),  # JSON list
    Column("basis", String(16), nullable=False),  # consent | legal_duty
    Column("start", Date, nullable=False),
    Column("until", Date, nullable=False),
    Column("revoked", Date),
    Column("reason", Text, nullable=False),
    Column("by", String(200), nullable=False),
    Column("at", String(40), nullable=False),
)

requests_t = Table(
    # parents' and pupils' requests (inspection, copy, correction, erasure) and their deadlines
    "requests", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("external_id", String(300), nullable=False, index=True),
    Column("pseudonym", String(40), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("requester", String(200), nullable=False),  # who asks: g-..., "pupil", or as recorded
    Column("received", Date, nullable=False),
    Column("due", Date, nullable=False),
    Column("extended_reason", Text),
    Column("hold_id", Integer),
    Column("status", String(8), nullable=False),  # RequestStatus (MOVES["request"])
    Column("outcome", String(16)),
    Column("closed", Date),
    Column("by", String(200), nullable=False),
    Column("at", String(40), nullable=False),
)

exports = Table(
    # the copies made for data subjects (``export``): removed when ``[access] export_days`` pass
    "exports", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("external_id", String(300), nullable=False, index=True),
    Column("pseudonym", String(40), nullable=False),
    Column("path", Text, nullable=False),
    Column("made", Date, nullable=False),
    Column("expires", Date, nullable=False, index=True),
    Column("removed", String(40)),
    Column("by", String(200), nullable=False),
)

acl_applied = Table(
    # the access the connector last set in the DMS, per dossier part, and the next day on which
    # the calendar alone changes it (a 16th birthday, a grant starting or ending)
    "acl_applied", metadata,
    Column("external_id", String(300), primary_key=True),
    Column("part", String(32), primary_key=True),
    Column("fingerprint", String(64), nullable=False),
    Column("principals", Text, nullable=False),  # JSON: the pseudonymous principals (role:, guardian:, ...)
    Column("applied", String(40), nullable=False),
    Column("next_change", Date, index=True),
    Column("waiting", Text),  # JSON: principals with a right but no linked DMS account
)

accounts = Table(
    # a person's account in the DMS, linked by a person: the pupil's own ("pupil")
    "accounts", metadata,
    Column("external_id", String(300), primary_key=True),
    Column("principal", String(40), primary_key=True),
    Column("account", String(200), nullable=False),
    Column("by", String(200), nullable=False),
    Column("at", String(40), nullable=False),
)

staging_access = Table(
    # access facts of this run's snapshot, only for dossiers whose recorded ones differ
    "staging_access", metadata,
    Column("run_id", Integer, nullable=False, index=True),
    Column("external_id", String(300), nullable=False),
    Column("pseudonym", String(40), nullable=False),
    Column("fingerprint", String(64), nullable=False),
    Column("payload", Text, nullable=False),
)

cursors = Table(
    # "run:<id>": how far an unfinished run has staged its snapshot (written in the same
    # transaction as the staged rows); "applied:<source key>": the cursor of the last run that
    # was applied completely (a source may ask for changes since then).
    "cursors", metadata,
    Column("key", String(120), primary_key=True),
    Column("value", Text, nullable=False),
    Column("updated", String(40), nullable=False),
)

OPEN = ("new", "sent", "failed")
"""Journal statuses of rows not yet finished: the ones a run resumes or supersedes."""
OPEN_SQL = "status IN ({})".format(", ".join(f"'{st}'" for st in OPEN))

journal = Table(
    "journal", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("run_id", Integer, nullable=False),  # not indexed: nothing reads the journal by run
    Column("kind", String(32), nullable=False),
    Column("external_id", String(300), nullable=False),
    Column("target", String(300), nullable=False, index=True),
    Column("pseudonym", String(40), nullable=False),
    Column("payload", Text, nullable=False),
    Column("status", String(12), nullable=False),  # JournalStatus (MOVES["journal"])
    Column("attempts", Integer, nullable=False, default=0),
    Column("ref_id", String(300)),
    Column("error", Text),
    Column("dup_pgn", String(64)),
    Column("dup_nb", String(64)),
    Column("updated", String(40), nullable=False),
    # only the unfinished rows: the ones a run looks for. Done and superseded rows, nearly all
    # of a journal kept for years, have no entry, and marking a row done writes none.
    Index("ix_journal_open", "status", postgresql_where=text(OPEN_SQL), sqlite_where=text(OPEN_SQL)),
)

dismissed = Table(
    "duplicate_dismissals", metadata,
    Column("a", String(40), primary_key=True),
    Column("b", String(40), primary_key=True),
    Column("by", String(200), nullable=False),
    Column("at", String(40), nullable=False),
)

aliases = Table(
    # another LAS key of the same child: its records keep the dossier of ``external_id`` current
    "aliases", metadata,
    Column("pseudonym", String(40), primary_key=True),  # the other key's pseudonym
    Column("external_id", String(300), nullable=False, index=True),  # the dossier it belongs to
    Column("kind", String(8), nullable=False),  # link (a person) | rekey (a change of LAS) | eckid
    Column("by", String(200), nullable=False),
    Column("at", String(40), nullable=False),
    Column("used_run", Integer),  # the first applied sync that kept the dossier current from it
)

audit_log = Table(
    "audit", metadata,
    Column("seq", Integer, primary_key=True),
    Column("at", String(40), nullable=False),
    Column("actor", String(200), nullable=False),
    Column("action", String(64), nullable=False),
    Column("subject", String(64)),
    Column("details", Text, nullable=False),
    Column("prev", String(64), nullable=False),
    Column("hash", String(64), nullable=False),
    Index("audit_subject", "subject"),
)

audit_head = Table(
    "audit_head", metadata,
    Column("id", Integer, primary_key=True),
    Column("seq", Integer, nullable=False),
    Column("hash", String(64), nullable=False),
    Column("mac", String(64)),  # keyed over (seq, hash): the head cannot be rewound without the key
)


BASELINE = "0001"


OPEN_LIST = ("draft", "approving", "approved")
"""A list in one of these statuses may still remove documents."""
OPEN_ITEM = ("listed", "sent", "failed")
"""An approved item in one of these statuses is still to be removed."""


# -- the statuses rows move through, and the moves allowed (checked on every write) ---------------
class JournalStatus(StrEnum):
    NEW = "new"  # planned, committed before the DMS is called
    SENT = "sent"  # about to be handed to the DMS
    DONE = "done"  # the DMS confirmed it; what it holds is recorded
    FAILED = "failed"  # it failed; the next run tries again
    SUPERSEDED = "superseded"  # a newer operation on the same target was done: never replayed
    SKIPPED = "skipped"  # a guarded removal the gate held back: never sent


class ListStatus(StrEnum):
    BUILDING = "building"  # items being written
    DRAFT = "draft"  # waits for approvals
    EMPTY = "empty"  # nothing was due
    PREVIEW = "preview"  # made for a later date: never approved
    APPROVING = "approving"  # some of the approvals it needs
    APPROVED = "approved"
    REJECTED = "rejected"  # every item was rejected
    EXECUTED = "executed"  # every approved item is removed or skipped
    CANCELLED = "cancelled"
    SENT_BACK = "sent_back"  # an approver sent it back with a comment; its items go on a new list


class ItemStatus(StrEnum):
    LISTED = "listed"
    SENT = "sent"
    FAILED = "failed"
    DESTROYED = "destroyed"  # removed in the DMS (a purge later sets purged_at, not the status)
    SKIPPED = "skipped"  # the gate held it back (a later list offers the document again)


class DocumentStatus(StrEnum):
    PRESENT = "present"
    TRASHED = "trashed"  # in the DMS's trash, until purged
    DESTROYED = "destroyed"
    GONE = "gone"  # no longer found in the DMS (removed by another route)
    TRANSFERRING = "transferring"  # an earlier version's removal at the source after a transfer
    TRANSFERRED = "transferred"


class RequestStatus(StrEnum):
    OPEN = "open"
    CLOSED = "closed"


MOVES: dict[str, dict[str, frozenset[str]]] = {
    "journal": {
        "new": frozenset({"sent", "done", "failed", "superseded", "skipped"}),
        "sent": frozenset({"sent", "done", "failed", "new", "skipped", "superseded"}),
        "failed": frozenset({"failed", "sent", "superseded", "skipped"}),
        "done": frozenset(), "superseded": frozenset(), "skipped": frozenset(),
    },
    "list": {
        "building": frozenset({"draft", "empty", "preview"}),
        "draft": frozenset({"approving", "approved", "rejected", "cancelled", "sent_back"}),
        "approving": frozenset({"approving", "approved", "rejected", "cancelled", "sent_back"}),
        "approved": frozenset({"executed", "cancelled"}),
        "empty": frozenset({"cancelled"}), "preview": frozenset({"cancelled"}),
        "executed": frozenset({"executed"}), "rejected": frozenset(), "cancelled": frozenset(),
        "sent_back": frozenset(),
    },
    "item": {
        "listed": frozenset({"sent", "failed", "destroyed", "skipped"}),
        "sent": frozenset({"sent", "failed", "destroyed", "skipped"}),
        "failed": frozenset({"failed", "sent", "destroyed", "skipped"}),
        "destroyed": frozenset(), "skipped": frozenset({"skipped"}),  # a repeated hold-back keeps its reason
    },
    "document": {
        "present": frozenset({"trashed", "destroyed", "gone", "transferring"}),
        "trashed": frozenset({"destroyed"}),
        "transferring": frozenset({"transferred", "trashed", "destroyed"}),
        "transferred": frozenset({"destroyed"}),
        "destroyed": frozenset(), "gone": frozenset(),
    },
    "request": {"open": frozenset({"closed"}), "closed": frozenset()},
}
"""For each state machine, status -> the statuses a row may move to from it. A write names its
target; ``sources`` gives the statuses it may come from, and a write that finds its row in
another status is refused (``InvalidState``) instead of rewriting it. A status with no moves is
final: a done operation is never replayed, a destroyed item never listed again."""

MACHINES: dict[str, type[StrEnum]] = {"journal": JournalStatus, "list": ListStatus, "item": ItemStatus,
                                      "document": DocumentStatus, "request": RequestStatus}


def sources(machine: str, target: str) -> tuple[str, ...]:
    """The statuses of MACHINE from which a row may move to TARGET."""
    return tuple(sorted(s for s, moves in MOVES[machine].items() if target in moves))
