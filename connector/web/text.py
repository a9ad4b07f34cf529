"""Every word the web page shows, in Dutch (the language of its users): labels of statuses,
roles and kinds, and the refusals of the use cases, which speak English to the command line
and are put into Dutch here. A refusal not in the catalogue is shown as a Dutch sentence that
says what kind of refusal it was; never as English text."""

from __future__ import annotations

import re

from connector.app.register import access_basis
from connector.errors import ConfigError, ConnectorError, InvalidState, NotFound, NotPermitted

ROLES = {
    "maker": "opsteller", "approver": "beoordelaar", "executor": "uitvoerder", "admin": "beheerder",
    "privacy": "functionaris gegevensbescherming", "teacher": "leerkracht",
}
LIST_STATUS = {
    "building": "in opbouw", "draft": "klaar voor beoordeling", "approving": "deels goedgekeurd",
    "approved": "goedgekeurd", "rejected": "afgewezen", "executed": "vernietigd", "cancelled": "geannuleerd",
    "empty": "leeg", "preview": "voorbeeld (niet goed te keuren)", "sent_back": "teruggestuurd met wijzigingen",
}
STEP = {"destruction.list.created": "opgesteld", "destruction.list.approved": "goedgekeurd",
        "destruction.list.sent_back": "teruggestuurd met wijzigingen", "destruction.list.assigned": "toegewezen",
        "destruction.list.cancelled": "geannuleerd",
        "destruction.list.executed": "uitgevoerd", "destruction.certificate": "verklaring gemaakt"}
LIST_KIND = {"destruction": "vernietigingslijst", "transfer": "overbrengingslijst"}
CERTIFICATE = {"destruction": "Verklaring van vernietiging",
               "transfer": "Verklaring van overbrenging en verwijdering bij de bron"}
ITEM_STATUS = {"listed": "op de lijst", "sent": "wordt verwijderd", "failed": "mislukt", "destroyed": "verwijderd",
               "skipped": "tegengehouden"}
DECISION = {"approved": "goedgekeurd", "rejected": "uitgezonderd", "pending": "nog niet beoordeeld",
            None: "nog niet beoordeeld", "": "nog niet beoordeeld"}
REQUEST_KIND = {"inspection": "inzage", "copy": "kopie", "correction": "correctie", "erasure": "wissen"}
OUTCOME = {"granted": "toegewezen", "partly": "deels toegewezen", "refused": "afgewezen", "withdrawn": "ingetrokken"}
REQUEST_STATE = {"ok": "op tijd", "due soon": "termijn loopt bijna af", "overdue": "te laat"}
DOCUMENT_STATUS = {"present": "aanwezig", "trashed": "in de prullenbak van het DMS", "destroyed": "vernietigd",
                   "gone": "niet meer in het DMS", "transferring": "wordt overgebracht", "transferred": "overgebracht"}
PART = {None: "het hele dossier", "": "het hele dossier"}
KIND = {"maximum": "vernietigen (niet langer bewaren)", "minimum": "mag daarna weg (minstens zo lang bewaren)"}
FACT = {"departure": "uitschrijving", "referred": "verwezen naar (V)SO", "reunion_consent": "toestemming reünie",
        "reenrolled": "opnieuw ingeschreven", "exam_result": "examenuitslag"}

