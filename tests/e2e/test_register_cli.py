"""Grip op gegevens through the CLI: the processing register (AVG art. 30) from the running
configuration and state, and who can see what, read back from the ACLs the DMS holds, with the
differences a person changing ACLs by hand makes. Both only read."""

from __future__ import annotations

import hashlib
import json
import re
import tomllib
from datetime import date, timedelta
from pathlib import Path

from adapters.dms.filesystem import FilesystemSettings, FilesystemStore
from connector.model import DmsGrant, DossierRef
from connector.state import StateStore
from examples.synth import Synth, people, write_oso
from tests.e2e.test_access_cli import ACCESS, VIEW, config, js, run

SYNTH = Synth(pupils=12, seed=4, duplicates=0, leavers=0.0)
SCHOOL = '''
[school]
name = "OBS De Proef"
controller = "Stichting Proefonderwijs"
controller_contact = "bestuur@proef.example"
fg = "FG van de stichting"
fg_contact = "fg@proef.example"
'''
ROOT = Path(__file__).resolve().parents[2]


def school(tmp_path: Path, named: bool = True) -> str:
    c = config(tmp_path, {"type": "oso", "path": str(write_oso(tmp_path / "oso", SYNTH))})
    if named:
        Path(c).write_text(Path(c).read_text(encoding="utf-8") + SCHOOL, encoding="utf-8")
    assert js("sync", "--config", c)[0] == 0
    return c


def fingerprint(folder: Path) -> str:
    """Every file below FOLDER with its content: what a check must leave as it was."""
    h = hashlib.sha256()
    for p in sorted(folder.rglob("*")):
        if p.is_file() and p.suffix not in (".html",):
            h.update(str(p.relative_to(folder)).encode() + p.read_bytes())
    return h.hexdigest()


def test_the_register_is_built_from_configuration_mapping_schedule_and_state(tmp_path: Path) -> None:
    c = school(tmp_path)
    key = next(people(SYNTH)).key
    today = date.today()
    assert js("grant", "add", "--config", c, key, "--kind", "third-party", "--to", "inspectie", "--parts", "II",
              "--basis", "legal-duty", "--until", (today + timedelta(days=30)).isoformat(), "--reason", "onderzoek",
              "--by", "directeur")[0] == 0
    assert js("okr", "sent", "--config", c, key, "--date", today.isoformat(), "--to", "12AB", "--by", "IB")[0] == 0
    before = fingerprint(tmp_path)
    code, reg = js("report", "register", "--config", c, "--html", str(tmp_path / "register.html"))
    assert code == 0 and fingerprint(tmp_path) == before  # a report changes nothing
    assert reg["verwerkingsverantwoordelijke"] == {"naam": "Stichting Proefonderwijs",
                                                   "contact": "bestuur@proef.example"}
    assert reg["functionaris_gegevensbescherming"]["naam"] == "FG van de stichting" and reg["ontbreekt"] == []
    assert reg["scholen"] == [{"code": "99XY", "naam": "OBS De Proef (99XY)", "dossiers": SYNTH.pupils}]
    # purposes and data per part from the mapping file, read here on its own
    mapping = tomllib.loads((ROOT / "mappings" / "po.toml").read_text(encoding="utf-8"))
    assert [d["doel"] for d in reg["doeleinden"]] == [p["purpose"] for p in mapping["parts"].values()]
    per_part = {p["deel"]: {s["code"] for s in p["soorten"]} for p in reg["gegevens_per_deel"]}
    for code, cls in mapping["classes"].items():
        assert code in per_part[mapping["parts"][cls["part"]]["name"]]
    # every retention category with its basis, from the schedule file
    schedule = tomllib.loads((ROOT / "mappings" / "retention-po.toml").read_text(encoding="utf-8"))
    terms = {t["categorie"]: t for t in reg["bewaartermijnen"]}
    assert set(terms) == set(schedule["categories"])
    for code, cat in schedule["categories"].items():
        assert terms[code]["grondslag"] == cat["basis"]
        assert terms[code]["termijn"] == "nooit vernietigen" if cat.get("blocked") else re.match(
            r"(uiterlijk|ten minste) \d+ (jaar|maanden|maand|dagen|dag|weken|week) na ", terms[code]["termijn"])
    recipients = {r["wie"]: r for r in reg["ontvangers"]}
    assert {"Medewerkers met de rol leerkracht", "Medewerkers met de rol administratie"} <= set(recipients)
    assert recipients["Derden"]["wat"] == "toegang bij 1 leerlingen vandaag"
    assert "12AB (1x)" in recipients["Ontvangende scholen (onderwijskundig rapport)"]["wat"]
    assert any("pseudoniem" in m for m in reg["beveiliging"])
    page = (tmp_path / "register.html").read_text(encoding="utf-8")
    assert (tmp_path / "register.html").stat().st_mode & 0o777 == 0o600
    assert "Verwerkingsregister" in page and "Stichting Proefonderwijs" in page and "None" not in page
    for p in people(SYNTH):  # names nowhere
        assert p.achternaam not in page and p.achternaam not in json.dumps(reg)


