"""The files a destruction or transfer list gives the people who answer for it: the list to
approve and the certificate of what was removed, written private (0600, folder 0700), and the
audit heads they record, which ``audit verify`` holds the log to."""

from __future__ import annotations

import json
import os
from collections import Counter
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from connector import destruction, render, users
from connector.app.context import App
from connector.audit import Anchor
from connector.clock import SIMULATED, Clock
from connector.destruction import ExecuteReport, PurgeReport
from connector.destruction import cooling_off_until as cooling_off_until  # the first day a list may be carried out
from connector.errors import NotFound
from connector.ports import DocumentStore
from connector.users import User

# -- the use cases of a list: create, show, approve, cancel, execute, certificate, purge ------------

@dataclass(frozen=True)
class Created:
    list_id: int
    items: int
    status: str
    as_of: date
    files: dict[str, str]


def create_list(app: App, user: User, today: date | None = None) -> Created:
    """Select what is due and write the list (JSON, HTML, PDF); nothing is destroyed. ``today``
    later than now makes a preview (which can never be approved); on an install marked
    ``[testing] simulated_clock`` it is the simulated date the list is made on."""
    simulated = app.loaded.config.testing.simulated_clock
    as_of = today or date.today()
    clock = Clock(as_of) if simulated and today else Clock()
    list_id, n = destruction.create_list(app.state, app.audit, app.schedule(), as_of, user, clock,
                                         app.loaded.config.destruction.approvals)
    files = write_list_files(app, list_id)
    head, _items = destruction.load_list(app.state, list_id)
    return Created(list_id, n, str(head["status"]), as_of, files)


def preview_due(app: App, today: date | None = None, pupils_shown: int = 100) -> dict[str, Any]:
    """What a list made now would hold, by the same one due rule, changing nothing: documents and
    pupils per category, and the pupils with the most documents (pseudonymous keys, at most
    ``pupils_shown``). ``today`` only on an install marked ``[testing] simulated_clock``."""
    day = app.clock(today).today()
    per_category: dict[str, dict[str, Any]] = {}
    per_pupil: Counter[str] = Counter()
    for c, fresh in destruction.due_documents(app.state, app.schedule(), day):
        entry = per_category.setdefault(fresh.category, {"documents": 0, "pupils": set(), "basis": fresh.basis})
        entry["documents"] += 1
        entry["pupils"].add(c.pseudonym)
        per_pupil[c.pseudonym] += 1
    return {"as_of": day, "documents": sum(per_pupil.values()), "pupils": len(per_pupil),
            "categories": {k: {"documents": v["documents"], "pupils": len(v["pupils"]), "basis": v["basis"]}
                           for k, v in sorted(per_category.items())},
            "by_pupil": per_pupil.most_common(pupils_shown)}


def show_list(app: App, list_id: int) -> dict[str, Any]:
    """A list, its approvals and its items (without external ids)."""
    head, items = destruction.load_list(app.state, list_id)
    return {"list": head, "approvals": _approvals(app, list_id), "items": public_items(items)}


def list_head(app: App, list_id: int) -> dict[str, Any]:
    """A list's head (status, maker, dates, kind) without its items."""
    return app.state.list_head(list_id)


def show_list_page(app: App, list_id: int, category: str | None, page: int, size: int) -> dict[str, Any]:
    """A list, its approvals and one page of its items (of ``category``, or all; pages count
    from 1), with its counts: ``total`` items, ``shown_total`` of the category, ``pages``,
    ``categories``, ``removed`` and ``to_remove``. A page past the last shows the last."""
    data = app.state.list_page(list_id, category, page, size)
    return {"list": data["head"], "approvals": _approvals(app, list_id), "items": public_items(data["items"]),
            "total": sum(data["categories"].values()), "shown_total": data["shown"], "page": data["page"],
            "pages": data["pages"], "categories": sorted(data["categories"]), "removed": data["done"],
            "to_remove": data["approved"]}


def _approvals(app: App, list_id: int) -> list[dict[str, Any]]:
    return [{k: a[k] for k in ("approver", "role", "at", "rejected")}
            for a in destruction.approvals(app.state, list_id)]


