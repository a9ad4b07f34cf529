"""The web page through HTTP (Starlette's test client, no browser): login and its rate limit,
the CSRF check on every form, roles enforced on the server, the session's idle end, the whole
destruction flow with two people (an exclusion with its reason, the typed confirmation, the
certificate), holds, and an audited view of a pupil. Every page is Dutch and loads nothing
from another host."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from connector.app import open_app
from connector.web.site import build
from tests.conftest import TEST_SECRET, add_users
from tests.e2e.test_retention_cli import drop, js, setup

USERS = {"admin": ["admin"], "maker": ["maker", "executor"], "approver": ["approver"],
         "juf": ["teacher"], "fg": ["privacy"]}


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def school(tmp_path: Path) -> Iterator[tuple[Path, Clock]]:
    cfg, export = setup(tmp_path)
    add_users(cfg, {k: v for k, v in USERS.items() if k in ("juf", "fg")})
    drop(export, "LL000003")
    assert js("sync", "--config", str(cfg), "--accept-snapshot", "--by", "test")[0] == 0
    code, _ = js("pupil", "left", "--config", str(cfg), "LL000003", "--date", "2023-07-01",
                 "--as", "maker", "--secret", "env:LD_TEST_SECRET")
    assert code == 0
    yield cfg, Clock()


def client(cfg: Path, clock: Clock) -> TestClient:
    app = open_app(cfg, setup_logging=False)
    return TestClient(build(app, clock), base_url="https://testserver")


def token(c: TestClient, path: str) -> str:
    page = c.get(path)
    m = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert m, page.text[:500]
    return m.group(1)


def login(c: TestClient, name: str, secret: str = TEST_SECRET) -> None:
    r = c.post("/aanmelden", data={"naam": name, "wachtwoord": secret, "csrf": token(c, "/aanmelden"),
                                   "terug": "/"}, follow_redirects=False)
    assert r.status_code == 303, r.text[:300]


def post(c: TestClient, path: str, page: str, **data: str) -> object:
    return c.post(path, data={"csrf": token(c, page), **data}, follow_redirects=False)


def executed(c: TestClient, url: str) -> str:
    """The list page once its execution (which runs in the background) has ended."""
    import time

    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        page = c.get(url).text
        if "Bezig met uitvoeren" not in page:
            return page
        time.sleep(0.1)
    raise AssertionError("the execution did not end")


ENGLISH = re.compile(r"\b(the|and|list|approved?|rejected|pending|listed|destroyed|skipped|draft|executed|"
                     r"cancelled|error|cancel|submit|login|password|none|true|false)\b"
                     r"|\b(dossier|document|destruction|web|fact|hold|request|sync|user|grant|guardian)\.[a-z_]+", re.I)
"""English words, and the audit log's event codes, that a page must not show."""


def visible_text(html: str) -> str:
    html = re.sub(r"<(script|style)[^>]*>.*?</\1>", " ", html, flags=re.S)
    return re.sub(r"<[^>]+>", " ", html)


def rows(html: str) -> str:
    """The rows of a page's table, without its filter form."""
    return "".join(re.findall(r"<tbody.*?</tbody>", html, flags=re.S))


