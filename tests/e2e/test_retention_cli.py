"""Retention end to end through the CLI on the filesystem DMS: sync, documents, a pupil leaves,
time passes (--today), list, approve, execute, certificate, purge."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pypdf
from click.testing import CliRunner, Result

from connector.cli import main
from examples.synth import Synth, write
from tests.conftest import acting, add_users, write_config


def run(*args: str) -> Result:
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def js(*args: str) -> tuple[int, dict]:
    r = run(*args, "--json")
    return r.exit_code, json.loads(r.stdout)


def setup(tmp_path: Path, **sections: dict[str, object]) -> tuple[Path, Path]:
    export = write(tmp_path / "export.xml", Synth(pupils=30, duplicates=0, leavers=0.0))
    cfg = write_config(tmp_path, export, destruction={"output": "out", "max_per_run": 50}, **sections)
    add_users(cfg)
    assert js("sync", "--config", str(cfg))[0] == 0
    doc = tmp_path / "doc.pdf"
    doc.write_bytes(b"%PDF-1.4 test")
    for key, cls in [("LL000003", "rapport"), ("LL000003", "inschrijving"), ("LL000003", "vrijstelling_leerplicht"),
                     ("LL000003", "psychologisch_rapport"), ("LL000004", "rapport")]:
        code, out = js("document", "add", "--config", str(cfg), key, str(doc), "--class", cls)
        assert code == 0 and out["tags"]["tagged"] >= 1
    return cfg, export


def drop(export: Path, key: str) -> None:
    text = export.read_text(encoding="utf-8")
    export.write_text(re.sub(rf'<leerling key="{key}".*?</leerling>\n', "", text, flags=re.S), encoding="utf-8")


def test_schedule_show(tmp_path: Path) -> None:
    cfg = write_config(tmp_path, tmp_path / "x.xml")
    code, data = js("schedule", "show", "--config", str(cfg))
    assert code == 0 and data["schedule"] == "po"
    assert data["categories"]["dossier"]["period"] == "2y" and data["categories"]["archiefwet"]["blocked"]
    assert "rapport" in data["categories"]["dossier"]["classes"]
    human = run("schedule", "show", "--config", str(cfg))
    assert "Archiefwet" in human.stdout and "2y" in human.stdout


def test_policy_2010_schedule_in_force(tmp_path: Path) -> None:
    cfg = write_config(tmp_path, tmp_path / "x.xml", retention={"schedule": "policy-2010-primenius"})
    code, data = js("schedule", "show", "--config", str(cfg))
    assert code == 0 and data["categories"]["bekostiging"]["period"] == "8w"


def test_a_document_in_a_dossier_carries_its_tag(tmp_path: Path) -> None:
    _cfg, _ = setup(tmp_path)
    metas = [json.loads(p.read_text()) for p in (tmp_path / "dms").rglob("*.meta.json")]
    assert len(metas) == 5
    for m in metas:
        assert m["metadata"]["retention_due"] == "open"  # nobody has left: no clock
        assert m["metadata"]["retention_category"] in ("dossier", "administratie", "archiefwet")


def test_whole_destruction_flow(tmp_path: Path) -> None:
    cfg, export = setup(tmp_path, school={"names": {"99XY": "OBS De Proef"}})
    c = str(cfg)
    # a pupil present in the LAS cannot be made to leave by hand
    r = run("pupil", "left", "--config", c, "LL000003", "--date", "2023-07-01", *acting("maker"))
    assert r.exit_code == 1 and "LAS" in r.stderr
    drop(export, "LL000003")
    code, report = js("sync", "--config", c, "--accept-snapshot", "--by", "test")
    assert len(report["vanished"]) == 1
    assert js("destruction", "list", "create", "--config", c, "--today", "2026-11-24",
              *acting("maker"))[1]["items"] == 0
    code, out = js("pupil", "left", "--config", c, "LL000003", "--date", "2023-07-01", *acting("maker"))
    assert code == 0 and out["tags"]["tagged"] == 3  # the blocked one keeps its tag
    code, out = js("sync", "--config", c)
    assert out["vanished"] == []  # the departure is recorded: no longer reported as vanished

    # another pupil, whose documents would be due, is under a hold
    drop(export, "LL000004")
    js("sync", "--config", c)
    js("pupil", "left", "--config", c, "LL000004", "--date", "2023-07-01", *acting("maker"))
    code, hold = js("hold", "add", "--config", c, "LL000004", "--reason", "klacht ouders", *acting("approver"))
    assert code == 0

    code, created = js("destruction", "list", "create", "--config", c, "--today", "2026-11-24", *acting("maker"))
    assert code == 0 and created["items"] == 2  # rapport + psychologisch rapport of LL000003; not the held one
    list_id = str(created["list"])
    listed = pypdf.PdfReader(created["files"]["pdf"]).pages[0].extract_text()
    assert "Vernietigingslijst" in listed and "psychologisch_rapport" in listed
    assert "gesimuleerde datum" in listed  # an install for tests says so on everything it makes
    assert "OBS De Proef (99XY)" in listed  # the school by its name, not only its code

    assert run("destruction", "list", "execute", "--config", c, list_id,
               *acting("maker")).exit_code == 1  # not approved
    items = js("destruction", "list", "show", "--config", c, list_id)[1]["items"]
    psych = next(i["id"] for i in items if i["doc_class"] == "psychologisch_rapport")
    code, approved = js("destruction", "list", "approve", "--config", c, list_id, *acting("approver"),
                        "--role", "directeur", "--reject", f"{psych}=nog nodig voor bezwaarprocedure")
    assert code == 0 and approved["approved"] == 1 and approved["rejected"] == 1

    code, dry = js("destruction", "list", "execute", "--config", c, list_id, "--dry-run", "--today", "2026-11-24",
                   *acting("maker"))
    assert dry["would_destroy"] == 1 and dry["destroyed"] == 0
    code, done = js("destruction", "list", "execute", "--config", c, list_id, "--today", "2026-11-24", *acting("maker"))
    assert code == 0 and done["destroyed"] == 1
    cert = json.loads(Path(done["certificate"]["json"]).read_text())
    assert cert["counts"]["destroyed"] == 1 and cert["approved_by"] == "approver"
    assert cert["destroyed"][0]["class"] == "rapport" and "AP" in cert["destroyed"][0]["basis"]
    assert any(n["decision"] == "rejected" for n in cert["not_destroyed"])
    text = pypdf.PdfReader(done["certificate"]["pdf"]).pages[0].extract_text()
    assert "Verklaring van vernietiging" in text and "approver" in text and "Reikwijdte" in text
    assert "geen geldige verklaring" in text
    assert "back-ups" in text
    assert "OBS De Proef (99XY)" in text and cert["schools"] == {"99XY": "OBS De Proef (99XY)"}
    for value in ("Aalbers", "LL000003"):
        assert value not in json.dumps(cert) and value not in text

    # executing again destroys nothing more and leaves the certificate as it is
    written = Path(done["certificate"]["json"]).read_bytes()
    again = js("destruction", "list", "execute", "--config", c, list_id, "--today", "2026-11-24", *acting("maker"))[1]
    assert again["destroyed"] == 0 and again["certificate"]["unchanged"] == "yes"
    assert Path(done["certificate"]["json"]).read_bytes() == written
    # the trash is emptied only after the grace period
    assert js("destruction", "purge", "--config", c, "--today", "2026-11-25", *acting("maker"))[1]["purged"] == 0
    assert js("destruction", "purge", "--config", c, "--today", "2099-01-01", *acting("maker"))[1]["purged"] == 1
    assert not list((tmp_path / "dms" / "trash").glob("*/*/*"))

    # lifting the hold makes the other pupil's rapport listable; a rejection holds for its own list
    # only, so the rejected report is offered again (a hold is what protects for longer)
    run("hold", "remove", "--config", c, str(hold["hold"]), *acting("approver"), "--reason", "klacht afgehandeld")
    again = js("destruction", "list", "create", "--config", c, "--today", "2026-11-24", *acting("maker"))[1]
    shown = js("destruction", "list", "show", "--config", c, str(again["list"]))[1]["items"]
    assert sorted(i["doc_class"] for i in shown) == ["psychologisch_rapport", "rapport"]
    assert js("audit", "verify", "--config", c)[1]["ok"]
    status = js("status", "--config", c)[1]
    assert status["documents"]["destroyed"] == 1 and status["active_holds"] == 0
    assert status["destruction_lists"] == {"executed": 1, "empty": 1, "draft": 1}


def test_pupil_back_in_the_las_is_reenrolled_and_the_clock_stops(tmp_path: Path) -> None:
    cfg, export = setup(tmp_path)
    c = str(cfg)
    original = export.read_text(encoding="utf-8")
    drop(export, "LL000003")
    js("sync", "--config", c, "--accept-snapshot", "--by", "test")
    js("pupil", "left", "--config", c, "LL000003", "--date", "2023-07-01", *acting("maker"))
    export.write_text(original, encoding="utf-8")
    code, report = js("sync", "--config", c)
    assert code == 0 and report["tags"]["tagged"] == 3
    facts = js("pupil", "facts", "--config", c, "LL000003")[1]
    assert facts["clock_start"] is None and facts["facts"]["reenrolled"] is not None
    assert js("destruction", "list", "create", "--config", c, "--today", "2030-01-01",
              *acting("maker"))[1]["items"] == 0


def test_unknown_class_and_unknown_pupil_are_clear_errors(tmp_path: Path) -> None:
    cfg, _ = setup(tmp_path)
    doc = tmp_path / "doc.pdf"
    r = run("document", "add", "--config", str(cfg), "LL000001", str(doc), "--class", "nope")
    assert r.exit_code == 1 and "unknown class" in r.stderr
    r = run("document", "add", "--config", str(cfg), "NOBODY", str(doc), "--class", "rapport")
    assert r.exit_code == 1 and "no dossier" in r.stderr


def test_unclassified_documents_from_other_routes_are_reported(tmp_path: Path) -> None:
    cfg, _ = setup(tmp_path)
    part = next((tmp_path / "dms" / "dossiers").glob("*/*/II-onderwijskundig"))
    meta = {"id": "scan1", "part": "II", "class": None, "name": "scan-0001.pdf", "file": "scan1.pdf",
            "metadata": {"bron": "scanner"}}
    (part / "scan1.pdf").write_bytes(b"%PDF")
    (part / "scan1.meta.json").write_text(json.dumps(meta))
    meta2 = dict(meta, id="okr1", name="OKR groep 8.pdf", file="okr1.pdf")
    (part / "okr1.pdf").write_bytes(b"%PDF")
    (part / "okr1.meta.json").write_text(json.dumps(meta2))
    code, report = js("tags", "refresh", "--config", str(cfg))
    assert code == 0 and report["tagged"] == 2
    assert [u["document"] for u in report["unclassified"]] == ["scan1"]
    okr = json.loads((part / "okr1.meta.json").read_text())["metadata"]
    assert okr["retention_class"] == "onderwijskundig_rapport"
    scan = json.loads((part / "scan1.meta.json").read_text())["metadata"]
    assert scan["retention_category"] == "unclassified" and scan["retention_period"] == "5y"


def test_okr_sent_needs_evidence_that_parents_were_informed(tmp_path: Path) -> None:
    cfg, _ = setup(tmp_path)
    c = str(cfg)
    doc = tmp_path / "okr.pdf"
    doc.write_bytes(b"%PDF okr")
    js("document", "add", "--config", c, "LL000005", str(doc), "--class", "onderwijskundig_rapport")
    code, out = js("okr", "sent", "--config", c, "LL000005", "--date", "2026-07-01", "--to", "12AB", "--by", "IB")
    assert code == 0 and out["status"] == "incomplete" and out["parents_informed"] is False  # recorded: exit 0
    assert len(js("okr", "incomplete", "--config", c)[1]) == 1
    letter = tmp_path / "brief.pdf"
    letter.write_bytes(b"%PDF brief")
    js("document", "add", "--config", c, "LL000005", str(letter), "--class", "informatie_ouders_okr")
    assert js("okr", "incomplete", "--config", c)[1] == []
    code, out = js("okr", "sent", "--config", c, "LL000005", "--date", "2026-07-01", "--to", "12AB", "--by", "IB")
    assert code == 0 and out["status"] == "transferred"


def test_transfer_removes_at_source_only_through_an_approved_transfer_list(tmp_path: Path) -> None:
    cfg, export = setup(tmp_path, school={"name": "OBS De Proef"},
                        transfer={"destinations": {"archief": {"manifest": ["geboortedatum"]}}})
    c = str(cfg)
    dest = tmp_path / "to-new-school"
    # an enrolled pupil: everything is copied and verified, nothing may leave the source
    code, out = js("transfer", "--config", c, "LL000003", "--part", "II", "--to-folder", str(dest),
                   "--remove-at-source", *acting("maker"))
    assert code == 0 and out["copied"] == out["verified"] == 2 and out["removed"] == 0
    assert out["transfer_list"] is None and {k["reason"] for k in out["kept"]} == {"no departure recorded"}
    manifest = json.loads(next(dest.rglob("manifest.json")).read_text())
    assert {d["soort"] for d in manifest["documenten"]} == {"rapport", "psychologisch_rapport"}
    # the receiving school reads whose dossier it is: name, birth date, number, the sending school
    record = re.search(r'<leerling key="LL000003".*?</leerling>', export.read_text(encoding="utf-8"), re.S)
    assert record is not None
    pupil = manifest["leerling"]
    assert pupil["achternaam"] in record.group(0) and pupil["naam"].endswith(pupil["achternaam"])
    assert f"<geboortedatum>{pupil['geboortedatum']}</geboortedatum>" in record.group(0)
    assert f"<bsn>{pupil['persoonsgebonden_nummer']}</bsn>" in record.group(0) and pupil["soort_nummer"] == "bsn"
    assert manifest["verzendende_school"] == {"naam": "OBS De Proef", "code": "99XY"}
    # ... and the audit log says which fields went, never their values
    entry = [e for e in js("audit", "show", "--config", c, "--last", "0")[1]
             if e["action"] == "dossier.part.exported"][-1]
    assert entry["details"]["manifest"] == sorted(
        [f"leerling.{k}" for k in ("pseudoniem", "naam", "achternaam", "voorvoegsel", "voornamen", "geboortedatum",
                                   "persoonsgebonden_nummer", "soort_nummer")]
        + ["verzendende_school.naam", "verzendende_school.code"])
    assert pupil["achternaam"] not in json.dumps(entry)
    # a receiving party configured with fewer fields gets only those
    archive = tmp_path / "to-archive"
    assert js("transfer", "--config", c, "LL000004", "--part", "I", "--to-folder", str(archive),
              "--receiving", "archief", *acting("maker"))[0] == 0
    narrow = json.loads(next(archive.rglob("manifest.json")).read_text())
    assert set(narrow["leerling"]) == {"pseudoniem", "geboortedatum"} and narrow["ontvanger"] == "archief"
    assert "verzendende_school" not in narrow
    assert len(list((tmp_path / "dms" / "dossiers").rglob("II-onderwijskundig/*.meta.json"))) == 3

    # a pupil who left long ago: the verified copies go on a transfer list, removed once approved
    drop(export, "LL000003")
    js("sync", "--config", c, "--accept-snapshot", "--by", "test")
    js("pupil", "left", "--config", c, "LL000003", "--date", "2023-07-01", *acting("maker"))
    code, out = js("transfer", "--config", c, "LL000003", "--part", "II", "--to-folder", str(dest),
                   "--remove-at-source", *acting("maker"), "--today", "2026-11-24")
    assert code == 0 and out["listed"] == 2 and out["transfer_list"] is not None
    list_id = str(out["transfer_list"])
    # the LAS no longer holds the pupil: the manifest says so, and still carries the key and school
    gone = json.loads(next(dest.rglob("manifest.json")).read_text())
    assert "niet_gevonden" in gone["leerling"] and "naam" not in gone["leerling"]
    assert run("destruction", "list", "approve", "--config", c, list_id, *acting("maker")).exit_code == 1  # own list
    assert js("destruction", "list", "approve", "--config", c, list_id, *acting("approver"))[0] == 0
    code, done = js("destruction", "list", "execute", "--config", c, list_id, "--today", "2026-11-24",
                    *acting("maker"))
    assert code == 0 and done["destroyed"] == 2 and done["kind"] == "transfer"
    cert = json.loads(Path(done["certificate"]["json"]).read_text())
    assert cert["receiving"] == str(dest) and all(len(d["verified"]) == 64 for d in cert["destroyed"])
    assert cert["title"] == "Verklaring van overbrenging en verwijdering"
    assert len(list((tmp_path / "dms" / "dossiers").rglob("II-onderwijskundig/*.meta.json"))) == 1  # LL000004's
    # transferred documents are purged like any other, after the grace period
    assert js("destruction", "purge", "--config", c, "--today", "2099-01-01", *acting("maker"))[1]["purged"] == 2

    # a hold keeps the source even when asked to remove it
    js("hold", "add", "--config", c, "LL000004", "--reason", "geschil", *acting("approver"))
    code, out = js("transfer", "--config", c, "LL000004", "--part", "II", "--to-folder", str(dest),
                   "--remove-at-source", *acting("maker"))
    assert out["held"] and out["transfer_list"] is None and out["copied"] == 1
    assert js("audit", "verify", "--config", c)[1]["ok"]


def test_a_school_override_retags_from_the_state(tmp_path: Path) -> None:
    cfg, export = setup(tmp_path)
    c = str(cfg)
    drop(export, "LL000003")
    js("sync", "--config", c, "--accept-snapshot", "--by", "test")
    js("pupil", "left", "--config", c, "LL000003", "--date", "2023-07-01", *acting("maker"))
    override = '[overrides.dossier]\nperiod = "3y"\nbasis = "Schoolbeleid 2026 §2: 3 jaar"\n'
    (tmp_path / "school.toml").write_text(override)
    text = cfg.read_text() + '\n[retention]\nschedule = "retention-po"\noverrides = "school.toml"\n'
    cfg.write_text(text)
    shown = js("schedule", "show", "--config", c)[1]
    assert shown["categories"]["dossier"]["override"] == "Schoolbeleid 2026 §2: 3 jaar"
    code, out = js("tags", "refresh", "--config", c, "--from-state")
    assert code == 0 and out["tagged"] == 3  # every document of the category: period or basis changed
    metas = [json.loads(p.read_text())["metadata"] for p in (tmp_path / "dms").rglob("*.meta.json")]
    dues = sorted(m["retention_due"] for m in metas if m["retention_category"] == "dossier")
    assert dues == ["2026-07-01", "2026-07-01", "open"]
    assert js("tags", "refresh", "--config", c, "--from-state")[1]["tagged"] == 0


def test_transfer_to_another_dms_is_idempotent_and_verified(tmp_path: Path) -> None:
    cfg, _ = setup(tmp_path)
    c = str(cfg)
    other_dir = tmp_path / "other"
    other_dir.mkdir()
    other = write_config(other_dir, tmp_path / "unused.xml")  # its [dms] is a second filesystem store
    code, out = js("transfer", "--config", c, "LL000003", "--part", "II", "--to-config", str(other),
                   *acting("maker"))
    assert code == 0 and out["copied"] == out["verified"] == 2 and out["removed"] == 0
    # repeated (as after a lost answer): nothing is copied twice at the destination
    code, out = js("transfer", "--config", c, "LL000003", "--part", "II", "--to-config", str(other),
                   *acting("maker"))
    assert code == 0 and out["verified"] == 2
    copies = [json.loads(p.read_text()) for p in (other_dir / "dms").rglob("*.meta.json")]
    assert len(copies) == 2 and all(m["metadata"]["source_document"] for m in copies)
    assert len(list((other_dir / "dms" / "dossiers").glob("*/*"))) == 1
    r = run("transfer", "--config", c, "LL000003", "--part", "II", *acting("maker"))
    assert r.exit_code == 1 and "exactly one destination" in r.stderr



def test_square_brackets_in_what_people_wrote_are_printed_as_text(tmp_path: Path) -> None:
    """Console output is not markup: text with '[' is shown whole and never breaks the command
    (rich would drop '[besluit]' and fail on '[/]')."""
    cfg = write_config(tmp_path, tmp_path / "x.xml", retention={"overrides": "school.toml"})
    basis = "[besluit] MR 2026 [/] 3 jaar"
    (tmp_path / "school.toml").write_text(f'[overrides.dossier]\nperiod = "3y"\nbasis = "{basis}"\n')
    r = run("schedule", "show", "--config", str(cfg))
    assert r.exit_code == 0, r.output
    assert f"basis: {basis}" in r.output and f"school override: {basis}" in r.output


def test_audit_verify_finds_a_log_emptied_behind_the_list_and_certificate_files(tmp_path: Path) -> None:
    import sqlite3

    cfg, export = setup(tmp_path)
    c = str(cfg)
    drop(export, "LL000003")
    js("sync", "--config", c, "--accept-snapshot", "--by", "test")
    js("pupil", "left", "--config", c, "LL000003", "--date", "2020-07-01", *acting("maker"))
    made = js("destruction", "list", "create", "--config", c, *acting("maker"))[1]
    js("destruction", "list", "approve", "--config", c, str(made["list"]), *acting("approver"))
    assert js("destruction", "list", "execute", "--config", c, str(made["list"]), *acting("maker"))[1]["destroyed"]
    assert js("audit", "verify", "--config", c)[1]["ok"]
    # the state and its head file both emptied: the files in the output folder still tell
    with sqlite3.connect(tmp_path / "state.db") as conn:
        conn.execute("delete from audit")
        conn.execute("delete from audit_head")
        conn.execute("update destruction_lists set anchor_seq = null, certified_seq = null")
        conn.execute("delete from destruction_approvals")
    (tmp_path / "state.db.audit-head").unlink()
    code, result = js("audit", "verify", "--config", c)
    assert code == 1 and any("list file" in p for p in result["problems"])
    assert any("certificate file" in p for p in result["problems"])
