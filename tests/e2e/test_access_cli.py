"""Access end to end through the CLI: guardians from an OSO source and by hand, the computed
access list before and after the 16th birthday, a pupil's consent, third-party grants, and
requests with their deadlines and the hold they place on every destroy path."""

from __future__ import annotations

import json
import re
from datetime import date, timedelta
from pathlib import Path

from click.testing import CliRunner, Result

from connector.access import adult_from
from connector.cli import main
from examples.synth import Synth, people, write, write_oso
from tests.conftest import acting, add_users, write_config

SYNTH = Synth(pupils=12, seed=4, duplicates=0, leavers=0.0)
ACCESS = '''
[access]
information_classes = ["rapport"]

[access.roles]
leerkracht = ["I", "II"]
administratie = ["I"]
'''

VIEW = ("--by", "adm", "--reason", "test")  # who looks at a pupil's data, and why (audited)


def run(*args: str) -> Result:
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def js(*args: str) -> tuple[int, dict]:
    r = run(*args, "--json")
    return r.exit_code, json.loads(r.stdout)


def config(tmp_path: Path, las: dict[str, object]) -> str:
    cfg = write_config(tmp_path, tmp_path / "unused.xml", las=las, destruction={"output": "out"})
    cfg.write_text(cfg.read_text(encoding="utf-8") + ACCESS, encoding="utf-8")
    add_users(cfg)
    return str(cfg)


def principals(c: str, key: str, on: date) -> dict[str, set[str]]:
    code, out = js("access", "show", "--config", c, key, "--on", on.isoformat(), *VIEW)
    assert code == 0, out
    found: dict[str, set[str]] = {}
    for e in out["entries"]:
        found.setdefault(e["principal"], set()).add(f"{e['part']}:{e['right']}")
    return found


def test_guardians_from_oso_and_the_16th_birthday(tmp_path: Path) -> None:
    c = config(tmp_path, {"type": "oso", "path": str(write_oso(tmp_path / "oso", SYNTH))})
    code, report = js("sync", "--config", c)
    assert code == 0 and report["access_changed"] == SYNTH.pupils
    pupil = next(p for p in people(SYNTH) if len(p.guardians) == 2 and all(g.gezag for g in p.guardians))
    code, listed = js("guardian", "list", "--config", c, pupil.key, *VIEW)
    assert code == 0 and len(listed["guardians"]) == 2 and "name" not in listed["guardians"][0]
    assert {g["authority"] for g in listed["guardians"]} == {"yes"}
    gids = [g["guardian"] for g in listed["guardians"]]

    sixteen = adult_from(pupil.geboortedatum, 16)
    before = principals(c, pupil.key, sixteen - timedelta(days=1))
    assert before[f"guardian:{gids[0]}"] == {"I:inspect", "II:inspect"} and "pupil" not in before
    assert before["role:administratie"] == {"I:staff"} and before["role:leerkracht"] == {"I:staff", "II:staff"}
    after = principals(c, pupil.key, sixteen)
    assert not any(p.startswith("guardian:") for p in after) and after["pupil"] == {"I:inspect", "II:inspect"}

    # the pupil consents that one parent keeps seeing part II
    code, _ = js("grant", "add", "--config", c, pupil.key, "--kind", "parent-after-16", "--to", gids[0],
                 "--parts", "II", "--basis", "consent", "--from", sixteen.isoformat(),
                 "--until", (sixteen + timedelta(days=365)).isoformat(), "--reason", "verzoek leerling", "--by", "IB")
    assert code == 0
    consented = principals(c, pupil.key, sixteen)
    assert consented[f"guardian:{gids[0]}"] == {"II:inspect"} and f"guardian:{gids[1]}" not in consented

    # a second sync of the same OSO files changes no access facts
    assert js("sync", "--config", c)[1]["access_changed"] == 0


