"""Leaks, each as it was found from outside: what a person records about a guardian is never
overwritten by a sync, exports hold only what may go out and do not stay, and every view of a
pupil's data leaves an audit entry."""

from __future__ import annotations

import io
import json
import os
import re
import stat
import zipfile
from datetime import date, timedelta
from pathlib import Path

from click.testing import CliRunner, Result

from connector.app import open_app
from connector.cli import main
from connector.model import DossierRef
from examples.synth import Synth, people, write_oso
from tests.conftest import acting, add_users, write_config

SYNTH = Synth(pupils=12, seed=4, duplicates=0, leavers=0.0)
ACCESS = '''
[access]
information_classes = ["rapport"]
export_days = 7

[access.roles]
leerkracht = ["I", "II"]
'''
VIEW = ("--by", "adm", "--reason", "test")


def run(*args: str) -> Result:
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def js(*args: str) -> tuple[int, dict]:
    r = run(*args, "--json")
    return r.exit_code, json.loads(r.stdout)


def school(tmp_path: Path) -> tuple[str, Path]:
    oso = write_oso(tmp_path / "oso", SYNTH)
    cfg = write_config(tmp_path, tmp_path / "unused.xml", las={"type": "oso", "path": str(oso)},
                       destruction={"output": "out"})
    cfg.write_text(cfg.read_text(encoding="utf-8") + ACCESS, encoding="utf-8")
    add_users(cfg)
    assert js("sync", "--config", str(cfg))[0] == 0
    return str(cfg), oso


def two_parents() -> object:
    return next(p for p in people(SYNTH) if len(p.guardians) == 2 and all(g.gezag for g in p.guardians))


def edit(oso: Path, key: str, old: str, new: str, count: int = 0) -> None:
    f = oso / f"{key}.xml"
    text = f.read_text(encoding="utf-8")
    assert old in text
    f.write_text(text.replace(old, new, count or -1), encoding="utf-8")


def guardians(c: str, key: str) -> list[dict]:
    code, out = js("guardian", "list", "--config", c, key, *VIEW)
    assert code == 0, out
    return out["guardians"]


def principals(c: str, key: str) -> set[str]:
    code, out = js("access", "show", "--config", c, key, *VIEW)
    assert code == 0, out
    return {e["principal"] for e in out["entries"]}


def test_a_death_recorded_by_a_person_survives_a_sync_that_changes_the_pupils_access_data(tmp_path: Path) -> None:
    c, oso = school(tmp_path)
    pupil = two_parents()
    gid = guardians(c, pupil.key)[0]["guardian"]
    assert f"guardian:{gid}" in principals(c, pupil.key)
    assert js("guardian", "set", "--config", c, pupil.key, gid, "--deceased", "--reason", "overlijdensbericht",
              "--by", "adm")[0] == 0
    assert f"guardian:{gid}" not in principals(c, pupil.key)
    # the LAS corrects the birth date (and does not know of the death): access data changed
    born = pupil.geboortedatum.isoformat()
    edit(oso, pupil.key, f"<geboortedatum>{born}</geboortedatum>",
         f"<geboortedatum>{(pupil.geboortedatum + timedelta(days=1)).isoformat()}</geboortedatum>")
    code, report = js("sync", "--config", c)
    assert code == 0 and report["access_changed"] == 1
    assert f"guardian:{gid}" not in principals(c, pupil.key)  # still dead: the sync wrote only the LAS's column
    me = next(g for g in guardians(c, pupil.key) if g["guardian"] == gid)
    assert me["deceased"] and me["deceased_recorded_by_person"] and "deceased" in me["disagreement"]
    assert any(d["guardian"] == gid for d in report["guardian_disagreements"])


