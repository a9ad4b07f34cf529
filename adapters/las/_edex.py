"""EDEXML records, shared by the EDEXML file export and UWLR (whose answer body is EDEXML 2.1
re-namespaced into the leerlinggegevens namespace).

A document is streamed with lxml ``iterparse``: each ``leerling`` is validated on its own
against the standard's own ``LeerlingType`` (the published XSDs ship with the adapters), turned
into a ``Pupil`` and dropped, so memory stays flat in the number of pupils. A bad record becomes
a ``RejectedRecord`` naming the record (pseudonymous key and line) and the field, never the
value; the stream goes on.

The parser is hardened: a document type declaration is refused outright (no DTDs, so no entity
expansion, XXE or billion laughs), entities are never resolved and nothing is loaded from the
network.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import IO, Any, Literal, cast, overload

from lxml import etree
from pydantic import ValidationError

from connector.errors import RejectedRecord, SourceError
from connector.model import Pupil, School
from connector.ports import SourceRecord, SourceReport

XSD_DIR = Path(__file__).resolve().parent / "xsd"
SOAP_ENV = "http://schemas.xmlsoap.org/soap/envelope/"

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
_EXPECTED = re.compile(r"Expected is (?:one of )?\( ([A-Za-z0-9_:{}/., -]+) \)")
_NS_NAME = re.compile(r"\{[^}]*\}")
_LOCAL_NAME = re.compile(r"\*\[local-name\(\)=['\"]([^'\"]+)['\"][^\]]*\]")
_VALUE_ERROR = re.compile(r"^(?:Value error, )?([a-z_]+): (.*)$")

_schemas: dict[Path, etree.XMLSchema] = {}


def hardened_parser_options() -> dict[str, Any]:
    """Options for every XML parse of LAS input: no DTD, no entities, no network."""
    return {"resolve_entities": False, "load_dtd": False, "no_network": True, "dtd_validation": False,
            "huge_tree": False, "remove_comments": True, "remove_pis": True}


def schema(path: Path) -> etree.XMLSchema:
    """A published XSD (or a wrapper around one), parsed once per process."""
    if path not in _schemas:
        parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)
        _schemas[path] = etree.XMLSchema(etree.parse(str(path), parser))
    return _schemas[path]


def refuse_doctype(head: bytes, label: str) -> None:
    """Refuse a DTD before the parser sees it: scan the prolog (declaration, comments,
    processing instructions) up to the first element."""
    text = head.lstrip(b"\xef\xbb\xbf")
    pos = 0
    while True:
        lt = text.find(b"<", pos)
        if lt < 0:
            return
        if text.startswith(b"<?", lt):
            end, close = text.find(b"?>", lt + 2), 2
        elif text.startswith(b"<!--", lt):
            end, close = text.find(b"-->", lt + 4), 3
        elif text[lt:lt + 9].upper() == b"<!DOCTYPE":
            raise doctype_error(label)
        else:
            return  # the root element: no DTD before it
        if end < 0:
            # a declaration or comment still open where the head ends: a DTD could follow it
            # unseen, so the document is refused rather than read
            raise SourceError(f"{label}: refused: the prolog (declaration and comments before the first "
                              f"element) does not end within the first {len(head)} bytes")
        pos = end + close  # always past ``lt``: the scan moves forward on every turn


def doctype_error(label: str) -> SourceError:
    return SourceError(
        f"{label}: refused: the document declares a document type (DTD). The standard has none; "
        "DTDs allow entity expansion and external entities, so they are never read"
    )


def check_no_doctype(elem: Any, label: str) -> None:
    """Second line after ``refuse_doctype``: what the parser itself saw."""
    docinfo = elem.getroottree().docinfo
    if docinfo.doctype or docinfo.internalDTD is not None or docinfo.externalDTD is not None:
        raise doctype_error(label)


def syntax_reason(exc: etree.XMLSyntaxError) -> str:
    """The parser's complaint without quoting document text."""
    msg = str(exc.msg or "").split(",")[0]
    return re.sub(r"'[^']*'", "'…'", msg)[:120]


