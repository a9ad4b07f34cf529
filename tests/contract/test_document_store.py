"""One conformance suite for the DocumentStore port, parametrised over every DMS adapter.

Every later adapter joins the ``store`` fixture's parameters and must pass the same tests.
"""

from __future__ import annotations

import io
import os
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest

from adapters.dms.filesystem import FilesystemStore
from connector.errors import PermanentError
from connector.mapping import load as load_mapping
from connector.model import DossierRef, DossierSpec
from connector.ports import DocumentStore
from tests.conftest import filesystem_store, mayan_store

MAPPING = load_mapping("po")


def spec(external_id: str = "las:99XY:LL000001", **changes: object) -> DossierSpec:
    data: dict[str, object] = dict(
        external_id=external_id, pseudonym="p-0123456789abcdef", school="99XY",
        title="Noor van Dijk", properties={"jaargroep": "5", "school_brin": "99XY"},
        parts=MAPPING.parts, departure=None,
    )
    data.update(changes)
    return DossierSpec.model_validate(data)


@pytest.fixture(params=["filesystem", pytest.param("mayan", marks=pytest.mark.mayan)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[DocumentStore]:
    """Every DMS adapter, each test on a store of its own (Mayan: a fresh index key, so the
    dossiers of other tests on the shared server are invisible)."""
    if request.param == "filesystem":
        s: DocumentStore = filesystem_store(tmp_path / "dms")
    else:
        s = mayan_store(request.getfixturevalue("mayan_server"))
    yield s
    s.close()


def test_implements_the_port(store: DocumentStore) -> None:
    assert isinstance(store, DocumentStore)
    assert store.check() == []


def test_find_before_create_is_none_and_after_create_is_the_same_dossier(store: DocumentStore) -> None:
    assert store.find_dossier("las:99XY:LL000001") is None
    ref = store.create_dossier(spec())
    assert ref.external_id == "las:99XY:LL000001"
    assert store.find_dossier("las:99XY:LL000001") == ref
    assert store.find_dossier("las:99XY:LL000002") is None


def test_create_is_idempotent(store: DocumentStore) -> None:
    first = store.create_dossier(spec())
    again = store.create_dossier(spec(properties={"jaargroep": "6"}))  # a repeat after a lost answer
    assert again == first
    assert store.find_dossier(first.external_id) == first


def test_update_changes_metadata_and_keeps_documents(store: DocumentStore) -> None:
    ref = store.create_dossier(spec())
    doc = store.add_document(ref, "II", "rapport", "rapport-2025.pdf", io.BytesIO(b"%PDF-1.4 x"), {})
    store.update_dossier(ref, spec(properties={"jaargroep": "6"}, departure=date(2026, 7, 10)))
    assert [d.id for d in store.documents(ref)] == [doc.id]
    if isinstance(store, FilesystemStore):
        stored = store.read_dossier(ref)
        assert stored["properties"]["jaargroep"] == "6" and stored["departure"] == "2026-07-10"


def test_update_of_a_missing_dossier_is_permanent(store: DocumentStore) -> None:
    with pytest.raises(PermanentError):
        store.update_dossier(DossierRef(id="0" * 32, external_id="x"), spec())


def test_documents_listed_with_part_and_class(store: DocumentStore) -> None:
    ref = store.create_dossier(spec())
    a = store.add_document(ref, "I", "inschrijving", "inschrijfformulier.pdf", io.BytesIO(b"a"), {"bron": "scan"})
    b = store.add_document(ref, "II", None, "mail.eml", io.BytesIO(b"b"), {})
    docs = {d.id: d for d in store.documents(ref)}
    assert set(docs) == {a.id, b.id}
    assert docs[a.id].part == "I" and docs[a.id].doc_class == "inschrijving"
    assert docs[a.id].metadata == {"bron": "scan"}
    assert docs[b.id].doc_class is None


def test_add_to_unknown_part_is_permanent(store: DocumentStore) -> None:
    ref = store.create_dossier(spec())
    with pytest.raises(PermanentError):
        store.add_document(ref, "III", None, "x.pdf", io.BytesIO(b"x"), {})


def test_destroy_removes_from_listing_and_repeating_it_is_done(store: DocumentStore) -> None:
    ref = store.create_dossier(spec())
    doc = store.add_document(ref, "II", "rapport", "r.pdf", io.BytesIO(b"r"), {})
    keep = store.add_document(ref, "II", "rapport", "s.pdf", io.BytesIO(b"s"), {})
    store.destroy(doc)
    assert [d.id for d in store.documents(ref)] == [keep.id]
    store.destroy(doc)  # already gone counts as done
    assert [d.id for d in store.documents(ref)] == [keep.id]


def test_destroy_goes_to_trash_first_where_the_store_has_one(store: DocumentStore) -> None:
    if not store.capabilities.trash:
        pytest.fail("every store so far has a trash; a store without one must say how it soft-deletes")
    ref = store.create_dossier(spec())
    doc = store.add_document(ref, "II", "rapport", "r.pdf", io.BytesIO(b"r"), {})
    store.destroy(doc)
    if isinstance(store, FilesystemStore):
        trashed = list((store.root / "trash").glob(f"*/{ref.id}/{doc.id}*"))
        assert len(trashed) == 2  # content and metadata, recoverable until purged
        store.purge(doc)
        assert not list((store.root / "trash").glob("*/*/*"))
    else:
        assert store.in_trash(doc)  # type: ignore[attr-defined]
        store.purge(doc)
        assert not store.in_trash(doc)  # type: ignore[attr-defined]
    store.purge(doc)  # purging what is gone is done


def test_content_reads_back_and_tags_are_metadata(store: DocumentStore) -> None:
    from connector.model import PupilFacts
    from connector.retention import load_schedule, tag

    ref = store.create_dossier(spec())
    doc = store.add_document(ref, "II", "rapport", "r.pdf", io.BytesIO(b"%PDF-1.4 content"), {})
    assert store.read(doc) == b"%PDF-1.4 content"
    schedule = load_schedule("retention-po", classes=set(MAPPING.classes))
    t = tag(PupilFacts(departure=date(2026, 7, 10)), "rapport", schedule)
    store.tag(doc, t)
    store.tag(doc, t)  # repeating is harmless
    [listed] = list(store.documents(ref))
    assert {k: listed.metadata[k] for k in t.metadata()} == t.metadata()
    assert listed.metadata["retention_due"] == "2028-07-10"


def test_writes_in_a_group_are_seen_inside_it_and_kept_after_it(store: DocumentStore) -> None:
    from connector.model import PupilFacts
    from connector.retention import load_schedule, tag

    with store.group():
        ref = store.create_dossier(spec())
        assert store.find_dossier(ref.external_id) == ref
        assert store.create_dossier(spec()) == ref  # a repeat inside the group finds it
        store.update_dossier(ref, spec(properties={"jaargroep": "6"}))
        assert list(store.documents(ref)) == []
    assert store.find_dossier(ref.external_id) == ref
    doc = store.add_document(ref, "II", "rapport", "r.pdf", io.BytesIO(b"%PDF-1.4 content"), {})
    schedule = load_schedule("retention-po", classes=set(MAPPING.classes))
    t = tag(PupilFacts(departure=date(2026, 7, 10)), "rapport", schedule)
    with store.group():
        store.tag(doc, t)
    [listed] = list(store.documents(ref))
    assert listed.metadata["retention_due"] == "2028-07-10"
    if isinstance(store, FilesystemStore):
        assert store.read_dossier(ref)["properties"]["jaargroep"] == "6"


# -- filesystem specifics -------------------------------------------------------------------
def test_filesystem_group_moves_new_dossiers_in_only_after_its_barrier(tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """Inside a group nothing is flushed one by one; at its end one barrier makes the new
    dossiers (and their index claims) durable, and only then do they move into dossiers/,
    which a second barrier makes durable. A power failure before the first barrier can leave
    nothing half-written where a reader or the journal's repeat would trust it."""
    from adapters.dms import filesystem

    store = filesystem_store(tmp_path / "dms")
    assert store.find_dossier("las:99XY:none") is None  # opens (makes) the store before anything is counted
    placed = lambda: len(list((tmp_path / "dms" / "dossiers").glob("*/*")))  # noqa: E731
    barriers: list[int] = []
    fsyncs: list[int] = []
    real_fsync = os.fsync
    monkeypatch.setattr(filesystem, "_syncfs", lambda path: barriers.append(placed()))
    monkeypatch.setattr(filesystem.os, "fsync", lambda fd: (fsyncs.append(fd), real_fsync(fd))[1])
    with store.group():
        refs = [store.create_dossier(spec(f"las:99XY:G{i}")) for i in range(3)]
        assert placed() == 0 and all(store.find_dossier(r.external_id) == r for r in refs)
    assert fsyncs == [] and barriers == [0, 3]  # before the moves, none placed; after, all three
    assert placed() == 3 and not os.listdir(tmp_path / "dms" / "tmp")
    barriers.clear()
    with store.group():
        store.update_dossier(refs[0], spec("las:99XY:G0", title="x"))
    # a file that replaces one has its content flushed before the rename (old or new, never
    # empty); the folder's flush is the barrier's
    assert len(fsyncs) == 1 and barriers == [3]
    with store.group():
        pass
    assert barriers == [3]  # nothing written, no barrier


def test_filesystem_a_claim_lost_to_a_power_failure_is_claimed_again(tmp_path: Path) -> None:
    store = filesystem_store(tmp_path / "dms")
    store.find_dossier("las:99XY:none")  # opens (makes) the store
    index = store._index_path("las:99XY:LL000001")
    index.parent.mkdir(parents=True)
    index.write_bytes(b"")  # linked before the failure, its content never written
    assert store.find_dossier("las:99XY:LL000001") is None
    ref = store.create_dossier(spec())
    assert store.find_dossier("las:99XY:LL000001") == ref
    assert store.dossier_count() == 1
    assert [p.name.split(".")[0] for p in (tmp_path / "dms" / "tmp").iterdir()] == ["lost-claim"]


def test_filesystem_a_group_cut_off_before_its_barrier_leaves_one_dossier(tmp_path: Path) -> None:
    """A run killed inside a group leaves its new dossier in tmp/ with the index claim; the
    next run's create finishes it under the same id. Should the first run's block still end,
    its move finds the dossier in place and drops its own copy."""
    first = filesystem_store(tmp_path / "dms")
    block = first.group()
    block.__enter__()
    ref = first.create_dossier(spec())
    second = filesystem_store(tmp_path / "dms")  # the next run
    assert second.find_dossier(ref.external_id) is None
    assert second.create_dossier(spec(title="again")) == ref
    block.__exit__(None, None, None)
    assert len(list((tmp_path / "dms" / "dossiers").glob("*/*"))) == 1
    assert second.read_dossier(ref)["title"] == "again"
    assert [p.name for p in (tmp_path / "dms" / "tmp").iterdir()] == []

def test_filesystem_paths_hold_no_external_id_or_name(tmp_path: Path) -> None:
    store = filesystem_store(tmp_path / "dms")
    store.create_dossier(spec("pgn:123456782", title="Noor van Dijk"))
    paths = [str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*")]
    assert not any("123456782" in p or "Noor" in p for p in paths)


def test_filesystem_find_is_an_index_lookup(tmp_path: Path) -> None:
    store = filesystem_store(tmp_path / "dms")
    for i in range(50):
        store.create_dossier(spec(f"las:99XY:{i}"))
    opened: list[str] = []
    real_text, real_bytes = Path.read_text, Path.read_bytes

    def spy(real):  # type: ignore[no-untyped-def]
        def read(self: Path, *a: object, **k: object) -> object:
            opened.append(self.name)
            return real(self, *a, **k)
        return read

    Path.read_text, Path.read_bytes = spy(real_text), spy(real_bytes)  # type: ignore[method-assign]
    try:
        assert store.find_dossier("las:99XY:17") is not None
    finally:
        Path.read_text, Path.read_bytes = real_text, real_bytes  # type: ignore[method-assign]
    assert len(opened) == 1  # the index entry only; no dossier.json was scanned


def test_filesystem_create_finishes_a_claim_left_by_a_crash(tmp_path: Path) -> None:
    store = filesystem_store(tmp_path / "dms")
    ref = store.create_dossier(spec())
    folder = store._dossier_dir(ref.id)
    import shutil
    shutil.rmtree(folder)  # as if killed after the index claim, before the folder landed
    assert store.find_dossier(ref.external_id) is None
    again = store.create_dossier(spec())
    assert again.id == ref.id
    assert store.dossier_count() == 1


def test_filesystem_concurrent_claims_make_one_dossier(tmp_path: Path) -> None:
    from concurrent.futures import ThreadPoolExecutor

    stores = [filesystem_store(tmp_path / "dms") for _ in range(8)]
    stores[0].find_dossier("las:99XY:none")  # one opens (makes) the store first
    with ThreadPoolExecutor(8) as pool:
        refs = list(pool.map(lambda s: s.create_dossier(spec()), stores))
    assert len({r.id for r in refs}) == 1
    assert len(list((tmp_path / "dms" / "dossiers").glob("*/*"))) == 1


def test_filesystem_writes_leave_no_temp_files(tmp_path: Path) -> None:
    store = filesystem_store(tmp_path / "dms")
    ref = store.create_dossier(spec())
    store.update_dossier(ref, spec(title="x"))
    store.add_document(ref, "I", None, "a.pdf", io.BytesIO(b"a"), {})
    leftovers = [p for p in tmp_path.rglob("*") if p.name.endswith(".tmp")]
    assert leftovers == []
    assert not os.listdir(tmp_path / "dms" / "tmp")


def test_filesystem_fresh_store_used_by_many_threads_at_once(tmp_path: Path) -> None:
    from concurrent.futures import ThreadPoolExecutor

    store = filesystem_store(tmp_path / "fresh")
    with ThreadPoolExecutor(8) as pool:
        refs = list(pool.map(lambda i: store.create_dossier(spec(f"las:99XY:T{i}")), range(16)))
    assert len({r.id for r in refs}) == 16 and store.dossier_count() == 16


def _readable(store: DocumentStore, ref: DossierRef, user: str, groups: tuple[str, ...], server) -> set[str]:  # type: ignore[no-untyped-def]
    """The documents of the dossier that ``user`` sees, asked of the store itself."""
    if isinstance(store, FilesystemStore):
        return {d.id for d in store.documents(ref) if store.may_read(d, user, groups)}
    return server.visible_documents(user)


def _user(store: DocumentStore, request: pytest.FixtureRequest, name: str, groups: tuple[str, ...] = ()):  # type: ignore[no-untyped-def]
    if isinstance(store, FilesystemStore):
        return None
    server = request.getfixturevalue("mayan_server")
    server.ensure_user(name, groups)
    return server


def test_set_access_gives_exactly_the_grants_and_takes_them_back(store: DocumentStore,
                                                                  request: pytest.FixtureRequest) -> None:
    from connector.model import DmsGrant
    suffix = os.urandom(3).hex()
    parent, staff, group = f"ouder-{suffix}", f"juf-{suffix}", f"leerkracht-{suffix}"
    server = _user(store, request, parent)
    _user(store, request, staff, (group,))
    ref = store.create_dossier(spec(f"las:99XY:ACL{suffix}"))
    report = store.add_document(ref, "II", "rapport", "rapport.pdf", io.BytesIO(b"%PDF-1.4 r"), {})
    notes = store.add_document(ref, "II", "verslag_teambespreking", "verslag.pdf", io.BytesIO(b"%PDF-1.4 v"), {})
    admin = store.add_document(ref, "I", "inschrijving", "inschrijving.pdf", io.BytesIO(b"%PDF-1.4 i"), {})

    store.set_access(ref, "I", (DmsGrant(principal=group, kind="group"),))
    store.set_access(ref, "II", (DmsGrant(principal=group, kind="group"),
                                 DmsGrant(principal=parent, kind="user", classes=("rapport",))))
    assert _readable(store, ref, parent, (), server) == {report.id}  # information: reports only
    assert _readable(store, ref, staff, (group,), server) == {report.id, notes.id, admin.id}
    store.set_access(ref, "II", (DmsGrant(principal=group, kind="group"),
                                 DmsGrant(principal=parent, kind="user")))  # inspection of part II
    store.set_access(ref, "II", (DmsGrant(principal=group, kind="group"),
                                 DmsGrant(principal=parent, kind="user")))  # safe to repeat
    assert _readable(store, ref, parent, (), server) == {report.id, notes.id}
    store.set_access(ref, "II", (DmsGrant(principal=group, kind="group"),))  # e.g. the pupil turned 16
    assert _readable(store, ref, parent, (), server) == set()
    assert _readable(store, ref, staff, (group,), server) == {report.id, notes.id, admin.id}
    store.set_access(ref, "I", ())
    store.set_access(ref, "II", ())
    assert _readable(store, ref, staff, (group,), server) == set()


def _place_also(store: DocumentStore, ref: DossierRef, doc_id: str, part: str) -> None:
    """What staff can do in the DMS itself: put a document also in another part's place."""
    if isinstance(store, FilesystemStore):
        import shutil

        folders = {p["code"]: p["folder"] for p in store.read_dossier(ref)["parts"]}
        dossier = store.root / "dossiers" / ref.id[:2] / ref.id
        for f in (dossier / folders[next(c for c in folders if c != part)]).glob(f"{doc_id}*"):
            shutil.copy(f, dossier / folders[part] / f.name)
        return
    from adapters.dms.mayan import MayanStore, _ids

    assert isinstance(store, MayanStore)
    cabinet, _card = _ids(ref)
    store._add_to_cabinet(store._parts(cabinet)[part], int(doc_id))


def test_a_document_in_two_parts_places_opens_only_as_its_own_part_allows(store: DocumentStore,
                                                                         request: pytest.FixtureRequest) -> None:
    """A part-II report that staff also put in part I's place (a Mayan document can sit in
    several cabinets) is opened by nobody who has part I only, whichever part is applied last,
    and is listed once, under its own part."""
    from connector.model import DmsGrant
    suffix = os.urandom(3).hex()
    third, staff, group = f"derde-{suffix}", f"ib-{suffix}", f"zorg-{suffix}"
    server = _user(store, request, third)
    _user(store, request, staff, (group,))
    ref = store.create_dossier(spec(f"las:99XY:TWO{suffix}"))
    notes = store.add_document(ref, "II", "verslag_teambespreking", "teambespreking.pdf",
                               io.BytesIO(b"%PDF-1.4 t"), {})
    enrolment = store.add_document(ref, "I", "inschrijving", "inschrijving.pdf", io.BytesIO(b"%PDF-1.4 i"), {})
    _place_also(store, ref, notes.id, "I")
    listed = [d for d in store.documents(ref) if d.id == notes.id]
    assert [d.part for d in listed] == ["II"]
    part_one, part_two = (DmsGrant(principal=third, kind="user"),), (DmsGrant(principal=group, kind="group"),)
    for order in ((("II", part_two), ("I", part_one)), (("I", part_one), ("II", part_two))):
        for part, grants in order:
            store.set_access(ref, part, grants)
        assert _readable(store, ref, third, (), server) == {enrolment.id}
        assert _readable(store, ref, staff, (group,), server) == {notes.id}
    store.set_access(ref, "I", part_one)  # part II unchanged and not applied again: still closed
    assert _readable(store, ref, third, (), server) == {enrolment.id}
    if server is not None:  # Mayan: no cabinet of part II opens to part I (cabinet ACLs pass down)
        from adapters.dms.mayan import MayanStore, _ids

        assert isinstance(store, MayanStore)
        cabinet, _card = _ids(ref)
        cabinets = store._parts(cabinet)
        seen = server.visible_cabinets(third)
        assert cabinets["I"] in seen and cabinets["II"] not in seen and cabinet not in seen
        # and whoever may open a document reads its class, part and retention metadata
        assert server.metadata_seen(third, enrolment.id).get("ld_class") == "inschrijving"
        assert server.metadata_seen(third, notes.id) == {}


def test_a_destroy_interrupted_halfway_is_finished_by_its_retry(tmp_path: Path) -> None:
    """The filesystem store's destroy is two renames; a crash between them must not leave the
    content in the dossier while the retry reports the document gone."""
    store = filesystem_store(tmp_path / "dms")
    ref = store.create_dossier(spec())
    doc = store.add_document(ref, "II", "rapport", "r.pdf", io.BytesIO(b"%PDF-1.4 x"), {})
    meta = next((tmp_path / "dms" / "dossiers").glob(f"*/{ref.id}/*/{doc.id}.meta.json"))
    part = meta.parent
    # the state a crash under the earlier order left: metadata gone, content still there
    (tmp_path / "elsewhere").mkdir()
    meta.rename(tmp_path / "elsewhere" / meta.name)
    assert [p.name for p in part.iterdir()] == [f"{doc.id}.pdf"]
    store.destroy(doc)  # the journal's retry
    assert list(part.iterdir()) == []
    assert any((tmp_path / "dms" / "trash").rglob(f"{doc.id}.pdf"))


def test_filesystem_leftovers_of_killed_runs_are_swept_when_the_store_opens(tmp_path: Path) -> None:
    store = filesystem_store(tmp_path / "dms")
    store.find_dossier("las:99XY:none")  # opens (makes) the store
    tmp = tmp_path / "dms" / "tmp"
    old, young = tmp / "a.1", tmp / "b.2"
    for folder in (old, young):
        (folder / "I").mkdir(parents=True)
        (folder / "dossier.json").write_text("{}")
    (tmp / "lost-claim.3").write_bytes(b"")
    for path in (old, tmp / "lost-claim.3"):
        os.utime(path, (1, 1))
    filesystem_store(tmp_path / "dms").find_dossier("las:99XY:none")  # the next run opens it
    assert sorted(p.name for p in tmp.iterdir()) == ["b.2"]  # a live run's may be young
