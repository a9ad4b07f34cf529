"""EDEXML 2.0 / 2.1 file exports (the LAS's standard export) as a PupilSource.

The file is streamed (see ``adapters.las._edex``): each ``leerling`` is validated on its own
against the standard's ``LeerlingType``, a bad record is rejected with record and field, and a
DTD is refused. The cursor names the file's digest and the records staged so far, so a resumed
run of the same file continues where the last one stopped.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

from pydantic import BaseModel

from adapters.las._cursor import Position, begin, digest_file
from adapters.las._edex import XSD_DIR, Dialect, EdexReader, Scan, refuse_doctype
from adapters.las._records import ReadsRecords
from connector.errors import RejectedRecord, SourceError
from connector.model import Frozen, Pupil
from connector.ports import Cursor, SourceContext, SourceRecord, SourceReport

DIALECT = Dialect(ns="", container="EDEX",
                  record_schema=lambda version: XSD_DIR / f"edexml-{version}" / "record.xsd")


class EdexmlSettings(Frozen):
    path: Path


class EdexmlSource(ReadsRecords):
    """Reads one EDEXML export file. ``report`` holds snapshot-wide warnings after reading."""

    settings_model: ClassVar[type[BaseModel]] = EdexmlSettings

    def __init__(self, settings: EdexmlSettings, context: SourceContext) -> None:
        self.path = context.resolve(settings.path)
        self._pseudonymize = context.pseudonymize
        self.report = SourceReport()
        self._position: Position | None = None
        self._scan = Scan()

    # -- port -------------------------------------------------------------------------------
    def cursor(self) -> Cursor | None:
        if self._position is None:
            return None
        return Position(self._position.snapshot, self._scan.records).dump()

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
        try:  # read it through, as a sync would (nothing is kept): a check that looks at the head only
            records = sum(1 for _ in self.pupils())  # would call fine an export a sync cannot use
        except SourceError as exc:
            return [str(exc)]
        if not records:
            return [f"{self.path}: holds no pupil records under <leerlingen>"]
        return []

    def _read(self, since: Cursor | None, resume: Cursor | None, raw: bool
              ) -> Iterator[Pupil | RejectedRecord | SourceRecord]:
        """``since`` is not used: a file is always a whole snapshot. ``resume`` continues a read
        of the same file after the records it covers."""
        self.report = SourceReport()
        self._scan = Scan()
        label = str(self.path)
        self._position, skip = begin(digest_file(self.path), resume, self.report)
        with self.path.open("rb") as fh:
            refuse_doctype(fh.read(65536), label)
        reader = EdexReader(DIALECT, label, self._pseudonymize, self.report)
        yield from reader.pupils(str(self.path), root="EDEX", skip=skip, scan=self._scan, raw=raw)
        if self._scan.school is None:
            raise SourceError(f"{label}: no <school> element; not an EDEXML export")
