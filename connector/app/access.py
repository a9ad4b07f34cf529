"""Use cases on who may see a dossier: guardians recorded by a person, grants, the pupil's own
account, requests' terms and the copies made for data subjects. Each runs in one transaction
with its audit entry; a change a person makes is applied in the DMS at once (``apply_now``)."""

from __future__ import annotations

from datetime import date
from typing import Any

from connector import acl
from connector.access import AccessEntry, AccessNote, access_list
from connector.acl import ApplyReport
from connector.app.context import App
from connector.errors import ConfigError, InvalidState, NotFound
from connector.state import DossierRow


def record_view(app: App, by: str, pseudonym: str, what: str, reason: str) -> None:
    """The audit entry for one view of a pupil's data, who looked, at what and why (a trace,
    not a change to the dossier)."""
    app.audit.record(by, "dossier.viewed", pseudonym, {"what": what, "reason": reason})


def apply_now(app: App, row: DossierRow, by: str) -> dict[str, Any] | None:
    """Apply the dossier's access in the DMS now (None: the DMS applies no access rights)."""
    with app.open_store() as store:
        if not store.capabilities.acl:
            return None
        return app.apply_access(store, [row.external_id], by).as_dict()


def add_guardian(app: App, by: str, row: DossierRow, name: str, relation: str | None,
                 authority: bool | None, shown: str) -> str:
    """Record a guardian by hand (for a source without guardian data); returns their g-... id."""
    gid = app.identity.guardian_id(row.external_id, relation, name)
    with app.state.transaction() as conn:
        app.state.add_guardian(conn, row.external_id, gid, name, relation, authority, by)
        app.audit.append(conn, by, "guardian.added", row.pseudonym,
                         {"guardian": gid, "relation": relation, "authority": shown})
    return gid


def set_guardian(app: App, by: str, row: DossierRow, guardian: str, values: dict[str, Any],
                 authority: str | None, reason: str) -> None:
    """Record what a person established about a guardian (authority, account, death) in the
    person's own columns, which no sync writes."""
    with app.state.transaction() as conn:
        if not app.state.set_guardian(conn, row.external_id, guardian, **values):
            raise NotFound(f"no current guardian {guardian} on {row.pseudonym}")
        app.audit.append(conn, by, "guardian.changed", row.pseudonym,
                         {"guardian": guardian, "fields": sorted(values), "authority": authority, "reason": reason})


def link_pupil_account(app: App, by: str, row: DossierRow, account: str) -> None:
    """Link the pupil's own DMS account (used from their 16th birthday on), audited."""
    with app.state.transaction() as conn:
        app.state.link_account(conn, row.external_id, "pupil", account, by)
        app.audit.append(conn, by, "account.linked", row.pseudonym, {"principal": "pupil"})


GRANT_KINDS = {"third-party": "third_party", "parent-after-16": "parent_after_adult_age"}
"""A grant's kind as a person names it, and as it is recorded."""


def add_grant(app: App, by: str, row: DossierRow, kind: str, grantee: str, parts: tuple[str, ...], basis: str,
              first: date, until: date, reason: str) -> int:
    """Access by consent or legal duty to parts of the dossier from ``first`` to ``until``
    (``kind``: third-party, or parent-after-16, which rests on the pupil's consent), audited;
    returns its id. The caller applies it (``apply_now``)."""
    if until < first:
        raise InvalidState("--until is before the first day")
    known = {p.code for p in app.mapping.parts}
    if not parts or set(parts) - known:
        raise InvalidState(f"--parts: give parts of the mapping ({', '.join(sorted(known))})")
    if kind not in GRANT_KINDS:
        raise InvalidState(f"unknown kind of grant {kind!r}: {', '.join(GRANT_KINDS)}")
    if kind == "parent-after-16" and basis != "consent":
        raise InvalidState("a parent's access after 16 rests on the pupil's consent: --basis consent")
    kind = GRANT_KINDS[kind]
    with app.state.transaction() as conn:
        grant_id = app.state.add_grant(conn, row.external_id, kind, grantee, parts, basis.replace("-", "_"),
                                       first, until, reason, by)
        app.audit.append(conn, by, "grant.added", row.pseudonym,
                         {"grant": grant_id, "kind": kind, "grantee": grantee, "parts": list(parts),
                          "basis": basis, "from": first.isoformat(), "until": until.isoformat(), "reason": reason})
    return grant_id



