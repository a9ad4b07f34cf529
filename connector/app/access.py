"""Use cases on who may see a dossier: guardians recorded by a person, grants, the pupil's own
account, requests' terms and the copies made for data subjects. Each runs in one transaction
with its audit entry; a change a person makes is applied in the DMS at once (``apply_now``)."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from connector import rights
from connector.app.context import App
from connector.errors import InvalidState, NotFound
from connector.state import DossierRow


def record_view(app: App, by: str, pseudonym: str, what: str, reason: str) -> None:
    """The audit entry for one view of a pupil's data, who looked, at what and why (a trace,
    not a change to the dossier)."""
    app.audit.record(by, "dossier.viewed", pseudonym, {"what": what, "reason": reason})


def apply_now(app: App, row: DossierRow, by: str) -> dict[str, Any] | None:
    """Apply the dossier's access in the DMS now (None: the DMS applies no access rights)."""
    with app.open_store() as store:
        if not store.capabilities.acl:
            return None
        return app.apply_access(store, [row.external_id], by).as_dict()


def add_guardian(app: App, by: str, row: DossierRow, name: str, relation: str | None,
                 authority: bool | None, shown: str) -> str:
    """Record a guardian by hand (for a source without guardian data); returns their g-... id."""
    gid = app.identity.guardian_id(row.external_id, relation, name)
    with app.state.transaction() as conn:
        app.state.add_guardian(conn, row.external_id, gid, name, relation, authority, by)
        app.audit.append(conn, by, "guardian.added", row.pseudonym,
                         {"guardian": gid, "relation": relation, "authority": shown})
    return gid


def set_guardian(app: App, by: str, row: DossierRow, guardian: str, values: dict[str, Any],
                 authority: str | None, reason: str) -> None:
    """Record what a person established about a guardian (authority, account, death) in the
    person's own columns, which no sync writes."""
    with app.state.transaction() as conn:
        if not app.state.set_guardian(conn, row.external_id, guardian, **values):
            raise NotFound(f"no current guardian {guardian} on {row.pseudonym}")
        app.audit.append(conn, by, "guardian.changed", row.pseudonym,
                         {"guardian": guardian, "fields": sorted(values), "authority": authority, "reason": reason})


def link_pupil_account(app: App, by: str, row: DossierRow, account: str) -> None:
    with app.state.transaction() as conn:
        app.state.link_account(conn, row.external_id, "pupil", account, by)
        app.audit.append(conn, by, "account.linked", row.pseudonym, {"principal": "pupil"})


def add_grant(app: App, by: str, row: DossierRow, kind: str, grantee: str, parts: tuple[str, ...], basis: str,
              first: date, until: date, reason: str) -> int:
    """Access by consent or legal duty (``kind``: third_party or parent_after_adult_age)."""
    with app.state.transaction() as conn:
        grant_id = app.state.add_grant(conn, row.external_id, kind, grantee, parts, basis.replace("-", "_"),
                                       first, until, reason, by)
        app.audit.append(conn, by, "grant.added", row.pseudonym,
                         {"grant": grant_id, "kind": kind, "grantee": grantee, "parts": list(parts),
                          "basis": basis, "from": first.isoformat(), "until": until.isoformat(), "reason": reason})
    return grant_id


def extend_request(app: App, by: str, request_id: int, reason: str, today: date) -> date:
    """Extend an open request's term by two months (AVG art. 12(3)): once, before it runs out."""
    req = app.state.request(request_id)
    if req is None or req["status"] != "open":
        raise NotFound(f"no open request {request_id}")
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


def record_export(app: App, by: str, row: DossierRow, file: str, today: date, details: dict[str, Any]) -> int:
    """Keep track of a copy made for a data subject (removed after ``[access] export_days``)
    and audit it; returns its id."""
    days = app.loaded.config.access.export_days
    with app.state.transaction() as conn:
        export_id = app.state.record_export(conn, row, file, today, today + timedelta(days=days), by)
        app.audit.append(conn, by, "dossier.exported", row.pseudonym,
                         details | {"export": export_id, "removed_after_days": days})
    return export_id