def test_login_roles_and_the_whole_destruction_flow(school: tuple[Path, Clock]) -> None:
    cfg, clock = school
    maker, approver = client(cfg, clock), client(cfg, clock)
    assert maker.get("/", follow_redirects=False).headers["location"].startswith("/aanmelden")
    login(maker, "maker")
    overview = maker.get("/")
    assert overview.status_code == 200 and "Wat binnenkort vernietigd mag worden" in overview.text
    r = post(maker, "/lijsten", "/lijsten")
    assert r.status_code == 303
    list_url = r.headers["location"]
    page = maker.get(list_url).text
    assert "vernietigingslijst" in page and "goedkeuren" not in page  # the maker cannot approve it
    list_id = list_url.rsplit("/", 1)[1]

    # the maker approving their own list is refused by the server, not only by a hidden button
    r = post(maker, f"/lijsten/{list_id}/goedkeuren", list_url)
    assert r.status_code == 403

    login(approver, "approver")
    page = approver.get(list_url).text
    items = re.findall(r'name="uitzonderen-(\d+)"', page)
    assert len(items) == 2
    # an exclusion needs its reason
    r = post(approver, f"/lijsten/{list_id}/goedkeuren", list_url, **{f"uitzonderen-{items[0]}": "1"})
    assert r.status_code == 400 and "reden" in r.text
    r = post(approver, f"/lijsten/{list_id}/goedkeuren", list_url, functie="directeur",
             **{f"uitzonderen-{items[0]}": "1", f"reden-{items[0]}": "nog nodig voor bezwaar"})
    assert r.status_code == 303
    page = approver.get(list_url).text
    assert "goedgekeurd" in page and "nog nodig voor bezwaar" in page
    assert not ENGLISH.findall(visible_text(page))
    assert "Lijst uitvoeren" not in page  # an approver does not execute

    # the executor confirms by typing the list's name; a wrong name removes nothing
    r = post(maker, f"/lijsten/{list_id}/uitvoeren", list_url, bevestiging="lijst")
    assert r.status_code == 400 and "vernietigingslijst" in r.text
    r = post(maker, f"/lijsten/{list_id}/uitvoeren", list_url, bevestiging=f"Vernietigingslijst {list_id}")
    assert r.status_code == 303
    page = executed(maker, list_url)
    assert "1 document(en) verwijderd" in page
    assert not ENGLISH.findall(visible_text(page)), ENGLISH.findall(visible_text(page))
    assert not ENGLISH.findall(visible_text(maker.get("/lijsten").text))
    cert = maker.get(f"/lijsten/{list_id}/verklaring.pdf")
    assert cert.status_code == 200 and cert.content.startswith(b"%PDF")
    assert "attachment" in cert.headers["content-disposition"]


def test_a_teacher_sees_no_list_and_the_privacy_officer_reads_only(school: tuple[Path, Clock]) -> None:
    cfg, clock = school
    juf, fg = client(cfg, clock), client(cfg, clock)
    login(juf, "juf")
    for path in ("/", "/lijsten", "/bewaren", "/leerling", "/logboek", "/lijsten/1"):
        assert juf.get(path).status_code == 403, path
    assert post(juf, "/lijsten", "/aanmelden").status_code == 403
    login(fg, "fg")
    assert fg.get("/lijsten").status_code == 200 and fg.get("/logboek").status_code == 200
    assert "Nieuwe vernietigingslijst" not in fg.get("/lijsten").text
    assert post(fg, "/lijsten", "/lijsten").status_code == 403


def test_every_form_needs_its_csrf_token(school: tuple[Path, Clock]) -> None:
    cfg, clock = school
    c = client(cfg, clock)
    login(c, "maker")
    for path in ("/lijsten", "/bewaren", "/afmelden", "/aanmelden", "/leerling"):
        r = c.post(path, data={"reden": "x"}, follow_redirects=False)
        assert r.status_code == 403 and "formulier is verlopen" in r.text, path
        r = c.post(path, data={"reden": "x", "csrf": "wrong"}, follow_redirects=False)
        assert r.status_code == 403, path
    assert js("destruction", "list", "show", "--config", str(cfg), "1")[0] != 0  # no list was made


def test_logins_are_limited_audited_and_a_session_ends_when_idle(school: tuple[Path, Clock]) -> None:
    cfg, clock = school
    c = client(cfg, clock)
    for _ in range(5):
        r = c.post("/aanmelden", data={"naam": "maker", "wachtwoord": "wrong-secret-1234",
                                       "csrf": token(c, "/aanmelden")})
        assert r.status_code == 401
    r = c.post("/aanmelden", data={"naam": "maker", "wachtwoord": TEST_SECRET, "csrf": token(c, "/aanmelden")})
    assert r.status_code == 429 and "Te veel mislukte pogingen" in r.text  # even the right secret waits
    clock.now += 16 * 60
    login(c, "maker")
    assert c.get("/").status_code == 200
    clock.now += 31 * 60  # [web] idle_minutes = 30
    r = c.get("/", follow_redirects=False)
    assert r.status_code == 303 and "verlopen=1" in r.headers["location"]
    assert "Uw sessie is verlopen" in c.get(r.headers["location"]).text
    code, log = js("audit", "show", "--config", str(cfg), "--last", "0")
    assert code == 0
    actions = [e["action"] for e in log]  # type: ignore[union-attr]
    assert actions.count("web.login_failed") == 5 and actions.count("web.login") == 1
    assert "web.logout" in actions
    assert not any(e["actor"] == "wrong-secret-1234" for e in log)  # type: ignore[union-attr]


