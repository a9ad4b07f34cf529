"""The web page in a real browser (Playwright driving Debian's Chromium, /usr/bin/chromium): the
destruction flow with two people by keyboard only (making, reviewing with an exclusion and its
reason, approving, confirming by typing the name) with a visible focus at every step,
the certificate downloaded, and axe-core (vendored in tests/web/vendor) on every screen with
no violations. Marker ``web``: under ``CI=true`` these fail, never skip, without Chromium.

``LD_SCREENSHOTS=docs/screenshots`` also writes the screenshots the README shows."""

from __future__ import annotations

import contextlib
import os
import re
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import expect

from connector.app import open_app
from connector.web.site import build
from tests.conftest import TEST_SECRET, need
from tests.web.test_web_page import Clock, school  # noqa: F401 (a fixture)

pytestmark = pytest.mark.web
CHROMIUM = Path("/usr/bin/chromium")
AXE = Path(__file__).parent / "vendor" / "axe.min.js"
SHOTS = os.environ.get("LD_SCREENSHOTS")
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    need(CHROMIUM.exists(), "Debian's Chromium is not installed (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=ARGS)
        yield b
        b.close()


@contextlib.contextmanager
def serve(cfg: Path, clock: Clock) -> Iterator[str]:
    """The web page of the install ``cfg`` on a port of its own, on the page clock ``clock``."""
    import uvicorn

    app = open_app(cfg, setup_logging=False)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(build(app, clock), log_level="warning", access_log=False))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.started
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)
        app.state.close()


@pytest.fixture
def site(school: tuple[Path, Clock]) -> Iterator[str]:  # noqa: F811
    cfg, clock = school
    with serve(cfg, clock) as url:
        yield url


def accessible(page: object, name: str) -> None:
    """axe-core on the page as it is now: no WCAG 2.1 A/AA violation; a screenshot if asked."""
    page.add_script_tag(path=str(AXE))  # type: ignore[attr-defined]
    result = page.evaluate("""async () => {
        const tags = ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa'];
        const r = await axe.run(document, {runOnly: {type: 'tag', values: tags}});
        return r.violations.map(v => ({id: v.id, impact: v.impact,
                                       nodes: v.nodes.map(n => n.target.join(' ')).slice(0, 5)}));
    }""")  # type: ignore[attr-defined]
    assert result == [], (name, result)
    if SHOTS:
        Path(SHOTS).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(SHOTS) / f"{name}.png"), full_page=True)  # type: ignore[attr-defined]


def log_in(browser: object, site: str, name: str, javascript: bool = True) -> object:
    context = browser.new_context(bypass_csp=True, accept_downloads=True,  # type: ignore[attr-defined]
                                  java_script_enabled=javascript)
    page = context.new_page()
    page.goto(f"{site}/")
    assert "/aanmelden" in page.url
    page.get_by_label("Gebruikersnaam").fill(name)
    page.get_by_label("Wachtwoord").fill(TEST_SECRET)
    page.get_by_role("button", name="Aanmelden").click()
    page.wait_for_url(f"{site}/")
    return page


def follow(page: object, name: str, exact: bool = False) -> None:
    """Click the link ``name`` and wait until its page has loaded: a check on a page that is
    still being left finds no document to work on."""
    with page.expect_navigation(wait_until="load"):  # type: ignore[attr-defined]
        page.get_by_role("link", name=name, exact=exact).click()  # type: ignore[attr-defined]


def tab_to(page: object, element_id: str, limit: int = 200) -> None:
    """Move the focus with the Tab key only until it is on ``element_id``; it must be visible."""
    for _ in range(limit):
        page.keyboard.press("Tab")  # type: ignore[attr-defined]
        if page.evaluate("document.activeElement && document.activeElement.id") == element_id:  # type: ignore[attr-defined]
            outline = page.evaluate("getComputedStyle(document.activeElement).outlineStyle")  # type: ignore[attr-defined]
            assert outline != "none", f"no visible focus on #{element_id}"
            return
    raise AssertionError(f"#{element_id} cannot be reached with the keyboard")


