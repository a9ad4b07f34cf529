"""The LAS sources through the command line: chosen in config, secrets by reference, checked by
``doctor``, synced twice (the second run writes nothing)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from connector.cli import main
from examples.synth import Synth, write_csv, write_oso
from tests.conftest import write_config
from tests.las.uwlr_server import Scenario, UwlrServer

pytestmark = pytest.mark.las
SYNTH = Synth(pupils=30, seed=9, duplicates=0)


def run(*args: str) -> Result:
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def _sync(config: Path) -> tuple[int, dict]:  # type: ignore[type-arg]
    r = run("sync", "--config", str(config), "--json")
    return r.exit_code, json.loads(r.output)


def test_uwlr_from_config_doctor_and_two_syncs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with UwlrServer(Scenario(synth=SYNTH)) as server:
        monkeypatch.setenv("LD_UWLR_KEY", server.scenario.key)
        config = write_config(tmp_path, tmp_path / "unused.xml", las={
            "type": "uwlr", "endpoint": server.url, "brin": SYNTH.brin, "schooljaar": SYNTH.schooljaar,
            "klantcode": "LD-TEST", "klantnaam": "Test", "autorisatiesleutel": "env:LD_UWLR_KEY"})
        config.write_text(config.read_text().replace('path = "', '# path = "'), encoding="utf-8")
        doctor = run("doctor", "--config", str(config), "--json")
        assert doctor.exit_code == 0, doctor.output
        code, first = _sync(config)
        assert code == 0 and first["dossiers_created"] == SYNTH.pupils
        code, second = _sync(config)
        assert code == 0 and second["unchanged"] and second["dms_writes"] == 0
        monkeypatch.setenv("LD_UWLR_KEY", "not-the-key-at-all-0000")
        refused = run("sync", "--config", str(config), "--json")
    assert refused.exit_code == 1 and "SOAP fault Client" in refused.output
    assert "not-the-key" not in refused.output


def test_a_missing_key_is_named_by_setting_not_value(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LD_UWLR_KEY", raising=False)
    config = write_config(tmp_path, tmp_path / "unused.xml", las={
        "type": "uwlr", "endpoint": "http://127.0.0.1:9/uwlr", "brin": "99XY", "klantcode": "c", "klantnaam": "n",
        "autorisatiesleutel": "env:LD_UWLR_KEY"})
    config.write_text(config.read_text().replace('path = "', '# path = "'), encoding="utf-8")
    doctor = run("doctor", "--config", str(config))
    assert doctor.exit_code != 0 and "LD_UWLR_KEY" in doctor.output


@pytest.mark.parametrize("kind", ["csv", "oso"])
def test_file_sources_from_config(kind: str, tmp_path: Path) -> None:
    if kind == "csv":
        las = {"type": "csv", "path": str(write_csv(tmp_path / "export.csv", SYNTH, "cp1252")), "layout": "parnassys"}
    else:
        las = {"type": "oso", "path": str(write_oso(tmp_path / "oso", SYNTH))}
    config = write_config(tmp_path, tmp_path / "unused.xml", las=las)
    assert run("doctor", "--config", str(config)).exit_code == 0
    code, first = _sync(config)
    assert code == 0 and first["dossiers_created"] == SYNTH.pupils and first["rejected"] == []
    code, second = _sync(config)
    assert code == 0 and second["dms_writes"] == 0
