"""The filesystem store's own promises, beyond the conformance suite every store passes
(tests/contract/test_document_store.py): the durability barrier of a group, lost claims after a
power failure, index lookups, concurrent claims, temp files and the sweep of killed runs."""

from __future__ import annotations

import io
import os
from pathlib import Path

import pytest

from adapters.testing import dossier_spec as spec
from tests.conftest import filesystem_store


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