EVENT = {
    "access.applied": "toegang in het DMS aangepast", "account.linked": "DMS-account gekoppeld",
    "departures.accepted": "veel uitschrijvingen tegelijk geaccepteerd",
    "destruction.certificate": "verklaring van vernietiging gemaakt",
    "destruction.list.approved": "lijst goedgekeurd", "destruction.list.assigned": "lijst toegewezen",
    "destruction.list.cancelled": "lijst geannuleerd", "destruction.list.created": "lijst opgesteld",
    "destruction.list.executed": "lijst uitgevoerd", "destruction.list.sent_back": "lijst teruggestuurd",
    "document.added": "document toegevoegd", "document.destroyed": "document verwijderd",
    "document.purged": "document definitief verwijderd uit de prullenbak",
    "document.tagged": "bewaartermijn vastgelegd bij een document",
    "dossier.created": "dossier aangemaakt", "dossier.updated": "dossier bijgewerkt",
    "dossier.exported": "kopie van het dossier gemaakt", "dossier.part.exported": "kopie van een dossierdeel gemaakt",
    "dossier.viewed": "gegevens van de leerling ingezien", "duplicate.dismissed": "twee verschillende kinderen",
    "duplicate.linked": "twee sleutels van één kind gekoppeld",
    "duplicate.unlinked": "koppeling van twee sleutels ongedaan gemaakt",
    "identity.alias_found": "nieuwe sleutel van de leerling gevonden via het ECK-iD",
    "identity.rekeyed": "sleutels overgezet naar een nieuwe leerlingadministratie",
    "pupil.revealed": "naam en geboortedatum van de leerling getoond",
    "export.removed": "kopie verwijderd na de bewaartijd", "grant.added": "toegang gegeven",
    "grant.revoked": "toegang ingetrokken", "guardian.added": "ouder vastgelegd", "guardian.changed": "ouder gewijzigd",
    "hold.added": "bewaarplicht ingesteld", "hold.removed": "bewaarplicht opgeheven",
    "okr.sent": "onderwijskundig rapport verstuurd", "request.closed": "verzoek afgehandeld",
    "request.extended": "termijn van een verzoek verlengd", "request.opened": "verzoek geregistreerd",
    "snapshot.accepted": "kleine levering van de leerlingadministratie geaccepteerd",
    "sync.finished": "synchronisatie afgerond", "sync.unchanged": "synchronisatie: niets veranderd",
    "user.added": "gebruiker toegevoegd", "user.disabled": "gebruiker uitgeschakeld",
    "user.roles_changed": "rollen van een gebruiker gewijzigd",
    "web.login": "aangemeld", "web.login_failed": "aanmelden mislukt", "web.logout": "afgemeld",
}
"""The audit log's events in Dutch; a recorded fact is named by its kind (``FACT``)."""
EVENT_GROUPS = {
    "destruction": "vernietigings- en overbrengingslijsten", "document": "documenten", "dossier": "dossiers",
    "fact": "feiten over de leerling", "hold": "bewaarplichten", "request": "verzoeken", "grant": "toegang",
    "guardian": "ouders", "sync": "synchronisatie", "duplicate": "dubbele leerlingen",
    "identity": "sleutels van leerlingen", "pupil": "leerlingen", "user": "gebruikers", "web": "aanmelden en afmelden",
}
"""The beginnings of event codes a person can filter the audit log on, in Dutch."""


def event(code: str) -> str:
    """An audit event in Dutch: from the table, a recorded or withdrawn fact by its kind, else
    its group (never the English code alone)."""
    if code in EVENT:
        return EVENT[code]
    if code.startswith("fact."):
        kind = code.removeprefix("fact.").removesuffix(".withdrawn")
        what = FACT.get(kind, kind.replace("_", " "))
        return f"feit ingetrokken: {what}" if code.endswith(".withdrawn") else f"feit vastgelegd: {what}"
    group = EVENT_GROUPS.get(code.split(".", 1)[0])
    return f"gebeurtenis over {group}" if group else "andere gebeurtenis"


RAIL = {
    "min_snapshot_ratio": "de levering lijkt afgekapt (veel minder leerlingen dan de vorige keer)",
    "mass_departure": "veel leerlingen krijgen tegelijk een uitschrijfdatum",
    "no_school": "de levering noemt geen school",
    "single_instance": "er draait al een andere synchronisatie of uitvoering",
    "max_per_run": "het maximum aantal verwijderingen per keer is bereikt",
}
"""The safety rails that stop a run, in Dutch."""


def rail(code: str) -> str:
    return RAIL.get(code, "een veiligheidsregel van de connector")


SYSTEM_ACTORS = {"(first user of the install)": "(eerste gebruiker van de installatie)",
                 "system:leerdossier-service": "de dienst (leerdossier run)"}


def actor(name: str | None) -> str:
    """Who did it, as the audit log names them; the connector's own names put into Dutch."""
    if not name:
        return ""
    if name.startswith("leerdossier sync (accepted by "):
        return "synchronisatie (geaccepteerd door " + name.removeprefix("leerdossier sync (accepted by ")
    return SYSTEM_ACTORS.get(name, name)


