"""Data subjects' requests (AVG art. 12, 15-17): deadlines and their state (pure), and
opening and closing a request with the hold it places.

A request is answered within one month of receipt; the term may be extended by two further
months, with a reason given to the requester (AVG art. 12(3)). ``status`` and the completeness
report flag a request from four weeks on; an open request holds the dossier (no destruction).
"""

from __future__ import annotations

from datetime import date
from typing import Any, Literal

from connector.audit import AuditLog
from connector.dates import add_months
from connector.state import DossierRow, StateStore

RequestKind = Literal["inspection", "copy", "correction", "erasure"]
KINDS: tuple[str, ...] = ("inspection", "copy", "correction", "erasure")
OUTCOMES: tuple[str, ...] = ("granted", "partly", "refused", "withdrawn")


def first_due(received: date) -> date:
    return add_months(received, 1)


def extended_due(received: date) -> date:
    return add_months(received, 3)


def state(received: date, due: date, today: date, warn_days: int) -> Literal["ok", "due soon", "overdue"]:
    if today > due:
        return "overdue"
    if (today - received).days >= warn_days or (due - today).days <= 3:
        return "due soon"
    return "ok"


def open_request(state: StateStore, audit: AuditLog, row: DossierRow, kind: str, requester: str, received: date,
                 by: str) -> tuple[int, date, int]:
    """Register a request; the dossier goes on hold in the same transaction (no destruction
    while it is open). Returns (request id, due date, hold id)."""
    due = first_due(received)
    with state.transaction() as conn:
        hold_id = state.add_hold(conn, row, None, f"open {kind} request", by)
        request_id = state.open_request(conn, row, kind, requester, received, due, hold_id, by)
        audit.append(conn, by, "request.opened", row.pseudonym,
                     {"request": request_id, "kind": kind, "requester": requester,
                      "received": received.isoformat(), "due": due.isoformat(), "hold": hold_id})
    return request_id, due, hold_id


def close_request(state: StateStore, audit: AuditLog, req: dict[str, Any], outcome: str, note: str, by: str,
                  today: date) -> None:
    """Close a request and lift the hold it placed, in one transaction."""
    with state.transaction() as conn:
        state.update_request(conn, req["id"], status="closed", outcome=outcome, closed=today)
        if req["hold_id"] is not None:
            state.remove_hold(conn, req["hold_id"], by, f"request {req['id']} closed ({outcome})")
        audit.append(conn, by, "request.closed", req["pseudonym"],
                     {"request": req["id"], "outcome": outcome, "note": note, "late": today > req["due"],
                      "hold_lifted": req["hold_id"]})


def request_rows(store: StateStore, status: str | None, warn_days: int, today: date) -> list[dict[str, Any]]:
    """Requests as reports show them (pseudonymous), each with its deadline state."""
    return [{"request": r["id"], "record": r["pseudonym"], "kind": r["kind"], "requester": r["requester"],
             "received": r["received"].isoformat(), "due": r["due"].isoformat(), "status": r["status"],
             "extended": r["extended_reason"] is not None, "outcome": r["outcome"],
             "closed": r["closed"].isoformat() if r["closed"] else None,
             "state": state(r["received"], r["due"], today, warn_days) if r["status"] == "open" else "closed"}
            for r in store.requests(status)]
