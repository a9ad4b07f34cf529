"""Signing in through a real OpenID Provider: the npm package oidc-provider (installed by .ci/run
into .cache/npm), started here with a test client, driven through its login form in Debian's
Chromium. A user of the install signs in and has their roles; someone the provider knows but
the install does not is refused; both are in the audit log. Marker ``web``: under ``CI=true``
these fail, never skip, without Node.js, the package or Chromium."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from connector.app import open_app
from connector.web.site import build
from tests.conftest import ROOT, need
from tests.e2e.test_retention_cli import js
from tests.web.test_browser import ARGS, CHROMIUM, accessible
from tests.web.test_web_page import Clock, school  # noqa: F401 (a fixture)

pytestmark = pytest.mark.web
MODULES = ROOT / ".cache" / "npm" / "node_modules"
PROVIDER = Path(__file__).parent / "oidc_provider.mjs"
CLIENT_SECRET = "oidc-test-client-secret-0123456789"


def _port() -> socket.socket:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    return sock


@pytest.fixture
def signed_in_site(school: tuple[Path, Clock]) -> Iterator[tuple[str, Path]]:  # noqa: F811
    import uvicorn

    need(shutil.which("node") is not None, "Node.js is not installed")
    need((MODULES / "oidc-provider").is_dir(), "oidc-provider is not installed in .cache/npm (.ci/run does it)")
    need(CHROMIUM.exists(), "Debian's Chromium is not installed (apt-get install chromium)")
    cfg, _clock = school
    web_sock, op_sock = _port(), _port()
    web_port, op_port = web_sock.getsockname()[1], op_sock.getsockname()[1]
    op_sock.close()
    site = f"http://127.0.0.1:{web_port}"
    provider = subprocess.Popen(
        ["node", str(PROVIDER)], env={**os.environ, "PORT": str(op_port), "CLIENT_SECRET": CLIENT_SECRET,
                                      "REDIRECT_URI": f"{site}/aanmelden/oidc/terug",
                                      "NODE_MODULES_DIR": str(MODULES)},
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    discovery = f"http://127.0.0.1:{op_port}/.well-known/openid-configuration"
    deadline = time.monotonic() + 30
    while True:
        try:
            urllib.request.urlopen(discovery, timeout=1).close()
            break
        except OSError:
            if time.monotonic() > deadline or provider.poll() is not None:
                provider.kill()
                out = provider.stdout.read().decode()[-500:]  # type: ignore[union-attr]
                raise AssertionError("oidc-provider did not start: " + out) from None
            time.sleep(0.1)
    (cfg.parent / "oidc.secret").write_text(CLIENT_SECRET, encoding="utf-8")
    os.chmod(cfg.parent / "oidc.secret", 0o600)
    cfg.write_text(cfg.read_text(encoding="utf-8") + "\n[web.oidc]\n"
                   f'discovery_url = "{discovery}"\nclient_id = "leerdossier-test"\n'
                   'client_secret = "file:oidc.secret"\nlabel = "Aanmelden via de school"\n', encoding="utf-8")
    app = open_app(cfg, setup_logging=False)
    server = uvicorn.Server(uvicorn.Config(build(app, time.time), log_level="warning", access_log=False))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [web_sock]}, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    try:
        yield site, cfg
    finally:
        server.should_exit = True
        thread.join(10)
        app.state.close()
        provider.kill()
        provider.wait()


def sign_in(site: str, account: str) -> object:
    from playwright.sync_api import sync_playwright

    p = sync_playwright().start()
    browser = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=ARGS)
    page = browser.new_context(bypass_csp=True).new_page()
    page.goto(f"{site}/aanmelden")
    accessible(page, "aanmelden-school")
    page.get_by_role("button", name="Aanmelden via de school").click()
    page.wait_for_selector("input[name=login]")  # the provider's own login form
    page.fill("input[name=login]", account)
    page.fill("input[name=password]", "anything")
    page.click("button[type=submit]")
    consent = page.locator("button[autofocus], button[type=submit]")
    if "/interaction/" in page.url and consent.count():
        consent.first.click()  # the provider asks to allow the client once
    page.wait_for_url(lambda url: url.startswith(site))
    page.wait_for_load_state()
    page._keep = (p, browser)  # type: ignore[attr-defined]
    return page


def close(page: object) -> None:
    p, browser = page._keep  # type: ignore[attr-defined]
    browser.close()
    p.stop()


def test_a_user_signs_in_through_the_schools_provider_and_a_stranger_is_refused(
        signed_in_site: tuple[str, Path]) -> None:
    site, cfg = signed_in_site
    page = sign_in(site, "approver")
    try:
        assert page.url.rstrip("/") == site, page.content()[-1500:]  # type: ignore[attr-defined]
        assert "approver (beoordelaar)" in page.content()  # type: ignore[attr-defined]
    finally:
        close(page)
    page = sign_in(site, "iemand-anders")
    try:
        assert "geen gebruiker van deze pagina" in page.content()  # type: ignore[attr-defined]
        page.goto(f"{site}/lijsten")  # type: ignore[attr-defined]
        assert "/aanmelden" in page.url  # type: ignore[attr-defined]
    finally:
        close(page)
    _code, log = js("audit", "show", "--config", str(cfg), "--last", "0")
    logins = [(e["actor"], e["action"], e["details"].get("via")) for e in log  # type: ignore[union-attr]
              if e["action"].startswith("web.login")]
    assert ("approver", "web.login", "oidc") in logins and ("(onbekend)", "web.login_failed", "oidc") in logins
