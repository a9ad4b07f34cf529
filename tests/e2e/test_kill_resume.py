"""SIGKILL a real ``leerdossier sync`` process while it stages its snapshot, then run again: the
new run takes over the batches the dead one committed (from the cursor stored with them), reads
on from there, and ends with exactly one dossier per pupil."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from examples.synth import Synth, write
from tests.conftest import write_config

PUPILS = 4500  # three staging batches of at most 2000


def _staged_cursor(db: Path) -> str | None:
    if not db.exists():
        return None
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=0.05) as conn:
            row = conn.execute("select value from cursors where key like 'run:%'").fetchone()
    except sqlite3.Error:
        return None
    return row[0] if row else None


@pytest.mark.slow
def test_a_sync_killed_while_staging_is_continued_by_the_next(tmp_path: Path) -> None:
    export = write(tmp_path / "export.xml", Synth(pupils=PUPILS, seed=21, duplicates=0, leavers=0.0))
    # chance look-alikes among 4500 made-up pupils would be held as suspected duplicates
    config = write_config(tmp_path, export, logging={"level": "WARNING"},
                          safety={"hold_suspected_duplicates": False})
    cmd = [sys.executable, "-m", "connector.cli", "sync", "--config", str(config), "--json"]
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    cursor = None
    deadline = time.monotonic() + 120
    while cursor is None and proc.poll() is None and time.monotonic() < deadline:
        cursor = _staged_cursor(tmp_path / "state.db")
        time.sleep(0.002)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert cursor is not None, "the run ended before a staged batch was seen"
    with sqlite3.connect(tmp_path / "state.db") as conn:
        staged_at_kill = json.loads(conn.execute("select value from cursors where key like 'run:%'").fetchone()[0])
    assert 0 < staged_at_kill["position"] < PUPILS

    again = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    assert again.returncode == 0, again.stderr[-2000:]
    report = json.loads(again.stdout)
    assert report["resumed_read"] == staged_at_kill["position"]
    assert report["pupils_seen"] == PUPILS and report["rejected"] == []
    assert report["dossiers_created"] == PUPILS
    assert len(list((tmp_path / "dms" / "dossiers").glob("*/*"))) == PUPILS  # one per pupil, none twice
    with sqlite3.connect(tmp_path / "state.db") as conn:
        statuses = [r[0] for r in conn.execute("select status from runs order by id")]
        left = conn.execute("select count(*) from staging").fetchone()[0]
    assert statuses == ["interrupted", "ok"] and left == 0