def test_holds_and_an_audited_view_of_a_pupil(school: tuple[Path, Clock]) -> None:
    cfg, clock = school
    c = client(cfg, clock)
    login(c, "approver")
    r = post(c, "/bewaren", "/bewaren", leerling="LL000004", deel="", reden="klacht ouders")
    assert r.status_code == 303
    page = c.get("/bewaren").text
    assert "klacht ouders" in page
    hold_id = re.search(r'action="/bewaren/(\d+)/opheffen"', page).group(1)  # type: ignore[union-attr]
    r = post(c, "/leerling", "/leerling", leerling="LL000004", reden="verzoek 7")
    assert r.status_code == 200 and "verzoek 7" in r.text and "bewaarplicht ingesteld" in r.text
    # one page, one audited view (shown in the history it opens)
    assert r.text.count("gegevens van de leerling ingezien") == 1
    assert not ENGLISH.findall(visible_text(r.text)), ENGLISH.findall(visible_text(r.text))
    again = post(c, "/leerling", "/leerling", leerling="LL000004", reden="controle")
    assert "gegevens van de leerling ingezien" in again.text  # the view just made is in the pupil's history
    assert "rapport" in again.text and "Bewaren tot" in again.text  # the documents with their retention
    assert "medewerker die bij het onderwijs" in again.text or "Geen toegang berekend" in again.text
    assert not ENGLISH.findall(visible_text(again.text)), ENGLISH.findall(visible_text(again.text))
    assert post(c, f"/bewaren/{hold_id}/opheffen", "/bewaren", reden="afgehandeld").status_code == 303
    assert "Geen actieve bewaarplichten" in c.get("/bewaren").text


def test_pages_are_dutch_private_and_load_nothing_from_elsewhere(school: tuple[Path, Clock]) -> None:
    cfg, clock = school
    c = client(cfg, clock)
    login(c, "admin")
    for path in ("/", "/lijsten", "/bewaren", "/leerling", "/logboek", "/aanmelden", "/verzoeken",
                 "/verzoeken?alles=1", "/aandacht", "/gebruikers",
                 "/volledigheid", "/logboek?gebeurtenis=web", "/verwerkingsregister", "/toegang"):
        r = c.get(path)
        assert r.status_code == 200, path
        assert r.headers["cache-control"] == "no-store"
        assert "default-src 'self'" in r.headers["content-security-policy"]
        assert not re.search(r'(src|href)="(https?:)?//', r.text), path
        assert 'lang="nl"' in r.text
        words = ENGLISH.findall(visible_text(r.text))
        assert not words, (path, words)
    cookie = c.cookies.jar
    assert cookie
    set_cookie = c.post("/aanmelden", data={"naam": "admin", "wachtwoord": TEST_SECRET,
                                            "csrf": token(c, "/aanmelden")}).history[0].headers["set-cookie"]
    assert "httponly" in set_cookie.lower() and "samesite=lax" in set_cookie.lower() and "secure" in set_cookie.lower()


def test_cooling_off_sending_back_and_every_step_in_order(school: tuple[Path, Clock]) -> None:
    cfg, clock = school
    cfg.write_text(cfg.read_text(encoding="utf-8").replace("cooling_off_days = 0", "cooling_off_days = 7"),
                   encoding="utf-8")
    maker, approver = client(cfg, clock), client(cfg, clock)
    login(maker, "maker")
    login(approver, "approver")
    first = post(maker, "/lijsten", "/lijsten").headers["location"]
    r = post(approver, f"{first}/terugsturen", first, wijzigingen="")
    assert r.status_code == 400
    assert post(approver, f"{first}/terugsturen", first, wijzigingen="rapport nog nodig").status_code == 303
    page = approver.get(first).text
    assert "teruggestuurd met wijzigingen" in page and "rapport nog nodig" in page

    second = post(maker, "/lijsten", "/lijsten").headers["location"]
    list_id = second.rsplit("/", 1)[1]
    r = post(approver, f"{second}/goedkeuren", second, functie="directeur", opmerking="akkoord na controle")
    assert r.status_code == 303
    page = maker.get(second).text
    assert "Afkoelperiode" in page and "nog 7 dagen" in page and "Lijst uitvoeren" not in page
    assert "Lijst annuleren" in page  # anyone with a role may still stop it
    r = post(maker, f"{second}/uitvoeren", second, bevestiging=f"vernietigingslijst {list_id}")
    assert r.status_code == 409 and "afkoelperiode" in r.text
    assert js("status", "--config", str(cfg))[1]["documents"]["present"] == 5  # nothing removed

    clock.now += 8 * 86400  # a week later, on this install's simulated clock (the session ended)
    login(maker, "maker")
    page = maker.get(second).text
    assert "Afkoelperiode" not in page and "Lijst uitvoeren" in page
    r = post(maker, f"{second}/uitvoeren", second, bevestiging=f"vernietigingslijst {list_id}")
    assert r.status_code == 303
    page = executed(maker, second)
    assert "2 document(en) verwijderd" in page
    steps = re.findall(r"\(UTC\): (\w+(?: \w+)*) door (\w+)", page)
    assert [s[0] for s in steps][:3] == ["opgesteld", "goedgekeurd", "uitgevoerd"]
    assert "Opmerking: akkoord na controle" in page