def test_guardians_recorded_by_hand_and_third_parties(tmp_path: Path) -> None:
    c = config(tmp_path, {"type": "edexml", "path": str(write(tmp_path / "export.xml", SYNTH))})
    assert js("sync", "--config", c)[0] == 0
    key = next(people(SYNTH)).key
    today = date(2026, 11, 24)
    assert not any(p.startswith("guardian:") for p in principals(c, key, today))
    code, added = js("guardian", "add", "--config", c, key, "--name", "J. Jansen", "--relation", "2",
                     "--authority", "unknown", "--by", "adm")
    gid = added["guardian"]
    _, out = js("access", "show", "--config", c, key, "--on", today.isoformat(), *VIEW)
    assert any("authority unknown" in n for n in out["notes"]) and f"guardian:{gid}" not in principals(c, key, today)
    assert js("guardian", "set", "--config", c, key, gid, "--authority", "no", "--reason", "gezagsregister",
              "--by", "adm")[0] == 0
    assert principals(c, key, today)[f"guardian:{gid}"] == {"I:information", "II:information"}
    code, grant = js("grant", "add", "--config", c, key, "--kind", "third-party", "--to", "inspectie",
                     "--parts", "II", "--basis", "legal-duty", "--until", "2026-12-31", "--from", "2026-11-01",
                     "--reason", "onderzoek Inspectie", "--by", "directeur")
    assert code == 0
    assert principals(c, key, today)["third_party:inspectie"] == {"II:inspect"}
    assert "third_party:inspectie" not in principals(c, key, date(2027, 1, 1))
    assert js("grant", "revoke", "--config", c, str(grant["grant"]), "--reason", "klaar", "--by", "directeur")[0] == 0
    assert "third_party:inspectie" not in principals(c, key, date.today() + timedelta(days=1))
    named = run("guardian", "list", "--config", c, key, "--names", *VIEW)
    assert "J. Jansen" in named.stdout
    assert "J. Jansen" not in json.dumps(js("audit", "show", "--config", c)[1])  # names never in the audit log


def test_a_request_holds_the_dossier_until_it_is_closed(tmp_path: Path) -> None:
    export = write(tmp_path / "export.xml", SYNTH)
    c = config(tmp_path, {"type": "edexml", "path": str(export)})
    assert js("sync", "--config", c)[0] == 0
    key = next(people(SYNTH)).key
    doc = tmp_path / "doc.pdf"
    doc.write_bytes(b"%PDF-1.4 test")
    assert js("document", "add", "--config", c, key, str(doc), "--class", "rapport")[0] == 0
    text = export.read_text(encoding="utf-8")
    export.write_text(re.sub(rf'<leerling key="{key}".*?</leerling>\n', "", text, flags=re.S), encoding="utf-8")
    js("sync", "--config", c, "--accept-snapshot", "--by", "test")
    assert js("pupil", "left", "--config", c, key, "--date", "2020-07-01", *acting("admin"))[0] == 0

    code, opened = js("request", "open", "--config", c, key, "--kind", "inspection", "--requester", "moeder",
                      "--received", (date.today() - timedelta(days=29)).isoformat(), *acting("admin"))
    assert code == 0 and opened["hold"]
    code, listed = js("request", "list", "--config", c)
    assert listed["requests"][0]["state"] == "due soon"  # four weeks old
    status = json.loads(run("status", "--config", c, "--json").stdout)
    assert status["requests_open"] == 1 and status["requests_attention"][0]["state"] == "due soon"
    assert js("destruction", "list", "create", "--config", c, "--today", "2026-11-24",
              *acting("maker"))[1]["items"] == 0
    code, ext = js("request", "extend", "--config", c, str(opened["request"]), "--reason", "omvangrijk",
                   *acting("admin"))
    assert code == 0 and ext["due"] > opened["due"]
    assert run("request", "extend", "--config", c, str(opened["request"]), "--reason", "x", *acting("admin")).exit_code
    assert js("request", "close", "--config", c, str(opened["request"]), "--outcome", "granted",
              *acting("admin"))[0] == 0
    assert js("destruction", "list", "create", "--config", c, "--today", "2026-11-24",
              *acting("maker"))[1]["items"] == 1
    code, audit = js("audit", "show", "--config", c)
    actions = {e["action"] for e in audit}
    assert {"request.opened", "request.extended", "request.closed"} <= actions
    code, history = js("audit", "show", "--config", c, key, *VIEW)
    opened_entry = next(e for e in history["entries"] if e["event"] == "request.opened")
    assert opened_entry["acting_for"] == "moeder" and opened_entry["user"] == "admin"
    assert {"event", "time", "subject", "user", "acting_for", "reason"} <= set(opened_entry)
    assert all(e["subject"] == history["record"] for e in history["entries"])


