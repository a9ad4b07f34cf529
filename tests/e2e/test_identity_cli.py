"""Two keys of one child on the sample school: the re-registered pupil is linked to the dossier
its first key has, kept current from the new key's records, and the link stays once used."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from click.testing import CliRunner, Result
from lxml import etree

from connector.cli import main
from tests.conftest import SAMPLE, write_config


def run(*args: str) -> Result:
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def sync(config: Path) -> dict:
    r = run("sync", "--config", str(config), "--json")
    assert r.exit_code == 0, r.output
    return json.loads(r.stdout)


def test_a_re_registered_pupil_is_linked_to_its_dossier_and_kept_current(tmp_path: Path) -> None:
    export = tmp_path / "export.xml"
    tree = etree.parse(str(SAMPLE))
    seen: dict[str, etree._Element] = {}
    later = None
    for leerling in tree.iter("leerling"):
        number = leerling.findtext("bsn")
        if number in seen:
            later = leerling
        seen.setdefault(number, leerling)
    assert later is not None, "the sample holds one re-registered pupil"
    later.getparent().remove(later)  # before the re-registration: only the first key
    tree.write(str(export), xml_declaration=True, encoding="UTF-8")
    config = write_config(tmp_path, export)
    first = sync(config)
    assert first["suspected_duplicates"] == [] and first["dossiers_created"] == first["pupils_seen"]

    shutil.copyfile(SAMPLE, export)  # the office registers the child again under a new key
    second = sync(config)
    assert second["dossiers_created"] == 0
    [pair] = second["suspected_duplicates"]
    assert pair["held"] and pair["dossier"] in (pair["a"], pair["b"])
    dossier, other = pair["dossier"], pair["b"] if pair["dossier"] == pair["a"] else pair["a"]
    status = run("status", "--config", str(config))
    assert f"leerdossier duplicates link {dossier} {other} --by NAME" in status.stdout
    assert f"leerdossier duplicates dismiss {pair['a']} {pair['b']} --by NAME" in status.stdout

    refused = run("duplicates", "link", "--config", str(config), other, dossier, "--by", "administratie")
    assert refused.exit_code != 0 and "no dossier has this key" in refused.output
    r = run("duplicates", "link", "--config", str(config), dossier, other, "--by", "administratie")
    assert r.exit_code == 0 and "same child" in r.stdout
    third = sync(config)
    # no second dossier: the one dossier is kept current from the new key (its las_key property)
    assert third["dossiers_created"] == 0 and third["dossiers_updated"] == 1
    assert third["suspected_duplicates"] == [] and third["held"] == []
    assert any(f"{dossier}: this key's records are no longer used" in w for w in third["warnings"])
    assert "suspected duplicates waiting" not in run("status", "--config", str(config)).stdout
    assert sync(config)["dms_writes"] == 0

    kept = run("duplicates", "unlink", "--config", str(config), dossier, other, "--by", "administratie")
    assert kept.exit_code != 0 and "the link stays" in kept.output
    log = json.loads(run("audit", "show", "--config", str(config), "--last", "0", "--json").stdout)
    assert [e["action"] for e in log if e["action"].startswith("duplicate.")] == ["duplicate.linked"]


def test_an_unused_link_is_taken_back(tmp_path: Path) -> None:
    config = write_config(tmp_path, SAMPLE)
    [pair] = sync(config)["suspected_duplicates"]
    assert pair["dossier"] is None  # both keys new: neither has a dossier to link to
    r = run("duplicates", "link", "--config", str(config), pair["a"], pair["b"], "--by", "administratie")
    assert r.exit_code != 0 and "no dossier has this key" in r.output


def test_a_privacy_officer_finds_the_child_behind_a_key_and_every_reveal_is_audited(tmp_path: Path) -> None:
    from tests.conftest import acting, add_users

    config = write_config(tmp_path, SAMPLE)
    add_users(config, {"admin": ["admin"], "fg": ["privacy"], "juf": ["teacher"]})
    report = sync(config)
    leerling = next(etree.parse(str(SAMPLE)).iter("leerling"))
    surname, born, key = leerling.findtext("achternaam"), leerling.findtext("geboortedatum"), leerling.get("key")

    found = json.loads(run("pupil", "find", "--config", str(config), "--name", surname, "--reason",
                           "verzoek om inzage", *acting("fg"), "--json").stdout)
    mine = next(p for p in found["pupils"] if p["key"] == key)
    assert mine["dossier"] and str(mine["born"]) == born
    pseudonym = mine["pseudonym"]

    plain = run("pupil", "show", "--config", str(config), pseudonym, "--json")
    assert plain.exit_code == 0 and surname not in plain.stdout  # without --reveal: keys only
    refused = run("pupil", "show", "--config", str(config), pseudonym, "--reveal")
    assert refused.exit_code != 0 and "--as USER and --reason" in refused.output
    teacher = run("pupil", "show", "--config", str(config), pseudonym, "--reveal", "--reason", "x", *acting("juf"))
    assert teacher.exit_code != 0
    shown = json.loads(run("pupil", "show", "--config", str(config), pseudonym, "--reveal", "--reason",
                           "certificaat nagaan", *acting("fg"), "--json").stdout)
    [las] = shown["las"]
    assert las["key"] == key and str(las["born"]) == born and surname in las["name"] and shown["school"]

    log = json.loads(run("audit", "show", "--config", str(config), "--last", "0", "--json").stdout)
    reveals = [e for e in log if e["action"] == "pupil.revealed"]
    assert [(e["actor"], e["subject"], e["details"]["reason"]) for e in reveals] == \
        [("fg", pseudonym, "certificaat nagaan")]
    assert surname not in json.dumps(log) and report["pupils_seen"]  # the audit log keeps no name