def test_the_destruction_flow_in_a_browser(browser: object, site: str, tmp_path: Path) -> None:
    login_page = browser.new_context(bypass_csp=True).new_page()  # type: ignore[attr-defined]
    login_page.goto(f"{site}/aanmelden")
    accessible(login_page, "aanmelden")

    maker = log_in(browser, site, "maker")
    accessible(maker, "overzicht")
    follow(maker, "Lijsten", exact=True)
    accessible(maker, "lijsten")
    tab_to(maker, "nieuwe-lijst")  # the whole flow by keyboard only, each focus visible
    with maker.expect_navigation():
        maker.keyboard.press("Enter")
    maker.wait_for_url(re.compile(r"/lijsten/\d+$"))
    list_url = maker.url
    list_id = list_url.rsplit("/", 1)[1]
    assert maker.get_by_role("button", name=re.compile("Goedkeuren")).count() == 0

    approver = log_in(browser, site, "approver")
    approver.goto(list_url)
    accessible(approver, "lijst-beoordelen")
    boxes = approver.locator("input[type=checkbox]")
    assert boxes.count() == 2
    first = boxes.nth(0).get_attribute("id").removeprefix("uit-")
    tab_to(approver, f"uit-{first}")
    approver.keyboard.press("Space")
    assert approver.get_by_label(f"Document {first} uitzonderen").is_checked()
    tab_to(approver, f"reden-{first}")
    approver.keyboard.type("nog nodig voor een bezwaarprocedure")
    tab_to(approver, "functie")
    approver.keyboard.type("directeur")
    tab_to(approver, "goedkeuren")
    with approver.expect_navigation():
        approver.keyboard.press("Enter")
    assert "nog nodig voor een bezwaarprocedure" in approver.content()

    maker.goto(list_url)
    accessible(maker, "lijst-uitvoeren")
    tab_to(maker, "bevestiging")  # the executor's part by keyboard only
    maker.keyboard.type(f"vernietigingslijst {list_id}")
    with maker.expect_navigation():
        maker.keyboard.press("Enter")
    expect(maker.get_by_text("1 document(en) verwijderd;")).to_be_visible(timeout=30_000)  # htmx follows the run
    accessible(maker, "lijst-uitgevoerd")
    with maker.expect_download() as download:
        maker.get_by_role("link", name="PDF").first.click()
    saved = tmp_path / "verklaring.pdf"
    download.value.save_as(saved)
    assert saved.read_bytes().startswith(b"%PDF")

    follow(maker, "Bewaarplichten")
    accessible(maker, "bewaarplichten")
    follow(maker, "Verzoeken")
    accessible(maker, "verzoeken")
    follow(maker, "Wacht op een persoon")
    accessible(maker, "wacht-op-een-persoon")
    follow(maker, "Volledigheid")
    accessible(maker, "volledigheid")
    follow(maker, "Leerling", exact=True)
    accessible(maker, "leerling-vragen")
    maker.get_by_label(re.compile("^Leerling")).fill("LL000004")
    maker.get_by_label(re.compile("^Waarom u het dossier")).fill("controle dossier")
    with maker.expect_navigation():
        maker.get_by_role("button", name="Inzien").click()
    assert "gegevens van de leerling ingezien" in maker.content()
    accessible(maker, "leerling")


def test_the_admins_screens_in_a_browser(browser: object, site: str) -> None:
    admin = log_in(browser, site, "admin")
    follow(admin, "Gebruikers")
    accessible(admin, "gebruikers")
    follow(admin, "Logboek")
    accessible(admin, "logboek")
    admin.get_by_label("Gebruiker", exact=True).fill("admin")
    admin.get_by_label("Gebeurtenis").select_option(label="aangemeld")
    with admin.expect_navigation():
        admin.get_by_role("button", name="Filteren").click()
    assert "aangemeld" in admin.content()


def test_a_teacher_is_refused_in_a_browser_too(browser: object, site: str) -> None:
    juf = log_in(browser, site, "juf")
    assert "niet de rol" in juf.content()
    juf.goto(f"{site}/lijsten")
    assert "niet de rol" in juf.content()
    accessible(juf, "geweigerd")