def approve_list(app: App, user: User, list_id: int, role: str | None, reject: dict[int, str],
                 comment: str | None = None, today: date | None = None) -> dict[str, Any]:
    """Approve a list (signed, bound to its digest), leaving out the items in ``reject`` with
    their reasons; the maker never approves their own list. The final approval starts the
    cooling-off period (``[destruction] cooling_off_days``). The list files are rewritten.
    ``today`` only on an install marked ``[testing] simulated_clock``."""
    cfg = app.loaded.config.destruction
    result = destruction.approve(app.state, app.audit, app.identity.approval_key, list_id, user, role, reject,
                                 app.clock(today), cfg.approvals, cooling_off_days=cfg.cooling_off_days,
                                 comment=comment)
    return result | {"files": write_list_files(app, list_id)}


def assign_reviewer(app: App, user: User, list_id: int, reviewer: str | None) -> None:
    """Assign a list under review to the approver ``reviewer`` (None: any approver), by its maker
    or an admin; audited."""
    found = None
    if reviewer:
        found = users.get(app.state, reviewer)
        if found is None:
            raise NotFound(f"no active user {reviewer!r}")
    destruction.assign(app.state, app.audit, list_id, user, found)


def reviewers(app: App, list_id: int) -> list[str]:
    """The active users who may review a list: approvers other than its maker."""
    head = app.state.list_head(list_id)
    return [u["name"] for u in users.listing(app.state)
            if not u["disabled_at"] and "approver" in u["roles"] and u["name"] != head["created_by"]]


def send_back(app: App, user: User, list_id: int, comment: str) -> dict[str, str]:
    """An approver sends a list under review back with what should change; its items are offered
    on the next list. The list files are rewritten."""
    destruction.send_back(app.state, app.audit, list_id, user, comment)
    return write_list_files(app, list_id)


STEPS = ("destruction.list.created", "destruction.list.assigned", "destruction.list.approved",
         "destruction.list.sent_back",
         "destruction.list.cancelled", "destruction.list.executed", "destruction.certificate")


def list_history(app: App, list_id: int) -> list[dict[str, Any]]:
    """Every step of a list in time order, with who took it and what they wrote (an approval's
    comment, role and exclusions with their reasons; the reason of a cancellation; what an
    approver asked to change), as the hash-chained audit log holds them."""
    return [e for e in app.audit.entries(None, actions=STEPS) if e["details"].get("list") == list_id]


def cancel_list(app: App, user: User, list_id: int, reason: str) -> dict[str, str]:
    """Withdraw a list before it is carried out; its items are offered on the next list."""
    destruction.cancel(app.state, app.audit, list_id, user, reason)
    return write_list_files(app, list_id)


def execute_list(app: App, user: User, list_id: int, today: date | None = None,
                 dry_run: bool = False) -> tuple[ExecuteReport, dict[str, str]]:
    """Remove the approved items of a list that the gate lets go now, then write the
    certificate (unless nothing more was removed and one exists: that one stays as it is).
    ``today`` only on an install marked ``[testing] simulated_clock``."""
    cfg = app.loaded.config.destruction
    with app.open_store() as store:
        report = destruction.execute(store, app.state, app.audit, app.schedule(), list_id, app.clock(today),
                                     cfg.max_per_run, user, app.identity.approval_key, cfg.approvals,
                                     cfg.trash_grace_days, dry_run=dry_run)
        existing = output_folder(app) / f"certificate-{list_id}.json"
        if dry_run or report.stopped_by:
            files: dict[str, str] = {}
        elif report.destroyed or not existing.exists():
            files = write_certificate(app, list_id, store)
        else:
            files = {"json": str(existing), "pdf": str(existing.with_suffix(".pdf")), "unchanged": "yes"}
    return report, files


def certificate(app: App, list_id: int) -> dict[str, str]:
    """(Re)write the certificate of a list."""
    with app.open_store() as store:
        return write_certificate(app, list_id, store)


