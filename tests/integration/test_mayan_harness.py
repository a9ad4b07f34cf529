"""The test Mayan stops when it is told to: SIGTERM to ``mayan_server serve`` leaves no gunicorn
master or worker serving (before, the master's workers outlived it)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import httpx
import pytest

from tests.integration.mayan_server import ROOT


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.mark.mayan
def test_the_test_mayan_is_gone_after_sigterm() -> None:
    serve = subprocess.Popen([sys.executable, "-m", "tests.integration.mayan_server", "serve"], cwd=ROOT,
                             stdout=subprocess.PIPE, text=True)
    try:
        assert serve.stdout is not None
        url = serve.stdout.readline().strip().removeprefix("MAYAN_URL=")
        assert url.startswith("http://127.0.0.1:"), url
        assert httpx.get(f"{url}/api/v4/", timeout=30).status_code in (200, 401, 403)
        port = int(url.rsplit(":", 1)[1])
        gunicorn = [int(p) for p in os.listdir("/proc") if p.isdigit() and _listens(int(p), port)]
        serve.send_signal(signal.SIGTERM)
        assert serve.wait(timeout=60) is not None
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and any(_running(p) for p in gunicorn):
            time.sleep(0.2)
        assert not any(_running(p) for p in gunicorn)
        with pytest.raises(httpx.TransportError):
            httpx.get(f"{url}/api/v4/", timeout=5)
    finally:
        if serve.poll() is None:
            serve.kill()


def _running(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def _listens(pid: int, port: int) -> bool:
    """Whether the process holds the listening socket of ``port`` (the gunicorn master and workers)."""
    try:
        inodes = {os.readlink(f"/proc/{pid}/fd/{fd}") for fd in os.listdir(f"/proc/{pid}/fd")}
    except (FileNotFoundError, PermissionError):
        return False
    with open("/proc/net/tcp") as fh:
        for line in fh.readlines()[1:]:
            cols = line.split()
            if int(cols[1].split(":")[1], 16) == port and cols[3] == "0A" and f"socket:[{cols[9]}]" in inodes:
                return True
    return False