def test_a_long_list_is_reviewed_page_by_page(school: tuple[Path, Clock], monkeypatch: pytest.MonkeyPatch) -> None:
    from connector.web import pages

    monkeypatch.setattr(pages, "PAGE", 1)  # one item a page: the two items of the sample on two pages
    cfg, clock = school
    maker, approver = client(cfg, clock), client(cfg, clock)
    login(maker, "maker")
    login(approver, "approver")
    url = post(maker, "/lijsten", "/lijsten").headers["location"]
    first, second = approver.get(url).text, approver.get(f"{url}?pagina=2").text
    ids = [re.findall(r'name="uitzonderen-(\d+)"', t) for t in (first, second)]
    assert len(ids[0]) == 1 and len(ids[1]) == 1 and ids[0] != ids[1]
    assert "pagina 1 van 2" in first and 'aria-current="page">2<' in second
    r = post(approver, f"{url}/goedkeuren", url, uitzonderingen=f"{ids[1][0]}")
    assert r.status_code == 400 and "reden" in r.text  # an exclusion without its reason
    r = post(approver, f"{url}/goedkeuren", url, uitzonderingen=f"{ids[1][0]}: nog nodig")
    assert r.status_code == 303
    shown = approver.get(f"{url}?pagina=2").text
    assert "uitgezonderd: nog nodig" in shown


def test_a_request_registered_extended_answered_with_a_copy(school: tuple[Path, Clock]) -> None:
    import zipfile

    cfg, clock = school
    code, added = js("guardian", "add", "--config", str(cfg), "LL000004", "--name", "Ouder Een", "--authority", "yes",
                     "--by", "adm")
    assert code == 0
    c = client(cfg, clock)
    login(c, "approver")
    r = post(c, "/verzoeken", "/verzoeken", leerling="LL000004", soort="inspection", verzoeker=added["guardian"],
             ontvangen="")
    assert r.status_code == 303
    page = c.get("/verzoeken").text
    request_id = re.search(r'action="/verzoeken/(\d+)/verlengen"', page).group(1)  # type: ignore[union-attr]
    assert "inzage" in page and "op tijd" in page
    assert post(c, f"/verzoeken/{request_id}/verlengen", "/verzoeken", reden="").status_code == 400
    assert post(c, f"/verzoeken/{request_id}/verlengen", "/verzoeken", reden="veel stukken").status_code == 303
    r = post(c, f"/verzoeken/{request_id}/verlengen", "/verzoeken", reden="nog eens")
    assert r.status_code == 409 and "al eens verlengd" in r.text
    copy = post(c, f"/verzoeken/{request_id}/kopie", "/verzoeken")
    assert copy.status_code == 200 and copy.headers["content-type"] == "application/zip"  # type: ignore[union-attr]
    names = zipfile.ZipFile(__import__("io").BytesIO(copy.content)).namelist()  # type: ignore[union-attr]
    assert "index.html" in names
    r = post(c, f"/verzoeken/{request_id}/afhandelen", "/verzoeken", uitkomst="granted", toelichting="kopie gegeven")
    assert r.status_code == 303
    assert "Geen verzoeken" in c.get("/verzoeken").text
    assert "toegewezen" in c.get("/verzoeken?alles=1").text
    juf = client(cfg, clock)
    login(juf, "juf")
    assert juf.get("/verzoeken").status_code == 403


def test_a_vanished_pupil_waits_for_a_person_who_records_the_departure(school: tuple[Path, Clock]) -> None:
    cfg, clock = school
    export = cfg.parent / "export.xml"
    drop(export, "LL000005")
    assert js("sync", "--config", str(cfg), "--accept-snapshot", "--by", "test")[0] == 0
    c = client(cfg, clock)
    login(c, "maker")
    page = c.get("/aandacht").text
    pseudonyms = re.findall(r'name="leerling" value="(p-[0-9a-f]+)"', page)
    assert len(pseudonyms) == 1
    r = post(c, "/aandacht/uitschrijving", "/aandacht", leerling=pseudonyms[0], datum="2026-07-01")
    assert r.status_code == 303
    assert pseudonyms[0] not in c.get("/aandacht").text
    assert not ENGLISH.findall(visible_text(c.get("/aandacht").text))