def release(elem: Any) -> None:
    """Free a processed element and the siblings before it (iterparse keeps them otherwise)."""
    elem.clear(keep_tail=False)
    parent = elem.getparent()
    if parent is not None:
        while elem.getprevious() is not None:
            del parent[0]


@dataclass
class Dialect:
    """Where the EDEXML records sit: the namespace, the container of ``school`` etc. and the
    schemas a record is validated against (by EDEXML version)."""

    ns: str
    container: str
    """Local name of the element holding ``school``, ``groepen``, ``leerlingen``."""
    record_schema: Callable[[str], Path]
    """EDEXML version ("2.0", "2.1") -> the wrapper XSD declaring the record types."""
    markers: tuple[str, ...] = ()
    """Local names of answer elements that stand for the whole snapshot (``geenwijzigingen``)."""

    def q(self, name: str) -> str:
        return f"{{{self.ns}}}{name}" if self.ns else name


@dataclass
class Scan:
    """What one pass over a document found besides the pupils."""

    school: School | None = None
    head: bytes = b""
    """What of the school header shapes a record: part of every record's digest (a record means
    what it says only within its school and school year)."""
    markers: list[str] = field(default_factory=list)
    records: int = 0
    misplaced: int = 0
    """<leerling> elements outside <leerlingen>: never read as pupils (the export is malformed)."""


