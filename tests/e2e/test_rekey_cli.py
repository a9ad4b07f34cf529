"""A school moves to another LAS: the whole sample school, written by one LAS adapter's format
with one set of keys and by another's with new keys, goes through ``identity rekey``; the first
sync on the new LAS makes no new dossier for a matched pupil, and each dossier keeps its
documents. Every one of the four formats is a side of a change once."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from connector.cli import main
from examples.synth import Synth, people, uwlr_answer_lines, write, write_csv, write_oso
from tests.conftest import write_config
from tests.las.uwlr_server import Scenario, UwlrServer

PUPILS = 24


def run(*args: str) -> Result:
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def js(*args: str) -> dict:  # type: ignore[type-arg]
    r = run(*args, "--json")
    assert r.exit_code == 0, r.output
    return json.loads(r.stdout)  # type: ignore[no-any-return]


@contextmanager
def las(kind: str, folder: Path, synth: Synth) -> Iterator[tuple[dict[str, object], Path]]:
    """The [las] settings that read ``synth`` in ``kind``'s format, and its export as a file."""
    folder.mkdir()
    if kind == "edexml":
        path = write(folder / "export.xml", synth)
        yield {"type": "edexml", "path": str(path)}, path
    elif kind == "csv":
        path = write_csv(folder / "export.csv", synth)
        yield {"type": "csv", "path": str(path), "layout": "parnassys"}, path
    elif kind == "oso":
        path = write_oso(folder / "oso", synth)
        yield {"type": "oso", "path": str(path)}, path
    else:
        answer = folder / "antwoord.xml"  # the answer as saved from the LAS, for the rekey
        answer.write_text("".join(uwlr_answer_lines(synth)), encoding="utf-8")
        with UwlrServer(Scenario(synth=synth)) as server:
            os.environ["LD_UWLR_KEY"] = server.scenario.key
            yield {"type": "uwlr", "endpoint": server.url, "brin": synth.brin, "schooljaar": synth.schooljaar,
                   "klantcode": "LD-TEST", "klantnaam": "Test", "autorisatiesleutel": "env:LD_UWLR_KEY"}, answer


def configure(tmp_path: Path, settings: dict[str, object]) -> Path:
    config = write_config(tmp_path, tmp_path / "unused.xml", las=settings)
    if settings["type"] == "uwlr":
        config.write_text(config.read_text().replace('path = "', '# path = "'), encoding="utf-8")
    return config


@pytest.mark.las
@pytest.mark.parametrize(("old", "new"), [("edexml", "csv"), ("csv", "oso"), ("oso", "uwlr"), ("uwlr", "edexml")])
def test_a_change_of_las_keeps_every_dossier(tmp_path: Path, old: str, new: str) -> None:
    before = Synth(pupils=PUPILS, seed=7, duplicates=0, leavers=0.0, key_prefix="OUD")
    after = Synth(pupils=PUPILS, seed=7, duplicates=0, leavers=0.0, key_prefix="NW")
    assert [p.bsn for p in people(before)] == [p.bsn for p in people(after)]
    with las(old, tmp_path / "old", before) as (settings, old_export):
        config = configure(tmp_path, settings)
        first = js("sync", "--config", str(config))
        assert first["dossiers_created"] == PUPILS
        doc = tmp_path / "verslag.pdf"
        doc.write_bytes(b"%PDF-1.4 verslag")
        key = next(people(before)).key
        assert js("document", "add", "--config", str(config), key, str(doc), "--class", "inschrijving",
                  "--by", "administratie")["document"]
    with las(new, tmp_path / "new", after) as (settings, new_export):
        rekey = ["identity", "rekey", "--config", str(config), "--from", str(old_export), "--to", str(new_export),
                 "--by", "administratie"]
        by_name = run(*rekey, "--match", "eckid", "--json")  # the keys' ECK-iDs differ here: nothing matches
        assert by_name.exit_code == 3 and "nothing was changed" in by_name.output
        planned = js(*rekey, "--match", "bsn", "--dry-run")
        assert planned["matched"] == PUPILS and planned["unmatched"] == [] and planned["dry_run"]
        done = js(*rekey, "--match", "bsn")
        assert done["matched"] == PUPILS and done["share"] == 1.0
        again = js(*rekey, "--match", "bsn")  # a second run finds them all reachable already
        assert again["matched"] == 0 and again["already"] == PUPILS

        configure(tmp_path, settings)
        synced = js("sync", "--config", str(config))
        assert synced["stopped_by"] is None
        assert synced["dossiers_created"] == 0 and synced["suspected_duplicates"] == []
        assert synced["held"] == [] and synced["vanished"] == []
        assert len(list((tmp_path / "dms" / "dossiers").glob("*/*"))) == PUPILS
        # the dossier that had a document still has it, found by the pupil's new LAS key
        facts = js("pupil", "facts", "--config", str(config), next(people(after)).key)
        shown = js("pupil", "show", "--config", str(config), facts["record"])
        assert shown["aliases"] and shown["aliases"][0]["kind"] == "rekey" and shown["aliases"][0]["used"]
    log = js("audit", "show", "--config", str(config), "--last", "0")
    assert [e["details"]["matched"] for e in log if e["action"] == "identity.rekeyed"] == [PUPILS]


@pytest.mark.las
def test_what_cannot_be_matched_is_reported_and_too_little_changes_nothing(tmp_path: Path) -> None:
    before = Synth(pupils=PUPILS, seed=7, duplicates=0, leavers=0.0, key_prefix="OUD")
    with las("edexml", tmp_path / "old", before) as (settings, old_export):
        config = configure(tmp_path, settings)
        js("sync", "--config", str(config))
    rekey = ["identity", "rekey", "--config", str(config), "--from", str(old_export), "--match", "bsn",
             "--by", "administratie"]
    with las("csv", tmp_path / "few", Synth(pupils=PUPILS - 4, seed=7, duplicates=0, leavers=0.0,
                                              key_prefix="NW")) as (_, few):
        stopped = run(*rekey, "--to", str(few), "--json")
        assert stopped.exit_code == 3 and "only 20 of 24 dossiers" in stopped.output
    assert not [e for e in js("audit", "show", "--config", str(config), "--last", "0")
                if e["action"] == "identity.rekeyed"]
    with las("csv", tmp_path / "most", Synth(pupils=PUPILS - 2, seed=7, duplicates=0, leavers=0.0,
                                               key_prefix="NW")) as (_, most):
        done = js(*rekey, "--to", str(most))
    assert done["matched"] == PUPILS - 2
    assert [u["reason"] for u in done["unmatched"]] == ["not in the new export by its bsn"] * 2
