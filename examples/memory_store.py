"""A minimal DMS adapter, for adapter authors to start from (README "Writing an adapter"): the
dossiers live in memory, there is no trash (a destroy is final) and no access control. It
passes the conformance suite with the base contract alone (tests/contract/test_example_adapter.py).

Register a real one through the entry point group ``leerdossier.dms`` in your package:

    [project.entry-points."leerdossier.dms"]
    memory = "examples.memory_store:MemoryStore"
"""

from __future__ import annotations

import hashlib
import hmac
import uuid
from collections.abc import Iterator
from typing import Any, BinaryIO, ClassVar

from connector.errors import PermanentError
from connector.model import DmsGrant, DocumentRef, DossierRef, DossierSpec, Frozen, RetentionTag, StoreCapabilities
from connector.ports import BaseDocumentStore, StoreContext


class MemorySettings(Frozen):
    """The ``[dms]`` table of this adapter (besides ``type``): a label, to show settings at work."""

    label: str = "memory"


class MemoryStore(BaseDocumentStore):
    capabilities: ClassVar[StoreCapabilities] = StoreCapabilities()  # no trash, no ACLs
    settings_model: ClassVar[type[Frozen]] = MemorySettings

    def __init__(self, settings: MemorySettings, context: StoreContext | None = None) -> None:
        super().__init__(settings, context)
        self._index: dict[str, str] = {}  # keyed hash of the external id -> dossier id
        self._dossiers: dict[str, dict[str, Any]] = {}

    def _key(self, external_id: str) -> str:
        """Never the external id itself (it may be a BSN): a hash keyed with the install's key."""
        return hmac.new(self.context.index_key, external_id.encode(), hashlib.sha256).hexdigest()

    def _dossier(self, ref: DossierRef) -> dict[str, Any]:
        try:
            return self._dossiers[ref.id]
        except KeyError:
            raise PermanentError(f"dossier {ref.id} does not exist") from None

    def find_dossier(self, external_id: str) -> DossierRef | None:
        dossier_id = self._index.get(self._key(external_id))
        return DossierRef(id=dossier_id, external_id=external_id) if dossier_id else None

    def create_dossier(self, spec: DossierSpec) -> DossierRef:
        dossier_id = self._index.setdefault(self._key(spec.external_id), uuid.uuid4().hex)
        ref = DossierRef(id=dossier_id, external_id=spec.external_id)
        if dossier_id in self._dossiers:
            self.update_dossier(ref, spec)
        else:
            self._dossiers[dossier_id] = {"spec": spec, "documents": {}}
        return ref

    def update_dossier(self, ref: DossierRef, spec: DossierSpec) -> None:
        self._dossier(ref)["spec"] = spec

    def documents(self, ref: DossierRef) -> Iterator[DocumentRef]:
        yield from (doc for doc, _content in self._dossier(ref)["documents"].values())

    def add_document(self, ref: DossierRef, part: str, doc_class: str | None, name: str, content: BinaryIO,
                     metadata: dict[str, str]) -> DocumentRef:
        dossier = self._dossier(ref)
        if part not in {p.code for p in dossier["spec"].parts}:
            raise PermanentError(f"add document: dossier has no part {part!r}")
        doc = DocumentRef(id=uuid.uuid4().hex, dossier_id=ref.id, part=part, doc_class=doc_class, name=name,
                          metadata=dict(metadata))
        dossier["documents"][doc.id] = (doc, content.read())
        return doc

    def _entry(self, doc: DocumentRef) -> tuple[DocumentRef, bytes]:
        try:
            entry: tuple[DocumentRef, bytes] = self._dossiers[doc.dossier_id]["documents"][doc.id]
        except KeyError:
            raise PermanentError(f"document {doc.id} does not exist") from None
        return entry

    def read(self, doc: DocumentRef) -> bytes:
        return self._entry(doc)[1]

    def tag(self, doc: DocumentRef, tag: RetentionTag) -> None:
        stored, content = self._entry(doc)
        updated = stored.model_copy(update={"metadata": stored.metadata | tag.metadata()})
        self._dossiers[doc.dossier_id]["documents"][doc.id] = (updated, content)

    def destroy(self, doc: DocumentRef) -> None:
        self._dossiers.get(doc.dossier_id, {}).get("documents", {}).pop(doc.id, None)  # gone counts as done

    def set_access(self, ref: DossierRef, part: str, grants: tuple[DmsGrant, ...]) -> None:
        raise PermanentError("this store applies no access rights (capabilities.acl is false)")
