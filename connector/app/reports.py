"""What a school reads of its install: are the dossiers complete and current, what is pending
(status), and the audit log (verified, recent entries, one pupil's history)."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

from connector import access, acl, completeness, render, rights
from connector.app.access import record_view
from connector.app.context import App
from connector.app.lists import file_anchors
from connector.audit import VerifyResult, nen7513
from connector.errors import ConfigError
from connector.state import DossierRow


def completeness_report(app: App, today: date, html_file: Path | None = None) -> dict[str, Any]:
    """Per school, the dossiers that miss what the rules require (counts first, then the
    records by pseudonym); ``html_file`` also writes it as an HTML page."""
    cfg = app.loaded.config
    result = completeness.report(app.state, cfg.okr.okr_class, cfg.okr.evidence_class, today,
                                 cfg.access.request_warn_days)
    if html_file is not None:
        render.write_completeness(result, html_file, app.school_names(result["schools"]))
    return result


def status(app: App, today: date) -> dict[str, Any]:
    """Journal rows by status and the unfinished ones, dossiers, documents, lists, holds,
    unfinished transfers, open requests (those needing attention apart) and the last runs."""
    unfinished = [{"id": r.id, "run": r.run_id, "operation": r.kind, "status": r.status,
                   "attempts": r.attempts, "record": r.operation.pseudonym} for r in app.state.pending()]
    runs = [{k: v for k, v in run.items() if k != "report"} for run in app.state.last_runs()]
    overview = app.state.overview()
    open_requests = rights.request_rows(app.state, "open", app.loaded.config.access.request_warn_days, today)
    overview["requests_open"] = len(open_requests)
    overview["requests_attention"] = [r for r in open_requests if r["state"] != "ok"]
    overview["suspicions"] = open_suspicions(app)
    return {"journal": app.state.journal_counts(), "unfinished": unfinished, "dossiers": app.state.dossier_count(),
            "runs": runs} | overview


def verify_audit(app: App) -> VerifyResult:
    """Check that no audit entry was edited, removed or reordered, held to the heads the list and
    certificate files recorded."""
    return app.audit.verify(file_anchors(app))


def audit_entries(app: App, last: int | None, subject: str | None = None, actor: str | None = None,
                  action_prefix: str | None = None, since: date | None = None,
                  until: date | None = None) -> list[dict[str, Any]]:
    """The last ``last`` audit entries (None: all), oldest first: of one pupil's pseudonym
    (``subject``), by one user (``actor``), of the events that start with ``action_prefix``,
    from ``since`` to ``until`` (days included)."""
    return app.audit.entries(last, subject=subject, actor=actor, action_prefix=action_prefix, since=since,
                             until=until)


def pupil_history(app: App, by: str, row: DossierRow, reason: str, last: int | None) -> list[dict[str, Any]]:
    """Everything done to a pupil's dossier, in the NEN 7513 fields (event, time, subject, user,
    acting for, reason): a data subject's own access history. Looking at it is itself audited,
    and the history shown includes this view."""
    record_view(app, by, row.pseudonym, "history", reason)
    return [nen7513(e) for e in app.audit.entries(last, subject=row.pseudonym)]


HORIZONS = (30, 90, 365)


def overview(app: App, today: date) -> dict[str, Any]:
    """What the people who answer for the dossiers look at first: per retention category what
    falls due (already, and within 30/90/365 days), lists by status, open requests by deadline,
    active holds, and the last sync's health (the rail that stopped it, vanished pupils,
    suspected duplicates waiting for a person). Counts and pseudonyms only."""
    state = app.state
    lists: dict[str, int] = {}
    for row in state.all_lists(limit=10_000):
        lists[row["status"]] = lists.get(row["status"], 0) + 1
    syncs = [r for r in state.last_runs(limit=20) if r["kind"] == "sync"]
    last = syncs[0] if syncs else None
    report = state.last_sync_report(last["school"]) if last and last["school"] else None
    return {
        "today": today,
        "okr_incomplete": okrs_without_evidence(app),
        "due": state.due_by_category(today, HORIZONS),
        "horizons": HORIZONS,
        "lists": lists,
        "requests": rights.request_rows(state, "open", app.loaded.config.access.request_warn_days, today),
        "holds": len(state.active_holds()),
        "last_sync": None if last is None else {
            "started": last["started"], "status": last["status"], "school": last["school"],
            "pupils": last["pupils_seen"],
            "stopped_by": (report or {}).get("stopped_by"),
            "vanished": len((report or {}).get("vanished", []) or []),
            "duplicates": len((report or {}).get("suspected_duplicates", []) or []),
        },
    }


def lists(app: App) -> list[dict[str, Any]]:
    """The destruction and transfer lists, newest first, with their item counts."""
    return app.state.all_lists()


def waiting_for_a_person(app: App) -> dict[str, list[dict[str, Any]]]:
    """What the last sync of each school left for a person: pupils who vanished from the LAS
    without a departure date (still without one recorded), and suspected duplicates not yet
    dismissed or linked, each with what a person can do about it. Pseudonyms only."""
    vanished: list[dict[str, Any]] = []
    for school in app.state.schools():
        report = app.state.last_sync_report(school) or {}
        for v in report.get("vanished", []) or []:
            rows = app.state.find_pupil([str(v["record"])])
            if rows and app.state.facts_for(rows[0].external_id, rows[0].departure).departure is None:
                vanished.append({"school": school, **v})
    return {"vanished": vanished, "duplicates": open_suspicions(app)}


def open_suspicions(app: App) -> list[dict[str, Any]]:
    """The suspected duplicates of each school's last sync that no person decided yet, with the
    key that has a dossier (``dossier``, None when neither has) and the commands that decide:
    the same child (link the other key to the dossier) or two children (dismiss)."""
    out: list[dict[str, Any]] = []
    dismissed = app.state.dismissed_pairs()
    for school in app.state.synced_schools():
        report = app.state.last_sync_report(school) or {}
        for d in report.get("suspected_duplicates", []) or []:
            a, b = str(d.get("a")), str(d.get("b"))
            if (a, b) in dismissed or (b, a) in dismissed:
                continue
            if d.get("group"):
                out.append({"school": school, **d, "dossier": None,
                            "actions": {"check": "one value shared by many pupils: correct it in the LAS"}})
                continue
            if app.state.alias_of(a) is not None or app.state.alias_of(b) is not None:
                continue
            having = {r.pseudonym for r in app.state.find_pupil([a, b])}
            dossier = a if a in having else b if b in having else None
            actions = {"different": f"leerdossier duplicates dismiss {a} {b} --by NAAM"}
            if dossier is not None and len(having) == 1:
                other = b if dossier == a else a
                actions["same"] = f"leerdossier duplicates link {dossier} {other} --by NAAM"
            out.append({"school": school, **d, "dossier": dossier, "actions": actions})
    return out


def pupil_page(app: App, by: str, row: DossierRow, reason: str, day: date) -> dict[str, Any]:
    """Everything a pupil's page shows, as one audited view (who, whose, why): the facts that run
    the retention clock and their history, the holds, the documents with their retention, who
    may see which part and why (empty without an ``[access]`` policy), the requester's own
    statements beside the documents they dispute (``statements``: disputed -> statement), and the
    dossier's history, this view included."""
    record_view(app, by, row.pseudonym, "dossier page", reason)
    try:
        entries, notes = access.access_list(acl.facts_of(app.state, row)[0], app.access_policy(), day)
    except ConfigError:
        entries, notes = (), ()
    return {
        "facts": app.state.facts_for(row.external_id, row.departure),
        "fact_history": app.state.fact_history(row.external_id),
        "holds": app.state.active_holds(row.external_id),
        "documents": app.state.dossier_documents(row.external_id),
        "statements": {str(e["details"]["concerns"]): str(e["details"]["document"]) for e in
                       app.audit.entries(None, subject=row.pseudonym, actions=("document.added",))
                       if e["details"].get("concerns")},
        "access": entries, "access_notes": notes,
        "history": [nen7513(e) for e in app.audit.entries(200, subject=row.pseudonym)],
    }


def okrs_without_evidence(app: App) -> list[dict[str, Any]]:
    """OKRs recorded as sent whose dossier, as last recorded from the DMS, lacks the OKR itself or
    the evidence that the parents were informed (``leerdossier okr incomplete`` asks the DMS
    itself)."""
    cfg = app.loaded.config.okr
    latest: dict[str, dict[str, Any]] = {}
    for row in app.state.transfers_of_kind("okr"):
        latest[row["external_id"]] = row
    held = app.state.classes_present(list(latest), (cfg.okr_class, cfg.evidence_class))
    return [{"record": r["pseudonym"], "sent": r["on"], "receiving": r["receiving"],
             "okr_present": cfg.okr_class in held.get(e, set()),
             "parents_informed": cfg.evidence_class in held.get(e, set())}
            for e, r in latest.items()
            if not {cfg.okr_class, cfg.evidence_class} <= held.get(e, set())]
