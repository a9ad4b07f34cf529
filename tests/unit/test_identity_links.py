"""The ECK-iD finds a dossier when the LAS key changed, decides nothing when another record
goes to that dossier too, and is never kept itself."""

from __future__ import annotations

from datetime import date
from pathlib import Path

from tests.conftest import make_world, pupil

TODAY = date(2026, 11, 24)
ECKID = "https://ketenid.nl/201703/a1b2c3d4e5f60718"


def record(key: str, year: int, departed: bool = False, eckid: str | None = ECKID):  # type: ignore[no-untyped-def]
    fields: dict[str, object] = {"roepnaam": "Anna", "achternaam": "Jansen", "geboortedatum": date(2015, 3, 1),
                                 "jaargroep": str(year), "pgn": "123456782", "pgn_kind": "bsn"}
    if eckid:
        fields["eckid"] = eckid
    if departed:
        fields["uitstroomdatum"] = date(2026, 7, 1)
    return pupil(key, **fields)


def test_a_new_las_key_with_the_same_eckid_keeps_the_one_dossier(tmp_path: Path) -> None:
    w = make_world(tmp_path)
    assert w.sync([record("A", 3)], today=TODAY).dossiers_created == 1
    report = w.sync([record("B", 4)], today=TODAY, accept_snapshot=True)
    assert report.dossiers_created == 0 and report.dossiers_updated == 1 and report.suspected_duplicates == []
    assert report.linked == [{"record": w.identity.pseudonym_of("99XY", "B"),
                              "dossier": w.identity.pseudonym_of("99XY", "A"), "basis": "ECK-iD"}]
    ref = w.store.find_dossier("las:99XY:A")
    assert ref is not None and w.store.read_dossier(ref)["properties"]["jaargroep"] == "4"
    assert w.store.find_dossier("las:99XY:B") is None
    assert [e["action"] for e in w.audit.entries(None) if e["action"] == "identity.alias_found"] == \
        ["identity.alias_found"]
    again = w.sync([record("B", 4)], today=TODAY)
    assert again.dms_writes == 0 and again.linked == [] and again.vanished == []
    w.state.close()
    assert ECKID.encode() not in (tmp_path / "state.db").read_bytes()  # only its keyed hash is kept


def test_the_eckid_decides_nothing_while_the_old_key_is_still_in_the_export(tmp_path: Path) -> None:
    w = make_world(tmp_path)
    w.sync([record("A", 3)], today=TODAY)
    report = w.sync([record("A", 4, departed=True), record("B", 4)], today=TODAY, accept_snapshot=True)
    b = w.identity.pseudonym_of("99XY", "B")
    assert report.dossiers_created == 0 and report.linked == [] and report.held == [b]
    [suspicion] = report.suspected_duplicates
    assert "ECK-iD" in suspicion["basis"] and suspicion["held"]
    assert suspicion["dossier"] == w.identity.pseudonym_of("99XY", "A")
    assert w.store.find_dossier("las:99XY:B") is None


def test_without_an_eckid_a_new_key_is_held_not_followed(tmp_path: Path) -> None:
    w = make_world(tmp_path)
    w.sync([record("A", 3, eckid=None)], today=TODAY)
    report = w.sync([record("B", 4, eckid=None)], today=TODAY, accept_snapshot=True)
    assert report.dossiers_created == 0 and report.linked == []
    assert report.held == [w.identity.pseudonym_of("99XY", "B")]