def test_access_is_applied_in_the_dms_and_follows_the_16th_birthday(tmp_path: Path) -> None:
    from adapters.dms.filesystem import FilesystemSettings, FilesystemStore
    from connector.model import DocumentRef, DossierRef
    from connector.state import StateStore

    c = config(tmp_path, {"type": "oso", "path": str(write_oso(tmp_path / "oso", SYNTH))})
    code, report = js("sync", "--config", c)
    assert code == 0 and report["access"]["dossiers"] == SYNTH.pupils
    pupil = next(p for p in people(SYNTH) if any(g.gezag for g in p.guardians))
    doc = tmp_path / "rapport.pdf"
    doc.write_bytes(b"%PDF-1.4 rapport")
    for cls in ("rapport", "inschrijving"):
        assert js("document", "add", "--config", c, pupil.key, str(doc), "--class", cls)[0] == 0
    gid = next(g["guardian"] for g in js("guardian", "list", "--config", c, pupil.key, *VIEW)[1]["guardians"]
               if g["authority"] == "yes")
    code, linked = js("guardian", "set", "--config", c, pupil.key, gid, "--account", "ouder1", "--reason",
                      "account aangemaakt", "--by", "adm")
    assert code == 0 and linked["access"]["parts_changed"] >= 1

    state = StateStore(f"sqlite:///{tmp_path / 'state.db'}")
    row = next(r for r in state.dossier_rows() if r.external_id.endswith(pupil.key))
    store = FilesystemStore(FilesystemSettings(root=tmp_path / "dms"))
    ref = DossierRef(id=row.ref_id or "", external_id=row.external_id)
    docs: list[DocumentRef] = list(store.documents(ref))
    assert {d.part for d in docs} == {"I", "II"}
    access = store.access(ref)
    assert {g.principal for g in access["I"] if g.kind == "group"} == {"leerkracht", "administratie"}
    assert {g.principal for g in access["II"] if g.kind == "group"} == {"leerkracht"}
    sixteen = adult_from(pupil.geboortedatum, 16)
    if sixteen > date.today():
        assert all(store.may_read(d, "ouder1") for d in docs)
        assert not any(store.may_read(d, "someone-else") for d in docs)
        assert store.read_as(docs[0], "ouder1")
    # the day the pupil turns 16, the daily apply takes the parent's access away (and audits it)
    code, applied = js("access", "apply", "--config", c, "--today", sixteen.isoformat())
    assert code == 0 and applied["parts_changed"] == 2  # found by its 16th birthday alone
    assert not any(store.may_read(d, "ouder1") for d in docs)
    assert js("access", "apply", "--config", c, "--today", sixteen.isoformat())[1]["parts_changed"] == 0
    assert all(store.may_read(d, "x", ("leerkracht",)) for d in docs)
    history = js("audit", "show", "--config", c, pupil.key, *VIEW)[1]["entries"]
    revoked = [h for h in history if h["event"] == "access.applied" and f"guardian:{gid}" in h["details"]["revoked"]]
    assert revoked and "ouder1" not in json.dumps(history)  # accounts never in the audit log
    state.close()


