"""The use cases of a dossier that leaves: the onderwijskundig rapport (OKR) sent to another
school, and a dossier part exported to another place, with removal at the source only through
a transfer list that another person approves."""

from __future__ import annotations

from contextlib import ExitStack, closing
from datetime import date
from pathlib import Path
from typing import Any

import adapters
from connector import config as config_mod
from connector import transfer
from connector.app import pupils
from connector.app.context import App
from connector.app.lists import write_list_files
from connector.state import DossierRow
from connector.transfer import ExportReport
from connector.users import User


def record_okr(app: App, by: str, row: DossierRow, on: date, receiving: str) -> dict[str, Any]:
    """Record that a pupil's OKR was sent to ``receiving`` on ``on``; recorded either way, and
    marked incomplete (with what is missing) without the OKR or the parents-informed evidence."""
    cfg = app.loaded.config.okr
    with app.open_store() as store:
        return transfer.record_okr(store, app.state, app.audit, app.mapping, row, on, receiving, by,
                                   cfg.okr_class, cfg.evidence_class)


def incomplete_okrs(app: App) -> list[dict[str, Any]]:
    """OKRs recorded as sent whose dossier still lacks the OKR or the parents-informed evidence."""
    cfg = app.loaded.config.okr
    with app.open_store() as store:
        return transfer.incomplete_okrs(store, app.state, app.mapping, cfg.okr_class, cfg.evidence_class)


def export_part(app: App, user: User, row: DossierRow, part: str, folder: Path | None, other: Path | None,
                remove_at_source: bool, today: date | None = None, receiving: str | None = None) -> ExportReport:
    """Export a dossier part to ``folder`` or to the DMS of the connector config ``other`` (one of
    the two) and verify every copy; with ``remove_at_source`` the verified copies that may go
    are put on a transfer list, whose files are written for the approver. The manifest carries
    what ``[transfer] manifest`` gives the receiving party (``receiving``: its name or BRIN)."""
    user.require("transfer")
    about = pupils.manifest(app, row, app.loaded.config.transfer.fields_for(receiving))
    if receiving:
        about["ontvanger"] = receiving
    with app.open_store() as store, ExitStack() as stack:
        if other is not None:
            dest_store = stack.enter_context(closing(
                adapters.build_store(config_mod.load(other), index_key=app.identity.index_key)))
            dest: transfer.Destination = transfer.StoreDestination(dest_store, app.state, f"dms:{other.name}")
        elif folder is not None:
            dest = transfer.FolderDestination(folder)
        else:
            raise ValueError("give exactly one destination")
        report = transfer.export_part(store, app.state, app.audit, app.mapping, row, part, dest,
                                      remove_at_source, user, app.schedule(), app.clock(today),
                                      app.loaded.config.destruction.approvals, about)
        if report.transfer_list is not None:
            write_list_files(app, report.transfer_list)
    return report
