"""The pages: each names the action its user needs and calls the application layer's use cases,
nothing below them. Every action is a POST form that works without JavaScript; htmx only makes
some quicker. A view of a pupil's data asks for the reason first and is audited."""

from __future__ import annotations

import csv
import io
import json
import re
import tempfile
from datetime import date
from pathlib import Path
from typing import Any

from markupsafe import Markup
from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import FileResponse, RedirectResponse, Response
from starlette.routing import Route

from connector.app import User, pupils, records, register, reports, requests
from connector.app import access as access_uses
from connector.app import lists as list_uses
from connector.app import users as user_uses
from connector.app.lists import cooling_off_until
from connector.web import text
from connector.web.server import Refused, Web, address, form

PAGE = 250
"""Items of a list shown per page (a list of thousands is reviewed page by page)."""


def _int(value: str | None, default: int) -> int:
    return int(value) if value and value.isdigit() else default


def list_name(head: dict[str, Any]) -> str:
    """What the executor types to confirm: the list's kind and number (``vernietigingslijst 12``)."""
    return f"{text.LIST_KIND.get(str(head['kind']), 'lijst')} {head['id']}"


def routes(web: Web) -> list[Route]:
    app = web.app

    # -- login ----------------------------------------------------------------------------
    async def login_page(request: Request) -> Response:
        return web.render(request, "login.html", back=_safe_back(request.query_params.get("terug")),
                          expired=bool(request.query_params.get("verlopen")), error=None)

    async def login(request: Request) -> Response:
        data = await form(request)
        name, secret = str(data.get("naam", "")).strip(), str(data.get("wachtwoord", ""))
        back = _safe_back(str(data.get("terug", "")))
        peer = address(request)
        wait = web.limiter.wait(name, peer)
        if wait > 0:
            minutes = max(1, round(wait / 60))
            return web.render(request, "login.html", status=429, back=back, expired=False,
                              error=f"Te veel mislukte pogingen. Probeer het over {minutes} minuten opnieuw.")
        try:
            user = await web.call(user_uses.log_in, app, name, secret, peer)
        except Refused:
            web.limiter.failed(name, peer)
            return web.render(request, "login.html", status=401, back=back, expired=False,
                              error="Aanmelden is niet gelukt: de naam of het wachtwoord klopt niet, of de "
                                    "gebruiker is uitgeschakeld.")
        web.limiter.succeeded(name)
        web.start_session(request, user)
        return RedirectResponse(back, status_code=303)

    async def logout(request: Request) -> Response:
        name = request.session.get("user")
        user = user_uses.current_user(app, str(name)) if name else None
        if user is not None:
            await web.call(user_uses.log_out, app, user, address(request))
        request.session.clear()
        return RedirectResponse("/aanmelden", status_code=303)

    # -- overview ---------------------------------------------------------------------------
    async def overview(request: Request) -> Response:
        user = web.user(request, "view.overview")
        data = await web.call(reports.overview, app, date.today())
        categories = {c: s.name for c, s in app.schedule().categories.items()}
        return web.render(request, "overview.html", user=user, data=data, categories=categories)

    # -- lists ------------------------------------------------------------------------------
    async def lists_page(request: Request) -> Response:
        user = web.user(request, "view.lists")
        rows = await web.call(reports.lists, app)
        return web.render(request, "lists.html", user=user, rows=rows)

    async def list_create(request: Request) -> Response:
        user = web.user(request, "list.create")
        made = await web.call(list_uses.create_list, app, user, web.today())
        return RedirectResponse(f"/lijsten/{made.list_id}", status_code=303)

    async def list_preview(request: Request) -> Response:
        user = web.user(request, "view.lists")
        preview = await web.call(list_uses.preview_due, app, web.today())
        return web.render(request, "preview.html", user=user, preview=preview)

    async def list_page(request: Request) -> Response:
        user = web.user(request, "view.lists")
        list_id = int(request.path_params["list_id"])
        return await list_view(request, user, list_id, None)

    async def list_view(request: Request, user: User, list_id: int, result: dict[str, Any] | None) -> Response:
        category = request.query_params.get("categorie") or ""
        shown = await web.call(list_uses.show_list_page, app, list_id, category or None,
                               _int(request.query_params.get("pagina"), 1), PAGE)
        head = shown["list"]
        today = web.today() or date.today()
        until = cooling_off_until(head)
        history = await web.call(list_uses.list_history, app, list_id)
        candidates = (await web.call(list_uses.reviewers, app, list_id)
                      if head["status"] in ("draft", "approving") and user.may("list.assign") else [])
        execution = web.executions.get(list_id)
        if result is None and execution is not None and execution.done:
            result = execution.report
        return web.render(request, "list.html", user=user, head=head, items=shown["items"], total=shown["total"],
                          shown_total=shown["shown_total"], page=shown["page"], pages=shown["pages"],
                          category=category, categories=shown["categories"], approvals=shown["approvals"],
                          name=list_name(head), history=history,
                          certificate=list_uses.list_file(app, list_id, "certificate", "pdf") is not None,
                          result=result, cooling_until=until, execution=execution, candidates=candidates,
                          removed=shown["removed"], to_remove=shown["to_remove"],
                          cooling_days=(until - today).days if until and today < until else 0)

    async def list_approve(request: Request) -> Response:
        user = web.user(request, "list.approve")
        list_id = int(request.path_params["list_id"])
        data = await form(request)
        reject: dict[int, str] = {}
        for key in data:
            if key.startswith("uitzonderen-"):
                item = key.removeprefix("uitzonderen-")
                reason = str(data.get(f"reden-{item}", "")).strip()
                if not item.isdigit():
                    raise Refused("Onbekend document op de lijst.", 400)
                if not reason:
                    raise Refused(f"Geef bij document {item} de reden waarom het wordt uitgezonderd.", 400)
                reject[int(item)] = reason
        for line in str(data.get("uitzonderingen", "")).splitlines():
            line = line.strip()
            if not line:
                continue
            m = re.fullmatch(r"(\d+)\s*[:=]?\s*(.*)", line)
            if m is None:
                raise Refused(f"Uitzonderingen: schrijf per regel het documentnummer en de reden ({line[:40]}).", 400)
            if not m.group(2).strip():
                raise Refused(f"Geef bij document {m.group(1)} de reden waarom het wordt uitgezonderd.", 400)
            reject[int(m.group(1))] = m.group(2).strip()
        role = str(data.get("functie", "")).strip() or None
        comment = str(data.get("opmerking", "")).strip() or None
        await web.call(list_uses.approve_list, app, user, list_id, role, reject, comment, web.today())
        return RedirectResponse(f"/lijsten/{list_id}", status_code=303)

    async def list_assign(request: Request) -> Response:
        user = web.user(request, "list.assign")
        list_id = int(request.path_params["list_id"])
        reviewer = str((await form(request)).get("beoordelaar", "")).strip() or None
        await web.call(list_uses.assign_reviewer, app, user, list_id, reviewer)
        return RedirectResponse(f"/lijsten/{list_id}", status_code=303)

    async def list_send_back(request: Request) -> Response:
        user = web.user(request, "list.approve")
        list_id = int(request.path_params["list_id"])
        comment = await required(request, "wijzigingen", "Schrijf op wat er aan de lijst moet veranderen.")
        await web.call(list_uses.send_back, app, user, list_id, comment)
        return RedirectResponse(f"/lijsten/{list_id}", status_code=303)

    async def list_cancel(request: Request) -> Response:
        user = web.user(request, "list.cancel")
        list_id = int(request.path_params["list_id"])
        reason = await required(request, "reden", "Geef de reden waarom de lijst wordt geannuleerd.")
        await web.call(list_uses.cancel_list, app, user, list_id, reason)
        return RedirectResponse(f"/lijsten/{list_id}", status_code=303)

    async def list_execute(request: Request) -> Response:
        user = web.user(request, "list.execute")
        list_id = int(request.path_params["list_id"])
        typed = " ".join(str((await form(request)).get("bevestiging", "")).split()).lower()
        name = list_name(await web.call(list_uses.list_head, app, list_id))
        if typed != name.lower():
            raise Refused(f"Typ ter bevestiging de naam van de lijst, precies: {name}.", 400)
        today = web.today()
        # every check first, at once (status, cooling-off, approvals, the gate on each item): a
        # refusal is shown now, not after the page has gone to the background run
        trial, _files = await web.call(list_uses.execute_list, app, user, list_id, today, True)
        if trial.stopped_by:
            return await list_view(request, user, list_id, trial.as_dict())

        def run() -> dict[str, Any]:
            report, _written = list_uses.execute_list(app, user, list_id, today)
            return report.as_dict()

        web.executions.start(list_id, user.name, run)
        return RedirectResponse(f"/lijsten/{list_id}", status_code=303)

    async def list_file(request: Request) -> Response:
        web.user(request, "view.lists")
        list_id = int(request.path_params["list_id"])
        what, suffix = str(request.path_params["what"]), str(request.path_params["suffix"])
        names = {"lijst": "list", "verklaring": "certificate"}
        path = list_uses.list_file(app, list_id, names.get(what, ""), suffix) if suffix in ("pdf", "html") else None
        if path is None:
            raise Refused("Dat bestand is er (nog) niet.", 404)
        media = "application/pdf" if suffix == "pdf" else "text/html; charset=utf-8"
        return FileResponse(path, media_type=media, filename=f"{what}-{list_id}.{suffix}",
                            content_disposition_type="attachment")

    # -- holds ------------------------------------------------------------------------------
    async def holds_page(request: Request) -> Response:
        user = web.user(request, "view.lists")
        rows = await web.call(records.active_holds, app)
        parts = [(p.code, p.name) for p in app.mapping.parts]
        return web.render(request, "holds.html", user=user, rows=rows, parts=parts)

    async def hold_add(request: Request) -> Response:
        user = web.user(request, "hold.add")
        data = await form(request)
        key, part, reason = (str(data.get(k, "")).strip() for k in ("leerling", "deel", "reden"))
        if not key or not reason:
            raise Refused("Geef de leerling (sleutel) en de reden van de bewaarplicht.", 400)
        row = await web.call(app.dossier, key)
        await web.call(records.add_hold, app, user, row, part or None, reason)
        return RedirectResponse("/bewaren", status_code=303)

    async def hold_remove(request: Request) -> Response:
        user = web.user(request, "hold.remove")
        hold_id = int(request.path_params["hold_id"])
        reason = await required(request, "reden", "Geef de reden waarom de bewaarplicht wordt opgeheven.")
        await web.call(records.remove_hold, app, user, hold_id, reason)
        return RedirectResponse("/bewaren", status_code=303)

    # -- a pupil ----------------------------------------------------------------------------
    async def pupil_ask(request: Request) -> Response:
        user = web.user(request, "view.pupil")
        return web.render(request, "pupil_ask.html", user=user, key=request.query_params.get("leerling", ""))

    async def pupil_search(request: Request) -> Response:
        user = web.user(request, "view.pupil")
        data = await form(request)
        name, reason = str(data.get("naam", "")).strip(), str(data.get("reden", "")).strip()
        if len("".join(name.split())) < 2 or not reason:
            raise Refused("Geef minstens twee letters van de naam en waarom u zoekt.", 400)
        found = await web.call(pupils.find_by_name, app, user, name, reason)
        return web.render(request, "pupil_ask.html", user=user, key="", name=name, reason=reason,
                          found=found["pupils"], more=found["more"], searched=True)

    async def pupil_page(request: Request) -> Response:
        user = web.user(request, "view.pupil")
        data = await form(request)
        key, reason = str(data.get("leerling", "")).strip(), str(data.get("reden", "")).strip()
        if not key or not reason:
            raise Refused("Geef de leerling (sleutel) en waarom u het dossier inziet.", 400)
        row = await web.call(app.dossier, key)
        shown = await web.call(reports.pupil_page, app, user.name, row, reason, web.today() or date.today())
        return web.render(request, "pupil.html", user=user, row=row, facts=shown["facts"],
                          facts_history=shown["fact_history"], history=shown["history"], holds=shown["holds"],
                          reason=reason, documents=shown["documents"], statements=shown["statements"],
                          access=shown["access"],
                          access_notes=shown["access_notes"])

    async def pupil_reveal(request: Request) -> Response:
        user = web.user(request, "view.pupil")
        data = await form(request)
        key, reason = str(data.get("leerling", "")).strip(), str(data.get("reden", "")).strip()
        if not key or not reason:
            raise Refused("Geef de leerling (sleutel) en waarom u wilt weten wie het is.", 400)
        shown = await web.call(pupils.reveal, app, user, key, reason)
        return web.render(request, "pupil_reveal.html", user=user, shown=shown, reason=reason)

    # -- grip op gegevens -------------------------------------------------------------------
    async def register_page(request: Request) -> Response:
        user = web.user(request, "view.overview")
        data = await web.call(register.processing_register, app, date.today())
        return web.render(request, "report.html", user=user, title=register.REGISTER_TITLE,
                          intro="Wat de school volgens de AVG (artikel 30) over het leerlingdossier vastlegt, "
                                "opgesteld uit de instellingen en de administratie van de connector.",
                          body=Markup(register.register_html(data)))  # noqa: S704 (escaped by the renderer)

    async def access_page(request: Request) -> Response:
        user = web.user(request, "view.overview")
        data = await web.call(register.effective_access, app, date.today())
        return web.render(request, "report.html", user=user, title=register.ACCESS_TITLE,
                          intro="Per rol, ouders, de leerling en derden: welke dossierdelen van hoeveel "
                                "leerlingen zij vandaag kunnen openen, gelezen uit het documentbeheersysteem.",
                          body=Markup(register.access_html(data)))  # noqa: S704 (escaped by the renderer)

    # -- what the sync left for a person ---------------------------------------------------
    async def attention_page(request: Request) -> Response:
        user = web.user(request, "view.pupil")
        data = await web.call(reports.waiting_for_a_person, app)
        return web.render(request, "attention.html", user=user, data=data)

    async def record_departure(request: Request) -> Response:
        user = web.user(request, "fact.record")
        data = await form(request)
        key = str(data.get("leerling", "")).strip()
        on = _day(str(data.get("datum", "")).strip())
        if not key or on is None:
            raise Refused("Geef de datum van uitschrijving (JJJJ-MM-DD).", 400)
        row = await web.call(app.dossier, key)
        await web.call(records.record_fact, app, user, row, "departure", on,
                       str(data.get("toelichting", "")).strip() or None, web.today() or date.today())
        return RedirectResponse("/aandacht", status_code=303)

    async def dismiss_duplicate(request: Request) -> Response:
        user = web.user(request, "fact.record")
        data = await form(request)
        a, b = _pair(data, "a", "b")
        await web.call(records.dismiss_duplicate, app, user.name, a, b)
        return RedirectResponse("/aandacht", status_code=303)

    async def link_duplicate(request: Request) -> Response:
        user = web.user(request, "fact.record")
        data = await form(request)
        a, b = _pair(data, "dossier", "ander")
        await web.call(records.link_duplicate, app, user.name, a, b)
        return RedirectResponse("/aandacht", status_code=303)

    # -- requests of parents and pupils -----------------------------------------------------
    async def requests_page(request: Request) -> Response:
        user = web.user(request, "view.requests")
        everything = bool(request.query_params.get("alles"))
        rows = await web.call(requests.list_requests, app, everything, web.today() or date.today())
        return web.render(request, "requests.html", user=user, rows=rows, everything=everything,
                          kinds=requests.KINDS, outcomes=requests.OUTCOMES)

    async def request_open(request: Request) -> Response:
        user = web.user(request, "request.open")
        data = await form(request)
        key, kind, requester = (str(data.get(k, "")).strip() for k in ("leerling", "soort", "verzoeker"))
        received = _day(str(data.get("ontvangen", "")).strip()) or web.today() or date.today()
        if not key or kind not in requests.KINDS or not requester:
            raise Refused("Geef de leerling, de soort verzoek en wie het verzoek doet.", 400)
        row = await web.call(app.dossier, key)
        await web.call(requests.open_request, app, user.name, row, kind, requester, received)
        return RedirectResponse("/verzoeken", status_code=303)

    async def request_extend(request: Request) -> Response:
        user = web.user(request, "request.open")
        request_id = int(request.path_params["request_id"])
        reason = await required(request, "reden",
                                "Geef de reden waarom meer tijd nodig is (en laat het de verzoeker weten).")
        await web.call(requests.extend_request, app, user.name, request_id, reason, web.today() or date.today())
        return RedirectResponse("/verzoeken", status_code=303)

    async def request_close(request: Request) -> Response:
        user = web.user(request, "request.close")
        request_id = int(request.path_params["request_id"])
        data = await form(request)
        outcome, note = str(data.get("uitkomst", "")), str(data.get("toelichting", "")).strip()
        if outcome not in requests.OUTCOMES:
            raise Refused("Kies de uitkomst van het verzoek.", 400)
        upload = data.get("zienswijze")
        if isinstance(upload, UploadFile) and upload.filename:
            content = await upload.read()
            if not content:
                raise Refused("Het bestand met de zienswijze is leeg.", 400)
            suffix = Path(upload.filename).suffix.lower()
            suffix = suffix if re.fullmatch(r"\.[a-z0-9]{1,5}", suffix) else ".bin"
            with tempfile.TemporaryDirectory(prefix="leerdossier-") as folder:
                path = Path(folder) / f"zienswijze-verzoek-{request_id}{suffix}"
                path.write_bytes(content)
                path.chmod(0o600)
                await web.call(requests.close_request, app, user.name, request_id, outcome, note,
                               web.today() or date.today(), path, str(data.get("betreft", "")).strip() or None)
        else:
            await web.call(requests.close_request, app, user.name, request_id, outcome, note,
                           web.today() or date.today())
        return RedirectResponse("/verzoeken", status_code=303)

    async def request_copy(request: Request) -> Response:
        user = web.user(request, "request.open")
        request_id = int(request.path_params["request_id"])
        req = next((r for r in await web.call(requests.list_requests, app, False, date.today())
                    if r["request"] == request_id), None)
        if req is None:
            raise Refused(f"Er is geen open verzoek {request_id}.", 404)
        if req["kind"] not in ("inspection", "copy"):
            raise Refused("Alleen bij een verzoek om inzage of een kopie hoort een kopie van het dossier.", 409)
        row = await web.call(app.dossier, req["record"])
        made = await web.call(requests.export_for, app, user.name, row, req["kind"], req["requester"], request_id,
                              Path(requests.EXPORT_FOLDER), web.today() or date.today())
        return FileResponse(made.result.file, media_type="application/zip",
                            filename=f"dossier-{row.pseudonym}-verzoek-{request_id}.zip",
                            content_disposition_type="attachment")

    # -- users ----------------------------------------------------------------------------
    async def users_page(request: Request) -> Response:
        user = web.user(request, "user.manage")
        rows = await web.call(user_uses.list_users, app)
        return web.render(request, "users.html", user=user, rows=rows, roles=user_uses.ROLES)

    async def user_add(request: Request) -> Response:
        user = web.user(request, "user.manage")
        data = await form(request)
        name, display = str(data.get("naam", "")).strip().lower(), str(data.get("weergave", "")).strip() or None
        roles = [r for r in user_uses.ROLES if data.get(f"rol-{r}")]
        secret, again = str(data.get("wachtwoord", "")), str(data.get("herhaling", ""))
        if secret != again:
            raise Refused("De twee wachtwoorden zijn niet gelijk.", 400)
        await web.call(user_uses.add_user, app, user, name, roles, secret, display)
        return RedirectResponse("/gebruikers", status_code=303)

    async def user_roles(request: Request) -> Response:
        user = web.user(request, "user.manage")
        data = await form(request)
        name = str(data.get("naam", "")).strip()
        await web.call(user_uses.set_roles, app, user, name, [r for r in user_uses.ROLES if data.get(f"rol-{r}")])
        return RedirectResponse("/gebruikers", status_code=303)

    async def user_disable(request: Request) -> Response:
        user = web.user(request, "user.manage")
        name = str((await form(request)).get("naam", "")).strip()
        await web.call(user_uses.disable_user, app, user, name)
        return RedirectResponse("/gebruikers", status_code=303)

    # -- completeness -----------------------------------------------------------------------
    async def completeness_page(request: Request) -> Response:
        user = web.user(request, "view.lists")
        result = await web.call(reports.completeness_report, app, web.today() or date.today())
        return web.render(request, "completeness.html", user=user, result=result)

    # -- the audit log ----------------------------------------------------------------------
    def audit_filtered(request: Request, user: User) -> tuple[list[dict[str, Any]], dict[str, str]]:
        q = {k: str(request.query_params.get(k, "")).strip() for k in ("leerling", "gebruiker", "gebeurtenis",
                                                                        "van", "tot")}
        since, until = _day(q["van"]), _day(q["tot"])
        subject = None
        if q["leerling"]:
            subject = app.dossier(q["leerling"]).pseudonym
            access_uses.record_view(app, user.name, subject, "audit log", "logboek gefilterd op deze leerling")
        entries = reports.audit_entries(app, 1000 if any(q.values()) else 200, subject=subject,
                                        actor=q["gebruiker"] or None, action_prefix=q["gebeurtenis"] or None,
                                        since=since, until=until)
        return entries, q

    async def audit_page(request: Request) -> Response:
        user = web.user(request, "view.audit")
        entries, q = await web.call(audit_filtered, request, user)
        return web.render(request, "audit.html", user=user, entries=entries, q=q)

    async def audit_csv(request: Request) -> Response:
        user = web.user(request, "view.audit")
        entries, _q = await web.call(audit_filtered, request, user)
        out = io.StringIO()
        writer = csv.writer(out, delimiter=";")
        writer.writerow(["volgnummer", "tijd (UTC)", "wie", "gebeurtenis", "code", "leerling", "gegevens"])
        for e in entries:
            writer.writerow([e["seq"], e["at"], text.actor(e["actor"]), text.event(e["action"]), e["action"],
                             e["subject"] or "",
                             json.dumps(e["details"], ensure_ascii=False, sort_keys=True)])
        return Response(out.getvalue(), media_type="text/csv; charset=utf-8",
                        headers={"content-disposition": 'attachment; filename="logboek.csv"'})

    return [
        Route("/aanmelden", login_page, methods=["GET"]),
        Route("/aanmelden", login, methods=["POST"]),
        Route("/afmelden", logout, methods=["POST"]),
        Route("/", overview, methods=["GET"]),
        Route("/lijsten", lists_page, methods=["GET"]),
        Route("/lijsten", list_create, methods=["POST"]),
        Route("/lijsten/voorbeeld", list_preview, methods=["GET"]),
        Route("/lijsten/{list_id:int}", list_page, methods=["GET"]),
        Route("/lijsten/{list_id:int}/goedkeuren", list_approve, methods=["POST"]),
        Route("/lijsten/{list_id:int}/terugsturen", list_send_back, methods=["POST"]),
        Route("/lijsten/{list_id:int}/toewijzen", list_assign, methods=["POST"]),
        Route("/lijsten/{list_id:int}/annuleren", list_cancel, methods=["POST"]),
        Route("/lijsten/{list_id:int}/uitvoeren", list_execute, methods=["POST"]),
        Route("/lijsten/{list_id:int}/{what}.{suffix}", list_file, methods=["GET"]),
        Route("/bewaren", holds_page, methods=["GET"]),
        Route("/bewaren", hold_add, methods=["POST"]),
        Route("/bewaren/{hold_id:int}/opheffen", hold_remove, methods=["POST"]),
        Route("/leerling", pupil_ask, methods=["GET"]),
        Route("/leerling", pupil_page, methods=["POST"]),
        Route("/leerling/zoeken", pupil_search, methods=["POST"]),
        Route("/leerling/wie", pupil_reveal, methods=["POST"]),
        Route("/verwerkingsregister", register_page, methods=["GET"]),
        Route("/toegang", access_page, methods=["GET"]),
        Route("/aandacht", attention_page, methods=["GET"]),
        Route("/aandacht/uitschrijving", record_departure, methods=["POST"]),
        Route("/aandacht/verschillend", dismiss_duplicate, methods=["POST"]),
        Route("/aandacht/zelfde", link_duplicate, methods=["POST"]),
        Route("/verzoeken", requests_page, methods=["GET"]),
        Route("/verzoeken", request_open, methods=["POST"]),
        Route("/verzoeken/{request_id:int}/verlengen", request_extend, methods=["POST"]),
        Route("/verzoeken/{request_id:int}/afhandelen", request_close, methods=["POST"]),
        Route("/verzoeken/{request_id:int}/kopie", request_copy, methods=["POST"]),
        Route("/logboek", audit_page, methods=["GET"]),
        Route("/logboek.csv", audit_csv, methods=["GET"]),
        Route("/gebruikers", users_page, methods=["GET"]),
        Route("/gebruikers", user_add, methods=["POST"]),
        Route("/gebruikers/uitschakelen", user_disable, methods=["POST"]),
        Route("/gebruikers/rollen", user_roles, methods=["POST"]),
        Route("/volledigheid", completeness_page, methods=["GET"]),
    ]


async def required(request: Request, field: str, message: str) -> str:
    """The posted field ``field``, stripped; refused with ``message`` when it is empty."""
    value = str((await form(request)).get(field, "")).strip()
    if not value:
        raise Refused(message, 400)
    return value


def _day(value: str) -> date | None:
    try:
        return date.fromisoformat(value) if value else None
    except ValueError:
        raise Refused(f"Geef een datum als JJJJ-MM-DD ({value[:20]}).", 400) from None


def _safe_back(value: str | None) -> str:
    """Back to a page of this site only (never an open redirect)."""
    if value and value.startswith("/") and not value.startswith("//") and "\\" not in value:
        return value
    return "/"


__all__ = ["list_name", "routes"]


def _pair(data: Any, first: str, second: str) -> tuple[str, str]:
    """Two pseudonymous keys from a form (a suspected duplicate), or the request is refused."""
    a, b = str(data.get(first, "")).strip(), str(data.get(second, "")).strip()
    if not (a.startswith("p-") and b.startswith("p-")):
        raise Refused("Onbekend paar leerlingen.", 400)
    return a, b
