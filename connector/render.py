"""Destruction lists and certificates as readable HTML and PDF (for the person who approves,
and for the archive). Pupils appear only by pseudonymous key."""

from __future__ import annotations

import html
import re
from pathlib import Path
from typing import Any

from fpdf import FPDF

_LIST_COLUMNS = [("id", "Item"), ("pseudonym", "Leerling (pseudoniem)"), ("school", "School"),
                 ("part", "Deel"), ("doc_class", "Klasse"), ("category", "Categorie"), ("due", "Termijn verstreken"),
                 ("decision", "Besluit")]
_CERT_COLUMNS = [("record", "Leerling (pseudoniem)"), ("school", "School"), ("part", "Deel"), ("class", "Klasse"),
                 ("category", "Categorie"), ("due", "Termijn verstreken"), ("destroyed_at", "Vernietigd")]


_BASIS: list[tuple[re.Pattern[str], str]] = [(re.compile(p), t) for p, t in [
    (r"^staff role involved in the pupil's education$",
     "medewerker die bij het onderwijs aan de leerling betrokken is"),
    (r"^staff role after the pupil left on (?P<d>[0-9-]+): kept for the retention period$",
     "medewerker na het vertrek van de leerling op {d}: bewaard voor de bewaartermijn"),
    (r"^the pupil is (?P<n>\d+) or older and exercises the rights$",
     "de leerling is {n} of ouder en oefent de rechten zelf uit"),
    (r"^parent with parental authority of a pupil under (?P<n>\d+)$",
     "ouder met gezag over een leerling jonger dan {n}"),
    (r"^consent of the pupil \(grant (?P<g>\d+)\)$", "toestemming van de leerling (toestemming {g})"),
    (r"^parent without parental authority: information, not inspection$",
     "ouder zonder gezag: informatie, geen inzage"),
    (r"^consent \(grant (?P<g>\d+)\)$", "toestemming (toestemming {g})"),
    (r"^legal duty \(grant (?P<g>\d+)\)$", "wettelijke plicht (toestemming {g})"),
    (r"^staff role after the pupil left: kept for the retention period$",
     "medewerker na het vertrek van de leerling: bewaard voor de bewaartermijn"),
    (r"^consent of the pupil$", "toestemming van de leerling"),
    (r"^consent$", "toestemming"),
    (r"^legal duty$", "wettelijke plicht"),
    (r"^(?P<id>g-\w+): parental authority unknown; no access until recorded$",
     "{id}: gezag onbekend; geen toegang tot het is vastgelegd"),
]]


def access_basis(value: str) -> str:
    """The basis of an access entry (or a note on access) in Dutch."""
    for pattern, template in _BASIS:
        m = pattern.search(value)
        if m:
            return template.format(**m.groupdict())
    return "zie het toegangsoverzicht (leerdossier access show)"


def _latin1(text: object) -> str:
    """The PDF core fonts speak Latin-1: keep accents, replace the rest."""
    s = "" if text is None else str(text)
    s = s.replace("\u2014", "-").replace("\u2013", "-").replace("\u2018", "'").replace("\u2019", "'")
    s = s.replace("\u201c", '"').replace("\u201d", '"').replace("\u2026", "...")
    return s.encode("latin-1", "replace").decode("latin-1")


def _with_schools(rows: list[dict[str, Any]], schools: dict[str, str] | None) -> list[dict[str, Any]]:
    """Rows whose school code reads as the school's name with its code, where the name is known."""
    if not schools:
        return rows
    return [dict(r, school=schools.get(str(r.get("school")), r.get("school"))) for r in rows]


def _school_line(rows: list[dict[str, Any]], schools: dict[str, str] | None) -> tuple[str, str]:
    codes = sorted({str(r["school"]) for r in rows if r.get("school")})
    return ("School", ", ".join((schools or {}).get(c, c) for c in codes) or "-")


def _html_table(rows: list[dict[str, Any]], columns: list[tuple[str, str]]) -> str:
    head = "".join(f"<th>{html.escape(label)}</th>" for _, label in columns)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(r.get(k) or ''))}</td>" for k, _ in columns) + "</tr>"
                   for r in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _page(title: str, lines: list[tuple[str, str]], table: str, notes: list[str]) -> str:
    meta = "".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>" for k, v in lines)
    note = "".join(f"<p>{html.escape(n)}</p>" for n in notes)
    return (f"<!doctype html><html lang='nl'><meta charset='utf-8'><title>{html.escape(title)}</title>"
            "<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse;margin:1em 0}"
            "td,th{border:1px solid #999;padding:.2em .5em;text-align:left;font-size:90%}</style>"
            f"<h1>{html.escape(title)}</h1><table>{meta}</table>{note}{table}</html>\n")