class EdexReader:
    """Streams the pupils out of one EDEXML (or UWLR) document."""

    def __init__(self, dialect: Dialect, label: str, pseudonymize: Callable[[str, str], str],
                 report: SourceReport) -> None:
        self.d = dialect
        self.label = label
        self._pseudonymize = pseudonymize
        self.report = report
        self._xsd: dict[str, etree.XMLSchema] = {}

    def _schema(self, version: str) -> etree.XMLSchema:
        xsd = self._xsd.get(version)
        if xsd is None:
            xsd = self._xsd[version] = schema(self.d.record_schema(version))
        return xsd

    @overload
    def pupils(self, source: str | IO[bytes], root: str, skip: int = 0, scan: Scan | None = None,
               raw: Literal[False] = False) -> Iterator[Pupil | RejectedRecord]: ...

    @overload
    def pupils(self, source: str | IO[bytes], root: str, skip: int = 0, scan: Scan | None = None,
               raw: bool = False) -> Iterator[Pupil | RejectedRecord | SourceRecord]: ...

    def pupils(self, source: str | IO[bytes], root: str, skip: int = 0, scan: Scan | None = None,
               raw: bool = False) -> Iterator[Pupil | RejectedRecord | SourceRecord]:
        """Stream ``source``; ``root`` is the expected root element (Clark notation). The first
        ``skip`` pupil records are passed over without validation (a resumed read). ``raw``: a
        record with a key is yielded unvalidated, as a SourceRecord."""
        scan = scan if scan is not None else Scan()
        d = self.d
        names = {d.q(n): n for n in (*_TOP, d.container, *d.markers)}
        q_container, q_leerlingen = d.q(d.container), d.q("leerlingen")
        q_groepen, q_vestigingen, q_leerkrachten = d.q("groepen"), d.q("vestigingen"), d.q("leerkrachten")
        version = "2.1"
        groups: dict[str, str] = {}
        try:
            context = etree.iterparse(source, events=("start", "end"), tag=(*names, root),
                                      **hardened_parser_options())
            first = True
            for event, elem in context:
                if first:
                    first = False
                    check_no_doctype(elem, self.label)
                    if elem.tag != root:
                        raise SourceError(f"{self.label}: root element is not <{_local(root)}>")
                if event == "start":
                    continue
                parent = elem.getparent()
                parent_tag = parent.tag if parent is not None else None
                name = names.get(elem.tag)
                if name == "school" and parent_tag == q_container:
                    version = _version(elem, d)
                    scan.school = self._school(elem, version)
                    # what of the header shapes a record: the school and the standard's version
                    # (not the peildatum, which moves with every export)
                    scan.head = scan.school.model_dump_json(exclude={"peildatum"}).encode() + version.encode()
                    self.report.school = scan.school
                elif name in ("groep", "samengestelde_groep") and parent_tag == q_groepen:
                    key = elem.get("key")
                    if key:
                        groups[key] = elem.findtext(d.q("naam")) or key
                elif name == "leerling" and parent_tag == q_leerlingen:
                    if scan.school is None:
                        raise SourceError(f"{self.label}: <leerlingen> before <school>")
                    scan.records += 1
                    if scan.records > skip:
                        key = elem.get("key")
                        if raw and key:
                            yield self._raw(elem, key, scan, version, groups)
                        else:
                            yield self._pupil(elem, scan.school, version, groups)
                elif name == "leerling" and parent is not None and (
                        parent_tag == q_container or getattr(parent.getparent(), "tag", None) == q_container):
                    scan.misplaced += 1  # at the top or in another top-level list instead of <leerlingen>
                elif name in d.markers:
                    scan.markers.append(name)
                elif name in ("vestiging", "leerkracht") and parent_tag in (q_vestigingen, q_leerkrachten):
                    pass
                else:
                    continue  # a reference inside a record; the record itself is handled at its end
                release(elem)
            if scan.misplaced:
                raise SourceError(f"{self.label}: {scan.misplaced} <leerling> element(s) stand outside <leerlingen>; "
                                  "the export is not in EDEXML form and nothing in it was used")
        except etree.XMLSyntaxError as exc:
            raise SourceError(f"{self.label}: not well-formed XML at line {exc.lineno}: {syntax_reason(exc)}") from None
        except OSError as exc:
            raise SourceError(f"{self.label}: cannot read ({exc.strerror or exc})") from None

    def _school(self, elem: Any, version: str) -> School:
        d = self.d
        xsd = self._schema(version)
        schooljaar = elem.findtext(d.q("schooljaar"))
        if not xsd.validate(elem):
            fatal = []
            for err in cast("Iterable[Any]", xsd.error_log):
                name = field_of(err, elem)
                if name == "schooljaar" and _plausible_year(schooljaar):
                    self.report.warnings.append(
                        f"school: schooljaar {schooljaar} is not in the EDEXML {version} code list "
                        "(it ends at 2024-2025); accepted"
                    )
                else:
                    fatal.append(f"{name}: {reason_of(err)}")
            if fatal:
                raise SourceError(f"{self.label}: the <school> header is invalid: " + "; ".join(fatal))
        peildatum = elem.findtext(d.q("peildatum"))
        return School(
            brin=elem.findtext(d.q("brincode")),
            dependancecode=elem.findtext(d.q("dependancecode")),
            schoolkey=elem.findtext(d.q("schoolkey")),
            instellingsnummer=elem.findtext(d.q("instellingsnummer")),
            schooljaar=schooljaar,
            peildatum=date.fromisoformat(peildatum) if peildatum else None,
        )

    def _raw(self, elem: Any, key: str, scan: Scan, version: str, groups: dict[str, str]) -> SourceRecord:
        """The record's bytes and digest now; its validation only when the core asks for it."""
        school = cast(School, scan.school)
        data = etree.tostring(elem, with_tail=False)
        ref = elem.find(self.d.q("groep"))
        group = groups.get(ref.get("key") or "") if ref is not None else None
        h = hashlib.blake2b(scan.head, digest_size=16)
        h.update(b"\x00" + (group or "").encode() + b"\x00" + (b"g" if ref is not None and group is None else b"")
                 + b"\x00" + data)
        line = elem.sourceline

        known = {ref.get("key") or "": group} if ref is not None and group is not None else {}

        def build() -> Pupil | RejectedRecord:  # as of this record's place in the export
            again = etree.fromstring(data, etree.XMLParser(**hardened_parser_options()))
            return self._pupil(again, school, version, known, line)

        return SourceRecord(self._pseudonymize(school.code, key), h.digest(), build)

    def _pupil(self, elem: Any, school: School, version: str, groups: dict[str, str],
               line: int | None = None) -> Pupil | RejectedRecord:
        key = elem.get("key")
        line = elem.sourceline if line is None else line

        def reject(name: str, reason: str) -> RejectedRecord:
            pseudonym = self._pseudonymize(school.code, key) if key else None
            record = f"{pseudonym} (line {line})" if pseudonym else f"line {line}"
            return RejectedRecord(record, name, reason, pseudonym)

        xsd = self._schema(version)
        if not xsd.validate(elem):
            errors = [*cast("Iterable[Any]", xsd.error_log)]
            more = f" (+{len(errors) - 1} more)" if len(errors) > 1 else ""
            return reject(field_of(errors[0], elem), reason_of(errors[0]) + more)
        data: dict[str, Any] = {"key": key, "eckid": elem.get("eckid"), "school": school, "line": line}
        cut = len(self.d.ns) + 2 if self.d.ns else 0
        for child in elem:
            tag = child.tag[cut:] if isinstance(child.tag, str) else ""
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
        return pupil_or_reject(data, reject)