def test_users_completeness_and_the_audit_log_with_its_filter(school: tuple[Path, Clock]) -> None:
    cfg, clock = school
    c = client(cfg, clock)
    login(c, "admin")
    r = post(c, "/gebruikers", "/gebruikers", naam="directeur", weergave="De Directeur", **{"rol-approver": "1"},
             wachtwoord="directeur-secret-123", herhaling="anders-secret-1234")
    assert r.status_code == 400
    r = post(c, "/gebruikers", "/gebruikers", naam="directeur", weergave="De Directeur", **{"rol-approver": "1"},
             wachtwoord="directeur-secret-123", herhaling="directeur-secret-123")
    assert r.status_code == 303 and "De Directeur" in c.get("/gebruikers").text
    d = client(cfg, clock)
    login(d, "directeur", "directeur-secret-123")
    assert d.get("/lijsten").status_code == 200 and d.get("/gebruikers").status_code == 403
    assert post(c, "/gebruikers/uitschakelen", "/gebruikers", naam="directeur").status_code == 303
    assert d.get("/lijsten", follow_redirects=False).status_code == 303  # out at once, not at the next login

    page = c.get("/volledigheid").text
    assert "Zijn de dossiers volledig" in page and "documenten zonder soort" in page
    assert not ENGLISH.findall(visible_text(page)), ENGLISH.findall(visible_text(page))
    log = c.get("/logboek?gebeurtenis=web.login").text
    assert not ENGLISH.findall(visible_text(log)), ENGLISH.findall(visible_text(log))
    assert "aangemeld" in rows(log) and "gebruiker toegevoegd" not in rows(log)
    assert "0 gebeurtenissen" in c.get("/logboek?van=2000-01-01&tot=2000-12-31").text
    from datetime import date as day
    today = day.today().isoformat()
    assert "aangemeld" in rows(c.get(f"/logboek?van={today}&tot={today}&gebeurtenis=web").text)
    mine = rows(c.get("/logboek?leerling=LL000003").text)
    assert "feit vastgelegd" in mine or "document" in mine
    csv_text = c.get("/logboek.csv?gebruiker=admin").text
    assert csv_text.startswith("volgnummer;tijd (UTC);wie;gebeurtenis;code") and ";aangemeld;web.login;" in csv_text
    viewed = rows(c.get("/logboek?gebeurtenis=dossier.viewed").text)
    assert "gegevens van de leerling ingezien" in viewed  # filtering on a pupil is itself a view of their data


def test_a_refused_correction_keeps_the_requesters_statement_in_the_dossier(school: tuple[Path, Clock]) -> None:
    cfg, clock = school
    c = client(cfg, clock)
    login(c, "approver")
    assert post(c, "/verzoeken", "/verzoeken", leerling="LL000004", soort="correction", verzoeker="g-onbekend",
                ontvangen="").status_code == 303
    page = c.get("/verzoeken").text
    action = re.search(r'action="(/verzoeken/\d+/afhandelen\?csrf=[^"]+)"', page).group(1)  # type: ignore[union-attr]
    statement = {"zienswijze": ("mijn-verklaring.pdf", b"%PDF-1.4 wij zijn het er niet mee eens", "application/pdf")}
    bare = action.split("?")[0]
    r = c.post(bare, data={"uitkomst": "refused", "toelichting": "x"}, files=statement, follow_redirects=False)
    assert r.status_code == 403  # a form with a file carries its token in its action
    r = c.post(action.replace("&amp;", "&"), data={"uitkomst": "granted", "toelichting": "x"}, files=statement,
               follow_redirects=False)
    assert r.status_code == 409 and "alleen bij een correctie die (deels) is afgewezen" in r.text
    before = post(c, "/leerling", "/leerling", leerling="LL000004", reden="welk document").text
    [disputed] = re.findall(r"<tr class=\"utrecht-table__row\"><td class=\"utrecht-table__cell\"><code>([^<]+)</code>",
                            before)  # the report the parent disputes, by its number on the pupil page
    r = c.post(action.replace("&amp;", "&"), data={"uitkomst": "refused", "toelichting": "x", "betreft": "elders"},
               files=statement, follow_redirects=False)
    assert r.status_code == 409 and "hoort niet bij dit dossier" in r.text  # only a document of this dossier
    r = c.post(action.replace("&amp;", "&"), data={"uitkomst": "refused", "toelichting": "niet gewijzigd",
                                                   "betreft": disputed}, files=statement, follow_redirects=False)
    assert r.status_code == 303
    pupil_page = post(c, "/leerling", "/leerling", leerling="LL000004", reden="controle zienswijze").text
    assert "zienswijze_ouders" in pupil_page
    assert "met de eigen verklaring van de verzoeker: document" in pupil_page  # beside the disputed report
    assert "eigen verklaring van de verzoeker over een betwist document" in pupil_page


