"""The interfaces adapters implement. Small on purpose; vendor quirks stay in the adapter."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, ClassVar, Protocol, runtime_checkable

from pydantic import BaseModel

from connector.errors import PermanentError, RejectedRecord
from connector.model import (
    DmsGrant,
    DocumentRef,
    DossierRef,
    DossierSpec,
    Pupil,
    RetentionTag,
    School,
    StoreCapabilities,
)
from connector.tomlfile import resolve_path

Cursor = str
"""Opaque position in a source; the core stores it with the journal rows it covers."""


@dataclass(frozen=True)
class SourceContext:
    """What the core hands a source: how to name a record without naming the pupil."""

    pseudonymize: Callable[[str, str], str]
    """(school code, LAS key) -> pseudonymous key."""
    base: Path = Path(".")
    """Folder that relative paths in the source's settings are relative to."""
    secret: Callable[[str], bytes] | None = None
    """Resolves a secret reference (``env:NAME`` / ``file:PATH``) from the source's settings."""

    def resolve(self, value: str | Path) -> Path:
        """A path from the source's settings, relative to the configuration file's folder."""
        return resolve_path(self.base, value)


@dataclass(frozen=True)
class StoreContext:
    """What the core hands a document store."""

    base: Path = Path(".")
    """Folder that relative paths in the store's settings are relative to."""
    secret: Callable[[str], bytes] | None = None
    """Resolves a secret reference (``env:NAME`` / ``file:PATH``) from the store's settings."""
    index_key: bytes = b""
    """Key for the store's own lookup labels (a keyed hash of the external id, so no BSN or
    other identifier is readable in the DMS's labels)."""

    def resolve(self, value: str | Path) -> Path:
        """A path from the store's settings, relative to the configuration file's folder."""
        return resolve_path(self.base, value)

    def label(self, external_id: str) -> str:
        """The dossier's lookup label in the DMS: ``ld-`` and a keyed hash of the external id
        (20 hex digits), the same for every run of this install and readable by nobody else."""
        return "ld-" + hmac.new(self.index_key, external_id.encode(), hashlib.sha256).hexdigest()[:20]


@dataclass
class SourceReport:
    """What a source noticed about the snapshot as a whole while streaming it."""

    school: School | None = None
    warnings: list[str] = field(default_factory=list)
    resumed_at: int = 0
    """Records of an interrupted read that this read skipped (the same snapshot, already staged)."""
    unchanged: bool = False
    """The source said nothing changed since ``since`` (UWLR ``geenwijzigingen``): no snapshot
    was delivered, so nothing may be concluded from the absence of pupils."""


@dataclass(frozen=True)
class SourceRecord:
    """A record a source has read but not yet validated: its own pseudonymous key, a digest of
    its bytes together with everything in the export that shapes it (the school header, a group
    it refers to, the standard's version), and how to validate it into a pupil.

    A source that can give these offers ``records(since, resume)`` besides ``pupils``, yielding
    the same records in the same order (a record without a key as the pupil or rejected record
    itself). The core then validates and maps only the records whose digest changed since their
    dossier was last made from them; ``build()`` gives exactly what ``pupils`` would have."""

    pseudonym: str
    digest: bytes
    build: Callable[[], Pupil | RejectedRecord]


@runtime_checkable
class PupilSource(Protocol):
    """A LAS export or service. Streams pupils; a bad record is yielded as a RejectedRecord
    (naming record and field) and the stream goes on. Every yielded item is one record of the
    snapshot, in the snapshot's order.

    ``since`` is the cursor of the last run that was applied completely: a source that can ask
    "what changed since" (UWLR ``laatstontvangengegevens``) uses it and, when nothing changed,
    yields nothing and sets ``report.unchanged``. ``resume`` is the cursor of an interrupted
    run: when the snapshot is the same one, the source skips the records it covers and sets
    ``report.resumed_at`` to their number before it yields anything; otherwise it starts from
    the first record.
    """

    report: SourceReport

    def pupils(self, since: Cursor | None = None, resume: Cursor | None = None) -> Iterator[Pupil | RejectedRecord]:
        """The snapshot's records in order: a pupil, or a rejected record naming record and field."""
        ...

    def cursor(self) -> Cursor | None:
        """Where the read stands: covers exactly the records yielded so far."""
        ...

    def check(self) -> list[str]:
        """Problems with settings or reachability, for ``leerdossier doctor`` (empty: fine)."""
        ...


