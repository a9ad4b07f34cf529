"""Keep every document's retention tag current, in the DMS and in the state store.

For each dossier: read the pupil's facts, list the documents the DMS holds (including those
added by other routes), classify the ones without a class by the mapping's rules, compute the
tag (``retention.tag``) and write it where it differs. Writes go through the journal like every
other DMS change; unchanged tags cost no DMS write.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from connector.audit import AuditLog
from connector.errors import StoreError
from connector.execute import Executor, Outcome, RetryPolicy
from connector.mapping import Mapping
from connector.model import DossierRef, Operation, RetentionTag
from connector.ports import DocumentStore
from connector.retention import Schedule, tag, tag_json_cached
from connector.state import DossierRow, StateStore

log = logging.getLogger("leerdossier.tagging")


@dataclass
class TagReport:
    dossiers: int = 0
    documents: int = 0
    tagged: int = 0
    unchanged: int = 0
    dms_writes: int = 0
    unclassified: list[dict[str, str]] = field(default_factory=list)
    gone: int = 0
    failed: list[dict[str, str]] = field(default_factory=list)

    def add(self, outcome: Outcome) -> None:
        self.tagged += outcome.tagged
        self.dms_writes += outcome.dms_writes
        self.failed.extend(outcome.failed)

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def refresh(store: DocumentStore, state: StateStore, audit: AuditLog, schedule: Schedule, mapping: Mapping,
            run_id: int, actor: str, external_ids: list[str] | None = None, retry: RetryPolicy | None = None,
            progress: Callable[[str, int], None] | None = None) -> TagReport:
    """Recompute and write the tags of the given dossiers (all when None)."""
    executor = Executor(store, state, audit, actor, retry)
    report = TagReport()
    for row in state.dossier_rows(external_ids):
        if row.ref_id is None:
            continue
        try:
            _refresh_dossier(store, state, schedule, mapping, executor, run_id, row, report)
        except StoreError as exc:
            report.failed.append({"record": row.pseudonym, "operation": "list documents", "error": str(exc)})
        report.dossiers += 1
        if progress:
            progress("tag", report.dossiers)
    for item in report.unclassified:
        log.warning("document not classified; longest period applied", extra=item)
    return report


def _refresh_dossier(store: DocumentStore, state: StateStore, schedule: Schedule, mapping: Mapping,
                     executor: Executor, run_id: int, row: DossierRow, report: TagReport) -> None:
    facts = state.facts_for(row.external_id, row.departure)
    recorded = state.document_tags(row.external_id)
    ref = DossierRef(id=row.ref_id or "", external_id=row.external_id)
    ops: list[tuple[Operation, str | None, str | None]] = []
    seen: set[str] = set()
    for doc in store.documents(ref):
        seen.add(doc.id)
        report.documents += 1
        t = tag(facts, mapping.classify(doc), schedule)
        if t.unclassified:
            report.unclassified.append({"record": row.pseudonym, "document": doc.id})
        if _carries(doc.metadata, t) and recorded.get(doc.id, (None, ""))[0] == t.model_dump_json():
            report.unchanged += 1
            continue
        if _carries(doc.metadata, t):
            with state.transaction() as conn:  # the DMS has it already; only the state was behind
                state.record_document(conn, row.external_id, doc, t)
            report.unchanged += 1
            continue
        ops.append((Operation(kind="tag_document", external_id=row.external_id, pseudonym=row.pseudonym,
                              document=doc, tag=t), None, None))
    report.add(executor.run(run_id, ops))
    gone = [doc_id for doc_id, (_tag, status) in recorded.items() if status == "present" and doc_id not in seen]
    if gone:
        with state.transaction() as conn:
            state.mark_gone(conn, gone)
        report.gone += len(gone)


def _carries(metadata: dict[str, str], t: RetentionTag) -> bool:
    return all(metadata.get(k) == v for k, v in t.metadata().items())


@dataclass
class RecomputeReport:
    documents: int = 0
    changed: int = 0
    dossiers: list[str] = field(default_factory=list, repr=False)
    """External ids of dossiers with a changed tag (internal; never printed)."""

    def as_dict(self) -> dict[str, Any]:
        return {"documents": self.documents, "changed": self.changed, "dossiers": len(self.dossiers)}


def recompute(state: StateStore, schedule: Schedule, page: int = 20_000) -> RecomputeReport:
    """Recompute every recorded document's tag from the state alone (no DMS call), store the
    changed ones, and name the dossiers whose DMS metadata must follow (``refresh`` them)."""
    report = RecomputeReport()
    changed_dossiers: set[str] = set()
    for rows, facts in state.present_documents(page=page):
        updates = []
        for r in rows:
            report.documents += 1
            t, text = tag_json_cached(facts[r.external_id], r.doc_class, schedule)
            if text != r.tag:
                updates.append({"id": r.id, "category": t.category, "kind": t.kind, "due": t.due,
                                "blocked": int(t.blocked), "unclassified": int(t.unclassified), "basis": t.basis,
                                "tag": text})
                changed_dossiers.add(r.external_id)
        if updates:
            with state.transaction() as conn:
                state.retag_many(conn, updates)
            report.changed += len(updates)
    report.dossiers = sorted(changed_dossiers)
    return report
