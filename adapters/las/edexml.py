"""EDEXML 2.0 / 2.1 file exports (the LAS's standard export) as a PupilSource.

The file is streamed with lxml ``iterparse``: each ``leerling`` is validated on its own against
the standard's own ``LeerlingType`` (the published XSDs ship with this module), turned into a
``Pupil`` and dropped, so memory stays flat in the number of pupils. A bad record is yielded as
a ``RejectedRecord`` naming the record (pseudonymous key and line) and the field, never the
value; the stream goes on.

The parser is hardened: a document type declaration is refused outright (no DTDs, so no
entity expansion, XXE or billion laughs), entities are never resolved and nothing is loaded
from the network.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any, ClassVar

from lxml import etree
from pydantic import BaseModel, ConfigDict, ValidationError

from connector.errors import RejectedRecord, SourceError
from connector.model import Pupil, School
from connector.ports import Cursor, SourceContext, SourceReport

XSD_DIR = Path(__file__).resolve().parent / "xsd"

_TOP = ("school", "vestiging", "groep", "samengestelde_groep", "leerling", "leerkracht")
_ID_FIELDS = ("bsn", "onderwijsnummer", "sofinummer", "rijksregisternummer")
_SIMPLE = {
    "achternaam", "voorvoegsel", "voornamen", "roepnaam", "geboortedatum", "geslacht",
    "jaargroep", "instroomdatum", "uitstroomdatum",
}
_SCHOOLJAAR = re.compile(r"^(\d{4})-(\d{4})$")

# lxml/libxml2 schema error types -> a reason without the offending value.
_REASONS = {
    "SCHEMAV_CVC_DATATYPE_VALID_1_2_1": "not a valid value for its type (e.g. an impossible date)",
    "SCHEMAV_CVC_ENUMERATION_VALID": "not in the standard's code list",
    "SCHEMAV_CVC_PATTERN_VALID": "does not have the required format",
    "SCHEMAV_CVC_MINLENGTH_VALID": "too short",
    "SCHEMAV_CVC_MAXLENGTH_VALID": "too long",
    "SCHEMAV_CVC_COMPLEX_TYPE_4": "required attribute missing",
    "SCHEMAV_CVC_COMPLEX_TYPE_3_2_1": "attribute not allowed",
    "SCHEMAV_CVC_COMPLEX_TYPE_3_2_2": "attribute not allowed",
    "SCHEMAV_ELEMENT_CONTENT": "element not expected here, or a required element is missing",
    "SCHEMAV_CVC_ELT_4_2": "unknown extension block type",
    "SCHEMAV_CVC_TYPE_2": "unknown extension block type",
}
_ATTR = re.compile(r"attribute '([A-Za-z_:{}/.-]+)'")
_EXPECTED = re.compile(r"Expected is (?:one of )?\( ([A-Za-z0-9_, -]+) \)")
_VALUE_ERROR = re.compile(r"^(?:Value error, )?([a-z_]+): (.*)$")


class EdexmlSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    path: Path


class EdexmlSource:
    """Reads one EDEXML export file. ``report`` holds snapshot-wide warnings after reading."""

    settings_model: ClassVar[type[BaseModel]] = EdexmlSettings

    _schemas: ClassVar[dict[str, etree.XMLSchema]] = {}

    def __init__(self, settings: EdexmlSettings, context: SourceContext) -> None:
        path = settings.path
        self.path = path if path.is_absolute() else context.base / path
        self._pseudonymize = context.pseudonymize
        self.report = SourceReport()

    # -- port -------------------------------------------------------------------------------
    def cursor(self) -> Cursor | None:
        """A file export is always a whole snapshot: there is nothing to resume from."""
        return None

    def check(self) -> list[str]:
        if not self.path.is_file():
            return [f"EDEXML export {self.path} does not exist or is not a file"]
        try:
            with self.path.open("rb") as fh:
                head = fh.read(4096)
        except OSError as exc:
            return [f"EDEXML export {self.path} cannot be read ({exc.strerror})"]
        if b"<EDEX" not in head:
            return [f"{self.path} does not look like an EDEXML export (no <EDEX> root near the start)"]
        return []

    def pupils(self, since: Cursor | None = None) -> Iterator[Pupil | RejectedRecord]:
        self.report = SourceReport()
        school: School | None = None
        version = "2.1"
        groups: dict[str, str] = {}
        try:
            context = etree.iterparse(
                str(self.path), events=("start", "end"), tag=(*_TOP, "EDEX"),
                resolve_entities=False, load_dtd=False, no_network=True, dtd_validation=False,
                huge_tree=False, remove_comments=True, remove_pis=True,
            )
            first = True
            for event, elem in context:
                if first:
                    first = False
                    self._refuse_doctype(elem)
                    if elem.tag != "EDEX":
                        raise SourceError(f"{self.path}: root element is not <EDEX>")
                if event == "start":
                    continue
                parent = elem.getparent()
                parent_tag = parent.tag if parent is not None else None
                tag = elem.tag
                if tag == "school" and parent_tag == "EDEX":
                    version = _version(elem)
                    school = self._school(elem, version)
                    self.report.school = school
                elif tag in ("groep", "samengestelde_groep") and parent_tag == "groepen":
                    naam = elem.findtext("naam")
                    key = elem.get("key")
                    if key:
                        groups[key] = naam or key
                elif tag == "leerling" and parent_tag == "leerlingen":
                    if school is None:
                        raise SourceError(f"{self.path}: <leerlingen> before <school>")
                    yield self._pupil(elem, school, version, groups)
                elif tag in ("vestiging", "leerkracht") and parent_tag in ("vestigingen", "leerkrachten"):
                    pass
                else:
                    continue  # a reference inside a record; the record itself is handled at its end
                _release(elem)
        except etree.XMLSyntaxError as exc:
            raise SourceError(f"{self.path}: not well-formed XML at line {exc.lineno}: {_syntax(exc)}") from None
        except OSError as exc:
            raise SourceError(f"{self.path}: cannot read ({exc.strerror or exc})") from None
        if school is None:
            raise SourceError(f"{self.path}: no <school> element; not an EDEXML export")

    # -- internals --------------------------------------------------------------------------
    def _refuse_doctype_in_prolog(self) -> None:
        """Refuse a DTD before the parser sees it: scan the prolog (declaration, comments,
        processing instructions) up to the first element."""
        with self.path.open("rb") as fh:
            head = fh.read(65536)
        text = head.lstrip(b"\xef\xbb\xbf")
        pos = 0
        while True:
            lt = text.find(b"<", pos)
            if lt < 0:
                return
            if text.startswith(b"<?", lt):
                pos = text.find(b"?>", lt) + 2
            elif text.startswith(b"<!--", lt):
                pos = text.find(b"-->", lt) + 3
            elif text[lt:lt + 9].upper() == b"<!DOCTYPE":
                raise self._doctype_error()
            else:
                return  # the root element: no DTD before it
            if pos < 2:
                return  # unterminated prolog item: the parser reports it

    def _doctype_error(self) -> SourceError:
        return SourceError(
            f"{self.path}: refused: the file declares a document type (DTD). EDEXML has none; "
            "DTDs allow entity expansion and external entities, so they are never read"
        )

    def _refuse_doctype(self, elem: Any) -> None:
        docinfo = elem.getroottree().docinfo
        if docinfo.doctype or docinfo.internalDTD is not None or docinfo.externalDTD is not None:
            raise self._doctype_error()

    @classmethod
    def _schema(cls, version: str) -> etree.XMLSchema:
        if version not in cls._schemas:
            parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)
            doc = etree.parse(str(XSD_DIR / f"edexml-{version}" / "record.xsd"), parser)
            cls._schemas[version] = etree.XMLSchema(doc)
        return cls._schemas[version]

    def _school(self, elem: Any, version: str) -> School:
        schema = self._schema(version)
        schooljaar = elem.findtext("schooljaar")
        if not schema.validate(elem):
            fatal = []
            for err in schema.error_log:
                field = _field(err)
                if field == "schooljaar" and _plausible_year(schooljaar):
                    self.report.warnings.append(
                        f"school: schooljaar {schooljaar} is not in the EDEXML {version} code list "
                        "(it ends at 2024-2025); accepted"
                    )
                else:
                    fatal.append(f"{field}: {_reason(err)}")
            if fatal:
                raise SourceError(f"{self.path}: the <school> header is invalid: " + "; ".join(fatal))
        peildatum = elem.findtext("peildatum")
        return School(
            brin=elem.findtext("brincode"),
            dependancecode=elem.findtext("dependancecode"),
            schoolkey=elem.findtext("schoolkey"),
            instellingsnummer=elem.findtext("instellingsnummer"),
            schooljaar=schooljaar,
            peildatum=date.fromisoformat(peildatum) if peildatum else None,
        )

    def _pupil(
        self, elem: Any, school: School, version: str, groups: dict[str, str],
    ) -> Pupil | RejectedRecord:
        key = elem.get("key")
        line = elem.sourceline

        def reject(field: str, reason: str) -> RejectedRecord:
            pseudonym = self._pseudonymize(school.code, key) if key else None
            record = f"{pseudonym} (line {line})" if pseudonym else f"line {line}"
            return RejectedRecord(record, field, reason, pseudonym)

        schema = self._schema(version)
        if not schema.validate(elem):
            errors = list(schema.error_log)
            more = f" (+{len(errors) - 1} more)" if len(errors) > 1 else ""
            return reject(_field(errors[0]), _reason(errors[0]) + more)
        data: dict[str, Any] = {"key": key, "eckid": elem.get("eckid"), "school": school, "line": line}
        for child in elem:
            tag = child.tag
            if tag in _SIMPLE:
                data[tag] = child.text
            elif tag in _ID_FIELDS:
                data["pgn"] = child.text
                data["pgn_kind"] = tag
            elif tag == "groep":
                ref = child.get("key")
                if ref not in groups:
                    return reject("groep/@key", "refers to a group that is not in the export")
                data["groep"] = groups[ref]
            elif tag == "vestiging":
                data["vestiging"] = child.get("key")
        try:
            return Pupil.model_validate(data)
        except ValidationError as exc:
            err = exc.errors(include_input=False, include_url=False)[0]
            field = ".".join(str(p) for p in err["loc"]) or "leerling"
            reason = err["msg"]
            m = _VALUE_ERROR.match(reason)
            if m:
                field, reason = m.group(1), m.group(2)
            return reject(field, reason)


def _version(school: Any) -> str:
    declared = (school.findtext("xsdversie") or "").strip()
    if declared.startswith(("1.", "2.0")):
        return "2.0"
    return "2.1"


def _plausible_year(value: str | None) -> bool:
    m = _SCHOOLJAAR.match(value or "")
    return bool(m) and int(m.group(2)) == int(m.group(1)) + 1  # type: ignore[union-attr]


def _field(err: Any) -> str:
    path = (err.path or "").split("/")
    parts = [re.sub(r"\[\d+\]$", "", p) for p in path if p]
    field = "/".join(parts[1:]) or parts[0] if parts else "record"
    attr = _ATTR.search(err.message or "")
    if attr and "xsi:type" not in (err.message or "") and "XMLSchema-instance" not in attr.group(1):
        field = f"{field}/@{attr.group(1)}" if field and parts[1:] else f"@{attr.group(1)}"
    return field


def _reason(err: Any) -> str:
    reason = _REASONS.get(err.type_name, "does not conform to the EDEXML schema")
    if err.type_name == "SCHEMAV_ELEMENT_CONTENT":
        expected = _EXPECTED.search(err.message or "")
        if expected:
            reason += f"; expected: {expected.group(1)}"
    return reason


def _syntax(exc: etree.XMLSyntaxError) -> str:
    """The parser's complaint without quoting document text."""
    msg = str(exc.msg or "").split(",")[0]
    return re.sub(r"'[^']*'", "'…'", msg)[:120]


def _release(elem: Any) -> None:
    """Free a processed element and the siblings before it (iterparse keeps them otherwise)."""
    elem.clear(keep_tail=False)
    parent = elem.getparent()
    if parent is not None:
        while elem.getprevious() is not None:
            del parent[0]