def test_a_persons_old_authority_yes_gives_way_when_the_las_later_says_no_until_a_person_confirms(
        tmp_path: Path) -> None:
    c, oso = school(tmp_path)
    pupil = two_parents()
    first = pupil.guardians[0]  # the first in the OSO file, whose authority the LAS will withdraw
    assert first.relatie != pupil.guardians[1].relatie
    gid = next(g["guardian"] for g in guardians(c, pupil.key) if g["relation"] == first.relatie)
    assert js("guardian", "set", "--config", c, pupil.key, gid, "--authority", "yes", "--reason", "gezagsregister",
              "--by", "adm")[0] == 0
    # the LAS now says the first parent has no authority (a court order reached the administration)
    edit(oso, pupil.key, "<wettigevertegenwoordiger>true</wettigevertegenwoordiger>",
         "<wettigevertegenwoordiger>false</wettigevertegenwoordiger>", count=1)
    code, report = js("sync", "--config", c)
    assert code == 0
    me = next(g for g in guardians(c, pupil.key) if g["guardian"] == gid)
    assert me["authority"] == "no" and me["authority_las"] == "no" and me["authority_recorded_by_person"]
    assert [d["guardian"] for d in report["guardian_disagreements"]] == [gid]
    _, shown = js("access", "show", "--config", c, pupil.key, *VIEW)
    assert shown["disagreements"][0]["waits_for_a_person"]
    entries = {(e["principal"], e["right"]) for e in shown["entries"]}
    assert (f"guardian:{gid}", "inspect") not in entries  # the restrictive reading: information only
    _, completeness = js("report", "completeness", "--config", c)
    counts = next(iter(completeness["schools"].values()))["counts"]
    assert counts["guardian_disagreement"] == 1
    # a person checks again and confirms "yes" against the LAS's "no": theirs holds, no longer counted
    assert js("guardian", "set", "--config", c, pupil.key, gid, "--authority", "yes", "--reason",
              "gezagsregister opnieuw gezien", "--by", "adm")[0] == 0
    _, shown = js("access", "show", "--config", c, pupil.key, *VIEW)
    assert (f"guardian:{gid}", "inspect") in {(e["principal"], e["right"]) for e in shown["entries"]}
    assert not shown["disagreements"][0]["waits_for_a_person"]
    _, completeness = js("report", "completeness", "--config", c)
    assert next(iter(completeness["schools"].values()))["counts"]["guardian_disagreement"] == 0


def _dossier_with_documents(c: str, tmp_path: Path) -> tuple[object, str]:
    pupil = two_parents()
    doc = tmp_path / "doc.pdf"
    doc.write_bytes(b"%PDF-1.4 inhoud")
    for cls in ("rapport", "verslag_teambespreking"):
        assert js("document", "add", "--config", c, pupil.key, str(doc), "--class", cls)[0] == 0
    # staff put a scan about another pupil straight into the DMS: it has no class
    app = open_app(Path(c), setup_logging=False)
    try:
        row = app.dossier(pupil.key)
        with app.open_store() as store:
            store.add_document(DossierRef(id=row.ref_id or "", external_id=row.external_id), "I", None,
                               "scan over Ruben en Yara.pdf", io.BytesIO(b"%PDF-1.4 anders"), {})
    finally:
        app.state.engine.dispose()
    gid = next(g["guardian"] for g in guardians(c, pupil.key) if g["authority"] == "yes")
    return pupil, gid


def test_an_export_withholds_unclassified_documents_and_names_withheld_ones_only_by_class_and_date(
        tmp_path: Path) -> None:
    c, _ = school(tmp_path)
    pupil, gid = _dossier_with_documents(c, tmp_path)
    code, out = js("export", "--config", c, pupil.key, "--for", "inspection", "--requester", gid,
                   "--to", str(tmp_path / "out"), "--by", "adm")
    assert code == 0 and out["documents"] == 1
    assert sorted(w["reason"] for w in out["withheld"]) == ["other people's data", "unclassified"]
    z = zipfile.ZipFile(out["file"])
    assert [n for n in z.namelist() if "/" in n and n.split("/")[1] != "rapport"] == []
    index = z.read("index.json").decode()
    page = z.read("index.html").decode()
    for text in (index, page):
        assert "Ruben" not in text and "teambespreking" not in text.replace("verslag_teambespreking", "")
        assert "eerst door een persoon te classificeren" in text
    withheld = [e for e in json.loads(index)["documenten"] if "niet_bijgevoegd" in e]
    assert all(set(e) == {"deel", "soort", "datum", "niet_bijgevoegd"} for e in withheld)
    assert {e["datum"] for e in withheld} == {date.today().isoformat()}