@runtime_checkable
class DocumentStore(Protocol):
    """A document-management system holding the dossiers.

    Every call is safe to repeat: creating what exists finds it, destroying what is gone is
    done. Errors are TransientError (retry) or PermanentError (do not).
    """

    capabilities: ClassVar[StoreCapabilities]
    """What the store does (read by the core): ``trash`` (destroy moves to a trash that
    ``purge`` empties; without one a destroy is final and nothing is purged) and ``acl``
    (``set_access`` is applied after every sync; without it access is not applied)."""

    def find_dossier(self, external_id: str) -> DossierRef | None:
        """The dossier of this external id, or None. Found by a key the store derives from the
        external id (never by title), and only a dossier whose creation finished: a creation
        cut off halfway is not found, so the next ``create_dossier`` completes it."""
        ...

    def create_dossier(self, spec: DossierSpec) -> DossierRef:
        """Make the dossier with its parts, or return the one that exists for
        ``spec.external_id`` (brought up to ``spec``): two calls never make two dossiers, also
        when the first one's answer was lost."""
        ...

    def update_dossier(self, ref: DossierRef, spec: DossierSpec) -> None:
        """Bring title, properties, departure and parts in line with ``spec``; documents stay.
        A dossier that is not there is a PermanentError."""
        ...

    def documents(self, ref: DossierRef) -> Iterator[DocumentRef]:
        """Every document of the dossier, each once, under its own part, with its class where
        the store knows it and its metadata (retention tag included); documents people placed
        by other routes too. Never the store's own bookkeeping objects."""
        ...

    def add_document(
        self, ref: DossierRef, part: str, doc_class: str | None, name: str, content: BinaryIO,
        metadata: dict[str, str],
    ) -> DocumentRef:
        """Store a document in a part of the dossier (an unknown part is a PermanentError)."""
        ...

    def read(self, doc: DocumentRef) -> bytes:
        """The document's content (for a transfer to another school or system)."""
        ...

    def tag(self, doc: DocumentRef, tag: RetentionTag) -> None:
        """Write the retention tag as the document's metadata in the DMS."""
        ...

    def destroy(self, doc: DocumentRef) -> None:
        """The DMS's own delete (to its trash where it has one). Already gone counts as done."""
        ...

    def purge(self, doc: DocumentRef) -> None:
        """Remove a destroyed document from the DMS's trash for good (stores with a trash).
        Already gone counts as done."""
        ...

    def set_access(self, ref: DossierRef, part: str, grants: tuple[DmsGrant, ...]) -> None:
        """Make ``grants`` exactly the read access the connector gives to this part of the
        dossier: its folder and every document in it now (a grant with ``classes``: only
        documents of those classes). Access the connector did not give is left alone; an empty
        tuple takes away all the connector gave. Safe to repeat."""
        ...

    def read_access(self, ref: DossierRef) -> dict[str, tuple[DmsGrant, ...]]:
        """The read access the DMS holds now on each part of the dossier, read back from its own
        access control (never from what the connector recorded it set): per part, one grant per
        group or user account that can open documents in it, ``classes`` None when the ACL opens
        the whole part, else the classes of the part's documents it opens. Parts nobody can
        open are left out. Reads only. Only for a store with ``capabilities.acl``."""
        ...

    def group(self) -> AbstractContextManager[None]:
        """Writes made inside the block are made durable together when it ends, not each as
        its call returns (the executor records them done only after the block). A store whose
        every call is durable when it returns gives ``contextlib.nullcontext()``. Leaving the
        block raises StoreError when the writes could not be made durable."""
        ...

    def check(self) -> list[str]:
        """Problems with settings or reachability, for ``leerdossier doctor`` (empty: fine)."""
        ...

    def close(self) -> None:
        """Let go of connections and files; the store is not used again."""
        ...

    def init(self) -> dict[str, Any]:
        """Set up what the store needs in the DMS (types, fields) once; idempotent. Returns what
        it made or found, for ``leerdossier dms init``; ``{}`` when there is nothing to set up."""
        ...

    def changes(self, since: str | None) -> tuple[frozenset[str] | None, str | None]:
        """The dossiers (their ``DossierRef.id``) in which a document was added, changed, moved
        or removed since the cursor ``since``, and the cursor to keep once those are handled.
        ``(None, cursor)``: the store cannot say (the first time, or its feed was reset), so every
        dossier is looked at. A store without a change feed returns ``(None, None)``. Reads only."""
        ...