def pupil_or_reject(data: dict[str, Any], reject: Callable[[str, str], RejectedRecord]) -> Pupil | RejectedRecord:
    """Validate ``data`` as a Pupil; a failure names the field, never the value."""
    try:
        return Pupil.model_validate(data)
    except ValidationError as exc:
        err = exc.errors(include_input=False, include_url=False)[0]
        name = ".".join(str(p) for p in err["loc"]) or "leerling"
        reason = err["msg"]
        m = _VALUE_ERROR.match(reason)
        if m:
            name, reason = m.group(1), m.group(2)
        return reject(name, reason)


def _local(tag: str) -> str:
    return tag.rpartition("}")[2]


def _version(school: Any, d: Dialect) -> str:
    declared = (school.findtext(d.q("xsdversie")) or "").strip()
    if not d.ns and declared.startswith(("1.", "2.0")):
        return "2.0"
    return "2.1"


def _plausible_year(value: str | None) -> bool:
    m = _SCHOOLJAAR.match(value or "")
    return bool(m) and int(m.group(2)) == int(m.group(1)) + 1  # type: ignore[union-attr]


def field_of(err: Any, record: Any = None) -> str:
    """The field a schema error is about, as a path inside the record, without namespaces.
    libxml2 writes elements in a default namespace as ``*[n]``; with the validated ``record``
    those steps are resolved to the elements' names."""
    raw = _LOCAL_NAME.sub(r"\1", _NS_NAME.sub("", err.path or ""))
    steps = [p for p in raw.split("/") if p]
    if record is not None and any(p.startswith("*") for p in steps):
        steps = _resolve_steps(steps, record)
    parts = [re.sub(r"\[\d+\]$", "", p.rpartition(":")[2]) for p in steps]
    name = "/".join(parts[1:]) or parts[0] if parts else "record"
    attr = _ATTR.search(err.message or "")
    if attr and "xsi:type" not in (err.message or "") and "XMLSchema-instance" not in attr.group(1):
        name = f"{name}/@{attr.group(1)}" if name and parts[1:] else f"@{attr.group(1)}"
    return name


def _resolve_steps(steps: list[str], record: Any) -> list[str]:
    node = record
    out = [_local(record.tag)]
    for step in steps[1:]:
        m = re.match(r"^(.*?)(?:\[(\d+)\])?$", step)
        want, nth = (m.group(1), int(m.group(2) or 1)) if m else (step, 1)
        children = [c for c in node if isinstance(c.tag, str)
                    and (want == "*" or _local(c.tag) == want.rpartition(":")[2])]
        if len(children) < nth:
            out.append(want)
            break
        node = children[nth - 1]
        out.append(_local(node.tag))
    return out


def reason_of(err: Any) -> str:
    reason = _REASONS.get(err.type_name, "does not conform to the EDEXML schema")
    if err.type_name == "SCHEMAV_ELEMENT_CONTENT":
        expected = _EXPECTED.search(err.message or "")
        if expected:
            reason += f"; expected: {_NS_NAME.sub('', expected.group(1))}"
    return reason