def test_export_request_must_be_an_open_inspection_request_about_the_same_pupil(tmp_path: Path) -> None:
    c, _ = school(tmp_path)
    pupil, gid = _dossier_with_documents(c, tmp_path)
    other = next(p for p in people(SYNTH) if p.key != pupil.key)
    _, theirs = js("request", "open", "--config", c, other.key, "--kind", "inspection", "--requester", "moeder",
                   *acting("admin"))
    _, correction = js("request", "open", "--config", c, pupil.key, "--kind", "correction", "--requester", gid,
                       *acting("admin"))
    args = ("export", "--config", c, pupil.key, "--for", "copy", "--requester", gid, "--to", str(tmp_path / "o"),
            "--by", "adm")
    for request, why in ((theirs["request"], "not a request about"), (correction["request"], "correction request"),
                         (999, "no such request")):
        r = run(*args, "--request", str(request))
        assert r.exit_code == 1 and why in r.stderr and not (tmp_path / "o").exists()
    # an open correction request is named in the export and its index
    code, out = js(*args)
    assert code == 0 and out["open_corrections"] == [correction["request"]]
    index = json.loads(zipfile.ZipFile(out["file"]).read("index.json"))
    assert "verzoek tot correctie" in index["mededelingen"][0]
    assert "verzoek tot correctie" in zipfile.ZipFile(out["file"]).read("index.html").decode()


def test_exports_are_private_and_removed_after_export_days_with_an_audit_entry(tmp_path: Path) -> None:
    c, _ = school(tmp_path)
    pupil, gid = _dossier_with_documents(c, tmp_path)
    old = os.umask(0o022)
    try:
        code, out = js("export", "--config", c, pupil.key, "--for", "copy", "--requester", gid,
                       "--to", str(tmp_path / "out"), "--by", "adm")
    finally:
        os.umask(old)
    assert code == 0
    path = Path(out["file"])
    assert stat.S_IMODE(path.stat().st_mode) == 0o600 and stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    app = open_app(Path(c), setup_logging=False)
    try:
        from connector import inspection
        assert inspection.remove_expired(app.state, app.audit, date.today() + timedelta(days=6), "test") == []
        assert path.exists()
        gone = inspection.remove_expired(app.state, app.audit, date.today() + timedelta(days=7), "test")
        assert gone == [app.dossier(pupil.key).pseudonym] and not path.exists()
        assert inspection.remove_expired(app.state, app.audit, date.today() + timedelta(days=8), "test") == []
    finally:
        app.state.engine.dispose()
    actions = [e["action"] for e in js("audit", "show", "--config", c, "--last", "5")[1]]
    assert "export.removed" in actions


def test_viewing_a_pupils_data_leaves_an_audit_entry_who_whose_what_why(tmp_path: Path) -> None:
    c, _ = school(tmp_path)
    pupil = two_parents()
    assert run("access", "show", "--config", c, pupil.key).exit_code == 2  # who and why are required
    assert run("guardian", "list", "--config", c, pupil.key, "--names").exit_code == 2
    assert run("audit", "show", "--config", c, pupil.key).exit_code == 2
    run("access", "show", "--config", c, pupil.key, "--by", "ib", "--reason", "vraag ouder")
    run("guardian", "list", "--config", c, pupil.key, "--names", "--by", "adm", "--reason", "account koppelen")
    run("audit", "show", "--config", c, pupil.key, "--by", "fg", "--reason", "inzageverzoek 3")
    views = [e for e in js("audit", "show", "--config", c, "--last", "0")[1] if e["action"] == "dossier.viewed"]
    assert [(e["actor"], e["details"]["what"], e["details"]["reason"]) for e in views] == [
        ("ib", "access list", "vraag ouder"), ("adm", "guardians with names", "account koppelen"),
        ("fg", "history", "inzageverzoek 3")]
    assert {e["subject"] for e in views} == {views[0]["subject"]} and re.match(r"p-", views[0]["subject"])


