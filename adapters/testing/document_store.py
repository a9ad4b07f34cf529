"""The conformance suite of the DocumentStore port, for every DMS adapter.

Subclass the contracts your store's capabilities call for, give ``open_store`` and the hooks,
and name the class ``Test...`` in a test module::

    class TestMyStore(DocumentStoreContract, TrashContract):   # a store with a trash, no ACLs
        def open_store(self, request, tmp_path):
            return MyStore(MySettings(...), StoreContext(index_key=b"k" * 32))

        def in_trash(self, store, doc):
            return ...  # ask your DMS

``DocumentStoreContract`` holds what every store must do; ``TrashContract`` (capability
``trash``) and ``AccessContract`` (capability ``acl``) what a store with that capability must
do. A test checks that the contracts a class takes are exactly those its capabilities name, so
a store is never tested for less than it claims, and a store without a trash or ACLs passes
with the base contract alone.
"""

from __future__ import annotations

import io
import os
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from connector.errors import PermanentError
from connector.mapping import load as load_mapping
from connector.model import DmsGrant, DocumentRef, DossierRef, DossierSpec, PupilFacts
from connector.ports import DocumentStore
from connector.retention import load_schedule, tag

MAPPING = load_mapping("po")


def dossier_spec(external_id: str = "las:99XY:LL000001", **changes: object) -> DossierSpec:
    """A dossier of the ``po`` layout (parts I and II) for a made-up pupil."""
    data: dict[str, object] = dict(
        external_id=external_id, pseudonym="p-0123456789abcdef", school="99XY",
        title="Noor van Dijk", properties={"jaargroep": "5", "school_brin": "99XY"},
        parts=MAPPING.parts, departure=None,
    )
    data.update(changes)
    return DossierSpec.model_validate(data)


def _tag() -> Any:
    schedule = load_schedule("retention-po", classes=set(MAPPING.classes))
    return tag(PupilFacts(departure=date(2026, 7, 10)), "rapport", schedule)


