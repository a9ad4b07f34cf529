"""A copy of a dossier for the person who asked for it (AVG art. 15(3)): exactly what their
access list entitles them to, as a ZIP with a Dutch index, leaving out documents of classes the
mapping marks as holding other people's personal data and documents without a class (both
listed as withheld by part, class and date, for a person to classify or redact and hand over
separately). The ZIP is private (0600) and removed after ``[access] export_days``."""

from __future__ import annotations

import html
import json
import os
import re
import zipfile
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from connector.access import AccessEntry
from connector.audit import AuditLog
from connector.mapping import Mapping
from connector.model import DossierRef
from connector.ports import DocumentStore
from connector.state import DossierRow, StateStore

_SAFE = re.compile(r"[^A-Za-z0-9._-]+")


EXPORT_FOLDER = "var/export"
"""Where ``export`` writes its ZIPs unless given ``--to`` (relative to the configuration file)."""
WITHHELD_OTHERS = "bevat persoonsgegevens van anderen: eerst door een persoon te lakken"
WITHHELD_UNCLASSIFIED = "nog niet geclassificeerd: eerst door een persoon te classificeren"
CORRECTION_OPEN = ("Er loopt een verzoek tot correctie (ontvangen {received}); de gegevens in deze kopie "
                   "kunnen daardoor nog veranderen.")


@dataclass
class ExportResult:
    file: str
    documents: int = 0
    withheld: list[dict[str, str]] = field(default_factory=list)
    """For the person making the copy (never in the ZIP): the documents left out, with their id."""
    open_corrections: list[int] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def entitled(entries: tuple[AccessEntry, ...], principal: str) -> dict[str, tuple[str, ...] | None]:
    """part -> classes (None: the whole part) that ``principal`` may see."""
    out: dict[str, tuple[str, ...] | None] = {}
    for e in entries:
        if e.principal != principal:
            continue
        if e.part not in out:
            out[e.part] = e.classes
        elif out[e.part] is None or e.classes is None:
            out[e.part] = None
        else:
            out[e.part] = tuple(sorted(set(out[e.part] or ()) | set(e.classes)))
    return out


def export(store: DocumentStore, mapping: Mapping, row: DossierRow, rights: dict[str, tuple[str, ...] | None],
           folder: Path, today: date, requester: str, corrections: list[dict[str, Any]],
           child: dict[str, Any] | None = None) -> ExportResult:
    """Write the ZIP. A document goes in only when the requester may see its part and class,
    its class is known and the class does not hold other people's data; one that the requester
    may see but that is unclassified or holds others' data is named in the index by its part,
    class and date only (never its title, which may name other people). ``corrections`` are the
    open correction requests on the dossier: the index says so. ``child``: whose dossier it is
    (name, birth date, school; read from the LAS), named in the index for the person who asked."""
    child = child or {"pseudoniem": row.pseudonym}
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = folder / f"inzage-{row.pseudonym}-{today.isoformat()}.zip"
    result = ExportResult(file=str(path), open_corrections=[int(c["id"]) for c in corrections])
    index: list[dict[str, Any]] = []
    ref = DossierRef(id=row.ref_id or "", external_id=row.external_id)
    tmp = path.with_suffix(".zip.tmp")
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as z:
        for doc in store.documents(ref):
            if doc.part not in rights:
                continue
            classes = rights[doc.part]
            doc_class = mapping.classify(doc)
            if classes is not None and doc_class not in classes:
                continue
            day = doc.added.isoformat() if doc.added else ""
            entry: dict[str, Any] = {"deel": doc.part, "soort": doc_class or "", "datum": day}
            reason = WITHHELD_UNCLASSIFIED if doc_class is None else (
                WITHHELD_OTHERS if doc_class in mapping.others_data else None)
            if reason is not None:
                entry["niet_bijgevoegd"] = reason
                result.withheld.append({"document": doc.id, "part": doc.part, "class": doc_class or "",
                                        "reason": "unclassified" if doc_class is None else "other people's data"})
            else:
                member = f"{doc.part}/{doc_class}/{doc.id}-{_SAFE.sub('_', doc.name)[:80]}"
                z.writestr(member, store.read(doc))
                entry["document"] = doc.name
                entry["bestand"] = member
                result.documents += 1
            index.append(entry)
        notices = [CORRECTION_OPEN.format(received=c["received"].isoformat()) for c in corrections]
        z.writestr("index.json", json.dumps({"leerling": child, "verzoeker": requester,
                                             "gemaakt": today.isoformat(), "mededelingen": notices,
                                             "documenten": index}, indent=2, ensure_ascii=False))
        z.writestr("index.html", _index_html(child, today, index, notices))
    os.chmod(tmp, 0o600)
    tmp.replace(path)
    return result


def remove_expired(state: StateStore, audit: AuditLog, today: date, actor: str) -> list[str]:
    """Remove the exports whose ``[access] export_days`` have passed, each with an audit entry;
    returns the pseudonyms of the dossiers whose copies went. A file already gone (handed over
    and deleted by a person) is recorded as removed too."""
    gone: list[str] = []
    for e in state.exports_due(today):
        path = Path(e["path"])
        existed = path.exists()
        path.unlink(missing_ok=True)
        with state.transaction() as conn:
            state.export_removed(conn, e["id"])
            audit.append(conn, actor, "export.removed", e["pseudonym"],
                         {"export": e["id"], "made": e["made"].isoformat(), "file": path.name,
                          "was_present": existed})
        gone.append(e["pseudonym"])
    return gone


def _who(child: dict[str, Any]) -> str:
    """The child as the index names it: name, birth date and school where known, else the key."""
    born = child.get("geboortedatum")
    parts = [str(child["naam"]) if child.get("naam") else f"met sleutel {child['pseudoniem']}",
             f"geboren {date.fromisoformat(str(born)).strftime('%d-%m-%Y')}" if born else "",
             f"{child['school']}" if child.get("school") else ""]
    return ", ".join(p for p in parts if p)


def _index_html(child: dict[str, Any], today: date, index: list[dict[str, Any]], notices: list[str]) -> str:
    rows = "".join(
        "<tr>" + "".join(f"<td>{html.escape(str(e.get(k, '')))}</td>" for k in ("deel", "soort", "datum", "document",
                                                                                  "bestand", "niet_bijgevoegd"))
        + "</tr>" for e in index)
    told = "".join(f"<p><strong>{html.escape(n)}</strong></p>" for n in notices)
    return ("<!doctype html><html lang='nl'><meta charset='utf-8'><title>Inzage leerlingdossier</title>"
            f"<h1>Inzage leerlingdossier</h1><p>Leerling {html.escape(_who(child))}. Gemaakt op "
            f"{today.strftime('%d-%m-%Y')}.</p>"
            f"{told}<table border='1'><tr><th>Deel</th><th>Soort</th><th>Datum</th><th>Document</th><th>Bestand</th>"
            f"<th>Niet bijgevoegd</th></tr>{rows}</table></html>\n")
