"""CSV exports from a LAS as a PupilSource, with the columns declared in a TOML layout.

A layout (``mappings/las/<name>.toml`` or a path) says which column holds which pupil field,
how codes translate (``M`` -> ``1``), the date formats, and where the guardians are. Delimiter
and encoding are configured or detected: a byte-order mark means UTF-8, a file that decodes as
UTF-8 is UTF-8, anything else is read as Windows-1252 (with a warning). The file is read row by
row, so memory stays flat; a bad row is rejected with its row number and the column's header,
never the value, and the rest goes on.

The cursor names the file's digest and the rows staged so far: a resumed run of the same file
continues after them.
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import re
from collections.abc import Iterator
from datetime import date, datetime
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, Field, field_validator, model_validator

from adapters.las._cursor import Position, begin, digest_file
from adapters.las._edex import pupil_or_reject
from adapters.las._records import ReadsRecords
from connector import tomlfile
from connector.errors import RejectedRecord, SourceError
from connector.model import Frozen, Guardian, Pupil, School
from connector.ports import Cursor, SourceContext, SourceRecord, SourceReport

LAYOUTS = Path(__file__).resolve().parents[2] / "mappings" / "las"
SNIFF = 1 << 16
DEFAULT_DATES = ("%Y-%m-%d", "%d-%m-%Y", "%d/%m/%Y", "%d.%m.%Y", "%Y%m%d")
Encoding = Literal["auto", "utf-8", "utf-8-sig", "cp1252"]

PUPIL_FIELDS = (
    "key", "eckid", "bsn", "onderwijsnummer", "achternaam", "voorvoegsel", "voornamen", "roepnaam",
    "geboortedatum", "geslacht", "jaargroep", "groep", "vestiging", "instroomdatum", "uitstroomdatum",
    "brin", "dependancecode", "schooljaar",
)
DATE_FIELDS = ("geboortedatum", "instroomdatum", "uitstroomdatum")
GUARDIAN_FIELDS = ("achternaam", "voorvoegsel", "voorletters", "relatie", "gezag", "overleden")


class _LayoutMeta(Frozen):
    name: str
    extends: str | None = None
    """A preset or file this layout starts from (e.g. ``parnassys`` with other headers)."""
    description: str = ""
    delimiter: str | None = Field(default=None, min_length=1, max_length=1)
    encoding: Encoding = "auto"
    date_formats: tuple[str, ...] = DEFAULT_DATES


class _GuardianColumns(Frozen):
    achternaam: str | None = None
    voorvoegsel: str | None = None
    voorletters: str | None = None
    relatie: str | None = None
    gezag: str | None = None
    overleden: str | None = None


class Layout(Frozen):
    """A CSV layout: ``[layout]``, ``[columns]`` (pupil field -> header), ``[values.<field>]``
    (code in the file -> value), ``[[guardians]]`` (guardian field -> header)."""

    layout: _LayoutMeta
    columns: dict[str, str]
    values: dict[str, dict[str, str | bool]] = Field(default_factory=dict)
    guardians: list[_GuardianColumns] = Field(default_factory=list)

    @field_validator("columns")
    @classmethod
    def _known_fields(cls, v: dict[str, str]) -> dict[str, str]:
        unknown = sorted(set(v) - set(PUPIL_FIELDS))
        if unknown:
            raise ValueError(f"unknown pupil field(s) {', '.join(unknown)} (known: {', '.join(PUPIL_FIELDS)})")
        if "key" not in v:
            raise ValueError("the layout must name the column holding the LAS key ('key')")
        return v

    @model_validator(mode="after")
    def _values_for_known(self) -> Layout:
        known = set(PUPIL_FIELDS) | set(GUARDIAN_FIELDS)
        unknown = sorted(set(self.values) - known)
        if unknown:
            raise ValueError(f"values: unknown field(s) {', '.join(unknown)}")
        return self

    def headers(self) -> set[str]:
        cols = set(self.columns.values())
        for g in self.guardians:
            cols.update(h for h in g.model_dump().values() if h)
        return cols


def _resolve(ref: str, folder: Path) -> Path:
    return tomlfile.preset_or_path(ref, folder, LAYOUTS)


def load_layout(ref: str, base: Path) -> Layout:
    """A layout preset (``parnassys``, ``magister``) or a layout file; errors name file, line, key."""
    known = [p.stem for p in LAYOUTS.glob("*.toml")]
    layout, _ = tomlfile.load_model(_resolve(ref, base), "layout", Layout, _resolve, "CSV layout", known)
    return layout


class CsvSettings(Frozen):
    path: Path
    layout: str
    """A preset under mappings/las/ (``parnassys``, ``magister``) or a path to a .toml file."""
    brin: str | None = Field(default=None, pattern=r"^\d{2}[A-Z]{2}$")
    """The school, when the export has no BRIN column."""
    dependancecode: str | None = Field(default=None, pattern=r"^\d{2}$")
    schooljaar: str | None = None
    delimiter: str | None = Field(default=None, min_length=1, max_length=1)
    encoding: Encoding | None = None


class CsvSource(ReadsRecords):
    settings_model: ClassVar[type[BaseModel]] = CsvSettings

    def __init__(self, settings: CsvSettings, context: SourceContext) -> None:
        self.settings = settings
        self.path = context.resolve(settings.path)
        self.layout = load_layout(settings.layout, context.base)
        self._pseudonymize = context.pseudonymize
        self.report = SourceReport()
        self._position: Position | None = None
        self._rows = 0
        self._date_patterns = [p for p in map(_date_pattern, self.layout.layout.date_formats) if p is not None]

    # -- port -------------------------------------------------------------------------------
    def cursor(self) -> Cursor | None:
        return None if self._position is None else Position(self._position.snapshot, self._rows).dump()

    def check(self) -> list[str]:
        if not self.path.is_file():
            return [f"CSV export {self.path} does not exist or is not a file"]
        try:
            encoding, delimiter, header = self._dialect()
        except SourceError as exc:
            return [str(exc)]
        missing = sorted(self.layout.headers() - set(header))
        if missing:
            return [f"{self.path}: column(s) {', '.join(missing)} of layout {self.layout.layout.name!r} are not "
                    f"in the header (read as {encoding}, delimiter {delimiter!r})"]
        return []

    def _read(self, since: Cursor | None, resume: Cursor | None, raw: bool
              ) -> Iterator[Pupil | RejectedRecord | SourceRecord]:
        """Every row of the export in order (``since`` is not used: a file is a whole snapshot)."""
        self.report = SourceReport()
        self._rows = 0
        label = str(self.path)
        self._position, skip = begin(digest_file(self.path), resume, self.report)
        encoding, delimiter, header = self._dialect()
        missing = sorted(set(self.layout.columns.values()) - set(header))
        if missing:
            raise SourceError(f"{label}: column(s) {', '.join(missing)} of layout {self.layout.layout.name!r} "
                              "are not in the header; every row would be incomplete")
        school = self._school_from_settings()
        try:
            with self.path.open(encoding=encoding, newline="") as fh:
                reader = csv.reader(fh, delimiter=delimiter, strict=True)
                next(reader, None)
                index = {h: i for i, h in enumerate(header)}
                compiled = self._compile(header)
                head = "\x1f".join(header).encode()  # a row means what its columns' headers say
                for row in reader:
                    if not any(cell.strip() for cell in row):
                        continue
                    self._rows += 1
                    if self._rows <= skip:
                        continue
                    if raw:
                        yield self._raw(row, index, reader.line_num, school, compiled, head)
                    else:
                        yield self._pupil(row, index, reader.line_num, school, compiled)
        except csv.Error as exc:
            raise SourceError(f"{label}: broken CSV at line {reader.line_num}: {str(exc).split(':')[0]}") from None
        except UnicodeDecodeError:
            raise SourceError(f"{label}: not readable as {encoding}; set las.encoding") from None
        if self.report.school is None and school is not None:
            self.report.school = school

    # -- internals --------------------------------------------------------------------------
    def _dialect(self) -> tuple[str, str, list[str]]:
        """Encoding, delimiter and header row, as configured or detected."""
        try:
            with self.path.open("rb") as fh:
                head = fh.read(SNIFF)
        except OSError as exc:
            raise SourceError(f"{self.path}: cannot read ({exc.strerror or exc})") from None
        configured = self.settings.encoding or self.layout.layout.encoding
        encoding: str = self._detect_encoding(head) if configured == "auto" else configured
        text = head.decode(encoding, errors="replace")
        first = text.splitlines()[0] if text else ""
        delimiter = self.settings.delimiter or self.layout.layout.delimiter
        if delimiter is None:
            try:
                delimiter = csv.Sniffer().sniff(first, delimiters=";,\t|").delimiter
            except csv.Error:
                raise SourceError(f"{self.path}: cannot tell the delimiter from the header; set las.delimiter"
                                  ) from None
        header = [h.strip() for h in next(csv.reader([first], delimiter=delimiter), [])]
        if encoding == "utf-8-sig" and header:
            header[0] = header[0].lstrip("\ufeff")
        return encoding, delimiter, header

    def _detect_encoding(self, head: bytes) -> str:
        if head.startswith(codecs.BOM_UTF8):
            return "utf-8-sig"
        decoder = codecs.getincrementaldecoder("utf-8")()
        try:
            with self.path.open("rb") as fh:
                while chunk := fh.read(1 << 16):
                    decoder.decode(chunk)
                decoder.decode(b"", final=True)
            return "utf-8"
        except UnicodeDecodeError:
            self.report.warnings.append(f"{self.path.name}: not UTF-8; read as Windows-1252 (cp1252)")
            return "cp1252"

    def _school_from_settings(self) -> School | None:
        s = self.settings
        if not s.brin:
            return None
        return School(brin=s.brin, dependancecode=s.dependancecode, schooljaar=s.schooljaar)

    def _compile(self, header: list[str]) -> tuple[list[tuple[str, int, dict[str, Any] | None]],
                                                    list[list[tuple[str, int, dict[str, Any] | None]]]]:
        """Per file, once: (field, column index, code table) for the pupil and each guardian;
        columns the header lacks are left out (an export without a second parent, say)."""
        index = {h: i for i, h in enumerate(header)}
        values = self.layout.values

        def plan(columns: dict[str, str | None]) -> list[tuple[str, int, dict[str, Any] | None]]:
            return [(name, index[h], values.get(name)) for name, h in columns.items() if h is not None and h in index]

        pupil = plan({k: v for k, v in self.layout.columns.items() if k not in ("key", "brin", "dependancecode",
                                                                                  "schooljaar")})
        guardians = [plan(dict(g)) for g in self.layout.guardians]
        return pupil, guardians

    def _raw(self, row: list[str], index: dict[str, int], line: int, school: School | None, compiled: Any,
             head: bytes) -> Pupil | RejectedRecord | SourceRecord:
        """A row with its key and school as a digest of its cells under the header, validated only
        when the core asks; a row without either is validated now (it is rejected)."""
        cols = self.layout.columns
        key = _cell(row, index, cols["key"])
        which = school
        if which is None:
            brin = _cell(row, index, cols["brin"]) if "brin" in cols else None
            if brin:
                which = School(brin=brin, dependancecode=_cell(row, index, cols.get("dependancecode")),
                               schooljaar=_cell(row, index, cols.get("schooljaar")))
                if self.report.school is None:
                    self.report.school = which
        if not key or which is None:
            return self._pupil(row, index, line, school, compiled)
        h = hashlib.blake2b(head, digest_size=16)
        h.update(b"\x00" + which.model_dump_json().encode() + b"\x00" + "\x1f".join(row).encode())
        return SourceRecord(self._pseudonymize(which.code, key), h.digest(),
                            lambda: self._pupil(row, index, line, school, compiled))

    def _pupil(self, row: list[str], index: dict[str, int], line: int, school: School | None,
               compiled: Any) -> Pupil | RejectedRecord:
        cols = self.layout.columns
        key = _cell(row, index, cols["key"])

        def reject(name: str, reason: str) -> RejectedRecord:
            pseudonym = self._pseudonymize(school.code, key) if key and school else None
            record = f"{pseudonym} (line {line})" if pseudonym else f"line {line}"
            return RejectedRecord(record, cols.get(name, name), reason, pseudonym)

        if school is None:
            brin = _cell(row, index, cols["brin"]) if "brin" in cols else None
            if not brin:
                return reject("brin", "no school: the row has no BRIN and las.brin is not set")
            school = School(brin=brin, dependancecode=_cell(row, index, cols.get("dependancecode")),
                            schooljaar=_cell(row, index, cols.get("schooljaar")))
            if self.report.school is None:
                self.report.school = school
        if not key:
            return reject("key", "empty: every row needs the LAS key")
        data: dict[str, Any] = {"key": key, "school": school, "line": line}
        width = len(row)
        pupil_plan, guardian_plans = compiled
        for name, i, table in pupil_plan:
            value = row[i].strip() if i < width else ""
            if not value:
                continue
            if table is not None:
                value = table.get(value, table.get(value.lower(), value))
            if name in DATE_FIELDS:
                parsed = self._date(value)
                if parsed is None:
                    return reject(name, "not a date in the layout's date formats")
                data[name] = parsed
            elif name in ("bsn", "onderwijsnummer"):
                if "pgn" not in data or name == "bsn":
                    data["pgn"], data["pgn_kind"] = value, name
            else:
                data[name] = value
        guardians = []
        for n, g_plan in enumerate(guardian_plans, start=1):
            g: dict[str, Any] = {}
            for name, i, table in g_plan:
                value = row[i].strip() if i < width else ""
                if not value:
                    continue
                translated = table.get(value, table.get(value.lower(), value)) if table is not None else value
                if name in ("gezag", "overleden") and not isinstance(translated, bool):
                    header = getattr(self.layout.guardians[n - 1], name)
                    return RejectedRecord(reject(name, "").record, str(header),
                                          f"guardian {n}: not a known value", reject(name, "").pseudonym)
                g[name] = translated
            if g.get("achternaam") or g.get("voorletters"):
                guardians.append(Guardian.model_validate(g))
        data["guardians"] = tuple(guardians)
        return pupil_or_reject(data, reject)

    def _date(self, value: str) -> date | None:
        for pattern, order in self._date_patterns:
            m = pattern.match(value)
            if m:
                try:
                    return date(*(int(m.group(g)) for g in order))
                except ValueError:
                    return None  # the right shape but no such day (30-02-2015)
        for fmt in self.layout.layout.date_formats:
            try:
                return datetime.strptime(value, fmt).date()
            except ValueError:
                continue
        return None


def _date_pattern(fmt: str) -> tuple[re.Pattern[str], tuple[str, str, str]] | None:
    """A day-month-year format as a regular expression (strptime is slow per row); None for a
    format with other directives (then strptime reads it)."""
    if set(re.findall(r"%.", fmt)) != {"%d", "%m", "%Y"}:
        return None
    parts = {"%d": r"(?P<d>\d{1,2})", "%m": r"(?P<m>\d{1,2})", "%Y": r"(?P<y>\d{4})"}
    regex = "".join(parts.get(tok, re.escape(tok)) for tok in re.split(r"(%[dmY])", fmt) if tok)
    return re.compile(f"^{regex}$"), ("y", "m", "d")


def _cell(row: list[str], index: dict[str, int], header: str | None) -> str | None:
    if header is None:
        return None
    i = index.get(header)
    if i is None or i >= len(row):
        return None
    value = row[i].strip()
    return value or None
