"""Typed values that flow through the connector: validated and immutable.

Fields that identify a person (names, BSN, onderwijsnummer) are left out of ``repr`` so that
no log line or traceback can print them by accident.
"""

from __future__ import annotations

import hashlib
import json
from datetime import date, datetime
from functools import cached_property
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

IdentityScheme = Literal["las_key", "eckid", "onderwijsnummer"]
"""Which identifier keys a dossier: the LAS key (scoped by school), the ECK-iD, or the
persoonsgebonden nummer (BSN or onderwijsnummer). Never a name."""


class Frozen(BaseModel):
    """The base of every value, settings and file model: immutable, and an unknown field is an
    error (a typo in a config file is refused, never ignored)."""

    model_config = ConfigDict(frozen=True, extra="forbid")


class School(Frozen):
    """The school a snapshot comes from."""

    brin: str | None = None
    dependancecode: str | None = None
    schoolkey: str | None = None
    instellingsnummer: str | None = None
    schooljaar: str | None = None
    peildatum: date | None = None

    @property
    def code(self) -> str:
        """BRIN plus dependance code (``00`` means none), the Flemish instellingsnummer, or the
        school key."""
        if self.brin:
            dep = self.dependancecode if self.dependancecode not in (None, "00") else ""
            return f"{self.brin}{dep}"
        if self.instellingsnummer:
            return f"inst-{self.instellingsnummer}"
        return f"key-{self.schoolkey}" if self.schoolkey else "unknown"


class Guardian(Frozen):
    """A parent or carer of a pupil, as OSO and some CSV exports deliver them.

    ``gezag`` is whether the person has parental authority (OSO ``wettigevertegenwoordiger``);
    None means the source does not say, which later grants nothing.
    """

    achternaam: str | None = Field(default=None, repr=False)
    voorvoegsel: str | None = Field(default=None, repr=False)
    voorletters: str | None = Field(default=None, repr=False)
    relatie: str | None = None
    """OSO ``relatietotkind`` code (e.g. 1 vader, 2 moeder, 3 verzorger)."""
    gezag: bool | None = None
    overleden: bool = False


class Pupil(Frozen):
    """One pupil as a source delivered it, validated.

    ``key`` is the LAS key: stable for the pupil's whole school career.
    ``pgn`` is the persoonsgebonden nummer (BSN or onderwijsnummer) when the source has it.
    """

    key: str = Field(min_length=1, max_length=256)
    school: School
    eckid: str | None = None
    pgn: str | None = Field(default=None, repr=False)
    pgn_kind: Literal["bsn", "onderwijsnummer", "sofinummer", "rijksregisternummer"] | None = None
    achternaam: str | None = Field(default=None, repr=False)
    voorvoegsel: str | None = Field(default=None, repr=False)
    voornamen: str | None = Field(default=None, repr=False)
    roepnaam: str | None = Field(default=None, repr=False)
    geboortedatum: date | None = Field(default=None, repr=False)
    geslacht: str | None = None
    jaargroep: str | None = None
    groep: str | None = None
    vestiging: str | None = None
    instroomdatum: date | None = None
    uitstroomdatum: date | None = None
    guardians: tuple[Guardian, ...] = Field(default=(), repr=False)
    """Parents and carers, where the source has them (EDEXML and UWLR do not)."""
    line: int | None = None

    @model_validator(mode="after")
    def _dates_in_order(self) -> Pupil:
        if self.instroomdatum and self.uitstroomdatum and self.uitstroomdatum < self.instroomdatum:
            raise ValueError("uitstroomdatum: before instroomdatum")
        if self.geboortedatum and self.instroomdatum and self.instroomdatum < self.geboortedatum:
            raise ValueError("instroomdatum: before geboortedatum")
        if self.geboortedatum and self.uitstroomdatum and self.uitstroomdatum < self.geboortedatum:
            raise ValueError("uitstroomdatum: before geboortedatum")
        return self


class PartSpec(Frozen):
    """A part of the dossier (I administratief, II onderwijskundig) and the classes it holds."""

    code: str
    name: str
    folder: str
    classes: tuple[str, ...]


class DossierSpec(Frozen):
    """What one pupil's dossier should look like in the DMS (the desired state)."""

    external_id: str
    pseudonym: str
    school: str
    title: str = Field(repr=False)
    properties: dict[str, str]
    parts: tuple[PartSpec, ...]
    departure: date | None = None

    @cached_property
    def fingerprint(self) -> str:
        """A stable digest of everything the DMS holds for this dossier (properties are kept in
        key order by the mapping, so equal specs serialise to equal JSON)."""
        return hashlib.sha256(self.model_dump_json().encode()).hexdigest()


class DossierRef(Frozen):
    """A dossier as the DMS knows it."""

    id: str
    external_id: str


