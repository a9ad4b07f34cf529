"""The ``leerdossier`` command end to end on the shipped sample, in a fresh folder."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from lxml import etree
from sqlalchemy import text

from connector.cli import main
from connector.state import StateStore
from examples.synth import Synth, write
from tests.conftest import SAMPLE, write_config


def run(*args: str) -> Result:
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def sync_json(config: Path, *extra: str) -> tuple[int, dict]:
    r = run("sync", "--config", str(config), "--json", *extra)
    return r.exit_code, json.loads(r.stdout)


@pytest.fixture
def cfg(tmp_path: Path) -> Path:
    return write_config(tmp_path, SAMPLE)


def test_help_on_every_command() -> None:
    for cmd in (["--help"], ["sync", "--help"], ["plan", "--help"], ["status", "--help"],
                ["audit", "verify", "--help"], ["doctor", "--help"], ["duplicates", "dismiss", "--help"]):
        r = run(*cmd)
        assert r.exit_code == 0 and "Usage" in r.stdout


def test_first_sync_creates_one_dossier_per_pupil_and_second_writes_nothing(cfg: Path, tmp_path: Path) -> None:
    code, first = sync_json(cfg, "--report", str(tmp_path / "report.json"))
    assert code == 0
    for key in ("pupils_seen", "dossiers_created", "dossiers_updated", "rejected", "vanished",
                "suspected_duplicates", "stopped_by", "dms_writes"):
        assert key in first
    assert first["pupils_seen"] == 320 and first["stopped_by"] is None
    # the sample holds one re-registered pupil (two keys, same BSN, name and birth date)
    assert len(first["suspected_duplicates"]) == 1 and first["suspected_duplicates"][0]["held"]
    assert first["dossiers_created"] == 318 == first["dms_writes"]
    assert json.loads((tmp_path / "report.json").read_text()) == first
    assert len(list((tmp_path / "dms" / "dossiers").glob("*/*"))) == 318

    code, second = sync_json(cfg)
    assert code == 0
    assert second["dms_writes"] == 0 and second["dossiers_created"] == 0 and second["dossiers_updated"] == 0
    assert len(list((tmp_path / "dms" / "dossiers").glob("*/*"))) == 318


def test_dismissed_duplicate_is_then_created(cfg: Path) -> None:
    _, first = sync_json(cfg)
    pair = first["suspected_duplicates"][0]
    r = run("duplicates", "dismiss", "--config", str(cfg), pair["a"], pair["b"], "--by", "M. de Vries (IB)")
    assert r.exit_code == 0
    _, second = sync_json(cfg)
    # neither pupil of the pair had a dossier, so both were held; both are created now
    assert second["suspected_duplicates"] == [] and second["dossiers_created"] == 2


def test_dossier_metadata_follows_the_las(tmp_path: Path) -> None:
    export = write(tmp_path / "export.xml", Synth(pupils=30, duplicates=0))
    cfg = write_config(tmp_path, export)
    sync_json(cfg)
    text_ = export.read_text(encoding="utf-8")
    changed = text_.replace("<jaargroep>3</jaargroep>", "<jaargroep>4</jaargroep>")
    n = text_.count("<jaargroep>3</jaargroep>") - 2  # the two group definitions
    export.write_text(changed, encoding="utf-8")
    _, second = sync_json(cfg)
    assert second["dossiers_updated"] == n > 0 and second["dms_writes"] == n
    audit = run("audit", "show", "--config", str(cfg), "--last", "3", "--json")
    entries = json.loads(audit.stdout)
    updated = [e for e in entries if e["action"] == "dossier.updated"]
    assert updated and updated[-1]["details"]["changed"] == ["properties.jaargroep"]


def test_plan_changes_nothing(cfg: Path, tmp_path: Path) -> None:
    r = run("plan", "--config", str(cfg), "--json")
    assert r.exit_code == 0
    data = json.loads(r.stdout)
    assert data["dry_run"] and data["dossiers_created"] == 318 and data["dms_writes"] == 0
    assert len(data["operations"]) == 318
    assert not (tmp_path / "dms" / "dossiers").exists() or not list((tmp_path / "dms" / "dossiers").glob("*/*"))


def test_truncated_snapshot_stops_before_any_write(tmp_path: Path) -> None:
    export = tmp_path / "export.xml"
    write(export, Synth(pupils=200, duplicates=0))
    cfg = write_config(tmp_path, export)
    assert sync_json(cfg)[0] == 0
    before = sorted(p.stat().st_mtime_ns for p in (tmp_path / "dms").rglob("dossier.json"))
    write(export, Synth(pupils=100, duplicates=0, seed=7))  # half the school: truncated export
    text_ = export.read_text(encoding="utf-8").replace("<jaargroep>2</jaargroep>", "<jaargroep>3</jaargroep>")
    export.write_text(text_, encoding="utf-8")
    code, report = sync_json(cfg)
    assert code == 3 and report["stopped_by"] == "min_snapshot_ratio" and report["dms_writes"] == 0
    assert sorted(p.stat().st_mtime_ns for p in (tmp_path / "dms").rglob("dossier.json")) == before
    human = run("sync", "--config", str(cfg))
    assert human.exit_code == 3 and "stopped by safety rail min_snapshot_ratio" in human.stdout
    code, accepted = sync_json(cfg, "--accept-snapshot", "--by", "J. Jansen (directeur)")
    assert code == 0 and accepted["stopped_by"] is None
    assert len(accepted["vanished"]) > 0


def test_vanished_pupil_is_reported_not_treated_as_left(tmp_path: Path) -> None:
    export = write(tmp_path / "export.xml", Synth(pupils=40, duplicates=0, leavers=0.0))
    cfg = write_config(tmp_path, export)
    sync_json(cfg)
    text_ = export.read_text(encoding="utf-8")
    gone = re.search(r'<leerling key="LL000007".*?</leerling>\n', text_, re.S)
    assert gone
    export.write_text(text_.replace(gone.group(0), ""), encoding="utf-8")
    code, report = sync_json(cfg)
    assert code == 0 and len(report["vanished"]) == 1
    assert report["vanished"][0]["record"].startswith("p-")
    state = StateStore(f"sqlite:///{tmp_path / 'state.db'}")
    with state.engine.connect() as c:
        row = c.execute(text("SELECT departure, vanished_since FROM dossiers "
                             "WHERE external_id = 'las:99XY:LL000007'")).one()
    assert row[0] is None and row[1] is not None  # no departure invented; the dossier is kept
    assert len(list((tmp_path / "dms" / "dossiers").glob("*/*"))) == 40
    export.write_text(text_, encoding="utf-8")  # back in the next export: no longer vanished
    assert sync_json(cfg)[1]["vanished"] == []


def test_rejected_record_is_reported_and_the_rest_synced(tmp_path: Path) -> None:
    export = write(tmp_path / "export.xml", Synth(pupils=20, duplicates=0))
    text_ = export.read_text(encoding="utf-8")
    first_birth = re.search(r"<geboortedatum>(\d{4})-\d\d-\d\d</geboortedatum>", text_)
    assert first_birth
    impossible = f"<geboortedatum>{first_birth.group(1)}-02-30</geboortedatum>"
    export.write_text(text_.replace(first_birth.group(0), impossible, 1))
    cfg = write_config(tmp_path, export)
    code, report = sync_json(cfg)
    assert code == 0 and report["dossiers_created"] == 19
    assert len(report["rejected"]) == 1 and report["rejected"][0]["field"] == "geboortedatum"
    assert report["rejected"][0]["record"].startswith("p-")


def test_status_audit_verify_and_doctor(cfg: Path, tmp_path: Path) -> None:
    sync_json(cfg)
    st = run("status", "--config", str(cfg), "--json")
    data = json.loads(st.stdout)
    assert st.exit_code == 0 and data["journal"] == {"done": 318} and data["unfinished"] == []
    v = run("audit", "verify", "--config", str(cfg), "--json")
    assert v.exit_code == 0 and json.loads(v.stdout)["ok"]
    d = run("doctor", "--config", str(cfg), "--json")
    assert d.exit_code == 0 and json.loads(d.stdout)["ok"]
    state = StateStore(f"sqlite:///{tmp_path / 'state.db'}")
    with state.transaction() as c:
        c.execute(text("UPDATE audit SET actor = 'someone else' WHERE seq = 10"))
    v = run("audit", "verify", "--config", str(cfg))
    assert v.exit_code == 1 and "entry 10" in v.stdout


def test_doctor_reports_a_missing_export(tmp_path: Path) -> None:
    cfg = write_config(tmp_path, tmp_path / "missing.xml")
    d = run("doctor", "--config", str(cfg), "--json")
    assert d.exit_code == 1
    failing = [c for c in json.loads(d.stdout)["checks"] if not c["ok"]]
    assert [c["check"] for c in failing] == ["LAS source"]


def test_bad_config_exits_1_with_line(tmp_path: Path) -> None:
    cfg = write_config(tmp_path, SAMPLE, identity={"key": "achternaam"})
    r = run("sync", "--config", str(cfg))
    assert r.exit_code == 1 and re.search(r"config.toml:\d+: identity.key", r.stderr)


def test_hostile_export_exits_1(tmp_path: Path) -> None:
    export = tmp_path / "x.xml"
    export.write_text('<?xml version="1.0"?><!DOCTYPE EDEX [<!ENTITY x SYSTEM "file:///etc/passwd">]><EDEX/>')
    r = run("sync", "--config", str(write_config(tmp_path, export)), "--json")
    assert r.exit_code == 1 and "refused" in json.loads(r.stdout)["error"]


def _sample_pii() -> set[str]:
    doc = etree.parse(str(SAMPLE))
    values: set[str] = set()
    for tag in ("achternaam", "voornamen", "roepnaam", "bsn"):
        values.update(e.text for e in doc.iter(tag) if e.text)
    for e in doc.iter("voornamen"):
        values.update((e.text or "").split())
    return {v for v in values if len(v) >= 3}


def test_no_name_or_bsn_in_any_log_line_or_output(tmp_path: Path) -> None:
    export = tmp_path / "export.xml"
    text_ = SAMPLE.read_text(encoding="utf-8")
    broken = text_.replace("<geslacht>", "<geslacht>x", 3)  # some rejected records too
    export.write_text(broken, encoding="utf-8")
    cfg = write_config(tmp_path, export)  # logging level DEBUG
    outputs = []
    for args in (["sync", "--config", str(cfg)], ["sync", "--config", str(cfg), "--json"],
                 ["plan", "--config", str(cfg)], ["status", "--config", str(cfg)],
                 ["audit", "show", "--config", str(cfg), "--last", "1000"]):
        r = run(*args)
        outputs.append(r.stdout + r.stderr)
    assert "rejected" in outputs[0]
    pii = _sample_pii()
    assert len(pii) > 50
    blob = "\n".join(outputs)
    leaks = sorted(v for v in pii if re.search(rf"\b{re.escape(v)}\b", blob))
    assert leaks == []
