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

from connector.cli import main, open_app
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
