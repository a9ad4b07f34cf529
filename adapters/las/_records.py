"""``pupils`` and ``records`` of a source whose one reader gives its records either validated
or unvalidated (``connector.ports.SourceRecord``): EDEXML, UWLR and CSV."""

from __future__ import annotations

from collections.abc import Iterator
from typing import cast

from connector.errors import RejectedRecord
from connector.model import Pupil
from connector.ports import Cursor, SourceRecord


class ReadsRecords:
    """A source implements ``_read(since, resume, raw)``; this gives the port's two ways in."""

    def _read(self, since: Cursor | None, resume: Cursor | None, raw: bool
              ) -> Iterator[Pupil | RejectedRecord | SourceRecord]:
        raise NotImplementedError

    def pupils(self, since: Cursor | None = None, resume: Cursor | None = None) -> Iterator[Pupil | RejectedRecord]:
        """The snapshot's records in order: a pupil, or a rejected record naming record and field."""
        for item in self._read(since, resume, raw=False):
            yield cast("Pupil | RejectedRecord", item)  # raw=False yields no SourceRecord

    def records(self, since: Cursor | None = None, resume: Cursor | None = None
                ) -> Iterator[Pupil | RejectedRecord | SourceRecord]:
        """The same records, each with a key unvalidated until the core asks (a SourceRecord)."""
        return self._read(since, resume, raw=True)
