"""Grip op gegevens: the processing-register entry for the pupil dossier (AVG art. 30) and the
effective access as the DMS holds it, both from the running configuration and state, in Dutch.

Neither names a pupil, a guardian or an account: they count, and name pupils only by their
pseudonymous key where a difference needs a person's look."""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path
from typing import Any

from connector import acl, render
from connector.app.context import App
from connector.errors import ConfigError

access_basis = render.access_basis
"""The basis of an access entry in Dutch (for the front ends)."""

_UNITS = {"y": ("jaar", "jaar"), "m": ("maand", "maanden"), "d": ("dag", "dagen"), "w": ("week", "weken")}
_TRIGGER = {"departure": "na het vertrek van de leerling", "exam_result": "na de uitslag van het examen"}


def _period(value: str | None) -> str:
    """``2y`` -> ``2 jaar``; ``18m`` -> ``18 maanden``."""
    m = re.fullmatch(r"(\d+)([ymdw])", value or "")
    if not m:
        return value or "-"
    one, many = _UNITS[m.group(2)]
    return f"{m.group(1)} {one if m.group(1) == '1' else many}"


def _retention(app: App) -> list[dict[str, str]]:
    schedule = app.schedule()
    out = []
    for code, c in schedule.categories.items():
        if c.blocked:
            term = "nooit vernietigen"
        else:
            bound = "uiterlijk" if c.kind == "maximum" else "ten minste"
            term = f"{bound} {_period(c.period)} {_TRIGGER.get(c.trigger, c.trigger)}"
        out.append({"categorie": code, "naam": c.name, "termijn": term, "grondslag": c.basis,
                    "afwijking": schedule.overrides.get(code, "")})
    return out


def _recipients(app: App, counts: dict[str, Any]) -> list[dict[str, str]]:
    cfg = app.loaded.config
    policy = app.access_policy()
    out = [{"wie": f"Medewerkers met de rol {role}", "wat": "deel " + ", ".join(parts),
            "grondslag": "betrokken bij het onderwijs aan de leerling"
                         + (f"; na het vertrek alleen deel {', '.join(policy.roles_after_departure[role])}"
                            if policy.roles_after_departure.get(role) else "; na het vertrek geen toegang")}
           for role, parts in sorted(policy.roles.items())]
    out += [{"wie": "Ouders met gezag", "wat": "inzage in het hele dossier",
             "grondslag": f"gezag over een leerling jonger dan {policy.adult_age} (AVG art. 15)"},
            {"wie": "Ouders zonder gezag", "wat": "informatie: " + (", ".join(policy.information_classes) or "geen"),
             "grondslag": "recht op informatie over de leerling (BW art. 1:377c)"},
            {"wie": f"De leerling vanaf {policy.adult_age} jaar", "wat": "inzage in het hele dossier",
             "grondslag": "oefent zijn of haar rechten zelf uit (AVG art. 15)"}]
    kinds = {"parent_after_adult_age": "Ouders van een leerling van 16 of ouder", "third_party": "Derden"}
    bases = {"consent": "met toestemming", "legal_duty": "op grond van een wettelijke plicht"}
    out += [{"wie": kinds.get(g["kind"], g["kind"]), "wat": f"toegang bij {g['dossiers']} leerlingen vandaag",
             "grondslag": bases.get(g["basis"], g["basis"])} for g in counts["grants"]]
    sent: dict[str, list[str]] = {}
    for t in counts["transfers"]:
        sent.setdefault(t["kind"], []).append(f"{t['receiving'] or 'onbekend'} ({t['transfers']}x)")
    if "okr" in sent:
        out.append({"wie": "Ontvangende scholen (onderwijskundig rapport)", "wat": ", ".join(sent["okr"]),
                    "grondslag": "WPO art. 42 en Besluit overdracht onderwijskundige gegevens"})
    if "export" in sent:
        out.append({"wie": "Andere bestemmingen (overdracht van een dossierdeel)", "wat": ", ".join(sent["export"]),
                    "grondslag": "overdracht bij vertrek; wat de ontvanger krijgt: [transfer] manifest"})
    out += [{"wie": f"Verwerker: het documentbeheersysteem ({cfg.dms.type})", "wat": "bewaart de dossiers",
             "grondslag": "verwerkersovereenkomst van de school"},
            {"wie": f"Bron: de leerlingadministratie ({cfg.las.type})", "wat": "levert de leerlinggegevens",
             "grondslag": "verwerkersovereenkomst van de school"}]
    return out


