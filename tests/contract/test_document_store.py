"""The one conformance suite of the DocumentStore port (``adapters.testing``), run for every
DMS adapter: the filesystem store and a live Mayan. A new adapter adds a class here (or in its
own package) that takes the contracts its capabilities name."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import pytest

from adapters.dms.filesystem import FilesystemStore
from adapters.dms.mayan import MayanStore, _ids
from adapters.testing import AccessContract, DocumentStoreContract, TrashContract, dossier_spec
from connector.model import DocumentRef, DossierRef
from connector.ports import DocumentStore
from tests.conftest import filesystem_store, mayan_store


class TestFilesystemStore(DocumentStoreContract, TrashContract, AccessContract):
    def open_store(self, request: pytest.FixtureRequest, tmp_path: Path) -> DocumentStore:
        return filesystem_store(tmp_path / "dms")

    def stored_properties(self, store: Any, ref: DossierRef) -> dict[str, Any]:
        data: dict[str, Any] = store.read_dossier(ref)
        return data

    def in_trash(self, store: Any, doc: DocumentRef) -> bool:
        return bool(list((store.root / "trash").glob(f"*/{doc.dossier_id}/{doc.id}*")))

    def readable(self, store: Any, ref: DossierRef, user: str, groups: tuple[str, ...]) -> set[str]:
        return {d.id for d in store.documents(ref) if store.may_read(d, user, groups)}

    def place_also(self, store: Any, ref: DossierRef, doc: DocumentRef, part: str) -> None:
        folders = {p["code"]: p["folder"] for p in store.read_dossier(ref)["parts"]}
        dossier = store.root / "dossiers" / ref.id[:2] / ref.id
        for f in (dossier / folders[doc.part]).glob(f"{doc.id}*"):
            shutil.copy(f, dossier / folders[part] / f.name)

    def test_a_trashed_document_keeps_content_and_metadata_until_purged(self, store: Any) -> None:
        import io

        ref = store.create_dossier(dossier_spec())
        doc = store.add_document(ref, "II", "rapport", "r.pdf", io.BytesIO(b"r"), {})
        store.destroy(doc)
        assert len(list((store.root / "trash").glob(f"*/{ref.id}/{doc.id}*"))) == 2


@pytest.mark.mayan
class TestMayanStore(DocumentStoreContract, TrashContract, AccessContract):
    def open_store(self, request: pytest.FixtureRequest, tmp_path: Path) -> DocumentStore:
        self.server = request.getfixturevalue("mayan_server")
        store: DocumentStore = mayan_store(self.server)
        return store

    def in_trash(self, store: Any, doc: DocumentRef) -> bool:
        return bool(store.in_trash(doc))

    def make_principal(self, request: pytest.FixtureRequest, name: str, groups: tuple[str, ...] = ()) -> None:
        request.getfixturevalue("mayan_server").ensure_user(name, groups)

    def readable(self, store: Any, ref: DossierRef, user: str, groups: tuple[str, ...]) -> set[str]:
        seen: set[str] = self.server.visible_documents(user)
        return seen

    def place_also(self, store: Any, ref: DossierRef, doc: DocumentRef, part: str) -> None:
        cabinet, _card = _ids(ref)
        store._add_to_cabinet(store._parts(cabinet)[part], int(doc.id))

    def test_no_part_cabinet_opens_to_another_part_and_readers_see_the_metadata(self, store: Any) -> None:
        """Mayan passes a cabinet's ACL down to the cabinets below it, so the root gets none;
        whoever may open a document reads its class, part and retention metadata."""
        import io

        from connector.model import DmsGrant

        third = f"derde-{os.urandom(3).hex()}"
        self.server.ensure_user(third)
        ref = store.create_dossier(dossier_spec(f"las:99XY:CAB{third}"))
        enrolment = store.add_document(ref, "I", "inschrijving", "i.pdf", io.BytesIO(b"%PDF-1.4 i"), {})
        notes = store.add_document(ref, "II", "verslag_teambespreking", "t.pdf", io.BytesIO(b"%PDF-1.4 t"), {})
        store.set_access(ref, "I", (DmsGrant(principal=third, kind="user"),))
        store.set_access(ref, "II", ())
        cabinet, _card = _ids(ref)
        cabinets = store._parts(cabinet)
        seen = self.server.visible_cabinets(third)
        assert cabinets["I"] in seen and cabinets["II"] not in seen and cabinet not in seen
        assert self.server.metadata_seen(third, enrolment.id).get("ld_class") == "inschrijving"
        assert self.server.metadata_seen(third, notes.id) == {}


def test_every_store_in_the_registry_is_tested_here() -> None:
    import adapters
    from adapters.dms.graph import SharePointStore

    tested = {FilesystemStore, MayanStore, SharePointStore}  # SharePoint: tests/graph/test_sharepoint.py
    for target in adapters.BUILTIN["leerdossier.dms"].values():
        module, _, attr = target.partition(":")
        assert getattr(__import__(module, fromlist=[attr]), attr) in tested