# -- identifiers in the DMS ---------------------------------------------------------------------
def _numbers(export: Path) -> set[str]:
    text = export.read_text(encoding="utf-8")
    return set(re.findall(r"<bsn>(\d+)<", text)) | set(re.findall(r'eckid="([^"]+)"', text))


def test_no_bsn_onderwijsnummer_or_eckid_reaches_any_file_of_the_dms(tmp_path: Path) -> None:
    from examples.synth import write

    export = write(tmp_path / "export.xml", Synth(pupils=20, seed=5, duplicates=0, leavers=0.0))
    numbers = _numbers(export)
    assert len(numbers) == 40
    for key in ("onderwijsnummer", "eckid"):
        folder = tmp_path / key
        folder.mkdir()
        cfg = write_config(folder, export, identity={"key": key})
        code, report = js("sync", "--config", str(cfg))
        assert code == 0 and report["dossiers_created"] == 20
        for f in (folder / "dms").rglob("*"):
            text = f.name + (f.read_text(encoding="utf-8", errors="replace") if f.is_file() else "")
            assert not any(n in text for n in numbers), f
        assert "salt" not in (folder / "dms" / "store.json").read_text(encoding="utf-8")


def test_two_records_sharing_the_dossier_key_are_rejected_and_reported_never_an_abort(tmp_path: Path) -> None:
    from examples.synth import write

    export = write(tmp_path / "export.xml", Synth(pupils=10, seed=4, duplicates=1, leavers=0.0))
    cfg = write_config(tmp_path, export, identity={"key": "onderwijsnummer"})
    code, report = js("sync", "--config", str(cfg))
    assert code == 0 and report["dossiers_created"] == 8
    shared = [r for r in report["rejected"] if r["field"] == "dossier key"]
    assert len(shared) == 2 and all(r["record"].startswith("p-") for r in shared)
    assert js("sync", "--config", str(cfg))[1]["dms_writes"] == 0  # and again: nothing half-done


def _spec(external_id: str) -> object:
    from connector.model import DossierSpec, PartSpec

    return DossierSpec(external_id=external_id, school="99XY", title="t", pseudonym="p-1", properties={},
                       parts=(PartSpec(code="I", name="Deel I", folder="I", classes=()),))


def test_the_filesystem_index_is_keyed_from_the_install_secret_and_refuses_another(tmp_path: Path) -> None:
    from connector.errors import PermanentError
    from tests.conftest import filesystem_store

    spec = _spec("pgn:123456782")
    store = filesystem_store(tmp_path / "dms", b"a" * 32)
    ref = store.create_dossier(spec)
    assert filesystem_store(tmp_path / "dms", b"a" * 32).find_dossier(spec.external_id) == ref
    other = filesystem_store(tmp_path / "dms", b"b" * 32)
    try:
        other.find_dossier(spec.external_id)
        raise AssertionError("a store opened with another install's key must be refused")
    except PermanentError as exc:
        assert "another install secret" in str(exc)


