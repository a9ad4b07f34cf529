"""A fleet on disk for tests and ``bench/scale_bench.py``: N schools, each with its own EDEXML
export, filesystem DMS and state schema in one PostgreSQL database, and the fleet file."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, text
from sqlalchemy.exc import ProgrammingError

from examples.synth import Synth, write
from tests.conftest import write_config

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class FleetWorld:
    base: Path
    url: str
    schools: list[str]
    pupils: int
    dms: Path

    @property
    def fleet(self) -> Path:
        return self.base / "fleet.toml"

    def dossiers(self, school: str) -> int:
        return sum(1 for _ in (self.dms / school / "dossiers").glob("*/*"))

    def query(self, school: str | None, sql: str) -> list[tuple[Any, ...]]:
        """Rows from a school's state schema (or, with None, from the queue's schema)."""
        schema = f"school_{school}" if school else "leerdossier_queue"
        engine = create_engine(self.url, connect_args={"options": f"-csearch_path={schema}"})
        try:
            with engine.connect() as conn:
                return [tuple(r) for r in conn.execute(text(sql))]
        finally:
            engine.dispose()

    def jobs(self) -> list[tuple[str, str, int]]:
        """(school, status, attempts) of every sync job (none before a worker made the queue)."""
        try:
            rows = self.query(None, "select args->>'school', status::text, attempts from procrastinate_jobs "
                                    "where task_name = 'leerdossier.sync_school' order by id")
        except ProgrammingError:
            return []
        return [(str(s), str(st), int(a)) for s, st, a in rows]


def make_fleet(base: Path, url: str, schools: int, pupils: int, dms: Path | None = None,
               **fleet: object) -> FleetWorld:
    """``schools`` schools of ``pupils`` made-up pupils each (no leavers, no look-alikes); each
    school's filesystem DMS in ``dms``/<school> (default: ``base``)."""
    dms = dms or base
    (base / "schools").mkdir(parents=True, exist_ok=True)
    names = [f"s{i:03d}" for i in range(schools)]
    for i, name in enumerate(names):
        folder = base / name
        export = folder / "export.xml"
        if not export.exists():  # kept between fleets made in the same folder (the benchmark's runs)
            write(export, Synth(pupils=pupils, seed=100 + i, duplicates=0, leavers=0.0, brin=f"{i % 100:02d}XY"))
        write_config(folder, export, to=base / "schools" / f"{name}.toml",
                     dms={"root": str(dms / name)}, state={"url": url, "schema": f"school_{name}"},
                     identity={"secret": f"file:{folder / 'install.key'}"},
                     safety={"hold_suspected_duplicates": False}, destruction={"output": str(folder / "out")},
                     logging={"level": "WARNING"})
    # no schedule unless asked: a worker starting shortly after an hourly tick would queue it
    settings = {"url": url, "schools": ["schools/*.toml"], "every": "", "heartbeat": 0.5, "stalled_after": 3,
                "stop_timeout": 30, **fleet}
    lines = ["[fleet]"] + [f"{k} = {json.dumps(v)}" for k, v in settings.items()]
    (base / "fleet.toml").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return FleetWorld(base, url, names, pupils, dms)


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "connector.cli", *args], capture_output=True, text=True,
                          env=_env(), check=False)


@dataclass
class Worker:
    proc: subprocess.Popen[bytes]
    log: Path

    def wait(self, timeout: float) -> tuple[int, str]:
        """Exit code and the JSON log (stderr goes to a file: an unread pipe would block the worker)."""
        code = self.proc.wait(timeout=timeout)
        return code, self.log.read_text(encoding="utf-8")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 60) -> tuple[int, str]:
        self.proc.send_signal(sig)
        return self.wait(timeout)


def start_worker(world: FleetWorld, name: str, *extra: str) -> Worker:
    log = world.base / f"worker-{name}.log"
    with log.open("wb") as fh:
        proc = subprocess.Popen([sys.executable, "-m", "connector.cli", "fleet", "worker", "--fleet",
                                 str(world.fleet), "--name", name, *extra],
                                stdout=subprocess.DEVNULL, stderr=fh, env=_env())
    return Worker(proc, log)


def cycles_by_school(log: str) -> list[str]:
    """Schools whose cycle a worker finished, from its JSON log lines."""
    done = []
    for line in log.splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if entry.get("message") == "cycle finished" and "school" in entry:
            done.append(entry["school"])
    return done


def wait_until(check: Any, timeout: float, every: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(every)
    return False


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT)}
