"""OSO 2019.1 dossiers (the overstapdossier between schools) as a PupilSource.

OSO is the only standard that carries the enrolment dates (``datuminschrijving``,
``datumuitschrijving``) and the parents and carers (``verzorger`` with ``relatietotkind``,
``wettigevertegenwoordiger``, ``overleden``). This source reads a folder of OSO files (or one
file); a file holds one ``dossier`` or a ``dossiers`` batch. Each dossier is validated on its
own against the published XSD (shipped, unchanged) and dropped after reading.

Where OSO differs from EDEXML, this source translates, so every source yields the same Pupil:
- ``geslacht``: OSO code list 14 is 0 onbekend, 1 vrouw, 2 man; EDEXML (ISO 5218) is 0, 1 jongen,
  2 meisje, 9. Codes outside the list are rejected.
- ``voornaam`` occurs once per given name; they are joined with spaces into ``voornamen``.
- ``groep``/``jaargroep`` come from the latest ``schoolloopbaan`` at the current school.
- A guardian's parental authority is ``wettigevertegenwoordiger`` (legal representative), the
  closest OSO has; ``relatietotkind`` is kept as its code.
- The LAS key is ``leerlingid``; a dossier without one is rejected (there is no other stable
  key: OSO has no ECK-iD).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, ClassVar, cast

from lxml import etree
from pydantic import BaseModel

from adapters.las._cursor import Position, begin
from adapters.las._edex import (
    XSD_DIR,
    check_no_doctype,
    field_of,
    hardened_parser_options,
    pupil_or_reject,
    reason_of,
    refuse_doctype,
    release,
    schema,
    syntax_reason,
)
from connector.errors import RejectedRecord, SourceError
from connector.model import Frozen, Guardian, Pupil, School
from connector.ports import Cursor, SourceContext, SourceReport

NS = "http://www.edustandaard.nl/oso_gegevensset/2019/dossier"
XSD = XSD_DIR / "oso-2019.1" / "OSO_gegevensset.xsd"
GESLACHT = {"0": "0", "1": "2", "2": "1"}  # OSO code list 14 -> ISO 5218 as EDEXML uses it
_BOOL = {"true": True, "1": True, "false": False, "0": False}


def _q(name: str) -> str:
    return f"{{{NS}}}{name}"


class OsoSettings(Frozen):
    path: Path
    """A folder of OSO files (``*.xml``, read in name order) or one file."""


class OsoSource:
    settings_model: ClassVar[type[BaseModel]] = OsoSettings

    def __init__(self, settings: OsoSettings, context: SourceContext) -> None:
        self.path = context.resolve(settings.path)
        self._pseudonymize = context.pseudonymize
        self.report = SourceReport()
        self._position: Position | None = None
        self._records = 0

    # -- port -------------------------------------------------------------------------------
    def cursor(self) -> Cursor | None:
        return None if self._position is None else Position(self._position.snapshot, self._records).dump()

    def check(self) -> list[str]:
        if not self.path.exists():
            return [f"OSO path {self.path} does not exist"]
        files = self._files()
        if not files:
            return [f"OSO folder {self.path} holds no .xml files"]
        with files[0].open("rb") as fh:
            head = fh.read(4096)
        if NS.encode() not in head:
            return [f"{self.path}: the first file does not look like an OSO 2019 dossier "
                    f"(namespace {NS} not near the start)"]
        return []

    def pupils(self, since: Cursor | None = None, resume: Cursor | None = None) -> Iterator[Pupil | RejectedRecord]:
        self.report = SourceReport()
        self._records = 0
        files = self._files()
        if not files:
            raise SourceError(f"{self.path}: no OSO files")
        # the folder's snapshot: names, sizes and modification times (reading every file twice
        # would double the cost; a file rewritten in place gets a new mtime)
        snapshot = hashlib.sha256()
        for f in files:
            st = f.stat()
            snapshot.update(f"{f.name}\0{st.st_size}\0{st.st_mtime_ns}\0".encode())
        self._position, skip = begin(snapshot.hexdigest(), resume, self.report)
        for n, f in enumerate(files, start=1):
            # files are named by ordinal, never by name: an export may name them after the pupil
            label = str(self.path) if self.path.is_file() else f"{self.path} (file {n} of {len(files)} by name)"
            yield from self._read(f, label, skip)

    # -- internals --------------------------------------------------------------------------
    def _files(self) -> list[Path]:
        """The files in name order. Only the names are listed (a Path per file would cost memory
        with the number of pupils); a Path is made when a file is read."""
        if self.path.is_file():
            return [self.path]
        if not self.path.is_dir():
            return []
        names = sorted(e.name for e in os.scandir(self.path) if e.name.endswith(".xml") and e.is_file())
        return _Files(self.path, names)  # type: ignore[return-value]

    def _read(self, path: Path, label: str, skip: int) -> Iterator[Pupil | RejectedRecord]:
        try:
            with path.open("rb") as fh:  # one open per file: the prolog check, then the parse
                refuse_doctype(fh.read(65536), label)
                fh.seek(0)
                first = True
                for event, elem in etree.iterparse(fh, events=("start", "end"), tag=(_q("dossier"), _q("dossiers")),
                                                   **hardened_parser_options()):
                    if first:
                        first = False
                        check_no_doctype(elem, label)
                    if event == "start":
                        continue
                    if elem.tag == _q("dossier"):
                        self._records += 1
                        if self._records > skip:
                            yield self._pupil(elem)
                        release(elem)
            if first:
                raise SourceError(f"{label}: no OSO 2019 <dossier> (another OSO version or not OSO)")
        except etree.XMLSyntaxError as exc:
            raise SourceError(f"{label}: not well-formed XML at line {exc.lineno}: {syntax_reason(exc)}") from None
        except OSError as exc:
            raise SourceError(f"{label}: cannot read ({exc.strerror or exc})") from None

    def _pupil(self, elem: Any) -> Pupil | RejectedRecord:
        school_el = elem.find(_q("huidigeschool"))
        leerling = school_el.find(_q("leerling")) if school_el is not None else None
        brin = school_el.findtext(_q("brincode")) if school_el is not None else None
        vestiging = school_el.findtext(_q("vestigingscode")) if school_el is not None else None
        key = leerling.findtext(_q("leerlingid")) if leerling is not None else None
        line = elem.sourceline
        school = School(brin=brin, dependancecode=vestiging) if brin else None

        def reject(name: str, reason: str) -> RejectedRecord:
            pseudonym = self._pseudonymize(school.code, key) if key and school else None
            where = f"dossier {self._records}, line {line}"
            return RejectedRecord(f"{pseudonym} ({where})" if pseudonym else where, name, reason, pseudonym)

        xsd = schema(XSD)
        if not xsd.validate(elem):
            errors = [*cast("Iterable[Any]", xsd.error_log)]
            more = f" (+{len(errors) - 1} more)" if len(errors) > 1 else ""
            return reject(field_of(errors[0], elem), reason_of(errors[0]).replace("EDEXML", "OSO") + more)
        assert school is not None and leerling is not None  # required by the XSD
        if self.report.school is None:
            self.report.school = school
        if not key:
            return reject("leerling/leerlingid", "missing: without the LAS key the dossier cannot be matched")

        fields = _children(leerling)

        def text(name: str) -> str | None:
            return fields.get(name)

        voornamen = " ".join(v.text.strip() for v in leerling.findall(_q("voornaam")) if v.text)
        geslacht = text("geslacht")
        if geslacht is not None and geslacht.strip() not in GESLACHT:
            return reject("leerling/geslacht", "not in OSO code list 14 (0, 1, 2)")
        data: dict[str, Any] = {
            "key": key, "school": school, "line": line,
            "achternaam": text("achternaam"), "voorvoegsel": text("voorvoegsel"), "roepnaam": text("roepnaam"),
            "voornamen": voornamen or None, "geboortedatum": text("geboortedatum"),
            "geslacht": GESLACHT[geslacht.strip()] if geslacht is not None else None,
            "instroomdatum": text("datuminschrijving"), "uitstroomdatum": text("datumuitschrijving"),
        }
        for kind in ("bsn", "onderwijsnummer"):
            if text(kind):
                data["pgn"], data["pgn_kind"] = text(kind), kind
        current = self._current_year(leerling, brin)
        if current is not None:
            data["jaargroep"] = current.findtext(_q("jaargroep"))
            data["groep"] = current.findtext(_q("groepsnaam")) or current.findtext(_q("groepscode"))
        data["guardians"] = tuple(_guardian(v) for v in leerling.findall(_q("verzorger")))
        return pupil_or_reject(data, reject)

    @staticmethod
    def _current_year(leerling: Any, brin: str | None) -> Any:
        """The latest school year at this school in the pupil's schoolloopbaan, if any."""
        best = None
        for sl in leerling.iterfind(f"{_q('schoolloopbaanlijst')}/{_q('schoolloopbaan')}"):
            if sl.findtext(_q("brincode")) != brin:
                continue
            if best is None or (sl.findtext(_q("schooljaar")) or "") >= (best.findtext(_q("schooljaar")) or ""):
                best = sl
        return best


class _Files:
    """A folder's file names as a sequence of Paths, made one at a time."""

    def __init__(self, folder: Path, names: list[str]) -> None:
        self.folder, self.names = folder, names

    def __len__(self) -> int:
        return len(self.names)

    def __getitem__(self, i: int) -> Path:
        return self.folder / self.names[i]

    def __iter__(self) -> Iterator[Path]:
        return (self.folder / n for n in self.names)


def _children(elem: Any) -> dict[str, str | None]:
    """Local name -> text of the first child element of each name (one pass, not a find per field)."""
    out: dict[str, str | None] = {}
    cut = len(NS) + 2
    for child in elem:
        tag = child.tag
        if isinstance(tag, str) and tag[cut:] not in out:
            out[tag[cut:]] = child.text
    return out


def _guardian(v: Any) -> Guardian:
    fields = _children(v)

    def text(name: str) -> str | None:
        return fields.get(name)

    return Guardian(
        achternaam=text("achternaam"), voorvoegsel=text("voorvoegsel"), voorletters=text("voorletters-1"),
        relatie=text("relatietotkind"),
        gezag=_BOOL.get((text("wettigevertegenwoordiger") or "").strip()),
        overleden=_BOOL.get((text("overleden") or "").strip(), False),
    )

