"""The end-to-end demo against a live Mayan: the sample school's dossiers, then nothing to do."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from connector.cli import main
from tests.conftest import ROOT

VIEW = ("--by", "adm", "--reason", "test")  # who looks at a pupil's data, and why (audited)


@pytest.mark.mayan
def test_sample_school_in_mayan_and_a_second_run_writes_nothing(mayan_server: Any, tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    text = (ROOT / "examples" / "mayan.toml").read_text(encoding="utf-8")
    text = text.replace("http://127.0.0.1:8000", mayan_server.url)
    # the sample school's first 40 pupils (all 320 took minutes of the suite: Mayan stores about
    # 1.6 dossiers a second; bench/mayan_bench.py measures throughput, this test the round trip)
    lines = (ROOT / "examples" / "obs-de-sample.edexml.xml").read_text(encoding="utf-8").splitlines(keepends=True)
    records = [line for line in lines if line.startswith("<leerling ")]
    kept = [line for line in lines if not line.startswith("<leerling ") or line in records[:40]]
    sample = tmp_path / "sample.xml"
    sample.write_text("".join(kept), encoding="utf-8")
    text = text.replace('path = "obs-de-sample.edexml.xml"', f'path = "{sample}"')
    cfg = tmp_path / "examples" / "mayan.toml"
    cfg.parent.mkdir()
    cfg.write_text(text, encoding="utf-8")
    monkeypatch.setenv("MAYAN_TOKEN", mayan_server.token)
    run = CliRunner()
    init = run.invoke(main, ["dms", "init", "--config", str(cfg), "--json"])
    assert init.exit_code == 0, init.output
    first = run.invoke(main, ["sync", "--config", str(cfg), "--json"])
    assert first.exit_code == 0, first.output
    report = json.loads(first.stdout)
    assert report["pupils_seen"] == 40 and report["stopped_by"] is None
    assert report["dossiers_created"] == 40 - len(report["rejected"]) - len(report["held"]) > 30
    second = run.invoke(main, ["sync", "--config", str(cfg), "--json"])
    again = json.loads(second.stdout)
    assert again["dms_writes"] == 0 and again["dossiers_created"] == 0
    doctor = run.invoke(main, ["doctor", "--config", str(cfg), "--json"])
    assert doctor.exit_code == 0, doctor.stdout
    status = run.invoke(main, ["status", "--config", str(cfg)])
    assert os.environ["MAYAN_TOKEN"] not in first.output + second.output + status.output


@pytest.mark.mayan
def test_a_parent_account_sees_its_parts_in_mayan_and_loses_them_at_16(mayan_server: Any, tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    from datetime import date

    from connector.access import adult_from
    from examples.synth import Synth, people, write_oso

    synth = Synth(pupils=4, seed=4, duplicates=0, leavers=0.0, brin="98ZZ")
    oso = write_oso(tmp_path / "oso", synth)
    cfg = tmp_path / "config.toml"
    cfg.write_text(f'''
[las]
type = "oso"
path = "{oso}"

[dms]
type = "mayan"
url = "{mayan_server.url}"
token = "env:MAYAN_TOKEN"

[state]
url = "sqlite:///{tmp_path / 'state.db'}"

[identity]
secret = "file:{tmp_path / 'install.key'}"
create_secret = true

[access]
information_classes = ["rapport"]

[access.roles]
leerkracht = ["I", "II"]
''', encoding="utf-8")
    monkeypatch.setenv("MAYAN_TOKEN", mayan_server.token)
    run = CliRunner()

    def js(*args: str) -> dict[str, Any]:
        r = run.invoke(main, [*args, "--config", str(cfg), "--json"])
        assert r.exit_code == 0, r.output
        return json.loads(r.stdout)

    js("dms", "init")
    assert js("sync")["dossiers_created"] == synth.pupils
    pupil = next(p for p in people(synth) if any(g.gezag for g in p.guardians))
    doc = tmp_path / "doc.pdf"
    doc.write_bytes(b"%PDF-1.4 e2e")
    ids = {cls: js("document", "add", pupil.key, str(doc), "--class", cls)["document"]
           for cls in ("rapport", "verslag_teambespreking", "inschrijving")}
    gid = next(g["guardian"] for g in js("guardian", "list", pupil.key, *VIEW)["guardians"] if g["authority"] == "yes")
    parent = f"ouder-{os.urandom(3).hex()}"
    mayan_server.ensure_user(parent)
    js("guardian", "set", pupil.key, gid, "--account", parent, "--reason", "account", "--by", "adm")
    assert mayan_server.visible_documents(parent) == set(ids.values())  # inspection: parts I and II

    sixteen = adult_from(pupil.geboortedatum, 16)
    assert sixteen > date.today()
    applied = js("access", "apply", "--today", sixteen.isoformat())
    assert applied["parts_changed"] >= 2
    assert mayan_server.visible_documents(parent) == set()  # the pupil exercises the rights now