CHECKS = {
    "leaver_without_okr": "vertrokken leerling zonder onderwijskundig rapport",
    "okr_without_parents_informed": "OKR verstuurd zonder bewijs dat de ouders zijn geïnformeerd",
    "document_without_class": "documenten zonder soort",
    "document_without_tag": "documenten zonder bewaartermijn",
    "vanished": "leerling niet meer in de leerlingadministratie, geen uitschrijving vastgelegd",
    "pupil_without_dossier": "leerling zonder dossier (afgewezen of vastgehouden bij de laatste synchronisatie)",
    "suspected_duplicate": "mogelijk dubbele leerling, nog niet beoordeeld",
    "request_due": "verzoek bij of over de termijn",
    "authority_unknown": "ouder van wie het gezag onbekend is",
    "guardian_disagreement": "ouder: wat een persoon vastlegde en de leerlingadministratie verschillen",
    "right_without_account": "een recht dat wacht op een gekoppeld DMS-account",
}
_DETAILS: list[tuple[re.Pattern[str], str]] = [(re.compile(p), t) for p, t in [
    (r"^left (?P<d>[0-9-]+)$", "uitgeschreven {d}"),
    (r"^sent (?P<d>[0-9-]+)$", "verstuurd {d}"),
    (r"^(?P<n>\d+) documents$", "{n} documenten"),
    (r"^missing since (?P<d>[0-9-]+)$", "weg sinds {d}"),
    (r"^(?P<n>\d+) guardians$", "{n} ouders"),
    (r"^held as a suspected duplicate$", "vastgehouden als mogelijk dubbel"),
    (r"^rejected: (?P<f>[^:]+):", "afgewezen op het veld {f}"),
    (r"^(?P<k>\w+) due (?P<d>[0-9-]+) \((?P<s>[^)]+)\)$", "{k} uiterlijk {d} ({s})"),
]]


def detail(value: str) -> str:
    """A completeness report's detail in Dutch; an untranslated one is left out."""
    for pattern, template in _DETAILS:
        m = pattern.search(value)
        if m:
            found = m.groupdict()
            if "k" in found:
                found["k"] = REQUEST_KIND.get(found["k"], found["k"])
            if "s" in found:
                found["s"] = REQUEST_STATE.get(found["s"], found["s"])
            return template.format(**found)
    return ""


basis = access_basis
"""The basis of an access entry (or a note on access) in Dutch."""

RIGHT = {"staff": "medewerker", "inspect": "inzage", "information": "informatie"}
def principal(value: str) -> str:
    """Who has access, as the page names them."""
    kind, _, name = value.partition(":")
    return {"role": f"rol {name}", "guardian": f"ouder {name}", "third_party": f"derde: {name}"}.get(
        kind, "de leerling zelf" if value == "pupil" else value)


