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
    for bad in ("0.0.0.0:9464", "192.168.1.2:80", "localhost", "127.0.0.1:x"):
        with pytest.raises(ConfigError):
            loopback(bad)
