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


@pytest.mark.mayan
def test_sample_school_in_mayan_and_a_second_run_writes_nothing(mayan_server: Any, tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    text = (ROOT / "examples" / "mayan.toml").read_text(encoding="utf-8")
    text = text.replace("http://127.0.0.1:8000", mayan_server.url)
    sample = ROOT / "examples" / "obs-de-sample.edexml.xml"
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
    assert report["dossiers_created"] == 318 and report["stopped_by"] is None
    second = run.invoke(main, ["sync", "--config", str(cfg), "--json"])
    again = json.loads(second.stdout)
    assert again["dms_writes"] == 0 and again["dossiers_created"] == 0
    doctor = run.invoke(main, ["doctor", "--config", str(cfg), "--json"])
    assert doctor.exit_code == 0, doctor.stdout
    status = run.invoke(main, ["status", "--config", str(cfg)])
    assert os.environ["MAYAN_TOKEN"] not in first.output + second.output + status.output
