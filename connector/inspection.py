"""A copy of a dossier for the person who asked for it (AVG art. 15(3)): exactly what their
access list entitles them to, as a ZIP with an index, leaving out documents of classes the
mapping marks as holding other people's personal data (listed as withheld, for a person to
redact and hand over separately)."""

from __future__ import annotations

import html
import json
import re
import zipfile
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from connector.access import AccessEntry
from connector.mapping import Mapping
from connector.model import DossierRef
from connector.ports import DocumentStore
from connector.state import DossierRow

_SAFE = re.compile(r"[^A-Za-z0-9._-]+")


@dataclass
class ExportResult:
    file: str
    documents: int = 0
    withheld: list[dict[str, str]] = field(default_factory=list)

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
           folder: Path, today: date, requester: str) -> ExportResult:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"inzage-{row.pseudonym}-{today.isoformat()}.zip"
    result = ExportResult(file=str(path))
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
            entry = {"part": doc.part, "class": doc_class or "", "document": doc.id, "name": doc.name}
            if doc_class in mapping.others_data:
                entry["withheld"] = "holds other people's personal data: to be redacted by a person first"
                result.withheld.append({"document": doc.id, "class": doc_class or ""})
            else:
                member = f"{doc.part}/{doc_class or 'zonder-klasse'}/{doc.id}-{_SAFE.sub('_', doc.name)[:80]}"
                z.writestr(member, store.read(doc))
                entry["file"] = member
                result.documents += 1
            index.append(entry)
        z.writestr("index.json", json.dumps({"pupil": row.pseudonym, "requester": requester,
                                             "made": today.isoformat(), "documents": index}, indent=2))
        z.writestr("index.html", _index_html(row.pseudonym, today, index))
    tmp.replace(path)
    return result


def _index_html(pseudonym: str, today: date, index: list[dict[str, Any]]) -> str:
    rows = "".join(
        "<tr>" + "".join(f"<td>{html.escape(str(e.get(k, '')))}</td>" for k in ("part", "class", "name", "file",
                                                                                  "withheld")) + "</tr>"
        for e in index)
    return ("<!doctype html><html lang='nl'><meta charset='utf-8'><title>Inzage leerlingdossier</title>"
            f"<h1>Inzage leerlingdossier</h1><p>Leerling {html.escape(pseudonym)}, gemaakt op {today.isoformat()}.</p>"
            "<table border='1'><tr><th>Deel</th><th>Soort</th><th>Document</th><th>Bestand</th><th>Niet bijgevoegd"
            f"</th></tr>{rows}</table></html>\n")
