"""The plain values the state store hands out: staged records, dossier rows, changes,
journal rows, suspected duplicates."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

try:
    import fcntl
except ImportError:  # pragma: no cover (not on Windows)
    fcntl = None  # type: ignore[assignment]


from connector.model import DossierSpec, Operation, RecordedDossier
from connector.state.schema import dossiers


@dataclass(frozen=True)
class Staged:
    pseudonym: str
    external_id: str | None = None
    spec: DossierSpec | None = None
    dup_pgn: str | None = None
    dup_nb: str | None = None
    access: str | None = None
    """JSON of the access facts the source delivered (birth date, guardians), when it has any."""
    dup_eck: str | None = None
    via: str | None = None
    """The record's own pseudonym, when an alias took it to another key's dossier."""
    via_kind: str | None = None
    """How: ``link``, ``rekey`` or ``eckid`` (a proposal this run settles); ``retired``: a record
    of a dossier's own key after another key of the child was linked to it (seen, not used)."""
    digest: str | None = None
    """The record's keyed digest (with everything that shapes what it becomes)."""
    kept: bool = False
    """The record is identical to the one the dossier was last made from: staged from the
    recorded row (``fingerprint``, ``departure`` and the hashes), not mapped again."""
    fingerprint: str | None = None
    departure: date | None = None


@dataclass(frozen=True)
class DossierRow:
    external_id: str
    pseudonym: str
    school: str
    ref_id: str | None
    departure: date | None
    vanished_since: date | None = None


_DOSSIER_ROW = (dossiers.c.external_id, dossiers.c.pseudonym, dossiers.c.school, dossiers.c.ref_id,
                dossiers.c.departure, dossiers.c.vanished_since)
"""The columns of a DossierRow, in its field order."""

FACT_KINDS = ("departure", "referred", "reunion_consent", "reenrolled", "exam_result")


@dataclass(frozen=True)
class Change:
    """A staged dossier that differs from what was recorded (or was never recorded)."""

    id: int
    spec: DossierSpec
    recorded: RecordedDossier | None
    dup_pgn: str | None
    dup_nb: str | None


@dataclass(frozen=True)
class JournalRow:
    id: int
    run_id: int
    kind: str
    status: str
    attempts: int
    operation: Operation
    dup_pgn: str | None
    dup_nb: str | None


@dataclass(frozen=True)
class Suspected:
    """Two pupils that look like one child; or, with ``members``, a group too large to be one
    child (a placeholder BSN, a default birth date), reported once as a group."""

    a: str
    b: str
    basis: str  # "bsn/onderwijsnummer" | "geboortedatum en naam"
    members: tuple[str, ...] = ()

    def pseudonyms(self) -> tuple[str, ...]:
        """The pseudonyms the suspicion is about (the group's members, or the pair)."""
        return self.members or (self.a, self.b)

    def as_dict(self) -> dict[str, Any]:
        """The suspicion as a report shows it (a large group by its first 20 members)."""
        if self.members:
            return {"a": self.a, "b": self.b, "basis": self.basis, "group": len(self.members),
                    "members": list(self.members[:20])}
        return {"a": self.a, "b": self.b, "basis": self.basis}


GROUP_LIMIT = 10
"""More pupils than this sharing one keyed hash are a group, reported once, not as pairs."""