def test_the_register_says_what_the_configuration_does_not_yet_say(tmp_path: Path) -> None:
    c = school(tmp_path, named=False)
    code, reg = js("report", "register", "--config", c)
    assert code == 0
    assert [m.split(":")[-1].strip() for m in reg["ontbreekt"]] == [
        "[school] controller", "[school] fg", "[school] name"]
    assert reg["scholen"][0]["naam"] == "99XY"
    human = run("report", "register", "--config", c)
    assert "nog in te vullen" in human.stdout


def test_access_is_read_back_from_the_dms_and_a_hand_made_change_is_a_difference(tmp_path: Path) -> None:
    c = school(tmp_path)
    pupil = next(p for p in people(SYNTH) if any(g.gezag for g in p.guardians))
    gid = next(g["guardian"] for g in js("guardian", "list", "--config", c, pupil.key, *VIEW)[1]["guardians"]
               if g["authority"] == "yes")
    assert js("guardian", "set", "--config", c, pupil.key, gid, "--account", "ouder1", "--reason", "account",
              "--by", "adm")[0] == 0
    before = fingerprint(tmp_path)
    code, report = js("report", "access", "--config", c, "--html", str(tmp_path / "toegang.html"))
    assert code == 0 and fingerprint(tmp_path) == before
    rows = {(h["holder"], h["part"]): h for h in report["holders"]}
    # the oracle: the access section of the configuration, and one linked parent
    roles = tomllib.loads(ACCESS)["access"]["roles"]
    expected = {(f"role:{r}", part) for r, parts in roles.items() for part in parts}
    assert expected <= set(rows) and all(rows[k]["pupils"] == SYNTH.pupils and rows[k]["whole_part"]
                                         for k in expected)
    parent = {k: v for k, v in rows.items() if k[0] == "guardian"}
    assert set(parent) == {("guardian", "I"), ("guardian", "II")} and all(v["pupils"] == 1 for v in parent.values())
    assert report["differences"] == []

    # someone opens part II of one dossier to another account by hand and takes a role off part I
    state = StateStore(f"sqlite:///{tmp_path / 'state.db'}")
    row = next(r for r in state.dossier_rows() if r.external_id.endswith(pupil.key))
    state.close()
    store = FilesystemStore(FilesystemSettings(root=tmp_path / "dms"))
    ref = DossierRef(id=row.ref_id or "", external_id=row.external_id)
    held = store.access(ref)
    store.set_access(ref, "II", (*held["II"], DmsGrant(principal="buurman", kind="user")))
    store.set_access(ref, "I", tuple(g for g in held["I"] if g.principal != "administratie"))
    code, report = js("report", "access", "--config", c)
    assert code == 0
    assert sorted((d["record"], d["part"], d["holder"], d["difference"]) for d in report["differences"]) == [
        (row.pseudonym, "I", "role:administratie", "missing"), (row.pseudonym, "II", "other", "extra")]
    rows = {(h["holder"], h["part"]): h for h in report["holders"]}
    assert rows[("role:administratie", "I")]["pupils"] == SYNTH.pupils - 1
    page = (tmp_path / "toegang.html").read_text(encoding="utf-8")
    assert "Wie kan wat inzien" in page and "medewerkers met de rol leerkracht" in page
    assert "ouder1" not in page and "ouder1" not in json.dumps(report)  # accounts never in a report