def test_the_completeness_report_lists_what_a_school_can_act_on(tmp_path: Path) -> None:
    synth = Synth(pupils=12, seed=4, duplicates=1, leavers=0.0)
    export = write(tmp_path / "export.xml", synth)
    c = config(tmp_path, {"type": "edexml", "path": str(export)})
    assert js("sync", "--config", c)[0] == 0
    ps = list(people(synth))
    with_dossier = [p.key for p in ps if run("access", "show", "--config", c, p.key, *VIEW).exit_code == 0]
    assert len(with_dossier) == len(ps) - 2  # the suspected pair is held
    leaver, okr_pupil, gone, asked = with_dossier[:4]
    text = export.read_text(encoding="utf-8")
    for key in (leaver, gone):
        text = re.sub(rf'<leerling key="{key}".*?</leerling>\n', "", text, flags=re.S)
    export.write_text(text, encoding="utf-8")
    js("sync", "--config", c, "--accept-snapshot", "--by", "test")
    js("pupil", "left", "--config", c, leaver, "--date", "2026-07-01", *acting("admin"))
    js("okr", "sent", "--config", c, okr_pupil, "--date", "2026-07-01", "--to", "99AB", "--by", "adm")
    js("request", "open", "--config", c, asked, "--kind", "copy", "--requester", "vader",
       "--received", (date.today() - timedelta(days=30)).isoformat(), *acting("admin"))
    js("guardian", "add", "--config", c, asked, "--name", "P. Pieters", "--authority", "unknown", "--by", "adm")
    added = js("guardian", "add", "--config", c, with_dossier[4], "--name", "Q. Quist", "--authority", "yes",
               "--by", "adm")[1]
    assert added["access"]["missing_accounts"] == 1  # applied at once; the right waits for an account

    code, out = js("report", "completeness", "--config", c, "--html", str(tmp_path / "report.html"))
    assert code == 0
    school = out["schools"][synth.brin]
    counts = school["counts"]
    assert counts["leaver_without_okr"] == 1 and counts["okr_without_parents_informed"] == 1
    assert counts["vanished"] == 1 and counts["request_due"] == 1 and counts["authority_unknown"] == 1
    assert counts["right_without_account"] == 1
    assert counts["suspected_duplicate"] == 1 and counts["pupil_without_dossier"] == 2  # the held pair
    records = {(i["check"], i["record"]) for i in school["items"]}
    assert all(r.startswith("p-") for _, r in records if "/" not in r)
    page = (tmp_path / "report.html").read_text(encoding="utf-8")
    assert "Volledigheid" in page and "P. Pieters" not in page
    for p in ps:
        assert p.achternaam not in json.dumps(out) and p.bsn not in json.dumps(out)


def test_an_export_for_inspection_holds_exactly_what_the_requester_may_see(tmp_path: Path) -> None:
    import zipfile

    synth = Synth(pupils=40, seed=4, duplicates=0, leavers=0.0)
    c = config(tmp_path, {"type": "oso", "path": str(write_oso(tmp_path / "oso", synth))})
    assert js("sync", "--config", c)[0] == 0
    pupil = next(p for p in people(synth) if any(g.gezag for g in p.guardians)
                 and any(not g.gezag for g in p.guardians))
    doc = tmp_path / "doc.pdf"
    doc.write_bytes(b"%PDF-1.4 inhoud")
    for cls in ("rapport", "inschrijving", "verslag_teambespreking", "toetsuitslagen"):
        assert js("document", "add", "--config", c, pupil.key, str(doc), "--class", cls)[0] == 0
    gs = js("guardian", "list", "--config", c, pupil.key, *VIEW)[1]["guardians"]
    with_authority = next(g["guardian"] for g in gs if g["authority"] == "yes")
    without = next(g["guardian"] for g in gs if g["authority"] == "no")

    code, full = js("export", "--config", c, pupil.key, "--for", "inspection", "--requester", with_authority,
                    "--to", str(tmp_path / "out"), "--by", "adm")
    assert code == 0 and full["documents"] == 3 and len(full["withheld"]) == 1  # the team discussion
    names = zipfile.ZipFile(full["file"]).namelist()
    assert {"index.json", "index.html"} <= set(names)
    assert {n.split("/")[1] for n in names if "/" in n} == {"rapport", "inschrijving", "toetsuitslagen"}
    index = json.loads(zipfile.ZipFile(full["file"]).read("index.json"))
    assert any(e.get("niet_bijgevoegd") for e in index["documenten"])
    # the copy names the child for the parent who asked (the LAS's name, birth date and school)
    born = pupil.geboortedatum
    assert index["leerling"]["naam"].endswith(pupil.achternaam) and index["leerling"]["geboortedatum"] == str(born)
    page = zipfile.ZipFile(full["file"]).read("index.html").decode()
    assert pupil.achternaam in page and born.strftime("%d-%m-%Y") in page

    code, info = js("export", "--config", c, pupil.key, "--for", "copy", "--requester", without,
                    "--to", str(tmp_path / "out2"), "--by", "adm")
    assert code == 0 and info["documents"] == 1  # information: the report only
    refused = run("export", "--config", c, pupil.key, "--for", "copy", "--requester", "g-nobody", "--by", "adm")
    assert refused.exit_code == 1 and "no right" in refused.stderr
    history = js("audit", "show", "--config", c, pupil.key, *VIEW)[1]["entries"]
    exported = [h for h in history if h["event"] == "dossier.exported"]
    assert [h["acting_for"] for h in exported] == [with_authority, without]