def purge(app: App, user: User, today: date | None = None) -> PurgeReport:
    """Empty the DMS trash of what approved lists put there longer ago than the grace period,
    each document through the gate again."""
    cfg = app.loaded.config.destruction
    with app.open_store() as store:
        return destruction.purge(store, app.state, app.audit, app.schedule(), app.clock(today),
                                 cfg.trash_grace_days, user, app.identity.approval_key, cfg.approvals)


def list_file(app: App, list_id: int, what: str, suffix: str) -> Path | None:
    """The file already written for a list (``what``: ``list`` or ``certificate``;
    ``suffix``: ``pdf``, ``html`` or ``json``), or None."""
    if what not in ("list", "certificate") or suffix not in ("pdf", "html", "json"):
        return None
    path = output_folder(app) / f"{what}-{int(list_id)}.{suffix}"
    return path if path.is_file() else None


# -- the files of a list ---------------------------------------------------------------------------


def output_folder(app: App) -> Path:
    """Where lists and certificates are written (``[destruction] output``)."""
    return app.loaded.resolve(app.loaded.config.destruction.output)


def write_list_files(app: App, list_id: int) -> dict[str, str]:
    """The list as files for the people who approve it: JSON, HTML and PDF, private (0600)."""
    head, items = destruction.load_list(app.state, list_id)
    folder = output_folder(app)
    data = {"list": head, "approvals": _approvals(app, list_id), "items": public_items(items)}
    simulated = SIMULATED if app.loaded.config.testing.simulated_clock else None
    if simulated:
        data["simulated"] = simulated
    schools = app.school_names({str(i["school"]) for i in items if i.get("school")})
    data["schools"] = schools
    private_write(folder / f"list-{list_id}.json", json.dumps(data, indent=2, default=str) + "\n")
    files = render.write_list(head, public_items(items), folder, simulated, schools)
    tighten(folder, files)
    return {"json": str(folder / f"list-{list_id}.json"), **files}


def public_items(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """List items without external ids (which may be a BSN when dossiers are keyed on it)."""
    return [{k: v for k, v in i.items() if k != "external_id"} for i in items]


def write_certificate(app: App, list_id: int, store: DocumentStore) -> dict[str, str]:
    """The certificate of LIST_ID as files (JSON, HTML, PDF), with its audit entry."""
    cfg = app.loaded.config.destruction
    cert = destruction.certificate(app.state, app.audit, app.identity.approval_key, list_id,
                                   app.loaded.config.dms.type, store.capabilities.trash, cfg.trash_grace_days,
                                   simulated=app.loaded.config.testing.simulated_clock)
    cert["schools"] = app.school_names({str(d["school"]) for d in cert["destroyed"] if d.get("school")})
    folder = output_folder(app)
    path = folder / f"certificate-{list_id}.json"
    private_write(path, json.dumps(cert, indent=2, default=str) + "\n")
    files = render.write_certificate(cert, folder)
    tighten(folder, files)
    app.audit.record("leerdossier destruction", "destruction.certificate", None,
                     {"list": list_id, "destroyed": cert["counts"]["destroyed"]})
    return {"json": str(path), **files}


def private_write(path: Path, text: str) -> None:
    """A file the connector writes for people (lists, certificates): 0600, its folder 0700."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)
    os.chmod(path, 0o600)


def tighten(folder: Path, files: dict[str, str]) -> None:
    """A folder of list files 0700 and the files in it 0600."""
    os.chmod(folder, 0o700)
    for f in files.values():
        os.chmod(f, 0o600)


def file_anchors(app: App) -> list[Anchor]:
    """The audit heads recorded in the list and certificate files of the output folder."""
    out: list[Anchor] = []
    folder = output_folder(app)
    for path in sorted(folder.glob("*-*.json")) if folder.is_dir() else ():
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            if path.name.startswith("certificate-") and data.get("audit_anchor"):
                anchor = data["audit_anchor"]
                out.append(Anchor(f"certificate file {path.name}", int(anchor["seq"]), str(anchor["hash"])))
            elif path.name.startswith("list-") and data.get("list", {}).get("anchor_seq") is not None:
                head = data["list"]
                out.append(Anchor(f"list file {path.name}", int(head["anchor_seq"]), str(head["anchor_hash"])))
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            continue
    return out
