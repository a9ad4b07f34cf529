"""Crash soak: SIGKILL the connector at random moments during sync and during destruction
execute, restart it, and count what went wrong.

    python bench/crash_soak.py [--trials 100] [--pupils 120]

Each trial works on a fresh copy of a prepared school (filesystem DMS, SQLite state). A sync
trial kills ``leerdossier sync`` after a random delay, runs it again to the end, and checks:
one dossier per pupil in the DMS (duplicates), every pupil's dossier there and the journal
drained (lost), no dossier created twice in the audit log (repeated). A destruction trial kills
``destruction list execute`` of an approved list, runs it again, and checks that every item
the list reports destroyed is gone from the DMS and every other item is still there (falsely
reported). Prints the counts; the last line is ``anomalies: N``.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from tests.conftest import TEST_SECRET, acting, add_users  # noqa: E402

os.environ.setdefault("LD_TEST_SECRET", TEST_SECRET)  # the soak's users act with it
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}
TODAY = "2026-11-24"


def cli(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    res = subprocess.run([sys.executable, "-m", "connector.cli", *args], capture_output=True, text=True, env=ENV,
                         check=False)
    if check and res.returncode not in (0, 1):
        raise RuntimeError(f"{args[0]} exited {res.returncode}: {res.stderr[-500:]}")
    return res


KILLS = {"mid_run": 0, "after_end": 0}
DONE = {"dossiers": 0, "destroyed": 0}


def _started(db: Path, sql: str) -> bool:
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=0.05) as conn:
            return bool(conn.execute(sql).fetchone()[0])
    except sqlite3.Error:
        return False


def killed(args: list[str], delay: float, db: Path, started_sql: str) -> None:
    """Start the command, wait until its work has begun (``started_sql`` on the state store),
    then kill it after ``delay`` seconds more."""
    proc = subprocess.Popen([sys.executable, "-m", "connector.cli", *args], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, env=ENV)
    deadline = time.monotonic() + 60
    while proc.poll() is None and time.monotonic() < deadline and not _started(db, started_sql):
        time.sleep(0.005)
    time.sleep(delay)
    if proc.poll() is None:
        proc.send_signal(signal.SIGKILL)
        KILLS["mid_run"] += 1
    else:
        KILLS["after_end"] += 1
    proc.wait()


def inproc(*args: str) -> Any:
    """A CLI command in this process (preparation only: no process start per call)."""
    from click.testing import CliRunner

    from connector.cli import main as cli_main
    result = CliRunner().invoke(cli_main, list(args), catch_exceptions=False)
    return json.loads(result.stdout) if "--json" in args else result


def write_config(folder: Path, export: Path) -> Path:
    """Paths relative to the folder: a copy of the folder is a school of its own."""
    config = folder / "config.toml"
    config.write_text(f'''
[las]
type = "edexml"
path = "{export.name}"
[dms]
type = "filesystem"
root = "dms"
[state]
url = "sqlite:///state.db"
[identity]
secret = "file:install.key"
create_secret = true
[safety]
hold_suspected_duplicates = false
[destruction]
output = "out"
max_per_run = 100000
[testing]
simulated_clock = true
''', encoding="utf-8")
    return config


def prepare(base: Path, pupils: int) -> dict[str, Any]:
    from examples.synth import Synth, people, write
    synth = Synth(pupils=pupils, duplicates=0, leavers=0.0, seed=3)
    export = write(base / "export.xml", synth)
    add_users(write_config(base, export))  # an install for tests: its clock may be simulated
    keys = [p.key for p in people(synth)]
    return {"export": str(export), "keys": keys}


def dossier_dirs(folder: Path) -> int:
    return sum(1 for _ in (folder / "dms" / "dossiers").glob("*/*"))


def trial_sync(base: Path, work: Path, pupils: int, rng: random.Random) -> dict[str, int]:
    shutil.copytree(base, work)
    config = work / "config.toml"
    killed(["sync", "--config", str(config)], rng.uniform(0.0, 0.3), work / "state.db",
           "select count(*) from runs where status = 'running'")
    cli("sync", "--config", str(config), "--accept-snapshot", "--by", "soak")
    with sqlite3.connect(work / "state.db") as conn:
        recorded = conn.execute("select count(*) from dossiers where ref_id is not null").fetchone()[0]
        unfinished = conn.execute("select count(*) from journal where status in ('new','sent','failed')").fetchone()[0]
        creates = [r[0] for r in conn.execute("select subject from audit where action = 'dossier.created'")]
    dirs = dossier_dirs(work)
    DONE["dossiers"] += dirs
    return {"duplicates": max(0, dirs - pupils), "lost": (pupils - min(recorded, dirs)) + unfinished,
            "repeated": len(creates) - len(set(creates)), "falsely_reported": 0}


def prepare_destruction(base: Path, keys: list[str]) -> Path:
    """The school synced, three documents each for a quarter of the pupils, who then left long
    ago; a destruction list of what is due, approved."""
    folder = base.parent / "destruction-base"
    shutil.copytree(base, folder)
    config = str(folder / "config.toml")
    inproc("sync", "--config", config)
    doc = folder / "doc.pdf"
    doc.write_bytes(b"%PDF-1.4 soak")
    leavers = keys[: max(4, len(keys) // 4)]
    export = folder / "export.xml"
    text = export.read_text(encoding="utf-8")
    for key in leavers:
        for cls in ("rapport", "toetsuitslagen", "verslag_oudergesprek"):
            inproc("document", "add", "--config", config, key, str(doc), "--class", cls)
        text = re.sub(rf'<leerling key="{key}".*?</leerling>\n', "", text, flags=re.S)
    export.write_text(text, encoding="utf-8")
    inproc("sync", "--config", config, "--accept-snapshot", "--by", "soak")
    for key in leavers:
        inproc("pupil", "left", "--config", config, key, "--date", "2020-07-01", *acting("maker"))
    created = inproc("destruction", "list", "create", "--config", config, "--today", TODAY, "--json",
                     *acting("maker"))
    inproc("destruction", "list", "approve", "--config", config, str(created["list"]), *acting("approver"))
    (folder / "list_id").write_text(str(created["list"]))
    return folder


def trial_destroy(dbase: Path, work: Path, rng: random.Random) -> dict[str, int]:
    shutil.copytree(dbase, work)
    config = str(work / "config.toml")
    list_id = (work / "list_id").read_text()
    killed(["destruction", "list", "execute", "--config", config, list_id, "--today", TODAY, *acting("maker")],
           rng.uniform(0.0, 0.08), work / "state.db", "select count(*) from journal where kind = 'destroy_document'")
    cli("destruction", "list", "execute", "--config", config, list_id, "--today", TODAY, *acting("maker"))
    assert json.loads(cli("destruction", "list", "show", "--config", config, list_id, "--json").stdout)["items"]
    items = json.loads(cli("destruction", "list", "show", "--config", config, list_id, "--json").stdout)["items"]
    present = {p.name.split(".")[0] for p in (work / "dms" / "dossiers").glob("*/*/*/*") if ".meta" not in p.name}
    DONE["destroyed"] += sum(1 for i in items if i["status"] == "destroyed")
    false = sum(1 for i in items if i["status"] == "destroyed" and i["doc_id"] in present)
    lost = sum(1 for i in items if i["status"] != "destroyed" and i["doc_id"] not in present)
    with sqlite3.connect(work / "state.db") as conn:
        destroyed = [r[0] for r in conn.execute("select details from audit where action = 'document.destroyed'")]
    docs = [json.loads(d)["document"] for d in destroyed]
    return {"duplicates": 0, "lost": lost, "repeated": len(docs) - len(set(docs)), "falsely_reported": false}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--trials", type=int, default=100)
    ap.add_argument("--pupils", type=int, default=120)
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()
    rng = random.Random(a.seed)
    totals = {"duplicates": 0, "lost": 0, "repeated": 0, "falsely_reported": 0}
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp) / "base"
        base.mkdir()
        info = prepare(base, a.pupils)
        dbase = prepare_destruction(base, info["keys"])
        sync_trials = (a.trials + 1) // 2
        for i in range(a.trials):
            work = Path(tmp) / f"t{i}"
            counts = (trial_sync(base, work, a.pupils, rng) if i < sync_trials else trial_destroy(dbase, work, rng))
            for k, v in counts.items():
                totals[k] += v
            shutil.rmtree(work, ignore_errors=True)
    print(f"crash soak: {a.trials} trials ({sync_trials} SIGKILL during sync, {a.trials - sync_trials} during "
          f"destruction execute), {a.pupils} pupils, {time.perf_counter() - started:.0f} s")
    print(f"  killed mid-run: {KILLS['mid_run']}; the process had already ended: {KILLS['after_end']}")
    print(f"  after the restarts: {DONE['dossiers']} dossiers made, {DONE['destroyed']} documents destroyed")
    for k, v in totals.items():
        print(f"  {k}: {v}")
    print(f"anomalies: {sum(totals.values())}")


if __name__ == "__main__":
    main()