_CATALOGUE: list[tuple[re.Pattern[str], str]] = [(re.compile(p), t) for p, t in [
    (r"^(?P<who>\S+) made list (?P<id>\d+); another person approves it",
     "U heeft lijst {id} zelf opgesteld; een ander keurt haar goed (vier ogen)."),
    (r"^(?P<who>\S+) approved list (?P<id>\d+) already",
     "U heeft lijst {id} al goedgekeurd; een ander geeft de volgende goedkeuring."),
    (r"^list (?P<id>\d+) is a preview", "Lijst {id} is een voorbeeld voor een latere datum en kan niet worden "
                                        "goedgekeurd."),
    (r"^list (?P<id>\d+) is (?P<status>\w+); only a draft list can be approved",
     "Lijst {id} is {status}; alleen een lijst die klaar is voor beoordeling kan worden goedgekeurd."),
    (r"^list (?P<id>\d+) is empty", "Lijst {id} is leeg; er is niets goed te keuren."),
    (r"^list (?P<id>\d+) was changed after it was made",
     "Lijst {id} is na het opstellen gewijzigd; stel een nieuwe lijst op."),
    (r"^list (?P<id>\d+) is (?P<status>\w+); only a list not yet carried out can be cancelled",
     "Lijst {id} is {status}; alleen een lijst die nog niet is uitgevoerd kan worden geannuleerd."),
    (r"^list (?P<id>\d+) is (?P<status>\w+); it must be approved first",
     "Lijst {id} is {status}; zij moet eerst worden goedgekeurd."),
    (r"^list (?P<id>\d+) has no approved items", "Lijst {id} heeft geen goedgekeurde documenten."),
    (r"^list (?P<id>\d+) is assigned to (?P<who>\S+), who reviews it next",
     "Lijst {id} is toegewezen aan {who}; die geeft de volgende goedkeuring (de opsteller kan haar opnieuw "
     "toewijzen)."),
    (r"^(?P<who>\S+) did not make list (?P<id>\d+); its maker or an admin assigns it",
     "Alleen de opsteller van lijst {id} of een beheerder wijst haar toe."),
    (r"^list (?P<id>\d+) is in its cooling-off period until (?P<until>[0-9-]+)",
     "Lijst {id} is in de afkoelperiode tot {until}; tot dan kan iedereen haar nog annuleren."),
    (r"^list (?P<id>\d+) is (?P<status>\w+); only a list under review can be sent back",
     "Lijst {id} is {status}; alleen een lijst die wordt beoordeeld kan worden teruggestuurd."),
    (r"^no destruction list (?P<id>\d+)", "Er is geen lijst {id}."),
    (r"^give the reason for cancelling", "Geef de reden waarom de lijst wordt geannuleerd."),
    (r"^user '.*' may not do (?P<action>\S+)", "U heeft niet de rol die hiervoor nodig is."),
    (r"^an admin does not change their own roles", "Uw eigen rollen wijzigt een andere beheerder."),
    (r"^an admin does not disable themselves", "Uzelf uitschakelen doet een andere beheerder."),
    (r"^role\(s\) .*: give one or more of", "Kies een of meer rollen."),
    (r"^user '.*': unknown, disabled, or the secret is wrong",
     "Aanmelden is niet gelukt: de naam of het wachtwoord klopt niet, of de gebruiker is uitgeschakeld."),
    (r"^no dossier for the pupil key", "Er is geen dossier met die leerlingsleutel."),
    (r"^unknown part", "Dat dossierdeel bestaat niet."),
    (r"^request (?P<id>\d+) was extended already", "Verzoek {id} is al eens verlengd; dat mag maar één keer."),
    (r"^request (?P<id>\d+) is overdue since (?P<d>[0-9-]+)",
     "Verzoek {id} is sinds {d} over de termijn en kan niet meer worden verlengd."),
    (r"^no open request (?P<id>\d+)", "Er is geen open verzoek {id}."),
    (r"^--comment is for a correction that is refused",
     "Een eigen verklaring van de verzoeker hoort alleen bij een correctie die (deels) is afgewezen."),
    (r"^the disputed document is not a document of this dossier",
     "Het betwiste document hoort niet bij dit dossier (gebruik het nummer op de leerlingpagina)."),
    (r"^--concerns names the disputed document",
     "Een betwist document hoort bij een eigen verklaring van de verzoeker."),
    (r"has no right of inspection or information", "Deze verzoeker heeft vandaag geen recht op inzage in dit dossier."),
    (r"^request (?P<id>\d+): it was made by", "Verzoek {id} is door iemand anders gedaan."),
    (r"^no active hold (?P<id>\d+)", "Er is geen actieve bewaarplicht {id}."),
    (r"^hold (?P<id>\d+) belongs to an open request",
     "Bewaarplicht {id} hoort bij een open verzoek; zij vervalt wanneer het verzoek is afgehandeld."),
]]
_STATUS_WORDS = {**LIST_STATUS}

_BY_CLASS: list[tuple[type[ConnectorError], str]] = [
    (NotPermitted, "Dit mag u niet doen."),
    (NotFound, "Dat is niet gevonden."),
    (InvalidState, "Dit kan in deze stand van zaken niet."),
    (ConfigError, "Dit kan niet met deze instellingen of gegevens."),
]


def refusal(exc: ConnectorError) -> str:
    """A use case's refusal in Dutch."""
    text = str(exc)
    for pattern, template in _CATALOGUE:
        m = pattern.search(text)
        if m:
            values = {k: _STATUS_WORDS.get(v, v) for k, v in m.groupdict().items()}
            return template.format(**values)
    for cls, sentence in _BY_CLASS:
        if isinstance(exc, cls):
            return sentence
    return "Dit is niet gelukt."