def test_the_maker_assigns_and_reassigns_the_reviewer(school: tuple[Path, Clock]) -> None:
    cfg, clock = school
    maker, first, second = client(cfg, clock), client(cfg, clock), client(cfg, clock)
    login(maker, "maker")
    login(first, "approver")
    login(second, "approver2")
    url = post(maker, "/lijsten", "/lijsten").headers["location"]
    assert post(maker, f"{url}/toewijzen", url, beoordelaar="approver2").status_code == 303
    assert "approver2 (alleen deze persoon" in first.get(url).text
    assert "Goedkeuren (uitgezonderde" not in first.get(url).text  # not theirs to review now
    r = post(first, f"{url}/goedkeuren", url)
    assert r.status_code == 403 and "toegewezen aan approver2" in r.text
    assert post(first, f"{url}/toewijzen", url, beoordelaar="approver").status_code == 403  # an approver does not
    assert post(maker, f"{url}/toewijzen", url, beoordelaar="approver").status_code == 303  # the maker reassigns
    assert post(first, f"{url}/goedkeuren", url).status_code == 303
    page = maker.get(url).text
    assert re.findall(r"\(UTC\): (toegewezen) door maker", page) == ["toegewezen", "toegewezen"]
    assert "goedgekeurd door approver" in page and second.get(url).status_code == 200


def test_the_overview_names_an_okr_sent_without_evidence(school: tuple[Path, Clock]) -> None:
    cfg, clock = school
    assert js("okr", "sent", "--config", str(cfg), "LL000005", "--date", "2026-07-01", "--to", "12AB",
              "--by", "IB")[0] == 0
    c = client(cfg, clock)
    login(c, "approver")
    page = c.get("/").text
    assert "verstuurd op 2026-07-01 naar 12AB" in page and "geen bewijs dat de ouders zijn geïnformeerd" in page


def test_a_transfer_list_is_reviewed_and_carried_out_on_the_page_like_a_destruction_list(
        school: tuple[Path, Clock], tmp_path: Path) -> None:
    """A dossier part copied and verified at the receiving school leaves the source only through
    a transfer list: made by the transfer, reviewed by another person on the page, confirmed by
    typing its name, with a Dutch certificate of transfer and removal."""
    from tests.conftest import acting

    cfg, clock = school
    code, out = js("transfer", "--config", str(cfg), "LL000003", "--part", "II", "--to-folder",
                   str(tmp_path / "naar-nieuwe-school"), "--remove-at-source", *acting("maker"))
    assert code == 0 and out["transfer_list"] is not None
    list_id, url = out["transfer_list"], f"/lijsten/{out['transfer_list']}"
    maker, approver = client(cfg, clock), client(cfg, clock)
    login(maker, "maker")
    login(approver, "approver")
    assert f"overbrengingslijst {list_id}" in maker.get("/lijsten").text
    assert post(maker, f"{url}/goedkeuren", url).status_code == 403  # four eyes here too
    assert post(approver, f"{url}/goedkeuren", url, functie="directeur").status_code == 303
    assert post(maker, f"{url}/uitvoeren", url, bevestiging=f"vernietigingslijst {list_id}").status_code == 400
    assert post(maker, f"{url}/uitvoeren", url, bevestiging=f"Overbrengingslijst {list_id}").status_code == 303
    page = executed(maker, url)
    assert "verwijderd bij de bron" in page and "Verklaring van overbrenging en verwijdering" in page
    assert not ENGLISH.findall(visible_text(page)), ENGLISH.findall(visible_text(page))
    certificate = maker.get(f"{url}/verklaring.html")
    assert certificate.status_code == 200 and "Verklaring van overbrenging en verwijdering" in certificate.text