def test_the_safeguards_in_a_browser(browser: object, school: tuple[Path, Clock]) -> None:  # noqa: F811
    """Through the browser: a form without its CSRF token and a maker approving their own list are
    refused by the server; the cooling-off period shows its countdown and holds the execution on
    the install's simulated clock; a session ends after its idle time; a request is registered,
    extended and answered."""
    cfg, clock = school
    cfg.write_text(cfg.read_text(encoding="utf-8").replace("cooling_off_days = 0", "cooling_off_days = 7"),
                   encoding="utf-8")
    with serve(cfg, clock) as site:
        maker = log_in(browser, site, "maker")
        follow(maker, "Lijsten", exact=True)
        with maker.expect_navigation():  # type: ignore[attr-defined]
            maker.get_by_role("button", name="Nieuwe vernietigingslijst opstellen").click()  # type: ignore[attr-defined]
        list_url = maker.url  # type: ignore[attr-defined]
        csrf = maker.locator("input[name=csrf]").first.get_attribute("value")  # type: ignore[attr-defined]
        own = maker.request.post(f"{list_url}/goedkeuren", form={"csrf": csrf})  # type: ignore[attr-defined]
        assert own.status == 403 and "niet" in own.text()  # four eyes, enforced by the server
        forged = maker.request.post(f"{list_url}/annuleren", form={"reden": "zonder token"})  # type: ignore[attr-defined]
        assert forged.status == 403  # no CSRF token: refused before any page code

        approver = log_in(browser, site, "approver")
        approver.goto(list_url)  # type: ignore[attr-defined]
        approver.get_by_label(re.compile("^Uw functie")).fill("directeur")  # type: ignore[attr-defined]
        with approver.expect_navigation():  # type: ignore[attr-defined]
            approver.get_by_role("button", name=re.compile("^Goedkeuren")).click()  # type: ignore[attr-defined]
        maker.goto(list_url)  # type: ignore[attr-defined]
        expect(maker.locator("#afkoelperiode")).to_contain_text("nog 7 dagen")  # type: ignore[attr-defined]
        assert maker.get_by_role("button", name="Lijst uitvoeren").count() == 0  # type: ignore[attr-defined]
        accessible(maker, "afkoelperiode")

        clock.now += 8 * 86400  # a week later on the simulated clock: both sessions have ended
        maker.goto(list_url)  # type: ignore[attr-defined]
        expect(maker.get_by_text("Uw sessie is verlopen")).to_be_visible()  # type: ignore[attr-defined]
        maker = log_in(browser, site, "maker")
        maker.goto(list_url)  # type: ignore[attr-defined]
        list_id = list_url.rsplit("/", 1)[1]
        maker.get_by_label(re.compile("^Typ ter bevestiging")).fill(f"vernietigingslijst {list_id}")  # type: ignore[attr-defined]
        with maker.expect_navigation():  # type: ignore[attr-defined]
            maker.get_by_role("button", name="Lijst uitvoeren").click()  # type: ignore[attr-defined]
        expect(maker.get_by_text("document(en) verwijderd;")).to_be_visible(timeout=30_000)  # type: ignore[attr-defined]

        approver = log_in(browser, site, "approver")  # answering a request is an approver's
        follow(approver, "Verzoeken")
        approver.get_by_label(re.compile("^Leerling")).fill("LL000004")  # type: ignore[attr-defined]
        approver.get_by_label("Soort verzoek").select_option(label="inzage")  # type: ignore[attr-defined]
        approver.get_by_label(re.compile("^Wie vraagt het")).fill("pupil")  # type: ignore[attr-defined]
        with approver.expect_navigation():  # type: ignore[attr-defined]
            approver.get_by_role("button", name="Verzoek vastleggen").click()  # type: ignore[attr-defined]
        accessible(approver, "verzoek-open")
        extend = approver.get_by_role("button", name=re.compile(r"^Verzoek \d+ verlengen"))  # type: ignore[attr-defined]
        request_id = re.search(r"\d+", extend.inner_text()).group(0)  # type: ignore[union-attr]
        approver.get_by_label("Reden voor verlenging").fill("veel stukken")  # type: ignore[attr-defined]
        with approver.expect_navigation():  # type: ignore[attr-defined]
            extend.click()
        assert approver.get_by_role("button", name=f"Verzoek {request_id} verlengen").count() == 0  # type: ignore[attr-defined]
        approver.get_by_label("Wat is er gedaan (geen persoonsgegevens)").fill("inzage gegeven")  # type: ignore[attr-defined]
        with approver.expect_navigation():  # type: ignore[attr-defined]
            approver.get_by_role("button", name=f"Verzoek {request_id} afhandelen").click()  # type: ignore[attr-defined]
        assert approver.get_by_role("button", name=f"Verzoek {request_id} afhandelen").count() == 0  # type: ignore[attr-defined]


def test_the_destruction_flow_without_javascript(browser: object, site: str) -> None:
    """Every action is a form the server answers: with JavaScript off a list is made, approved and
    carried out, and its progress is followed by the link the page gives."""
    maker = log_in(browser, site, "maker", javascript=False)
    follow(maker, "Lijsten", exact=True)
    with maker.expect_navigation():  # type: ignore[attr-defined]
        maker.get_by_role("button", name="Nieuwe vernietigingslijst opstellen").click()  # type: ignore[attr-defined]
    list_url = maker.url  # type: ignore[attr-defined]
    list_id = list_url.rsplit("/", 1)[1]
    approver = log_in(browser, site, "approver", javascript=False)
    approver.goto(list_url)  # type: ignore[attr-defined]
    approver.get_by_label(re.compile("^Uw functie")).fill("directeur")  # type: ignore[attr-defined]
    with approver.expect_navigation():  # type: ignore[attr-defined]
        approver.get_by_role("button", name=re.compile("^Goedkeuren")).click()  # type: ignore[attr-defined]
    maker.goto(list_url)  # type: ignore[attr-defined]
    maker.get_by_label(re.compile("^Typ ter bevestiging")).fill(f"vernietigingslijst {list_id}")  # type: ignore[attr-defined]
    with maker.expect_navigation():  # type: ignore[attr-defined]
        maker.get_by_role("button", name="Lijst uitvoeren").click()  # type: ignore[attr-defined]
    deadline = time.monotonic() + 30
    while "document(en) verwijderd;" not in maker.content():  # type: ignore[attr-defined]
        assert time.monotonic() < deadline, "the execution did not end"
        time.sleep(0.2)
        follow(maker, "Stand bijwerken")
    assert "Verklaring van vernietiging" in maker.content()  # type: ignore[attr-defined]