def _pdf(title: str, lines: list[tuple[str, str]], rows: list[dict[str, Any]], columns: list[tuple[str, str]],
         notes: list[str], path: Path) -> None:
    pdf = FPDF(orientation="L", format="A4")
    pdf.set_auto_page_break(auto=True, margin=12)
    pdf.add_page()
    pdf.set_font("Helvetica", "B", 15)
    pdf.cell(0, 10, _latin1(title), new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Helvetica", "", 9)
    for k, v in lines:
        pdf.multi_cell(0, 5, _latin1(f"{k}: {v}"), new_x="LMARGIN", new_y="NEXT")
    for n in notes:
        pdf.ln(1)
        pdf.multi_cell(0, 5, _latin1(n), new_x="LMARGIN", new_y="NEXT")
    pdf.ln(2)
    with pdf.table(col_widths=tuple(1 for _ in columns), text_align="LEFT", first_row_as_headings=True) as table:
        header = table.row()
        for _, label in columns:
            header.cell(_latin1(label))
        for r in rows:
            row = table.row()
            for k, _ in columns:
                row.cell(_latin1(r.get(k) or ""))
    pdf.output(str(path))


STATUS = {"building": "in opbouw", "draft": "concept, wacht op goedkeuring", "empty": "leeg: niets te vernietigen",
          "preview": "voorbeeld voor een latere datum: kan niet worden goedgekeurd",
          "approving": "gedeeltelijk goedgekeurd, wacht op een volgende goedkeuring", "approved": "goedgekeurd",
          "rejected": "alle documenten afgewezen", "executed": "uitgevoerd", "cancelled": "ingetrokken"}
"""List statuses in the words of the people who read the list."""


def write_list(head: dict[str, Any], items: list[dict[str, Any]], folder: Path,
               simulated: str | None = None, schools: dict[str, str] | None = None) -> dict[str, str]:
    """``simulated``: the install runs on a simulated clock, and the list says so; ``schools``:
    school code -> the school's name with its code."""
    folder.mkdir(parents=True, exist_ok=True)
    kind = "Overbrengingslijst" if head.get("kind") == "transfer" else "Vernietigingslijst"
    title = f"{kind} {head['id']}" + (f" - {simulated}" if simulated else "")
    approved = f"{head['approved_by']} ({head['approved_role'] or '-'}) op {head['approved_at']}" \
        if head.get("approved_by") else "nog niet goedgekeurd"
    lines = [_school_line(items, schools), ("Peildatum", str(head["as_of"])),
             ("Opgesteld door", str(head["created_by"])),
             ("Opgesteld op", str(head["created"])), ("Status", STATUS.get(head["status"], str(head["status"]))),
             ("Goedkeuring", approved), ("Controlegetal (SHA-256)", str(head["digest"])),
             ("Aantal documenten", str(len(items))),
             ("Aantal leerlingen", str(len({i["pseudonym"] for i in items}))),
             ("Benodigde goedkeuringen", f"{head.get('required_approvals') or 1}, niet door de opsteller")]
    if head.get("kind") == "transfer":
        lines.append(("Ontvanger", str(head.get("receiving"))))
    if simulated:
        lines.insert(0, ("LET OP", simulated))
    notes = ["Alleen documenten waarvan de maximale bewaartermijn is verstreken, die niet geblokkeerd zijn en "
             "waarvoor geen blokkade (hold) geldt. Bij uitvoering wordt dit per document opnieuw gecontroleerd.",
             "Grondslag per categorie: " + "; ".join(sorted({f"{i['category']}: {i['basis']}" for i in items}))]
    decisions = {"pending": "open", "approved": "goedgekeurd", "rejected": "afgewezen"}
    items = [dict(i, decision=decisions.get(i.get("decision") or "", i.get("decision")))
             for i in _with_schools(items, schools)]
    html_path, pdf_path = folder / f"list-{head['id']}.html", folder / f"list-{head['id']}.pdf"
    html_path.write_text(_page(title, lines, _html_table(items, _LIST_COLUMNS), notes), encoding="utf-8")
    _pdf(title, lines, items, _LIST_COLUMNS, notes, pdf_path)
    return {"html": str(html_path), "pdf": str(pdf_path)}


def write_certificate(cert: dict[str, Any], folder: Path) -> dict[str, str]:
    folder.mkdir(parents=True, exist_ok=True)
    title = f"{cert.get('title', 'Verklaring van vernietiging')} (lijst {cert['list']})"
    if cert.get("simulated"):
        title += f" - {cert['simulated']}"
    due_range = " t/m ".join(str(d) for d in cert["due_range"]) if cert["due_range"] else "-"
    approvals = "; ".join(f"{a['by']} ({a['role'] or '-'}) op {a['at']}" for a in cert.get("approvals", []))
    schools = cert.get("schools")
    destroyed = _with_schools(cert["destroyed"], schools)
    lines = [_school_line(cert["destroyed"], schools), ("Peildatum lijst", str(cert["as_of"])),
             ("Opgesteld door", str(cert.get("made_by"))),
             ("Goedgekeurd door", approvals or f"{cert['approved_by']} op {cert['approved_at']}"),
             ("Uitgevoerd", str(cert["executed_at"] or "nog niet volledig")),
             ("Vernietigd", f"{cert['counts']['destroyed']} documenten van {cert['counts']['pupils']} leerlingen"),
             ("Per categorie", ", ".join(f"{k}: {v}" for k, v in sorted(cert["counts"]["by_category"].items()))),
             ("Termijnen verstreken", due_range), ("Wijze", cert["method"]),
             ("Controlegetal lijst", str(cert["approved_digest"]))]
    if cert.get("receiving"):
        lines += [("Ontvanger", str(cert["receiving"])), ("Verificatie", str(cert.get("verification")))]
    if cert.get("audit_anchor"):
        lines.append(("Logboek bij afgifte", f"regel {cert['audit_anchor']['seq']}, {cert['audit_anchor']['hash']}"))
    if cert.get("simulated"):
        lines.insert(0, ("LET OP", str(cert["simulated"])))
    bases = sorted({f"{d['category']}: {d['basis']}" for d in cert["destroyed"]})
    notes = ["Grondslag: " + ("; ".join(bases) if bases else "-"), "Reikwijdte: " + cert["scope"]]
    if cert["not_destroyed"]:
        notes.append(f"Niet vernietigd (apart vermeld): {len(cert['not_destroyed'])} item(s); zie de JSON-versie.")
    html_path, pdf_path = folder / f"certificate-{cert['list']}.html", folder / f"certificate-{cert['list']}.pdf"
    html_path.write_text(_page(title, lines, _html_table(destroyed, _CERT_COLUMNS), notes), encoding="utf-8")
    _pdf(title, lines, destroyed, _CERT_COLUMNS, notes, pdf_path)
    return {"html": str(html_path), "pdf": str(pdf_path)}


def write_completeness(report: dict[str, Any], path: Path, schools: dict[str, str] | None = None) -> None:
    """The completeness report as one HTML page: per school (by name where known) the counts,
    then the records."""
    checks: dict[str, str] = report["checks"]
    sections = []
    for school, data in report["schools"].items():
        counts = [{"check": checks[c], "count": n} for c, n in data["counts"].items()]
        items = [{"check": checks[i["check"]], "record": i["record"], "detail": i["detail"]} for i in data["items"]]
        sections.append(f"<h2>{html.escape((schools or {}).get(school, school))}</h2>"
                        + _html_table(counts, [("check", "Controle"), ("count", "Aantal")])
                        + _html_table(items, [("check", "Controle"), ("record", "Leerling (pseudoniem)"),
                                              ("detail", "Toelichting")]))
    page = _page("Volledigheid leerlingdossiers", [("Datum", report["today"])], "".join(sections),
                 ["Leerlingen staan er met hun pseudoniem; 'leerdossier access show' en de LAS geven de leerling."])
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(page, encoding="utf-8")


# -- the processing register and the effective access ---------------------------------------------
HOLDER = {"guardian": "ouders en verzorgers (elk met een eigen account)", "pupil": "de leerling zelf",
          "third_party": "derden met toestemming of een wettelijke plicht",
          "other": "accounts die de connector niet kent (niet door de connector gegeven)"}
DIFFERENCE = {"extra": "het documentbeheersysteem geeft toegang die de regels niet geven",
              "missing": "de regels geven toegang die het documentbeheersysteem niet geeft",
              "wider": "het documentbeheersysteem opent meer soorten documenten dan de regels geven",
              "narrower": "het documentbeheersysteem opent maar een deel van de documenten"}


def holder_name(holder: str) -> str:
    """A kind of holder of access in Dutch (``role:NAME``: the staff role)."""
    return f"medewerkers met de rol {holder[5:]}" if holder.startswith("role:") else HOLDER.get(holder, holder)


def _section(title: str, body: str) -> str:
    return f"<h2>{html.escape(title)}</h2>{body}"


def _items(values: list[str]) -> str:
    return "<ul>" + "".join(f"<li>{html.escape(v)}</li>" for v in values) + "</ul>"


def register_html(reg: dict[str, Any]) -> str:
    """The processing-register entry as an HTML fragment, in Dutch."""
    who = reg["verwerkingsverantwoordelijke"]
    fg = reg["functionaris_gegevensbescherming"]
    out = [_html_table([
        {"k": "Verwerking", "v": reg["verwerking"]},
        {"k": "Verwerkingsverantwoordelijke", "v": " - ".join(x for x in (who["naam"], who["contact"]) if x)},
        {"k": "Functionaris gegevensbescherming", "v": " - ".join(x for x in (fg["naam"], fg["contact"]) if x)},
        {"k": "Opgesteld op", "v": reg["opgesteld"]}], [("k", "Onderdeel"), ("v", "Gegevens")])]
    if reg["ontbreekt"]:
        out.append(_section("Nog in te vullen", _items(reg["ontbreekt"])))
    out.append(_section("Scholen", _html_table(reg["scholen"], [("naam", "School"), ("dossiers", "Dossiers")])))
    out.append(_section("Doeleinden", _html_table(reg["doeleinden"], [("deel", "Deel"), ("doel", "Doel")])))
    out.append(_section("Betrokkenen", _items(reg["betrokkenen"])))
    for part in reg["gegevens_per_deel"]:
        rows = [{"soort": c["naam"], "anderen": "ja" if c["gegevens_van_anderen"] else ""} for c in part["soorten"]]
        out.append(_section(f"Gegevens in {part['deel']}", _html_table(
            rows, [("soort", "Soort document"), ("anderen", "Bevat vaak gegevens van anderen")])))
    out.append(_section("Ontvangers", _html_table(reg["ontvangers"], [("wie", "Wie"), ("wat", "Wat"),
                                                                       ("grondslag", "Waarom")])))
    out.append(_section("Bewaartermijnen", _html_table(reg["bewaartermijnen"], [
        ("naam", "Categorie"), ("termijn", "Termijn"), ("grondslag", "Grondslag"),
        ("afwijking", "Afwijking van de school")])))
    out.append(_section("Beveiligingsmaatregelen van de connector", _items(reg["beveiliging"])))
    return "".join(out)


def access_html(report: dict[str, Any]) -> str:
    """The effective access as an HTML fragment, in Dutch: per kind of holder and part, how many
    pupils' dossier parts it can open and why; then the differences with the rules."""
    rows = [{"wie": holder_name(h["holder"]), "deel": h["part"],
             "wat": "het hele deel" if h["whole_part"] else "alleen: " + (", ".join(h["classes"]) or "geen document"),
             "leerlingen": h["pupils"], "waarom": "; ".join(access_basis(b) for b in h["bases"])
             or "geen grond in de regels"} for h in report["holders"]]
    out = [f"<p>Gelezen uit het documentbeheersysteem op {html.escape(report['today'])}: "
           f"{report['dossiers']} dossiers. Wat hier staat, is wat het systeem nu toestaat, niet wat de connector "
           "bedoelde in te stellen.</p>",
           _html_table(rows, [("wie", "Wie"), ("deel", "Deel"), ("wat", "Wat"), ("leerlingen", "Leerlingen"),
                              ("waarom", "Waarom")])]
    diffs = [{"leerling": d["record"], "deel": d["part"], "wie": holder_name(d["holder"]),
              "verschil": DIFFERENCE.get(d["difference"], d["difference"])} for d in report["differences"]]
    out.append(_section(f"Verschillen met de regels ({len(diffs)})", _html_table(
        diffs, [("leerling", "Leerling (pseudoniem)"), ("deel", "Deel"), ("wie", "Wie"), ("verschil", "Verschil")])
        if diffs else "<p>Geen: het systeem geeft precies de toegang die de regels vandaag geven.</p>"))
    if report["failed"]:
        out.append(_section("Niet gelezen", _html_table(
            [{"leerling": f["record"]} for f in report["failed"]], [("leerling", "Leerling (pseudoniem)")])))
    return "".join(out)


def write_report_page(title: str, fragment: str, path: Path) -> None:
    """A report as one private HTML page (0600)."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    path.write_text(_page(title, [], fragment, []), encoding="utf-8")
    path.chmod(0o600)