class DocumentStoreContract:
    """What every DocumentStore does."""

    def open_store(self, request: pytest.FixtureRequest, tmp_path: Path) -> DocumentStore:
        """A store of its own for one test (for a shared server: a fresh index key, so other
        tests' dossiers are invisible)."""
        raise NotImplementedError

    def stored_properties(self, store: DocumentStore, ref: DossierRef) -> dict[str, Any] | None:
        """The dossier's properties as the DMS holds them, where the test can read them (None: skip)."""
        return None

    @pytest.fixture
    def store(self, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[DocumentStore]:
        s = self.open_store(request, tmp_path)
        yield s
        s.close()

    def test_implements_the_port_and_takes_the_contracts_its_capabilities_name(self, store: DocumentStore) -> None:
        assert isinstance(store, DocumentStore)
        assert store.check() == []
        assert isinstance(self, TrashContract) == store.capabilities.trash, "trash: take TrashContract"
        assert isinstance(self, AccessContract) == store.capabilities.acl, "acl: take AccessContract"

    def test_find_before_create_is_none_and_after_create_is_the_same_dossier(self, store: DocumentStore) -> None:
        assert store.find_dossier("las:99XY:LL000001") is None
        ref = store.create_dossier(dossier_spec())
        assert ref.external_id == "las:99XY:LL000001"
        assert store.find_dossier("las:99XY:LL000001") == ref
        assert store.find_dossier("las:99XY:LL000002") is None

    def test_create_is_idempotent(self, store: DocumentStore) -> None:
        first = store.create_dossier(dossier_spec())
        again = store.create_dossier(dossier_spec(properties={"jaargroep": "6"}))  # a repeat after a lost answer
        assert again == first
        assert store.find_dossier(first.external_id) == first

    def test_update_changes_metadata_and_keeps_documents(self, store: DocumentStore) -> None:
        ref = store.create_dossier(dossier_spec())
        doc = store.add_document(ref, "II", "rapport", "rapport-2025.pdf", io.BytesIO(b"%PDF-1.4 x"), {})
        store.update_dossier(ref, dossier_spec(properties={"jaargroep": "6"}, departure=date(2026, 7, 10)))
        assert [d.id for d in store.documents(ref)] == [doc.id]
        stored = self.stored_properties(store, ref)
        if stored is not None:
            assert stored["properties"]["jaargroep"] == "6" and stored["departure"] == "2026-07-10"

    def test_update_of_a_missing_dossier_is_permanent(self, store: DocumentStore) -> None:
        with pytest.raises(PermanentError):
            store.update_dossier(DossierRef(id="0" * 32, external_id="x"), dossier_spec())

    def test_documents_listed_with_part_and_class(self, store: DocumentStore) -> None:
        ref = store.create_dossier(dossier_spec())
        a = store.add_document(ref, "I", "inschrijving", "inschrijfformulier.pdf", io.BytesIO(b"a"), {"bron": "scan"})
        b = store.add_document(ref, "II", None, "mail.eml", io.BytesIO(b"b"), {})
        docs = {d.id: d for d in store.documents(ref)}
        assert set(docs) == {a.id, b.id}
        assert docs[a.id].part == "I" and docs[a.id].doc_class == "inschrijving"
        assert docs[a.id].metadata == {"bron": "scan"}
        assert docs[b.id].doc_class is None

    def test_add_to_unknown_part_is_permanent(self, store: DocumentStore) -> None:
        ref = store.create_dossier(dossier_spec())
        with pytest.raises(PermanentError):
            store.add_document(ref, "III", None, "x.pdf", io.BytesIO(b"x"), {})

    def test_destroy_removes_from_listing_and_repeating_it_is_done(self, store: DocumentStore) -> None:
        ref = store.create_dossier(dossier_spec())
        doc = store.add_document(ref, "II", "rapport", "r.pdf", io.BytesIO(b"r"), {})
        keep = store.add_document(ref, "II", "rapport", "s.pdf", io.BytesIO(b"s"), {})
        store.destroy(doc)
        assert [d.id for d in store.documents(ref)] == [keep.id]
        store.destroy(doc)  # already gone counts as done
        assert [d.id for d in store.documents(ref)] == [keep.id]

    def test_content_reads_back_and_tags_are_metadata(self, store: DocumentStore) -> None:
        ref = store.create_dossier(dossier_spec())
        doc = store.add_document(ref, "II", "rapport", "r.pdf", io.BytesIO(b"%PDF-1.4 content"), {})
        assert store.read(doc) == b"%PDF-1.4 content"
        t = _tag()
        store.tag(doc, t)
        store.tag(doc, t)  # repeating is harmless
        [listed] = list(store.documents(ref))
        assert {k: listed.metadata[k] for k in t.metadata()} == t.metadata()
        assert listed.metadata["retention_due"] == "2028-07-10"

    def test_writes_in_a_group_are_seen_inside_it_and_kept_after_it(self, store: DocumentStore) -> None:
        with store.group():
            ref = store.create_dossier(dossier_spec())
            assert store.find_dossier(ref.external_id) == ref
            assert store.create_dossier(dossier_spec()) == ref  # a repeat inside the group finds it
            store.update_dossier(ref, dossier_spec(properties={"jaargroep": "6"}))
            assert list(store.documents(ref)) == []
        assert store.find_dossier(ref.external_id) == ref
        doc = store.add_document(ref, "II", "rapport", "r.pdf", io.BytesIO(b"%PDF-1.4 content"), {})
        with store.group():
            store.tag(doc, _tag())
        [listed] = list(store.documents(ref))
        assert listed.metadata["retention_due"] == "2028-07-10"
        stored = self.stored_properties(store, ref)
        if stored is not None:
            assert stored["properties"]["jaargroep"] == "6"


class TrashContract:
    """A store whose destroy moves a document to a trash that ``purge`` empties."""

    def in_trash(self, store: DocumentStore, doc: DocumentRef) -> bool:
        """Whether the destroyed document sits in the store's trash, asked of the DMS."""
        raise NotImplementedError

    def test_destroy_goes_to_the_trash_and_purge_empties_it(self, store: DocumentStore) -> None:
        ref = store.create_dossier(dossier_spec())
        doc = store.add_document(ref, "II", "rapport", "r.pdf", io.BytesIO(b"r"), {})
        store.destroy(doc)
        assert self.in_trash(store, doc)  # recoverable until purged
        store.purge(doc)
        assert not self.in_trash(store, doc)
        store.purge(doc)  # purging what is gone is done


def held(store: DocumentStore, ref: DossierRef) -> dict[str, set[tuple[str, str, tuple[str, ...] | None]]]:
    """What ``read_access`` reads back, as comparable sets (an account's case aside)."""
    return {part: {(g.principal.lower() if g.kind == "user" else g.principal, g.kind, g.classes) for g in grants}
            for part, grants in store.read_access(ref).items()}


class AccessContract:
    """A store that applies read access per dossier part (``set_access``)."""

    def make_principal(self, request: pytest.FixtureRequest, name: str, groups: tuple[str, ...] = ()) -> None:
        """Make a user NAME in GROUPS in the DMS, as its administrator would (nothing to do
        for a store whose principals are names only)."""
        return None

    def readable(self, store: DocumentStore, ref: DossierRef, user: str, groups: tuple[str, ...]) -> set[str]:
        """The ids of the dossier's documents USER (member of GROUPS) can open, asked of the DMS
        as that user where the DMS allows."""
        raise NotImplementedError

    def place_also(self, store: DocumentStore, ref: DossierRef, doc: DocumentRef, part: str) -> None:
        """Put DOC also in PART's place in the DMS, as staff can by hand."""
        raise NotImplementedError

    def test_set_access_gives_exactly_the_grants_and_takes_them_back(self, store: DocumentStore,
                                                                      request: pytest.FixtureRequest) -> None:
        suffix = os.urandom(3).hex()
        parent, staff, group = f"ouder-{suffix}", f"juf-{suffix}", f"leerkracht-{suffix}"
        self.make_principal(request, parent)
        self.make_principal(request, staff, (group,))
        ref = store.create_dossier(dossier_spec(f"las:99XY:ACL{suffix}"))
        report = store.add_document(ref, "II", "rapport", "rapport.pdf", io.BytesIO(b"%PDF-1.4 r"), {})
        notes = store.add_document(ref, "II", "verslag_teambespreking", "verslag.pdf", io.BytesIO(b"%PDF-1.4 v"), {})
        admin = store.add_document(ref, "I", "inschrijving", "inschrijving.pdf", io.BytesIO(b"%PDF-1.4 i"), {})
        staff_grant = DmsGrant(principal=group, kind="group")

        assert store.read_access(ref) == {}  # nothing given yet, nothing read back
        store.set_access(ref, "I", (staff_grant,))
        store.set_access(ref, "II", (staff_grant, DmsGrant(principal=parent, kind="user", classes=("rapport",))))
        assert self.readable(store, ref, parent, ()) == {report.id}  # information: reports only
        assert self.readable(store, ref, staff, (group,)) == {report.id, notes.id, admin.id}
        assert held(store, ref) == {"I": {(group, "group", None)},
                                    "II": {(group, "group", None), (parent, "user", ("rapport",))}}
        store.set_access(ref, "II", (staff_grant, DmsGrant(principal=parent, kind="user")))  # inspection of II
        store.set_access(ref, "II", (staff_grant, DmsGrant(principal=parent, kind="user")))  # safe to repeat
        assert self.readable(store, ref, parent, ()) == {report.id, notes.id}
        assert held(store, ref)["II"] == {(group, "group", None), (parent, "user", None)}
        store.set_access(ref, "II", (staff_grant,))  # e.g. the pupil turned 16
        assert self.readable(store, ref, parent, ()) == set()
        assert self.readable(store, ref, staff, (group,)) == {report.id, notes.id, admin.id}
        assert held(store, ref)["II"] == {(group, "group", None)}
        store.set_access(ref, "I", ())
        store.set_access(ref, "II", ())
        assert self.readable(store, ref, staff, (group,)) == set()
        assert held(store, ref) == {}

    def test_a_document_in_two_parts_places_opens_only_as_its_own_part_allows(
            self, store: DocumentStore, request: pytest.FixtureRequest) -> None:
        """A part-II report that staff also put in part I's place is opened by nobody who has
        part I only, whichever part is applied last, and is listed once, under its own part."""
        suffix = os.urandom(3).hex()
        third, staff, group = f"derde-{suffix}", f"ib-{suffix}", f"zorg-{suffix}"
        self.make_principal(request, third)
        self.make_principal(request, staff, (group,))
        ref = store.create_dossier(dossier_spec(f"las:99XY:TWO{suffix}"))
        notes = store.add_document(ref, "II", "verslag_teambespreking", "teambespreking.pdf",
                                   io.BytesIO(b"%PDF-1.4 t"), {})
        enrolment = store.add_document(ref, "I", "inschrijving", "inschrijving.pdf", io.BytesIO(b"%PDF-1.4 i"), {})
        self.place_also(store, ref, notes, "I")
        assert [d.part for d in store.documents(ref) if d.id == notes.id] == ["II"]
        part_one, part_two = (DmsGrant(principal=third, kind="user"),), (DmsGrant(principal=group, kind="group"),)
        for order in ((("II", part_two), ("I", part_one)), (("I", part_one), ("II", part_two))):
            for part, grants in order:
                store.set_access(ref, part, grants)
            assert self.readable(store, ref, third, ()) == {enrolment.id}
            assert self.readable(store, ref, staff, (group,)) == {notes.id}
        store.set_access(ref, "I", part_one)  # part II unchanged and not applied again: still closed
        assert self.readable(store, ref, third, ()) == {enrolment.id}
