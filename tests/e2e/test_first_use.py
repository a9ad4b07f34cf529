"""First use, as a new user tries it from the README: a check changes nothing, a plan leaves no
run, outputs say what they mean, and an export the sync cannot use is called so by doctor."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

from click.testing import CliRunner, Result

from connector.cli import main
from examples.synth import Synth, write
from tests.conftest import write_config

SYNTH = Synth(pupils=6, seed=2, duplicates=0, leavers=0.0)


def run(*args: str) -> Result:
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def tree(folder: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(folder)): (p.stat().st_mode, p.stat().st_size if p.is_file() else 0)
            for p in sorted(folder.rglob("*"))}


def test_doctor_changes_nothing_on_a_fresh_install(tmp_path: Path) -> None:
    cfg = write_config(tmp_path, write(tmp_path / "export.xml", SYNTH))
    before = tree(tmp_path)
    r = run("doctor", "--config", str(cfg))
    assert r.exit_code == 0, r.output
    assert tree(tmp_path) == before  # no install key, no state store, no DMS folder
    assert "not made yet" in r.output
    # and after a sync it changes nothing either, the audit log included
    assert run("sync", "--config", str(cfg)).exit_code == 0
    before = tree(tmp_path)
    r = run("doctor", "--config", str(cfg), "--json")
    assert r.exit_code == 0, r.output
    assert {c["check"] for c in json.loads(r.output)["checks"]} >= {"audit log", "file modes", "DMS"}
    assert tree(tmp_path) == before


def test_doctor_names_a_file_others_may_read(tmp_path: Path) -> None:
    cfg = write_config(tmp_path, write(tmp_path / "export.xml", SYNTH))
    assert run("sync", "--config", str(cfg)).exit_code == 0
    os.chmod(tmp_path / "state.db", 0o644)
    dossier = next((tmp_path / "dms").rglob("dossier.json"))
    os.chmod(dossier.parent, 0o755)
    r = run("doctor", "--config", str(cfg))
    assert r.exit_code == 1
    assert f"{tmp_path / 'state.db'} is 644" in r.output and "chmod 600" in r.output
    assert f"{dossier.parent} is 755" in r.output and "chmod 700" in r.output


def test_a_plan_leaves_no_run_and_says_what_is_to_be_done(tmp_path: Path) -> None:
    cfg = write_config(tmp_path, write(tmp_path / "export.xml", SYNTH))
    assert run("sync", "--config", str(cfg)).exit_code == 0
    runs = json.loads(run("status", "--config", str(cfg), "--json").output)
    write(tmp_path / "export.xml", Synth(pupils=8, seed=2, duplicates=0, leavers=0.0))
    r = run("plan", "--config", str(cfg))
    assert r.exit_code == 0
    assert "nothing was written (a plan)" in r.output and "dossiers to be created:" in r.output
    assert "DMS writes" not in r.output and "would be" not in r.output
    assert json.loads(run("status", "--config", str(cfg), "--json").output) == runs


def test_pupil_facts_is_text_unless_json_is_asked(tmp_path: Path) -> None:
    cfg = write_config(tmp_path, write(tmp_path / "export.xml", SYNTH))
    assert run("sync", "--config", str(cfg)).exit_code == 0
    r = run("pupil", "facts", "--config", str(cfg), "LL000001")
    assert r.exit_code == 0 and not r.output.lstrip().startswith("{")
    assert re.search(r"p-[0-9a-f]+: departure in the LAS none; retention clock not running", r.output)
    data = json.loads(run("pupil", "facts", "--config", str(cfg), "LL000001", "--json").output)
    assert data["clock_start"] is None


def test_an_export_with_pupils_outside_leerlingen_is_refused_and_doctor_says_so(tmp_path: Path) -> None:
    export = write(tmp_path / "export.xml", SYNTH)
    text = export.read_text(encoding="utf-8")
    export.write_text(text.replace("<leerlingen>", "").replace("</leerlingen>", ""), encoding="utf-8")
    cfg = write_config(tmp_path, export)
    r = run("doctor", "--config", str(cfg))
    assert r.exit_code == 1 and "outside <leerlingen>" in r.output
    r = run("sync", "--config", str(cfg))
    assert r.exit_code == 1 and "outside <leerlingen>" in r.stderr
    assert "pupil records seen: 0" not in r.output
