"""The UWLR leerlinggegevens answer as a file: its dialect of the EDEXML reader, and a reader of
an answer saved to disk (no SOAP library: the core may read one, as a change of LAS does)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from adapters.las._edex import SOAP_ENV, XSD_DIR, Dialect, EdexReader, Scan, refuse_doctype
from connector.errors import RejectedRecord
from connector.model import Pupil
from connector.ports import Cursor, SourceContext, SourceReport

NS = "http://www.edustandaard.nl/leerresultaten/2/leerlinggegevens"
DIALECT = Dialect(ns=NS, container="leerlinggegevens",
                  record_schema=lambda _version: XSD_DIR / "uwlr-2.2" / "Schemas" / "record.xsd",
                  markers=("geenwijzigingen", "geengegevens"))


class UwlrAnswerFile:
    """A UWLR ``leerlinggegevens`` answer saved to a file (its SOAP envelope), read once: for a
    one-off read such as a change of LAS (``identity rekey``). A sync asks the LAS itself
    (``UwlrSource``)."""

    def __init__(self, path: Path, context: SourceContext) -> None:
        self.path = path
        self._pseudonymize = context.pseudonymize
        self.report = SourceReport()

    def pupils(self, since: Cursor | None = None, resume: Cursor | None = None) -> Iterator[Pupil | RejectedRecord]:
        """Every record of the saved answer (``since`` and ``resume`` do not apply to a file)."""
        self.report = SourceReport()
        with self.path.open("rb") as body:
            refuse_doctype(body.read(65536), self.path.name)
            body.seek(0)
            reader = EdexReader(DIALECT, self.path.name, self._pseudonymize, self.report)
            yield from reader.pupils(body, root=f"{{{SOAP_ENV}}}Envelope", scan=Scan())

    def cursor(self) -> Cursor | None:
        """None: a saved answer is read whole."""
        return None

    def check(self) -> list[str]:
        """Problems with the file (none found: an empty list)."""
        return [] if self.path.is_file() else [f"UWLR answer {self.path.name} is not a file"]