def read_back(folder: set[tuple[str, str]], documents: list[tuple[str | None, set[tuple[str, str]]]]
              ) -> tuple[DmsGrant, ...]:
    """One part's grants from a DMS that holds access per folder and per document: ``folder``
    the (principal, kind) pairs that can open the part's folder, ``documents`` each document's
    class with the pairs that can open it. A principal who opens every document and the folder
    has the whole part (``classes`` None); otherwise the classes of the documents it opens."""
    who = set(folder).union(*(opened for _c, opened in documents)) if documents else set(folder)
    out = []
    for principal, kind in sorted(who, key=lambda pk: (pk[1], pk[0])):
        seen = [doc_class for doc_class, opened in documents if (principal, kind) in opened]
        whole = (principal, kind) in folder and len(seen) == len(documents)
        classes = None if whole else tuple(sorted({c or "" for c in seen}))
        out.append(DmsGrant(principal=principal, kind="group" if kind == "group" else "user", classes=classes))
    return tuple(out)


class BaseDocumentStore:
    """Defaults for a DocumentStore; an adapter subclasses it and overrides what its DMS does.

    - ``settings_model`` (a pydantic model of the ``[dms]`` table) and the constructor
      ``(settings, context)`` are the factory contract the registry calls;
    - ``group()``: a null context (every call is durable when it returns);
    - ``purge()``: refused unless ``capabilities.trash`` (without a trash a destroy is final);
    - ``check()``: no problems; ``close()``: nothing; ``init()``: nothing to set up;
    - ``changes()``: no change feed (every dossier is looked at).
    ``adapters.testing.DocumentStoreContract`` is the suite the store must pass.
    """

    capabilities: ClassVar[StoreCapabilities] = StoreCapabilities()
    settings_model: ClassVar[type[BaseModel]]

    def __init__(self, settings: Any, context: StoreContext | None = None) -> None:
        self.settings = settings
        self.context = context or StoreContext()

    def group(self) -> AbstractContextManager[None]:
        """A context in which the store's writes become durable together when it ends (an fsync barrier); by
        default each write is durable on its own."""
        return nullcontext()

    def purge(self, doc: DocumentRef) -> None:
        """Remove a document from the trash for good. Refused by a store without a trash, whose destroy is
        final."""
        if not self.capabilities.trash:
            raise PermanentError("purge: this store has no trash (a destroy is final)")
        raise NotImplementedError("a store with a trash implements purge")

    def read_access(self, ref: DossierRef) -> dict[str, tuple[DmsGrant, ...]]:
        """Refused by a store without access rights (``capabilities.acl``); one with them reads
        them back."""
        if not self.capabilities.acl:
            raise PermanentError("read access: this store holds no access rights")
        raise NotImplementedError("a store with access rights implements read_access")

    def check(self) -> list[str]:
        """Problems a person should fix before a sync (reachable, permissions, schema); empty when all is
        well. Changes nothing."""
        return []

    def close(self) -> None:
        """Release connections and files."""
        return None

    def init(self) -> dict[str, Any]:
        """Prepare the DMS once (metadata fields, roles); idempotent, returns what it made or found."""
        return {}

    def changes(self, since: str | None) -> tuple[frozenset[str] | None, str | None]:
        """No change feed: every dossier is looked at each time."""
        return None, None


@runtime_checkable
class AdapterClass(Protocol):
    """What the registry (``adapters``) needs of an adapter class besides its port: the model
    that validates its configuration table, and a constructor taking the validated settings and
    the context the core hands it."""

    settings_model: ClassVar[type[BaseModel]]

    def __call__(self, settings: Any, context: Any) -> Any: ...


DMS_CALLS: tuple[str, ...] = ("find_dossier", "create_dossier", "update_dossier", "documents", "add_document",
                              "read", "tag", "destroy", "purge", "set_access", "read_access", "changes")
"""The DocumentStore methods that reach the DMS, for wrappers that count, time or fail them
(``group``, ``check``, ``close`` and ``init`` manage the store itself). A test holds it to the port."""


__all__ = [
    "DMS_CALLS",
    "AdapterClass",
    "BaseDocumentStore",
    "Cursor",
    "DocumentStore",
    "PupilSource",
    "SourceContext",
    "SourceRecord",
    "SourceReport",
    "StoreContext",
    "read_back",
]
