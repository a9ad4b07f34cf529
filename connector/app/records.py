"""Use cases on what is recorded of a pupil: facts that move the retention clocks, holds, and
suspected duplicates a person dismissed. Each runs in one transaction with its audit entry, and
each refusal is an error of the root (``InvalidState``, ``NotFound``, ``RejectedRecord``)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

from connector import tagging
from connector.app.context import App
from connector.errors import InvalidState, NotFound
from connector.model import DocumentRef, PupilFacts
from connector.state import DossierRow
from connector.sync import check_departure
from connector.users import User


def record_fact(app: App, user: User, row: DossierRow, kind: str, on: date | None, note: str | None,
                today: date) -> tagging.TagReport:
    """Record (``on``) or withdraw (``None``) a fact, then retag the pupil's documents by it.
    A departure is the LAS's to give while the LAS knows the pupil: by hand only for a pupil who
    vanished from it, never over a date the LAS gives."""
    user.require("fact.record")
    schedule = app.schedule()
    if kind in ("departure", "exam_result"):
        born, enrolled = app.state.pupil_dates(row.external_id)
        check_departure(on, born, enrolled, today, app.loaded.config.safety.max_departure_future_days,
                        row.pseudonym, "--date")
    if kind == "departure" and row.departure is not None and on != row.departure:
        raise InvalidState(f"the LAS reports a departure date for {row.pseudonym}; correct it in the LAS")
    if kind == "departure" and on is not None and row.departure is None and row.vanished_since is None:
        raise InvalidState(f"{row.pseudonym} is in the last LAS snapshot without a departure date; record the "
                           "departure in the LAS (a hand-recorded departure is for pupils who vanished from it)")
    with app.state.transaction() as conn:
        app.state.record_fact(conn, row.external_id, kind, on, user.name, note)
        app.audit.append(conn, user.name, f"fact.{kind}" if on else f"fact.{kind}.withdrawn", row.pseudonym,
                         {"on": on.isoformat() if on else None, "note_given": bool(note)})
    with app.open_store() as store:
        run_id = app.state.begin_run("facts")
        tags = tagging.refresh(store, app.state, app.audit, schedule, app.mapping, run_id,
                               f"leerdossier pupil ({user.name})", external_ids=[row.external_id])
        app.state.finish_run(run_id, "ok", row.school, None, tags.as_dict())
        if kind == "departure" and store.capabilities.acl:  # staff keep only what they keep after departure
            app.apply_access(store, [row.external_id], f"leerdossier pupil ({user.name})", today=today)
    return tags


def add_hold(app: App, user: User, row: DossierRow, part: str | None, reason: str) -> int:
    """Put the dossier (or one part) on hold: nothing of it is destroyed while the hold stands."""
    user.require("hold.add")
    if part is not None and part not in {p.code for p in app.mapping.parts}:
        raise NotFound(f"unknown part {part!r}")
    with app.state.transaction() as conn:
        hold_id = app.state.add_hold(conn, row, part, reason, user.name)
        app.audit.append(conn, user.name, "hold.added", row.pseudonym, {"hold": hold_id, "part": part,
                                                                        "reason": reason})
    return hold_id


def remove_hold(app: App, user: User, hold_id: int, reason: str) -> dict[str, Any]:
    """Lift a hold; one an open request placed is lifted only by closing the request."""
    user.require("hold.remove")
    if any(r["hold_id"] == hold_id for r in app.state.requests("open")):
        raise InvalidState(f"hold {hold_id} belongs to an open request; it is lifted when the request is closed")
    with app.state.transaction() as conn:
        removed = app.state.remove_hold(conn, hold_id, user.name, reason)
        if removed is None:
            raise NotFound(f"no active hold {hold_id}")
        app.audit.append(conn, user.name, "hold.removed", removed["pseudonym"], {"hold": hold_id, "reason": reason})
    return removed


def dismiss_duplicate(app: App, by: str, a: str, b: str) -> None:
    """Record that pseudonymous keys A and B are different children; a held dossier is then
    created on the next sync."""
    with app.state.transaction() as conn:
        app.state.dismiss_duplicate(conn, a, b, by)
        app.audit.append(conn, by, "duplicate.dismissed", None, {"a": a, "b": b})


def _suspected_pair(app: App, school: str, a: str, b: str) -> bool:
    report = app.state.last_sync_report(school) or {}
    for d in report.get("suspected_duplicates", []) or []:
        members = set(d.get("members") or (d.get("a"), d.get("b")))
        if {a, b} <= members:
            return True
    return False


def link_duplicate(app: App, by: str, a: str, b: str) -> dict[str, Any]:
    """Record that B is the same child as A: B's key becomes an alias of A's dossier, which the
    next sync keeps current from B's records (A's own records are then seen, not used). Its
    facts, holds, requests and documents stay with the one dossier. Only for a pair the school's
    last sync reported as suspected duplicates, and only when B has no dossier of its own (moving
    documents between dossiers is not a link). Undone with ``unlink_duplicate`` until a sync has
    used it."""
    rows = app.state.find_pupil([a])
    if not rows:
        raise NotFound(f"{a}: no dossier has this key; link the other key to the key that has a dossier "
                       "(leerdossier duplicates link DOSSIER OTHER)")
    row = rows[0]
    if app.state.find_pupil([b]):
        raise InvalidState(f"{b} has a dossier of its own; a link joins a key without a dossier (one held as a "
                           "suspected duplicate) to a dossier. Documents are never moved between dossiers by a link")
    held = app.state.alias_of(b)
    if held is not None:
        raise InvalidState(f"{b} is already an alias of another dossier ({held['kind']}, by {held['by']})")
    if app.state.alias_of(a) is not None:
        raise InvalidState(f"{a} is itself an alias of another dossier")
    if not _suspected_pair(app, row.school, a, b):
        raise InvalidState(f"{a} and {b} were not reported as suspected duplicates by school {row.school}'s last "
                           "sync; a link is made only for a reported pair (for a change of LAS: leerdossier "
                           "identity rekey)")
    with app.state.transaction() as conn:
        app.state.add_aliases(conn, [(b, row.external_id)], "link", by)
        app.audit.append(conn, by, "duplicate.linked", a, {"a": a, "b": b})
    return {"dossier": a, "alias": b, "by": by}


def unlink_duplicate(app: App, by: str, a: str, b: str) -> dict[str, Any]:
    """Take back a link of B to A's dossier, while no sync has used it. Once a sync kept the
    dossier current from B's records, the dossier depends on them and the link stays (correct
    the LAS instead)."""
    alias = app.state.alias_of(b)
    rows = app.state.find_pupil([a])
    if alias is None or not rows or alias["external_id"] != rows[0].external_id:
        raise NotFound(f"{b} is not linked to the dossier of {a}")
    if alias["used_run"] is not None:
        raise InvalidState(f"sync run {alias['used_run']} kept the dossier of {a} current from {b}'s records; the "
                           "dossier now depends on them and the link stays. Correct the LAS if they are two children")
    with app.state.transaction() as conn:
        app.state.remove_alias(conn, b)
        app.audit.append(conn, by, "duplicate.unlinked", a, {"a": a, "b": b, "kind": alias["kind"]})
    return {"dossier": a, "alias": b, "by": by}


def facts_of(app: App, row: DossierRow) -> tuple[PupilFacts, list[dict[str, Any]]]:
    """The facts recorded for a pupil (with the clock they give) and their history."""
    return app.state.facts_for(row.external_id, row.departure), app.state.fact_history(row.external_id)


def active_holds(app: App) -> list[dict[str, Any]]:
    """The holds in force: id, pseudonym, part (``None``: the whole dossier), reason, by, at."""
    return [{k: h[k] for k in ("id", "pseudonym", "part", "reason", "by", "at")} for h in app.state.active_holds()]


def refresh_tags(app: App, from_state: bool = False,
                 progress: Callable[[str, int], None] | None = None) -> tagging.TagReport:
    """Recompute every document's retention tag in the DMS, as a run of its own; also finds
    documents added by other routes. ``from_state`` touches only dossiers whose tags changed by
    what is recorded (fast; does not look for documents added elsewhere)."""
    schedule = app.schedule()
    with app.open_store() as store:
        run_id = app.state.begin_run("tags")
        cursor = None
        only: list[str] | None
        if from_state:
            only = tagging.recompute(app.state, schedule).dossiers
        else:
            # a store with a change feed names the dossiers staff changed since the last refresh;
            # with those whose tags the state changed, they are all that need a look
            changed, cursor = store.changes(app.state.store_cursor(app.store_key()))
            only = None if changed is None else sorted(
                set(app.state.external_ids_of(sorted(changed))) | set(tagging.recompute(app.state, schedule).dossiers))
        report = tagging.refresh(store, app.state, app.audit, schedule, app.mapping, run_id,
                                 "leerdossier tags refresh", external_ids=only, progress=progress)
        if cursor is not None and not report.failed:
            app.state.put_store_cursor(app.store_key(), cursor)
        app.state.finish_run(run_id, "ok", None, None, report.as_dict() | {"changed_only": only is not None})
    return report


def add_document(app: App, by: str, row: DossierRow, doc_class: str,
                 file: Path) -> tuple[DocumentRef, str, tagging.TagReport]:
    """Store ``file`` in the dossier through the configured DMS as a document of ``doc_class``
    (in the part the mapping gives that class), tagged and with its access at once: the
    document, its part and the tagging report."""
    if doc_class not in app.mapping.classes:
        raise NotFound(f"unknown class {doc_class!r}; classes: {', '.join(sorted(app.mapping.classes))}")
    schedule = app.schedule()
    part = app.mapping.classes[doc_class][0]
    with app.open_store() as store:
        doc, tags = app.store_document(store, row, doc_class, file, by, schedule)
    return doc, part, tags