def label(authority: bool | None) -> str:
    """Parental authority as shown: yes, no or unknown."""
    return "unknown" if authority is None else ("yes" if authority else "no")


def _yes(value: str | None) -> bool | None:
    return None if value is None else value == "yes"


def guardians(app: App, by: str, row: DossierRow, reason: str, names: bool = False) -> list[dict[str, Any]]:
    """The guardians of a dossier as the connector reads them (authority, death, the LAS's and
    a person's word where they differ, the linked account); ``names`` adds the names the source
    gives. A view of personal data: audited as such."""
    _, gs = acl.facts_of(app.state, row)
    record_view(app, by, row.pseudonym, "guardians with names" if names else "guardians", reason)
    return [{"guardian": g["guardian_id"], "source": g["source"], "relation": g["relation"],
             "authority": label(r.authority), "authority_las": label(_yes(g["authority"])),
             "authority_recorded_by_person": g["authority_recorded"] is not None,
             "deceased": r.deceased, "deceased_recorded_by_person": bool(g["deceased_recorded"]),
             "disagreement": r.disagreement, "account": g["account"],
             **({"name": g["display"]} if names else {})} for g in gs for r in (acl.reading(g),)]


def access_of(app: App, by: str, row: DossierRow, day: date, reason: str,
              ) -> tuple[tuple[AccessEntry, ...], tuple[AccessNote, ...], list[dict[str, Any]]]:
    """A dossier's access list on ``day``, per part with each entry's basis, the notes on it, and
    the guardians on whom the LAS and a person disagree. A view of personal data: audited."""
    pol = app.access_policy()
    f, gs = acl.facts_of(app.state, row)
    record_view(app, by, row.pseudonym, "access list", reason)
    entries, notes = access_list(f, pol, day)
    differ = [{"guardian": g["guardian_id"], "disagreement": r.disagreement, "waits_for_a_person": r.open}
              for g in gs for r in (acl.reading(g),) if r.disagreement]
    return entries, notes, differ


def apply_access(app: App, by: str, row: DossierRow | None, everything: bool, day: date) -> ApplyReport:
    """Apply access in the DMS: for one dossier (``row``), for every dossier (``everything``), or
    for those whose access the calendar changed on ``day`` (16th birthdays, grants) and those
    never applied."""
    if row is not None:
        ids: list[str] | None = [row.external_id]
    elif everything:
        ids = [r.external_id for r in app.state.dossier_rows()]
    else:
        ids = None
    with app.open_store() as store:
        if not store.capabilities.acl:
            raise ConfigError("this DMS adapter does not apply access rights")
        return app.apply_access(store, ids, by, force=everything or row is not None, today=day)


def revoke_grant(app: App, by: str, grant_id: int, reason: str, today: date) -> dict[str, Any] | None:
    """End a grant today (consent withdrawn, duty ended), audited, and apply the dossier's access
    at once; returns what was applied (None: the DMS applies no access rights)."""
    with app.state.transaction() as conn:
        grant = app.state.revoke_grant(conn, grant_id, today)
        if grant is None:
            raise NotFound(f"no grant {grant_id}")
        rows = app.state.dossier_rows([grant["external_id"]])
        app.audit.append(conn, by, "grant.revoked", rows[0].pseudonym if rows else None,
                         {"grant": grant_id, "reason": reason})
    return apply_now(app, rows[0], by) if rows else None
