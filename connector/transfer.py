"""The onderwijskundig rapport (OKR) and transfers of dossier parts.

The LAS sends the OKR to the receiving school (through OSO); the connector records that it was
sent (date, receiving BRIN) and checks that the dossier shows the parents were informed, as the
law requires: a document of the configured evidence class. Without it the transfer is recorded
as ``incomplete`` (not ``transferred``) and reported until the evidence is there.

``export_part`` copies a dossier part to a destination folder or another DMS with a manifest
and verifies every copy against its SHA-256 (the destination's receipt). A transfer may copy
anything, blocked classes included. Removing the copies at the source is a destruction: when
asked, it makes a transfer list of the verified copies that the one due rule lets go, which is
approved and executed like any destruction list (``connector.destruction``), with the receiving
party and the verification on its certificate. All is audited.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any, Protocol

from connector import destruction
from connector.audit import AuditLog
from connector.clock import Clock
from connector.errors import ConfigError, StoreError
from connector.mapping import Mapping
from connector.model import DocumentRef, DossierRef
from connector.ports import DocumentStore
from connector.retention import Schedule
from connector.state import DossierRow, StateStore
from connector.users import User


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
        state.record_transfer(conn, row, "okr", on, receiving, None, status, detail, by)
        audit.append(conn, by, "okr.sent", row.pseudonym, {"on": on.isoformat(), "receiving": receiving,
                                                           "status": status, "missing": missing})
    return {"record": row.pseudonym, "status": status, "missing": missing, **check}


def incomplete_okrs(store: DocumentStore, state: StateStore, mapping: Mapping, okr_class: str,
                    evidence_class: str) -> list[dict[str, Any]]:
    """OKR transfers still missing their evidence, re-checked against the DMS now."""
    rows = state.transfers_of_kind("okr")
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
    """Always 0 here: removal at the source happens when the transfer list is executed."""
    held: bool = False
    transfer_list: int | None = None
    """The list of copies to remove at the source, once approved (``--remove-at-source``)."""
    listed: int = 0
    kept: list[dict[str, str]] = field(default_factory=list)
    """Verified copies that stay at the source too, and why (not due, blocked, on hold...)."""
    failed: list[dict[str, str]] = field(default_factory=list)
    pupil_not_named: str | None = None
    """Why the manifest could not name the pupil (the LAS no longer holds them, or was not read)."""

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


class Destination(Protocol):
    """Where a transferred dossier part goes. ``put`` stores one document and returns True only
    when the copy was read back and matches (the destination's receipt)."""

    label: str

    def put(self, row: DossierRow, doc: DocumentRef, doc_class: str | None, content: bytes) -> bool: ...

    def finish(self, row: DossierRow, part: str, about: dict[str, Any]) -> None:
        """The part is complete: ``about`` says whose dossier it is, for the receiving party."""
        ...


class FolderDestination:
    """A folder per pupil and part, with a Dutch manifest (``manifest.json``): whose dossier it
    is, as ``[transfer] manifest`` allows, and every document with its SHA-256 sum."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.label = str(folder)
        self._manifest: list[dict[str, Any]] = []

    def put(self, row: DossierRow, doc: DocumentRef, doc_class: str | None, content: bytes) -> bool:
        target = self.folder / row.pseudonym / doc.part
        target.mkdir(parents=True, exist_ok=True)
        suffix = "".join(c for c in Path(doc.name).suffix if c.isalnum() or c == ".")[:10]
        path = target / f"{doc.id}{suffix}"
        tmp = path.with_suffix(path.suffix + ".part")
        with open(tmp, "wb") as fh:
            fh.write(content)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
        digest = hashlib.sha256(content).hexdigest()
        self._manifest.append({"document": doc.id, "bestand": path.name, "soort": doc_class, "naam": doc.name,
                               "sha256": digest})
        return hashlib.sha256(path.read_bytes()).hexdigest() == digest

    def finish(self, row: DossierRow, part: str, about: dict[str, Any]) -> None:
        target = self.folder / row.pseudonym / part
        target.mkdir(parents=True, exist_ok=True)
        path = target / "manifest.json"
        path.write_text(json.dumps(about | {"deel": part, "documenten": self._manifest}, indent=2,
                                   ensure_ascii=False) + "\n", encoding="utf-8")
        os.chmod(path, 0o600)


class StoreDestination:
    """Another DMS (any DocumentStore adapter): the dossier is found or created there by the same
    external id; a document already copied (same source id in its metadata) is not copied twice."""

    def __init__(self, store: DocumentStore, state: StateStore, label: str) -> None:
        self.store = store
        self.state = state
        self.label = label

    def put(self, row: DossierRow, doc: DocumentRef, doc_class: str | None, content: bytes) -> bool:
        ref = self.store.find_dossier(row.external_id)
        if ref is None:
            recorded = self.state.recorded(row.external_id)
            if recorded is None or recorded.spec is None:
                raise ConfigError(f"{row.pseudonym}: no recorded dossier to create at the destination")
            ref = self.store.create_dossier(recorded.spec)
        copy = next((d for d in self.store.documents(ref) if d.metadata.get("source_document") == doc.id), None)
        if copy is None:
            meta = {k: v for k, v in doc.metadata.items() if not k.startswith("retention_")}
            copy = self.store.add_document(ref, doc.part, doc_class, doc.name, io.BytesIO(content),
                                           meta | {"source_document": doc.id})
        return hashlib.sha256(self.store.read(copy)).hexdigest() == hashlib.sha256(content).hexdigest()

    def finish(self, row: DossierRow, part: str, about: dict[str, Any]) -> None:
        return None  # the other DMS files the dossier under its own external id


def export_part(store: DocumentStore, state: StateStore, audit: AuditLog, mapping: Mapping, row: DossierRow,
                part: str, destination: Destination, remove_at_source: bool, by: User, schedule: Schedule,
                clock: Clock, required: int = 1, about: dict[str, Any] | None = None) -> ExportReport:
    """Copy a dossier part to the destination and verify every copy; with ``remove_at_source``,
    make a transfer list of the verified copies the due rule lets go (removed only once it is
    approved and executed, through the destruction gate). ``about``: whose dossier it is, for
    the receiving party's manifest (the audit entry names only which fields it carried)."""
    about = about if about is not None else {"leerling": {"pseudoniem": row.pseudonym}}
    by.require("transfer")
    if part not in {p.code for p in mapping.parts}:
        raise ConfigError(f"unknown part {part!r}")
    report = ExportReport(record=row.pseudonym, part=part, destination=destination.label,
                          pupil_not_named=("the LAS no longer holds the pupil, or could not be read"
                                           if "niet_gevonden" in about["leerling"] else None))
    report.held = state.on_hold(row.external_id, part)
    ref = DossierRef(id=row.ref_id or "", external_id=row.external_id)
    docs = [d for d in store.documents(ref) if d.part == part]
    verified: dict[str, str] = {}
    for doc in docs:
        try:
            content = store.read(doc)
            confirmed = destination.put(row, doc, mapping.classify(doc), content)
        except StoreError as exc:
            report.failed.append({"document": doc.id, "error": str(exc)})
            continue
        report.copied += 1
        if confirmed:
            report.verified += 1
            verified[doc.id] = hashlib.sha256(content).hexdigest()
        else:
            report.failed.append({"document": doc.id, "error": "the copy at the destination does not match"})
    destination.finish(row, part, about)
    status = "transferred" if report.verified == len(docs) and not report.failed else "failed"
    if remove_at_source and verified:
        report.transfer_list, report.kept = destruction.create_transfer_list(
            state, audit, schedule, row.external_id, verified, destination.label, by, clock, required)
        report.listed = len(verified) - len(report.kept)
    with state.transaction() as conn:
        state.record_transfer(conn, row, "export", clock.today(), destination.label, part, status,
                              json.dumps({k: v for k, v in report.as_dict().items() if k not in ("failed", "kept")}),
                              by.name)
        audit.append(conn, by.name, "dossier.part.exported", row.pseudonym, {
            "part": part, "destination": destination.label, "copied": report.copied, "verified": report.verified,
            "transfer_list": report.transfer_list, "listed": report.listed, "held": report.held,
            "status": status, "manifest": sorted(f"{name}.{k}" for name, section in about.items()
                                                 if isinstance(section, dict) for k in section)} | clock.stamp())
    return report