def _as_format_1(root: Path, external_ids: list[str]) -> None:
    """Turn a store into what the previous version wrote: a salt in store.json, the index keyed
    with it, the external id in each dossier.json."""
    import hashlib
    import hmac
    import shutil

    salt = os.urandom(16)
    (root / "store.json").write_text(json.dumps({"format": 1, "salt": salt.hex()}), encoding="utf-8")
    ids = {}
    for entry in (root / "index").glob("*/*"):
        ids[entry.name] = entry.read_text(encoding="ascii")
    shutil.rmtree(root / "index")
    for meta in (root / "dossiers").glob("*/*/dossier.json"):
        doc = json.loads(meta.read_text(encoding="utf-8"))
        external_id = next(e for e in external_ids if ids.get(_digest_v2(e)) == meta.parent.name)
        doc.pop("key")
        doc["external_id"] = external_id
        meta.write_text(json.dumps(doc), encoding="utf-8")
        digest = hmac.new(salt, external_id.encode(), hashlib.sha256).hexdigest()
        (root / "index" / digest[:2]).mkdir(parents=True, exist_ok=True)
        (root / "index" / digest[:2] / digest).write_text(meta.parent.name, encoding="ascii")


def _digest_v2(external_id: str, index_key: bytes = b"a" * 32) -> str:
    import hashlib
    import hmac

    key = hmac.new(index_key, b"leerdossier/filesystem-index", hashlib.sha256).digest()
    return hmac.new(key, external_id.encode(), hashlib.sha256).hexdigest()


def test_a_store_of_the_previous_format_is_converted_even_when_interrupted(tmp_path: Path) -> None:
    import pytest

    from adapters.dms.filesystem import FilesystemStore
    from connector.errors import PermanentError
    from tests.conftest import filesystem_store

    root = tmp_path / "dms"
    eids = [f"pgn:{n}" for n in ("123456782", "111222333", "999888777")]
    store = filesystem_store(root, b"a" * 32)
    refs = {e: store.create_dossier(_spec(e)) for e in eids}
    _as_format_1(root, eids)
    assert "pgn:123456782" in (root / "dossiers").joinpath(refs[eids[0]].id[:2], refs[eids[0]].id,
                                                          "dossier.json").read_text(encoding="utf-8")
    real_rename = os.rename

    def dies_between_the_renames(a: object, b: object) -> None:
        if str(a).endswith("index.new"):
            raise OSError()
        real_rename(a, b)  # type: ignore[arg-type]

    with pytest.MonkeyPatch.context() as mp:  # the old index is set aside, the new one not yet in place
        mp.setattr(os, "rename", dies_between_the_renames)
        with pytest.raises(PermanentError, match="open store"):
            filesystem_store(root, b"a" * 32).find_dossier(eids[0])
    assert not (root / "index").exists() and (root / "index.old").exists()
    with pytest.MonkeyPatch.context() as mp:  # the conversion dies after the new index took over
        mp.setattr(FilesystemStore, "_finish_conversion", lambda self, key: (_ for _ in ()).throw(OSError()))
        with pytest.raises(PermanentError, match="open store"):
            filesystem_store(root, b"a" * 32).find_dossier(eids[0])
    again = filesystem_store(root, b"a" * 32)
    assert {e: again.find_dossier(e) for e in eids} == refs and again.dossier_count() == 3
    assert not (root / "index.old").exists()
    for f in root.rglob("*"):
        assert not f.is_file() or "pgn:" not in f.read_text(encoding="utf-8", errors="replace")
    assert "salt" not in (root / "store.json").read_text(encoding="utf-8")


def test_index_temp_files_after_a_full_disk_are_not_counted_as_dossiers(tmp_path: Path) -> None:
    import errno

    import pytest

    from connector.errors import TransientError
    from tests.conftest import filesystem_store

    store = filesystem_store(tmp_path / "dms")
    store.create_dossier(_spec("las:1"))

    def full(_fd: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(os, "fsync", full)
        with pytest.raises(TransientError):
            store.create_dossier(_spec("las:2"))
    assert not [p for p in (tmp_path / "dms" / "index").rglob("*.tmp")]  # the failed write cleaned up
    leftover = next((tmp_path / "dms" / "index").glob("*/*")).parent / ".abc.0123.tmp"
    leftover.write_bytes(b"")  # one a killed process left behind
    assert store.dossier_count() == 1
