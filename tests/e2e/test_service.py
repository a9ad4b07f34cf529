"""``leerdossier run`` as a real process: it syncs on its schedule, answers /healthz and
/metrics on loopback, refuses a second instance, and stops cleanly on SIGTERM."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from connector.errors import ConfigError
from connector.service import Schedule, loopback
from examples.synth import Synth, write
from tests.conftest import write_config

ROOT = Path(__file__).resolve().parents[2]


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _start(config: Path) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([sys.executable, "-m", "connector.cli", "run", "--config", str(config)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


def _wait_healthy(url: str, proc: subprocess.Popen[str], timeout: float = 60) -> dict[str, object]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
        try:
            r = httpx.get(f"{url}/healthz", timeout=2)
            if r.status_code == 200 and r.json()["last_success"]:
                return dict(r.json())
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise AssertionError("the service did not become healthy")


def test_the_service_syncs_serves_health_and_metrics_and_stops_on_sigterm(tmp_path: Path) -> None:
    export = write(tmp_path / "export.xml", Synth(pupils=20, duplicates=0))
    port = _port()
    config = write_config(tmp_path, export, service={"every": "2s", "listen": f"127.0.0.1:{port}"},
                          logging={"level": "INFO"})
    proc = _start(config)
    url = f"http://127.0.0.1:{port}"
    try:
        health = _wait_healthy(url, proc)
        assert health["status"] == "ok" and health["last_status"] == "ok"
        metrics = httpx.get(f"{url}/metrics", timeout=2).text
        assert 'leerdossier_runs_total{status="ok"}' in metrics
        assert 'leerdossier_operations_total{kind="create_dossier",outcome="done"} 20.0' in metrics
        assert "leerdossier_dms_latency_seconds_bucket" in metrics
        assert httpx.get(f"{url}/other", timeout=2).status_code == 404

        second = _start(config)  # another instance on the same state: refused, nothing changed
        assert second.wait(timeout=60) == 3
        time.sleep(2.5)  # at least one more cycle on the interval
        runs = httpx.get(f"{url}/metrics", timeout=2).text
        assert 'leerdossier_runs_total{status="ok"} 1.0' not in runs  # more than one cycle by now
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            code = proc.wait(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
    assert code == 0
    lines = [json.loads(line) for line in (proc.stderr.read() if proc.stderr else "").splitlines() if line]
    assert any(x["message"] == "service stopped" for x in lines)  # JSON logs, one object per line
    text = json.dumps(lines)
    assert "Synth" not in text and "bsn" not in text.lower()


def test_schedule_and_listen_are_checked() -> None:
    at = datetime(2026, 11, 24, 7, 0, tzinfo=UTC)
    assert Schedule("15m", None).next_after(at) == datetime(2026, 11, 24, 7, 15, tzinfo=UTC)
    cron = Schedule(None, "30 6 * * 1-5").next_after(at)
    assert (cron.hour, cron.minute) == (6, 30) and cron > at
    for bad in ((None, None), ("1h", "* * * * *"), ("soon", None), (None, "not cron")):
        with pytest.raises(ConfigError):
            Schedule(*bad)
    assert loopback("127.0.0.1:9464") == ("127.0.0.1", 9464) and loopback("[::1]:9") == ("::1", 9)
    for bad in ("0.0.0.0:9464", "192.168.1.2:80", "localhost", "127.0.0.1:x", "127.0.0.1:99999", "127.0.0.1:0"):
        with pytest.raises(ConfigError):
            loopback(bad)


def test_sigterm_during_a_sync_halts_cleanly_and_the_next_run_finishes(tmp_path: Path) -> None:
    import sqlite3

    pupils = 1500
    export = write(tmp_path / "export.xml", Synth(pupils=pupils, duplicates=0, leavers=0.0))
    port = _port()
    config = write_config(tmp_path, export, service={"every": "1h", "listen": f"127.0.0.1:{port}"},
                          safety={"hold_suspected_duplicates": False})
    proc = _start(config)
    deadline = time.monotonic() + 60
    created = 0
    while created < 50 and time.monotonic() < deadline:  # mid-sync: some dossiers made, most not
        try:
            with sqlite3.connect(f"file:{tmp_path / 'state.db'}?mode=ro", uri=True, timeout=0.1) as conn:
                created = conn.execute("select count(*) from dossiers where ref_id is not null").fetchone()[0]
        except sqlite3.Error:
            pass
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    started = time.monotonic()
    code = proc.wait(timeout=30)
    assert code == 0 and time.monotonic() - started < 15
    with sqlite3.connect(tmp_path / "state.db") as conn:
        status = conn.execute("select status from runs where kind = 'sync' order by id desc").fetchone()[0]
        made = conn.execute("select count(*) from dossiers where ref_id is not null").fetchone()[0]
        sent = conn.execute("select count(*) from journal where status = 'sent'").fetchone()[0]
    assert status == "halted" and 0 < made < pupils
    assert sent == 0  # nothing half-done: every operation sent was finished and recorded
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    after = subprocess.run([sys.executable, "-m", "connector.cli", "sync", "--config", str(config), "--json"],
                           capture_output=True, text=True, env=env, check=False)
    assert after.returncode == 0, after.stderr[-2000:]
    report = json.loads(after.stdout)
    assert report["resumed"] > 0 or report["dossiers_created"] > 0
    assert len(list((tmp_path / "dms" / "dossiers").glob("*/*"))) == pupils  # one dossier per pupil
