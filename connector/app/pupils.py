"""Finding the child behind a key: a search by name in the school's LAS, for a person whose role
may see pupils' data, with every pupil shown recorded as a view of their data.

The connector keeps no names (its state knows pupils by keyed pseudonyms), so a search reads the
configured LAS source as a sync does and keeps nothing of it but the audit entries."""

from __future__ import annotations

import logging
import unicodedata
from typing import Any

from connector.app.context import App
from connector.errors import ConfigError, RejectedRecord, SourceError
from connector.model import Pupil
from connector.state import DossierRow
from connector.users import User

MAX_SHOWN = 25
log = logging.getLogger(__name__)


def _plain(text: str) -> str:
    """Lower case without accents, for matching (``Çelik`` finds ``celik``)."""
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()


def display_name(pupil: Pupil) -> str:
    """How the LAS names the pupil: call name (or first names), prefix and surname."""
    first = pupil.roepnaam or pupil.voornamen or ""
    return " ".join(p for p in (first, pupil.voorvoegsel, pupil.achternaam) if p).strip() or "(geen naam)"


def find_by_name(app: App, user: User, text: str, reason: str) -> dict[str, Any]:
    """The pupils of the LAS whose name holds every word of ``text`` (at least two letters, case
    and accents aside): name, birth date, school, LAS key and pseudonymous key, and whether the
    connector keeps a dossier for them; at most 25, and whether there were more. Each pupil shown
    is a ``dossier.viewed`` entry in the audit log with ``reason``; the search text is not kept."""
    user.require("view.pupil")
    words = _plain(text).split()
    if not words or sum(len(w) for w in words) < 2:
        raise ConfigError("give at least two letters of the pupil's name")
    if not reason.strip():
        raise ConfigError("give the reason for the search")
    found: list[Pupil] = []
    more = False
    source = app.source()
    for record in source.pupils():
        if isinstance(record, RejectedRecord):
            continue
        name = _plain(" ".join(p for p in (record.roepnaam, record.voornamen, record.voorvoegsel,
                                           record.achternaam) if p))
        if all(w in name for w in words):
            if len(found) == MAX_SHOWN:
                more = True
                break
            found.append(record)
    pseudonyms = [app.identity.pseudonym(p) for p in found]
    kept = {row.pseudonym for row in app.state.find_pupil(pseudonyms)} if pseudonyms else set()
    with app.state.transaction() as conn:
        for pseudonym in pseudonyms:
            app.audit.append(conn, user.name, "dossier.viewed", pseudonym,
                             {"what": "name and birth date (search by name)", "reason": reason.strip()})
    return {"pupils": [{"name": display_name(p), "born": p.geboortedatum, "school": p.school.code, "key": p.key,
                        "pseudonym": ps, "dossier": ps in kept} for p, ps in zip(found, pseudonyms, strict=True)],
            "more": more}


def show(app: App, key: str) -> dict[str, Any]:
    """What the connector itself keeps of a pupil's dossier, without personal data: the
    pseudonymous key, the school, the departure and vanished dates, and the other LAS keys of the
    child linked to it (by their pseudonyms)."""
    return _kept(app, app.dossier(key))


def _kept(app: App, row: DossierRow) -> dict[str, Any]:
    return {"pseudonym": row.pseudonym, "school": row.school, "departure": row.departure,
            "vanished_since": row.vanished_since, "dossier_in_dms": row.ref_id is not None,
            "aliases": [{"pseudonym": a["pseudonym"], "kind": a["kind"], "by": a["by"], "at": a["at"],
                         "used": a["used_run"] is not None} for a in app.state.aliases_of(row.external_id)]}


def las_records(app: App, row: DossierRow) -> list[Pupil]:
    """The LAS's records of the pupil of a dossier, under its own key or a key linked to it (the
    connector keeps no names: this reads the configured source as a sync does)."""
    wanted = {row.pseudonym, *(a["pseudonym"] for a in app.state.aliases_of(row.external_id))}
    return [r for r in app.source().pupils()
            if not isinstance(r, RejectedRecord) and app.identity.pseudonym(r) in wanted]


def reveal(app: App, user: User, key: str, reason: str) -> dict[str, Any]:
    """Who the child behind a key is: name, birth date, school and LAS key, read from the LAS
    (the connector keeps no names), for a user whose role may see pupils' data; every reveal is
    a ``pupil.revealed`` audit entry (who, which pupil, why). A linked key of the child is found
    too."""
    user.require("view.pupil")
    if not reason.strip():
        raise ConfigError("give the reason for the reveal")
    row = app.dossier(key)
    shown = _kept(app, row)
    records = las_records(app, row)
    with app.state.transaction() as conn:
        app.audit.append(conn, user.name, "pupil.revealed", shown["pseudonym"],
                         {"what": "name, birth date and school", "reason": reason.strip(),
                          "found_in_las": bool(records)})
    return shown | {"las": [{"name": display_name(r), "born": r.geboortedatum, "school": r.school.code,
                             "key": r.key, "pseudonym": app.identity.pseudonym(r)} for r in records]}


def manifest(app: App, row: DossierRow, fields: list[str]) -> dict[str, Any]:
    """What a receiving party reads about whose dossier it receives, in Dutch: of ``fields``
    (``[transfer] manifest``) the pupil's name, birth date and persoonsgebonden nummer from the
    LAS, and the sending school's name and code. ``niet_gevonden`` says when the LAS no longer
    holds the pupil (the pseudonymous key is always there)."""
    out: dict[str, Any] = {"leerling": {"pseudoniem": row.pseudonym}}
    personal = [f for f in fields if f in ("naam", "geboortedatum", "onderwijsnummer")]
    if personal:
        try:
            records = las_records(app, row)
        except SourceError as exc:
            log.warning("the LAS could not be read for a manifest", extra={"error": type(exc).__name__})
            records, gone = [], "de leerlingadministratie was niet te lezen; vraag de gegevens bij de school op"
        else:
            gone = "de leerlingadministratie kent deze leerling niet meer"
        if not records:
            out["leerling"]["niet_gevonden"] = gone
        else:
            pupil = records[0]
            if "naam" in fields:
                out["leerling"] |= {"naam": display_name(pupil), "achternaam": pupil.achternaam,
                                    "voorvoegsel": pupil.voorvoegsel, "voornamen": pupil.voornamen}
            if "geboortedatum" in fields:
                out["leerling"]["geboortedatum"] = pupil.geboortedatum.isoformat() if pupil.geboortedatum else None
            if "onderwijsnummer" in fields:
                out["leerling"] |= {"persoonsgebonden_nummer": pupil.pgn, "soort_nummer": pupil.pgn_kind}
    if "school" in fields:
        out["verzendende_school"] = {"naam": app.school_name(row.school), "code": row.school}
    return out


def named_child(app: App, row: DossierRow) -> dict[str, Any]:
    """Whose dossier an inspection copy is, for the person who asked: the pseudonymous key, and
    the name, birth date and school where the LAS still holds the pupil."""
    about = manifest(app, row, ["naam", "geboortedatum", "school"])
    child: dict[str, Any] = {"pseudoniem": row.pseudonym}
    pupil = about["leerling"]
    if "naam" in pupil:
        child |= {"naam": pupil["naam"], "geboortedatum": pupil["geboortedatum"]}
    else:
        child["niet_gevonden"] = pupil.get("niet_gevonden")
    school = about["verzendende_school"]
    child["school"] = f"{school['naam']} ({school['code']})" if school["naam"] else school["code"]
    return child