def test_a_refused_correction_keeps_the_parents_view_in_the_dossier(tmp_path: Path) -> None:
    c = config(tmp_path, {"type": "edexml", "path": str(write(tmp_path / "export.xml", SYNTH))})
    assert js("sync", "--config", c)[0] == 0
    key = next(people(SYNTH)).key
    code, opened = js("request", "open", "--config", c, key, "--kind", "correction", "--requester", "moeder",
                      *acting("admin"))
    view = tmp_path / "zienswijze.pdf"
    view.write_bytes(b"%PDF-1.4 wij zijn het oneens")
    code, closed = js("request", "close", "--config", c, str(opened["request"]), "--outcome", "refused",
                      "--comment", str(view), *acting("approver"))
    assert code == 0 and closed["outcome"] == "refused"
    history = js("audit", "show", "--config", c, key, *VIEW)[1]["entries"]
    added = [h for h in history if h["event"] == "document.added"]
    assert added and added[-1]["details"]["class"] == "zienswijze_ouders"
    assert added[-1]["details"]["request"] == opened["request"]


def test_after_departure_only_the_administration_keeps_part_I(tmp_path: Path) -> None:
    """A pupil who left: from the departure date on, the daily apply leaves the administration
    part I only (the default [access.roles_after_departure]); the teacher keeps nothing."""
    from adapters.dms.filesystem import FilesystemSettings, FilesystemStore
    from connector.model import DossierRef
    from connector.state import StateStore

    synth = Synth(pupils=12, seed=4, duplicates=0, leavers=0.5)
    c = config(tmp_path, {"type": "oso", "path": str(write_oso(tmp_path / "oso", synth))})
    code, report = js("sync", "--config", c)
    assert code == 0, report
    left = [p for p in people(synth) if p.uitstroomdatum is not None]
    staying = [p for p in people(synth) if p.uitstroomdatum is None]
    assert left and staying
    state = StateStore(f"sqlite:///{tmp_path / 'state.db'}")
    store = FilesystemStore(FilesystemSettings(root=tmp_path / "dms"))

    def groups(key: str) -> dict[str, set[str]]:
        row = next(r for r in state.dossier_rows() if r.external_id.endswith(f":{key}"))
        access = store.access(DossierRef(id=row.ref_id or "", external_id=row.external_id))
        return {part: {g.principal for g in grants if g.kind == "group"} for part, grants in access.items()}

    # the sync applied access on the real day: every leaver here left before it
    for p in left:
        assert groups(p.key).get("I") == {"administratie"} and not groups(p.key).get("II"), p.key
    for p in staying:
        assert groups(p.key) == {"I": {"leerkracht", "administratie"}, "II": {"leerkracht"}}
    shown = principals(c, left[0].key, date.today())
    assert shown.get("role:administratie") == {"I:staff"} and "role:leerkracht" not in shown
    state.close()