def test_a_pupil_is_found_by_name_in_the_las_and_every_pupil_shown_is_a_recorded_view(
        school: tuple[Path, Clock]) -> None:
    cfg, clock = school
    c = client(cfg, clock)
    login(c, "approver")
    assert post(c, "/leerling/zoeken", "/leerling", naam="z", reden="verzoek 3").status_code == 400
    r = post(c, "/leerling/zoeken", "/leerling", naam="zoe POSTMA", reden="verzoek 3")  # case and accents aside
    assert r.status_code == 200 and "Zoë van den Postma" in r.text and "29-03-2014" in r.text  # type: ignore[union-attr]
    assert "1 leerling gevonden" in r.text and "Dossier van Zoë van den Postma inzien" in r.text  # type: ignore[union-attr]
    assert not ENGLISH.findall(visible_text(r.text))  # type: ignore[union-attr]
    _code, log = js("audit", "show", "--config", str(cfg), "--last", "0")
    shown = [e for e in log if e["action"] == "dossier.viewed"]  # type: ignore[union-attr]
    assert len(shown) == 1 and shown[0]["details"]["reason"] == "verzoek 3" and shown[0]["actor"] == "approver"
    assert "Postma" not in json.dumps(log), [e for e in log if "Postma" in json.dumps(e)]  # type: ignore[union-attr]
    juf = client(cfg, clock)
    login(juf, "juf")
    assert post(juf, "/leerling/zoeken", "/", naam="postma", reden="x").status_code == 403


def test_a_preview_of_what_a_new_list_holds_changes_nothing(school: tuple[Path, Clock]) -> None:
    cfg, clock = school
    c = client(cfg, clock)
    login(c, "maker")
    before = js("status", "--config", str(cfg))[1]
    page = c.get("/lijsten/voorbeeld").text
    assert "2 document(en) van 1 leerling(en)" in page and "Deze vernietigingslijst opstellen" in page
    assert not ENGLISH.findall(visible_text(page)), ENGLISH.findall(visible_text(page))
    assert js("status", "--config", str(cfg))[1] == before  # a check never writes
    made = post(c, "/lijsten", "/lijsten/voorbeeld")
    items = re.findall(r'name="uitzonderen-(\d+)"', client_page(cfg, clock, made.headers["location"]))  # type: ignore[union-attr]
    assert len(items) == 2  # the list holds what the preview showed


def client_page(cfg: Path, clock: Clock, url: str) -> str:
    approver = client(cfg, clock)
    login(approver, "approver")
    return approver.get(url).text


def test_an_admin_changes_a_users_roles_but_never_their_own(school: tuple[Path, Clock]) -> None:
    cfg, clock = school
    c = client(cfg, clock)
    login(c, "admin")
    assert post(c, "/gebruikers/rollen", "/gebruikers", naam="juf", **{"rol-approver": "1"}).status_code == 303
    juf = client(cfg, clock)
    login(juf, "juf")
    assert juf.get("/lijsten").status_code == 200  # a reviewer now
    r = post(c, "/gebruikers/rollen", "/gebruikers", naam="admin", **{"rol-maker": "1"})
    assert r.status_code == 403 and "andere beheerder" in r.text  # type: ignore[union-attr]
    assert post(c, "/gebruikers/rollen", "/gebruikers", naam="juf").status_code == 409  # no role at all
    _code, log = js("audit", "show", "--config", str(cfg), "--last", "0")
    [changed] = [e for e in log if e["action"] == "user.roles_changed"]  # type: ignore[union-attr]
    assert changed["details"] == {"user": "juf", "roles": ["approver"], "before": ["teacher"]}
    assert "rollen van een gebruiker gewijzigd" in c.get("/logboek").text


def test_a_list_cancelled_in_its_cooling_off_period_removes_nothing(school: tuple[Path, Clock]) -> None:
    cfg, clock = school
    cfg.write_text(cfg.read_text(encoding="utf-8").replace("cooling_off_days = 0", "cooling_off_days = 7"),
                   encoding="utf-8")
    maker, approver, fg, juf = (client(cfg, clock) for _ in range(4))
    login(maker, "maker")
    login(approver, "approver")
    url = post(maker, "/lijsten", "/lijsten").headers["location"]  # type: ignore[union-attr]
    assert post(approver, f"{url}/goedkeuren", url, functie="directeur").status_code == 303
    login(juf, "juf")
    assert juf.post(f"{url}/annuleren", data={"reden": "x"}, follow_redirects=False).status_code == 403
    login(fg, "fg")  # read-only everywhere else, the privacy officer may still stop a destruction
    assert post(fg, f"{url}/annuleren", url, reden="").status_code == 400  # a reason is needed
    assert post(fg, f"{url}/annuleren", url, reden="ouders maken bezwaar").status_code == 303
    page = maker.get(url).text
    assert "geannuleerd" in page and "ouders maken bezwaar" in page and "Lijst uitvoeren" not in page
    clock.now += 8 * 86400
    login(maker, "maker")
    list_id = url.rsplit("/", 1)[1]
    r = post(maker, f"{url}/uitvoeren", url, bevestiging=f"vernietigingslijst {list_id}")
    assert r.status_code == 409  # a cancelled list is never carried out
    assert js("status", "--config", str(cfg))[1]["documents"]["present"] == 5


