"""The onderwijskundig rapport (OKR) and transfers of dossier parts.

The LAS sends the OKR to the receiving school (through OSO); the connector records that it was
sent (date, receiving BRIN) and checks that the dossier shows the parents were informed, as the
law requires: a document of the configured evidence class. Without it the transfer is recorded
as ``incomplete`` (not ``transferred``) and reported until the evidence is there.

``export_part`` copies a dossier part to a destination folder with a manifest, verifies every
copy against its SHA-256 (the destination's receipt), and only then, when asked, removes the
documents at the source through the DMS's own delete. Holds are respected; all is audited.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from sqlalchemy import insert, select

from connector.audit import AuditLog
from connector.errors import ConfigError, StoreError
from connector.mapping import Mapping
from connector.model import DossierRef
from connector.ports import DocumentStore
from connector.state import DossierRow, StateStore, documents, now, transfers


def okr_status(store: DocumentStore, mapping: Mapping, row: DossierRow, okr_class: str,
               evidence_class: str) -> dict[str, bool]:
    ref = DossierRef(id=row.ref_id or "", external_id=row.external_id)
    classes = {mapping.classify(d) for d in store.documents(ref)}
    return {"okr_present": okr_class in classes, "parents_informed": evidence_class in classes}


def record_okr(store: DocumentStore, state: StateStore, audit: AuditLog, mapping: Mapping, row: DossierRow,
               on: date, receiving: str, by: str, okr_class: str, evidence_class: str) -> dict[str, Any]:
    check = okr_status(store, mapping, row, okr_class, evidence_class)
    missing = [name for name, ok in (("onderwijskundig rapport", check["okr_present"]),
                                     ("bewijs dat ouders zijn geïnformeerd", check["parents_informed"])) if not ok]
    status = "transferred" if not missing else "incomplete"
    detail = ("missing in the dossier: " + ", ".join(missing)) if missing else None
    with state.transaction() as conn:
        conn.execute(insert(transfers).values(external_id=row.external_id, pseudonym=row.pseudonym, kind="okr",
                                              on=on, receiving=receiving, part=None, status=status, detail=detail,
                                              by=by, at=now()))
        audit.append(conn, by, "okr.sent", row.pseudonym, {"on": on.isoformat(), "receiving": receiving,
                                                           "status": status, "missing": missing})
    return {"record": row.pseudonym, "status": status, "missing": missing, **check}


def incomplete_okrs(store: DocumentStore, state: StateStore, mapping: Mapping, okr_class: str,
                    evidence_class: str) -> list[dict[str, Any]]:
    """OKR transfers still missing their evidence, re-checked against the DMS now."""
    with state.engine.connect() as conn:
        rows = conn.execute(select(transfers).where(transfers.c.kind == "okr")
                            .order_by(transfers.c.id)).mappings().all()
    latest: dict[str, dict[str, Any]] = {}
    for mapping_row in rows:
        latest[mapping_row["external_id"]] = dict(mapping_row)
    out = []
    for external_id, r in latest.items():
        found = state.dossier_rows([external_id])
        if not found:
            continue
        check = okr_status(store, mapping, found[0], okr_class, evidence_class)
        if not (check["okr_present"] and check["parents_informed"]):
            out.append({"record": r["pseudonym"], "sent": r["on"], "receiving": r["receiving"], **check})
    return out


@dataclass
class ExportReport:
    record: str
    part: str
    destination: str
    copied: int = 0
    verified: int = 0
    removed: int = 0
    held: bool = False
    failed: list[dict[str, str]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def export_part(store: DocumentStore, state: StateStore, audit: AuditLog, mapping: Mapping, row: DossierRow,
                part: str, destination: Path, remove_at_source: bool, by: str, on: date) -> ExportReport:
    if part not in {p.code for p in mapping.parts}:
        raise ConfigError(f"unknown part {part!r}")
    report = ExportReport(record=row.pseudonym, part=part, destination=str(destination))
    if remove_at_source and state.on_hold(row.external_id, part):
        report.held = True
        remove_at_source = False  # a hold stops every deletion path; the copy is still made
    target = destination / row.pseudonym / part
    target.mkdir(parents=True, exist_ok=True)
    ref = DossierRef(id=row.ref_id or "", external_id=row.external_id)
    docs = [d for d in store.documents(ref) if d.part == part]
    manifest: list[dict[str, Any]] = []
    for doc in docs:
        try:
            content = store.read(doc)
        except StoreError as exc:
            report.failed.append({"document": doc.id, "error": str(exc)})
            continue
        digest = hashlib.sha256(content).hexdigest()
        suffix = "".join(c for c in Path(doc.name).suffix if c.isalnum() or c == ".")[:10]
        path = target / f"{doc.id}{suffix}"
        tmp = path.with_suffix(path.suffix + ".part")
        with open(tmp, "wb") as fh:
            fh.write(content)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
        report.copied += 1
        manifest.append({"document": doc.id, "file": path.name, "class": mapping.classify(doc), "name": doc.name,
                         "sha256": digest})
    (target / "manifest.json").write_text(json.dumps({"record": row.pseudonym, "part": part, "documents": manifest},
                                                     indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    # the receipt: every copy read back and compared before anything is removed at the source
    confirmed = {m["document"] for m in manifest
                 if hashlib.sha256((target / m["file"]).read_bytes()).hexdigest() == m["sha256"]}
    report.verified = len(confirmed)
    status = "transferred" if report.verified == len(docs) and not report.failed else "failed"
    if remove_at_source and status == "transferred":
        for doc in docs:
            try:
                store.destroy(doc)
            except StoreError as exc:
                report.failed.append({"document": doc.id, "error": str(exc)})
                continue
            report.removed += 1
            with state.transaction() as conn:
                conn.execute(documents.update().where(documents.c.id == doc.id)
                             .values(status="transferred", updated=now()))
                audit.append(conn, by, "document.transferred", row.pseudonym,
                             {"document": doc.id, "part": part, "removed_at_source": True})
    with state.transaction() as conn:
        conn.execute(insert(transfers).values(
            external_id=row.external_id, pseudonym=row.pseudonym, kind="export", on=on, receiving=str(destination),
            part=part, status=status, detail=json.dumps({k: v for k, v in report.as_dict().items() if k != "failed"}),
            by=by, at=now()))
        audit.append(conn, by, "dossier.part.exported", row.pseudonym, {
            "part": part, "copied": report.copied, "verified": report.verified, "removed": report.removed,
            "held": report.held, "status": status})
    return report
