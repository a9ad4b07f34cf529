"""What a school reads of its install: are the dossiers complete and current, what is pending
(status), and the audit log (verified, recent entries, one pupil's history)."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

from connector import completeness, render, rights
from connector.app.access import record_view
from connector.app.context import App
from connector.app.lists import file_anchors
from connector.audit import VerifyResult, nen7513
from connector.state import DossierRow


def completeness_report(app: App, today: date, html_file: Path | None = None) -> dict[str, Any]:
    """Per school, the dossiers that miss what the rules require (counts first, then the
    records by pseudonym); ``html_file`` also writes it as an HTML page."""
    cfg = app.loaded.config
    result = completeness.report(app.state, cfg.okr.okr_class, cfg.okr.evidence_class, today,
                                 cfg.access.request_warn_days)
    if html_file is not None:
        render.write_completeness(result, html_file)
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
    return {"journal": app.state.journal_counts(), "unfinished": unfinished, "dossiers": app.state.dossier_count(),
            "runs": runs} | overview


def verify_audit(app: App) -> VerifyResult:
    """Check that no audit entry was edited, removed or reordered, held to the heads the list and
    certificate files recorded."""
    return app.audit.verify(file_anchors(app))


def audit_entries(app: App, last: int | None) -> list[dict[str, Any]]:
    """The last ``last`` audit entries (None: all)."""
    return app.audit.entries(last)


def pupil_history(app: App, by: str, row: DossierRow, reason: str, last: int | None) -> list[dict[str, Any]]:
    """Everything done to a pupil's dossier, in the NEN 7513 fields (event, time, subject, user,
    acting for, reason): a data subject's own access history. Looking at it is itself audited."""
    history = [nen7513(e) for e in app.audit.entries(last, subject=row.pseudonym)]
    record_view(app, by, row.pseudonym, "history", reason)
    return history
