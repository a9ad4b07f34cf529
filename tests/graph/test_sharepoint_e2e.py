"""The sample school on SharePoint from the shipped example config, through the command line, with
Graph behind Prism and the identity platform on https: the library's columns, a check that
changes nothing, the dossiers with their access, then a second run that writes nothing; and the
hand-run smoke test (tools/graph-smoke) passing against the same tenant."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from connector.cli import main
from tests.conftest import ROOT
from tests.graph.harness import CLIENT_SECRET, Prism, control
from tests.graph.server import GraphServer

pytestmark = pytest.mark.graph


def example_config(tmp_path: Path, server: GraphServer, proxy: Prism, pupils: int = 30) -> Path:
    text = (ROOT / "examples" / "sharepoint.toml").read_text(encoding="utf-8")
    dms = {"tenant": "leerdossier-test.onmicrosoft.com", "client_id": server.client_id,
           "site": "contoso.sharepoint.com:/sites/school", "drive": "Leerlingdossiers",
           "folder": f"school-{os.urandom(3).hex()}"}
    for key, value in dms.items():
        text, n = re.subn(rf'(?m)^{key} = "[^"]*"', f'{key} = "{value}"', text)
        assert n == 1, key
    text = text.replace("timeout = 30.0", f'timeout = 30.0\ngraph_url = "{proxy.url}"\n'
                                          f'login_url = "{server.login}"')
    for role in ("leerkracht", "intern_begeleider", "administratie"):
        text = re.sub(rf'(?m)^{role} = "[0-9-]+"', f'{role} = "grp-{role}"', text)
    lines = (ROOT / "examples" / "obs-de-sample.edexml.xml").read_text(encoding="utf-8").splitlines(keepends=True)
    records = [line for line in lines if line.startswith("<leerling ")]
    sample = tmp_path / "sample.xml"
    sample.write_text("".join(line for line in lines if not line.startswith("<leerling ")
                              or line in records[:pupils]), encoding="utf-8")
    text = text.replace('path = "obs-de-sample.edexml.xml"', f'path = "{sample}"')
    cfg = tmp_path / "examples" / "sharepoint.toml"
    cfg.parent.mkdir()
    cfg.write_text(text, encoding="utf-8")
    return cfg


def test_the_example_school_on_sharepoint_and_a_second_run_writes_nothing(
        graph_server: GraphServer, prism: Prism, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = example_config(tmp_path, graph_server, prism)
    monkeypatch.setenv("LD_GRAPH_SECRET", CLIENT_SECRET)
    monkeypatch.setenv("SSL_CERT_FILE", graph_server.certificate)  # type: ignore[attr-defined]
    control(graph_server, "principal", {"user": "juf@school.nl", "groups": ["grp-leerkracht"]})
    run = CliRunner()
    init = run.invoke(main, ["dms", "init", "--config", str(cfg), "--json"])
    assert init.exit_code == 0, init.output
    control(graph_server, "reset_stats", {})
    doctor = run.invoke(main, ["doctor", "--config", str(cfg), "--json"])
    assert doctor.exit_code == 0, doctor.stdout
    graph_calls = [(m, p) for m, p in control(graph_server, "stats")["requests"] if not p.startswith("/login/")]
    assert graph_calls and {m for m, _p in graph_calls} == {"GET"}  # a check never writes (a token aside)
    first = run.invoke(main, ["sync", "--config", str(cfg), "--json"])
    assert first.exit_code == 0, first.output
    report = json.loads(first.stdout)
    assert report["stopped_by"] is None and report["dossiers_created"] == 30 - len(report["rejected"]) - \
        len(report["held"]) > 20
    second = run.invoke(main, ["sync", "--config", str(cfg), "--json"])
    again = json.loads(second.stdout)
    assert again["dms_writes"] == 0 and again["dossiers_created"] == 0
    # the staff group reads the part folders of the pupils still at school through SharePoint's own
    # permissions; of a pupil who left, only the administration keeps part I
    folders = [i for i in graph_server.tenant.items.values()
               if i.name.startswith("II. ") and i.unique is not None and i.state == "live"]
    sample = (tmp_path / "sample.xml").read_text(encoding="utf-8")
    left = sum(1 for line in sample.splitlines() if line.startswith("<leerling ") and "<uitstroomdatum>" in line)
    assert left and len(folders) >= report["dossiers_created"] - left
    # tags refresh: the first looks at every dossier and keeps the library's delta cursor; then a
    # document staff put in one dossier through SharePoint is found by reading only what changed
    full = run.invoke(main, ["tags", "refresh", "--config", str(cfg), "--json"])
    assert full.exit_code == 0, full.output
    assert json.loads(full.stdout)["dossiers"] == report["dossiers_created"]
    tenant = graph_server.tenant
    school = re.search(r'(?m)^folder = "([^"]+)"', cfg.read_text(encoding="utf-8")).group(1)  # type: ignore[union-attr]
    top = next(i for i in tenant.items.values() if i.name == school)
    dossier = next(p for p in tenant.items.values() if p.name.startswith("II. ") and p.state == "live"
                   and tenant.items[p.parent or ""].parent == top.id)  # part II of one of this school's pupils
    control(graph_server, "place", {"parent": dossier.id, "name": "gesprek.txt", "content": "verslag"})
    delta = run.invoke(main, ["tags", "refresh", "--config", str(cfg), "--json"])
    assert delta.exit_code == 0, delta.output
    found = json.loads(delta.stdout)
    assert found["dossiers"] == 1 and found["tagged"] == 1  # one dossier read, its new document tagged
    assert CLIENT_SECRET not in first.output + second.output + doctor.output
    # who can see what, read back from SharePoint's permissions: exactly what the rules give, the
    # staff of pupils who left without part II; a report writes nothing
    control(graph_server, "reset_stats", {})
    seen = run.invoke(main, ["report", "access", "--config", str(cfg), "--json"])
    assert seen.exit_code == 0, seen.output
    access = json.loads(seen.stdout)
    assert {m for m, p in control(graph_server, "stats")["requests"] if not p.startswith("/login/")} == {"GET"}
    assert access["differences"] == [] and access["dossiers"] == report["dossiers_created"]
    rows = {(h["holder"], h["part"]): h["pupils"] for h in access["holders"]}
    assert rows[("role:administratie", "I")] == access["dossiers"]
    assert rows[("role:leerkracht", "II")] == access["dossiers"] - left


def test_the_smoke_test_passes_against_the_test_tenant(graph_server: GraphServer, prism: Prism, tmp_path: Path) -> None:
    cfg = example_config(tmp_path, graph_server, prism, pupils=1)
    env = dict(os.environ, LD_GRAPH_SECRET=CLIENT_SECRET,
               SSL_CERT_FILE=graph_server.certificate)  # type: ignore[attr-defined]
    done = subprocess.run([sys.executable, str(ROOT / "tools" / "graph-smoke"), "--config", str(cfg), "--group",
                           "leerkracht"], capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "smoke test: passed" in done.stdout and "FAIL" not in done.stdout