def _security(app: App) -> list[str]:
    cfg = app.loaded.config
    web = cfg.web
    out = [
        "Leerlingen staan in de administratie van de connector alleen onder een gesleuteld pseudoniem; namen, "
        "BSN en onderwijsnummers bewaart de connector niet en ze staan niet in logboeken of meldingen.",
        f"Vernietigen gebeurt alleen via een vernietigingslijst die {cfg.destruction.approvals} ander(e) "
        f"persoon (personen) dan de opsteller goedkeurt, na een bedenktijd van {cfg.destruction.cooling_off_days} "
        "dagen, per document opnieuw gecontroleerd, met een verklaring van vernietiging.",
        "Bewaarplichten en categorieën die nooit vernietigd worden, houden elke vernietiging tegen.",
        f"Een export van de leerlingadministratie met minder dan {round(cfg.safety.min_snapshot_ratio * 100)} % "
        "van de leerlingen van de vorige keer stopt vóór elke wijziging.",
        "Elke handeling staat in een logboek waarvan elke regel aan de vorige is gekoppeld, met een anker buiten "
        "de database; wie een dossier inziet, staat er met de reden in.",
        "Geheimen staan niet in het configuratiebestand: het bestand verwijst naar een omgevingsvariabele of een "
        "bestand dat alleen het serviceaccount kan lezen.",
        "Bestanden die de connector maakt, kan alleen het serviceaccount lezen.",
        f"Een kopie voor inzage wordt na {cfg.access.export_days} dagen verwijderd.",
        f"De webpagina: een sessie eindigt na {web.idle_minutes} minuten zonder gebruik; na "
        f"{web.max_login_failures} mislukte pogingen wacht aanmelden {web.lockout_minutes} minuten"
        + ("; aanmelden via de identiteitsdienst van de school." if web.oidc else "."),
    ]
    if app.store_acl():
        out.insert(3, "Toegang wordt per dossierdeel in het documentbeheersysteem ingesteld volgens de regels "
                      "(rol, gezag, leeftijd, toestemming, vertrek) en bij elke synchronisatie en dagelijks "
                      "bijgewerkt.")
    return out


def processing_register(app: App, today: date) -> dict[str, Any]:
    """The processing-register entry for the pupil dossier (AVG art. 30), from the running
    configuration (controller, FG, access rules), the mapping (purposes and data per dossier
    part), the retention schedule (terms and their basis) and the state (dossiers per school,
    grants in force, transfers). ``ontbreekt`` lists what the configuration does not yet say."""
    cfg = app.loaded.config
    school = cfg.school
    missing = [text for value, text in (
        (school.controller, "de verwerkingsverantwoordelijke (het bevoegd gezag): [school] controller"),
        (school.fg, "de functionaris gegevensbescherming: [school] fg"),
        (school.name or school.names, "de naam van de school: [school] name")) if not value]
    missing += [f"het doel van {p.name}: purpose bij [parts.{p.code}] in de mapping"
                for p in app.mapping.parts if not app.mapping.purposes.get(p.code)]
    counts = app.state.dossiers_per_school()
    names = app.school_names(counts)
    recipients = app.state.recipients(today)
    return {
        "verwerking": "Leerlingdossier" + (f" ({app.mapping.description})" if app.mapping.description else ""),
        "opgesteld": today.isoformat(),
        "verwerkingsverantwoordelijke": {"naam": school.controller, "contact": school.controller_contact},
        "functionaris_gegevensbescherming": {"naam": school.fg, "contact": school.fg_contact},
        "scholen": [{"code": code, "naam": names[code], "dossiers": n} for code, n in sorted(counts.items())],
        "doeleinden": [{"deel": p.name, "doel": app.mapping.purposes.get(p.code) or "nog in te vullen"}
                       for p in app.mapping.parts],
        "betrokkenen": [
            f"Leerlingen, ingeschreven en uitgeschreven zolang hun dossier bewaard wordt ({sum(counts.values())} "
            "dossiers)",
            f"Ouders en verzorgers (bij {recipients['dossiers_with_guardians']} leerlingen bekend)",
            "Medewerkers die dossiers beheren of inzien (in het logboek)"],
        "gegevens_per_deel": [{"deel": p.name, "soorten": [
            {"code": c, "naam": app.mapping.classes[c][1], "gegevens_van_anderen": c in app.mapping.others_data}
            for c in p.classes]} for p in app.mapping.parts],
        "ontvangers": _recipients(app, recipients),
        "bewaartermijnen": _retention(app),
        "beveiliging": _security(app),
        "ontbreekt": missing,
    }


def effective_access(app: App, today: date) -> dict[str, Any]:
    """Who can open which dossier parts today, read back from the ACLs the DMS holds (not from
    what the connector meant to set), counted per staff role, guardians, the pupil and third
    parties, with the differences from what the access rules give today."""
    with app.open_store() as store:
        if not store.capabilities.acl:
            raise ConfigError("this DMS adapter holds no access rights the connector can read back")
        return acl.effective(store, app.state, app.access_policy(), app.state.dossier_rows(), today)


REGISTER_TITLE = "Verwerkingsregister: leerlingdossier"
ACCESS_TITLE = "Wie kan wat inzien"


def register_html(register: dict[str, Any]) -> str:
    """The processing-register entry as an HTML fragment (for the web page and a file)."""
    return render.register_html(register)


def access_html(report: dict[str, Any]) -> str:
    """The effective access as an HTML fragment (for the web page and a file)."""
    return render.access_html(report)


def write_page(title: str, fragment: str, path: Path) -> None:
    """A report as one private HTML page."""
    render.write_report_page(title, fragment, path)