def test_a_re_registered_pupil_is_linked_to_its_dossier_on_the_page(school: tuple[Path, Clock]) -> None:
    cfg, clock = school
    export = cfg.parent / "export.xml"
    text = export.read_text(encoding="utf-8")
    first = re.search(r'<leerling key="LL000001".*?</leerling>\n', text, flags=re.S)
    assert first is not None
    again = re.sub(r'eckid="[^"]*"', 'eckid="https://ketenid.nl/201703/nieuw1"',
                   first.group(0).replace('key="LL000001"', 'key="LL900001"'))
    export.write_text(text.replace("</leerlingen>", again + "</leerlingen>"), encoding="utf-8")
    code, report = js("sync", "--config", str(cfg))
    assert code == 0 and report["held"] and report["dossiers_created"] == 0
    c = client(cfg, clock)
    login(c, "maker")
    page = c.get("/aandacht").text
    m = re.search(r'name="dossier" value="(p-[0-9a-f]+)"><input type="hidden" name="ander" value="(p-[0-9a-f]+)"',
                  page)
    assert m and "is hetzelfde kind als" in page
    assert not ENGLISH.findall(visible_text(page))
    r = post(c, "/aandacht/zelfde", "/aandacht", dossier=m.group(1), ander=m.group(2))
    assert r.status_code == 303  # type: ignore[attr-defined]
    assert m.group(2) not in c.get("/aandacht").text
    code, after = js("sync", "--config", str(cfg))
    assert code == 0 and after["dossiers_created"] == 0 and after["held"] == [] and after["dossiers_updated"] == 1


def test_who_is_this_pupil_and_the_two_reports_for_the_privacy_officer(school: tuple[Path, Clock]) -> None:
    cfg, clock = school
    export = Path(re.search(r'path = "([^"]+)"', cfg.read_text(encoding="utf-8")).group(1))  # type: ignore[union-attr]
    record = re.search(r'<leerling key="LL000004".*?</leerling>', export.read_text(encoding="utf-8"), re.S)
    assert record is not None
    surname = re.search(r"<achternaam>([^<]+)</achternaam>", record.group(0)).group(1)  # type: ignore[union-attr]
    c = client(cfg, clock)
    login(c, "fg")
    page = post(c, "/leerling", "/leerling", leerling="LL000004", reden="verzoek 7")
    assert page.status_code == 200 and surname not in page.text  # type: ignore[union-attr]
    assert 'action="/leerling/wie"' in page.text  # type: ignore[union-attr]
    shown = post(c, "/leerling/wie", "/leerling", leerling="LL000004", reden="verzoek 7")
    assert shown.status_code == 200 and surname in shown.text  # type: ignore[union-attr]
    assert post(c, "/leerling/wie", "/leerling", leerling="LL000004", reden="").status_code == 400
    revealed = [e for e in js("audit", "show", "--config", str(cfg), "--last", "0")[1]
                if e["action"] == "pupil.revealed"]
    assert [(e["actor"], e["details"]["reason"]) for e in revealed] == [("fg", "verzoek 7")]
    # the pupil who left and is no longer in the export: said so, nothing invented
    gone = post(c, "/leerling/wie", "/leerling", leerling="LL000003", reden="verzoek 8")
    assert "kent deze leerling niet meer" in gone.text  # type: ignore[union-attr]
    register = c.get("/verwerkingsregister").text
    assert "Verwerkingsregister" in register and "Bewaartermijnen" in register and surname not in register
    access = c.get("/toegang").text
    assert "Wie kan wat inzien" in access and "Verschillen met de regels" in access
    juf = client(cfg, clock)
    login(juf, "juf")
    assert post(juf, "/leerling/wie", "/", leerling="LL000004", reden="x").status_code == 403
