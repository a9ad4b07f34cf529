"""A real Mayan EDMS for the tests: installed from PyPI into its own virtual environment,
started headless on 127.0.0.1 with SQLite and no broker (Celery eager mode), stopped at the end.

    python -m tests.integration.mayan_server install    # venv + initialised media template (cached)
    python -m tests.integration.mayan_server serve      # start one and print URL and token; Ctrl-C stops

The venv and an initialised media folder are cached under ``.cache/mayan/`` (override with
``LEERDOSSIER_MAYAN_CACHE``); each test session gets a fresh copy of the media folder, so a
start takes seconds once the cache exists. The recipe follows the Mayan notes in the project's
shared research: eager settings module, Django search backend, throttling off unless asked.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

VERSION = "4.12.2"
ROOT = Path(__file__).resolve().parents[2]
CACHE = Path(os.environ.get("LEERDOSSIER_MAYAN_CACHE", ROOT / ".cache" / "mayan"))
ADMIN, PASSWORD = "admin", "admin-pass-leerdossier-123"
APT_PACKAGES = ("gcc", "libldap2-dev", "libsasl2-dev")  # python-ldap, a hard dependency, builds from source

SETTINGS = """\
from mayan.settings.production import *  # noqa

CELERY_TASK_ALWAYS_EAGER = True
CELERY_TASK_EAGER_PROPAGATES = False
STORAGES['staticfiles'] = {'BACKEND': 'django.contrib.staticfiles.storage.StaticFilesStorage'}
DATABASES['default'].setdefault('OPTIONS', {}).update({'timeout': 30, 'transaction_mode': 'IMMEDIATE'})
"""


USER_PASSWORD = "Leerdossier-test-987!"


class MayanUnavailable(RuntimeError):
    """Mayan could not be installed or started here."""


def _run(cmd: list[str], env: dict[str, str] | None = None, timeout: float = 900) -> None:
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        tail = (proc.stdout + proc.stderr)[-2000:]
        raise MayanUnavailable(f"{' '.join(cmd[:3])} failed ({proc.returncode}):\n{tail}")


def _env(media: Path, throttle: bool = False) -> dict[str, str]:
    env = dict(os.environ)
    env.update({
        "MAYAN_MEDIA_ROOT": str(media),
        "PYTHONPATH": str(CACHE / "conf"),
        "DJANGO_SETTINGS_MODULE": "mayan_eager_settings",
        "MAYAN_SEARCH_BACKEND": "mayan.apps.dynamic_search.backends.django.DjangoSearchBackend",
        "MAYAN_REST_API_THROTTLING_ENABLED": "true" if throttle else "false",
        "MAYAN_AUTOADMIN_USERNAME": ADMIN, "MAYAN_AUTOADMIN_PASSWORD": PASSWORD,
        "MAYAN_AUTOADMIN_EMAIL": "admin@example.invalid",
        "PYTHONWARNINGS": "ignore",
    })
    return env


def install() -> Path:
    """The venv with Mayan and an initialised media template; idempotent and cached."""
    venv = CACHE / "venv"
    mayan = venv / "bin" / "mayan-edms.py"
    if not mayan.exists():
        if shutil.which("apt-get") and os.geteuid() == 0 and not (_have_headers() and shutil.which("cc")):
            _run(["apt-get", "update", "-qq"])
            _run(["apt-get", "install", "-y", "-qq", *APT_PACKAGES])
        CACHE.mkdir(parents=True, exist_ok=True)
        _run([sys.executable, "-m", "venv", str(venv)])
        _run([str(venv / "bin" / "pip"), "install", "-q", f"mayan-edms=={VERSION}"])
    conf = CACHE / "conf"
    conf.mkdir(parents=True, exist_ok=True)
    (conf / "mayan_eager_settings.py").write_text(SETTINGS)
    template = CACHE / "media-template"
    if not (template / "db.sqlite3").exists() and not any(template.glob("*.sqlite3")):
        shutil.rmtree(template, ignore_errors=True)
        _run([str(mayan), "common_initial_setup", "--no-dependencies"], env=_env(template))
    return template


def _have_headers() -> bool:
    return Path("/usr/include/lber.h").exists() and Path("/usr/include/sasl/sasl.h").exists()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Server:
    url: str
    token: str
    process: subprocess.Popen[bytes]
    media: Path
    log: Path

    def _admin(self) -> httpx.Client:
        return httpx.Client(base_url=f"{self.url}/api/v4", timeout=30.0,
                            headers={"Accept": "application/json", "Authorization": f"Token {self.token}"})

    def ensure_user(self, username: str, groups: tuple[str, ...] = ()) -> None:
        """A Mayan user (password USER_PASSWORD) in these groups, made as an admin would."""
        with self._admin() as c:
            users = c.get("/users/", params={"page_size": 1000}).json()["results"]
            user = next((u for u in users if u["username"] == username), None)
            if user is None:
                user = c.post("/users/", json={"username": username, "password": USER_PASSWORD}).json()
            for name in groups:
                found = [g for g in c.get("/groups/", params={"page_size": 1000}).json()["results"]
                         if g["name"] == name]
                group = found[0] if found else c.post("/groups/", json={"name": name}).json()
                c.post(f"/groups/{group['id']}/users/add/", json={"user": user["id"]}).raise_for_status()

    def visible_documents(self, username: str) -> set[str]:
        """The ids of the documents ``username`` sees when logged in as that user."""
        with httpx.Client(base_url=f"{self.url}/api/v4", timeout=30.0, auth=(username, USER_PASSWORD),
                          headers={"Accept": "application/json"}) as c:
            seen: set[str] = set()
            url: str | None = "/documents/?page_size=100"
            while url:
                page = c.get(url)
                page.raise_for_status()
                data = page.json()
                seen |= {str(d["id"]) for d in data["results"]}
                url = data.get("next")
            return seen

    def _as(self, username: str) -> httpx.Client:
        return httpx.Client(base_url=f"{self.url}/api/v4", timeout=30.0, auth=(username, USER_PASSWORD),
                            headers={"Accept": "application/json"})

    def visible_cabinets(self, username: str) -> set[int]:
        """The ids of the cabinets ``username`` sees when logged in as that user."""
        with self._as(username) as c:
            page = c.get("/cabinets/?page_size=1000")
            page.raise_for_status()
            return {int(x["id"]) for x in page.json()["results"]}

    def metadata_seen(self, username: str, document_id: str) -> dict[str, str]:
        """The metadata of a document as ``username`` reads it (empty when none is readable)."""
        with self._as(username) as c:
            page = c.get(f"/documents/{document_id}/metadata/?page_size=100")
            if page.status_code in (403, 404):
                return {}
            page.raise_for_status()
            return {m["metadata_type"]["name"]: m["value"] for m in page.json()["results"]}

    def stop(self) -> None:
        """Stop gunicorn and its workers: the whole process group (killing only the master
        would leave a worker serving on)."""
        group = self.process.pid  # the master leads a process group of its own (start_new_session)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(group, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=20)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(group, signal.SIGKILL)  # whatever is left of it, workers included
        self.process.wait(timeout=10)
        shutil.rmtree(self.media.parent, ignore_errors=True)


def start(throttle: bool = False, timeout: float = 120.0) -> Server:
    """A fresh Mayan on a free loopback port, with an admin API token."""
    template = install()
    work = Path(tempfile.mkdtemp(prefix="mayan-"))
    media = work / "media"
    shutil.copytree(template, media, symlinks=True)
    for stale in ("config.yml", "config_backup.yml"):  # absolute paths of the template folder
        with contextlib.suppress(FileNotFoundError):
            (media / stale).unlink()
    port = _free_port()
    log = work / "gunicorn.log"
    gunicorn = CACHE / "venv" / "bin" / "gunicorn"
    with open(log, "wb") as fh:
        process = subprocess.Popen(
            [str(gunicorn), "mayan.wsgi:application", "--bind", f"127.0.0.1:{port}", "--workers", "1",
             "--timeout", "120", "--no-control-socket"],
            env=_env(media, throttle), stdout=fh, stderr=subprocess.STDOUT, cwd=work,
            start_new_session=True, preexec_fn=_die_with_parent,
        )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + timeout
    with httpx.Client(timeout=10.0, headers={"Accept": "application/json"}) as client:
        while True:
            if process.poll() is not None:
                raise MayanUnavailable(f"gunicorn exited ({process.returncode}); log: {log}")
            try:
                r = client.post(f"{url}/api/v4/auth/token/obtain/", json={"username": ADMIN, "password": PASSWORD})
                if r.status_code == 200:
                    return Server(url, r.json()["token"], process, media, log)
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                os.killpg(process.pid, signal.SIGKILL)
                raise MayanUnavailable(f"Mayan did not answer within {timeout:.0f} s; log: {log}")
            time.sleep(0.5)


def _die_with_parent() -> None:
    """In the child before exec: the kernel sends gunicorn SIGTERM when the process that started
    it dies, however it dies (a killed test session leaves no Mayan behind)."""
    import ctypes

    pr_set_pdeathsig = 1
    ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)


def _stop_on_sigterm(signum: int, _frame: object) -> None:
    raise KeyboardInterrupt  # so that ``serve``'s finally stops the server


def main() -> None:
    what = sys.argv[1] if len(sys.argv) > 1 else "serve"
    if what == "install":
        print(install())
        return
    signal.signal(signal.SIGTERM, _stop_on_sigterm)
    server = start()
    print(f"MAYAN_URL={server.url}\nMAYAN_TOKEN={server.token}", flush=True)
    try:
        server.process.wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()


if __name__ == "__main__":
    main()
