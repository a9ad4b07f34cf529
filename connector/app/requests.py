"""The use cases of a data subject's requests (AVG art. 12-17: inspection, copy, correction,
erasure) and of the copies made for them: register with its term and hold, extend once, close
with the outcome, list by deadline, and export what the requester may see. Each change runs in
one transaction with its audit entry."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from connector import acl, inspection, rights
from connector.access import access_list
from connector.app import pupils
from connector.app.context import App
from connector.errors import ConfigError, InvalidState, NotFound
from connector.inspection import EXPORT_FOLDER, ExportResult
from connector.rights import KINDS, OUTCOMES
from connector.state import DossierRow

__all__ = ["EXPORT_FOLDER", "KINDS", "OUTCOMES", "Exported", "close_request", "export_for", "extend_request",
           "list_requests", "open_request", "record_export"]


def open_request(app: App, by: str, row: DossierRow, kind: str, requester: str,
                 received: date) -> tuple[int, date, int]:
    """Register a request about a pupil's dossier: (request id, answer-by date, hold id). The
    dossier is on hold until the request is closed."""
    return rights.open_request(app.state, app.audit, row, kind, requester, received, by)


def extend_request(app: App, by: str, request_id: int, reason: str, today: date) -> date:
    """Extend an open request's term by two months (AVG art. 12(3)): once, before it runs out."""
    req = _open(app, request_id)
    if req["extended_reason"]:
        raise InvalidState(f"request {request_id} was extended already; the law allows two months once")
    if today > req["due"]:
        raise InvalidState(f"request {request_id} is overdue since {req['due'].isoformat()}; it can no longer be "
                           "extended")
    due = rights.extended_due(req["received"])
    with app.state.transaction() as conn:
        app.state.update_request(conn, request_id, due=due, extended_reason=reason)
        app.audit.append(conn, by, "request.extended", req["pseudonym"],
                         {"request": request_id, "due": due.isoformat(), "reason": reason})
    return due


def close_request(app: App, by: str, request_id: int, outcome: str, note: str, today: date,
                  comment: Path | None = None, concerns: str | None = None) -> None:
    """Close an open request with its outcome; the hold it placed is lifted. A correction refused
    (wholly or partly) may keep the requester's written view (``comment``, a file) in the
    dossier, as a document of ``[access] correction_comment_class``, beside the disputed
    document ``concerns`` (a document of the same dossier) where one is named."""
    req = _open(app, request_id)
    refused_correction = req["kind"] == "correction" and outcome in ("refused", "partly")
    if comment is not None and not refused_correction:
        raise InvalidState("--comment is for a correction that is refused (wholly or partly)")
    if concerns is not None and comment is None:
        raise InvalidState("--concerns names the disputed document of a --comment")
    if concerns is not None and concerns not in {d["id"] for d in app.state.dossier_documents(req["external_id"])}:
        raise NotFound("the disputed document is not a document of this dossier")
    if comment is not None:
        _keep_comment(app, req, comment, by, concerns)
    rights.close_request(app.state, app.audit, req, outcome, note, by, today)


def _open(app: App, request_id: int) -> dict[str, Any]:
    req = app.state.request(request_id)
    if req is None or req["status"] != "open":
        raise NotFound(f"no open request {request_id}")
    return req


def _keep_comment(app: App, req: dict[str, Any], comment: Path, by: str, concerns: str | None) -> None:
    """Store the requester's view as a document of the configured class, tagged and with access."""
    doc_class = app.loaded.config.access.correction_comment_class
    if doc_class not in app.mapping.classes:
        raise ConfigError(f"access.correction_comment_class {doc_class!r} is not a class of the mapping")
    rows = app.state.dossier_rows([req["external_id"]])
    if not rows or rows[0].ref_id is None:
        raise NotFound("the dossier is not in the DMS")
    with app.open_store() as store:
        link = {"concerns": concerns} if concerns else {}
        app.store_document(store, rows[0], doc_class, comment, by, app.schedule(), {"request": req["id"], **link},
                           metadata=link)


def list_requests(app: App, everything: bool, today: date) -> list[dict[str, Any]]:
    """The open requests (``everything``: closed ones too) with their deadlines; those near the
    term (``[access] request_warn_days``) and overdue ones flagged."""
    warn = app.loaded.config.access.request_warn_days
    return rights.request_rows(app.state, None if everything else "open", warn, today)


@dataclass(frozen=True)
class Exported:
    result: ExportResult
    days: int
    """Days after which the copy is removed (``[access] export_days``)."""


def export_for(app: App, by: str, row: DossierRow, purpose: str, requester: str, request_id: int | None,
               folder: Path, today: date) -> Exported:
    """Write what ``requester`` (a guardian's g-... key or ``pupil``) may see of a dossier to a
    ZIP with a Dutch index; documents holding other people's data or without a class are
    listed as withheld, an open correction request is named. The copy is recorded, audited and
    removed after ``[access] export_days``; expired copies are removed first."""
    principal = "pupil" if requester == "pupil" else f"guardian:{requester}"
    if request_id is not None:
        problem = _request_problem(app.state.request(request_id), row, requester)
        if problem:
            raise InvalidState(f"request {request_id}: {problem}")
    entries, _ = access_list(acl.facts_of(app.state, row)[0], app.access_policy(), today)
    parts = inspection.entitled(entries, principal)
    if not parts:
        raise InvalidState(f"{requester} has no right of inspection or information on {row.pseudonym} today "
                           "(see 'leerdossier access show')")
    inspection.remove_expired(app.state, app.audit, today, by)
    corrections = [r for r in app.state.requests("open", row.external_id) if r["kind"] == "correction"]
    child = pupils.named_child(app, row)
    with app.open_store() as store:
        result = inspection.export(store, app.mapping, row, parts, app.loaded.resolve(str(folder)), today,
                                   requester, corrections, child)
    record_export(app, by, row, result.file, today, {
        "for": purpose, "on_behalf": requester, "request": request_id, "parts": sorted(parts),
        "documents": result.documents, "withheld": len(result.withheld),
        "open_corrections": result.open_corrections, "child_named": "naam" in child,
        "reason": f"{purpose} request" + (f" {request_id}" if request_id else "")})
    return Exported(result, app.loaded.config.access.export_days)


def _request_problem(req: dict[str, Any] | None, row: DossierRow, requester: str) -> str | None:
    """Why a request cannot be the basis of this export, or None."""
    if req is None:
        return "no such request"
    if req["external_id"] != row.external_id:
        return f"it is not a request about {row.pseudonym}"
    if req["status"] != "open":
        return "it is closed"
    if req["kind"] not in ("inspection", "copy"):
        return f"it is a {req['kind']} request, not one for inspection or a copy"
    asked = str(req["requester"])
    if (asked == "pupil" or asked.startswith("g-")) and asked != requester:
        return f"it was made by {asked}, not by {requester}"
    return None


def record_export(app: App, by: str, row: DossierRow, file: str, today: date, details: dict[str, Any]) -> int:
    """Keep track of a copy made for a data subject (removed after ``[access] export_days``)
    and audit it; returns its id."""
    days = app.loaded.config.access.export_days
    with app.state.transaction() as conn:
        export_id = app.state.record_export(conn, row, file, today, today + timedelta(days=days), by)
        app.audit.append(conn, by, "dossier.exported", row.pseudonym,
                         details | {"export": export_id, "removed_after_days": days})
    return export_id