class DocumentRef(Frozen):
    """A document in a dossier, as the DMS knows it."""

    id: str
    dossier_id: str
    part: str
    doc_class: str | None
    name: str = Field(repr=False)
    metadata: dict[str, str] = Field(default_factory=dict)
    added: date | None = None
    """The day the document came into the DMS, where the DMS says (for an index that must not
    name a withheld document by its title)."""

    @field_validator("added", mode="before")
    @classmethod
    def _day(cls, value: object) -> date | None:
        """The day of an ISO date or timestamp as a DMS gives it; anything else is no date."""
        if isinstance(value, datetime):
            return value.date()
        if isinstance(value, date):
            return value
        if isinstance(value, str):
            try:
                return date.fromisoformat(value[:10])
            except ValueError:
                return None
        return None


class DmsGrant(Frozen):
    """Access the connector gives in the DMS to one part of a dossier: to a group (a staff role)
    or a user account (a guardian, the pupil, a third party). Read-only: inspection or, with
    ``classes``, information about only those document classes."""

    principal: str
    kind: Literal["group", "user"]
    classes: tuple[str, ...] | None = None


class StoreCapabilities(Frozen):
    """What a document store can do natively (``DocumentStore.capabilities`` says how each is read)."""

    trash: bool = False
    acl: bool = False


RetentionKind = Literal["minimum", "maximum"]


class PupilFacts(Frozen):
    """Facts that move a pupil's retention clocks. Only a departure date starts them."""

    departure: date | None = None
    """The uitschrijf-/uitstroomdatum, from the LAS or recorded by a named person."""
    referred: date | None = None
    """Referred to (V)SO (samenwerkingsverband / toelaatbaarheidsverklaring)."""
    reunion_consent: date | None = None
    """Prior consent to keep name, address and school period for reunions."""
    reenrolled: date | None = None
    """Re-enrolled after a departure: the running clock stops."""
    exam_result: date | None = None
    """The date of the (central) exam result (VO), which starts the exam-work clocks."""

    @property
    def clock_start(self) -> date | None:
        if self.departure is None:
            return None
        if self.reenrolled is not None and self.reenrolled >= self.departure:
            return None
        return self.departure


class RetentionTag(Frozen):
    """What the schedule says about one document: kept until, destroyed by, or never."""

    category: str
    trigger: str
    period: str | None
    """``5y``, ``2y``, ``8w``...; None when blocked or kept open (e.g. by consent)."""
    kind: RetentionKind
    basis: str
    due: date | None
    """The date the period ends; None while the clock has not started or is kept open."""
    blocked: bool = False
    override: str | None = None
    """The basis of a school's override of the preset, when one applied."""
    unclassified: bool = False
    doc_class: str | None = None
    """The class the document was tagged as (from the DMS or the mapping's rules)."""

    def metadata(self) -> dict[str, str]:
        """The tag as DMS metadata (strings only)."""
        return {
            "retention_class": self.doc_class or "",
            "retention_category": self.category,
            "retention_kind": self.kind,
            "retention_period": self.period or "",
            "retention_due": self.due.isoformat() if self.due else "open",
            "retention_blocked": "yes" if self.blocked else "no",
            "retention_basis": self.basis,
        }


OperationKind = Literal["create_dossier", "update_dossier", "tag_document", "destroy_document", "purge_document"]
DOSSIER_KINDS: tuple[OperationKind, ...] = ("create_dossier", "update_dossier")
GUARDED_KINDS: tuple[OperationKind, ...] = ("destroy_document", "purge_document")
"""Operations that take a document out of its dossier (to the DMS trash, or out of the trash
for good): each goes through the destruction gate right before its DMS call."""


class Operation(Frozen):
    """One change to make in the DMS. Every operation is safe to repeat."""

    kind: OperationKind
    external_id: str
    pseudonym: str
    spec: DossierSpec | None = None
    ref_id: str | None = None
    changed: tuple[str, ...] = ()
    document: DocumentRef | None = None
    tag: RetentionTag | None = None
    item_id: int | None = None
    """The destruction-list item a destroy or purge operation carries out."""

    @property
    def target(self) -> str:
        """What the operation changes: the dossier (external id) or one document (its id)."""
        return self.document.id if self.document is not None else self.external_id

    def dossier_spec(self) -> DossierSpec:
        if self.spec is None:
            raise ValueError(f"{self.kind} carries no dossier spec")
        return self.spec


class RecordedDossier(Frozen):
    """What the state store recorded of a dossier after the last confirmed write."""

    external_id: str
    pseudonym: str
    ref_id: str | None
    fingerprint: str | None
    spec: DossierSpec | None = None


def canonical_json(value: Any) -> str:
    """JSON with sorted keys and no whitespace: equal values give equal text."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


__all__ = [
    "DOSSIER_KINDS",
    "GUARDED_KINDS",
    "DmsGrant",
    "DocumentRef",
    "DossierRef",
    "DossierSpec",
    "Frozen",
    "Guardian",
    "IdentityScheme",
    "Operation",
    "OperationKind",
    "PartSpec",
    "Pupil",
    "PupilFacts",
    "RecordedDossier",
    "RetentionKind",
    "RetentionTag",
    "School",
    "StoreCapabilities",
    "canonical_json"
]
