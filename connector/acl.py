"""Apply the computed access lists to the DMS, with the DMS's own access control.

    for each dossier: facts (state) -> access_list (pure) -> DMS grants per part
                      -> set where they differ from what was last set -> record + audit

Principals become DMS principals: a staff role is the DMS group of that name; a guardian, the
pupil and a third party are user accounts, linked by a person (``guardian set --account``,
``pupil account``). A right without a linked account is not applied and is reported. The audit
log names the principals pseudonymously (``guardian:g-...``), never an account or a name.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from connector.access import (
    AccessEntry,
    AccessFacts,
    AccessPolicy,
    Grant,
    GuardianFacts,
    access_list,
    general_basis,
    next_change,
)
from connector.audit import AuditLog
from connector.errors import StoreError
from connector.model import DmsGrant, DossierRef
from connector.ports import DocumentStore
from connector.state import DossierRow, StateStore


def facts_of(state: StateStore, row: DossierRow) -> tuple[AccessFacts, list[dict[str, Any]]]:
    """The dossier's access facts from the state (a person's recorded authority wins over the
    source's), and the guardian rows they came from."""
    page = state.access_page([row.external_id])[row.external_id]
    departure = state.facts_for(row.external_id, row.departure).clock_start
    return _facts(row, page, departure), page["guardians"]


def _facts(row: DossierRow, page: dict[str, Any], departure: date | None) -> AccessFacts:
    guardians = tuple(GuardianFacts(id=g["guardian_id"], authority=r.authority, deceased=r.deceased)
                      for g in page["guardians"] for r in (reading(g),))
    grants = tuple(Grant(id=g["id"], kind=g["kind"], grantee=g["grantee"], parts=g["parts"], basis=g["basis"],
                         start=g["start"], until=g["until"], revoked=g["revoked"]) for g in page["grants"])
    return AccessFacts(pseudonym=row.pseudonym, birth_date=page["birth"], guardians=guardians, grants=grants,
                       departure=departure)


@dataclass(frozen=True)
class Reading:
    """What holds for one guardian, from what the source (the LAS) says and what a person
    recorded, kept in separate columns so that no sync overwrites a person's record."""

    authority: bool | None
    deceased: bool
    disagreement: str | None = None
    """Where the person's record and the source differ, in words (no names), else None."""
    open: bool = False
    """The disagreement waits for a person (a confirmed one is still shown, not counted)."""


def reading(g: dict[str, Any]) -> Reading:
    """One guardian's authority and death as they hold:

    - death: either the source or a person says so (a person's record of a death is never
      undone by a sync);
    - authority: a person's record holds, but when the source has changed its reading since
      the person recorded theirs and the two now differ, the more restrictive reading (no
      authority) holds until a person records it again;
    - unknown when neither says anything (no access until someone records it)."""
    source = g.get("authority")
    person = g.get("authority_recorded")
    died_source, died_person = bool(g.get("deceased")), bool(g.get("deceased_recorded"))
    notes: list[str] = []
    waiting = False
    if person is None:
        value = source
    elif source is None or source == person:
        value = person
    else:
        confirmed = g.get("authority_seen") == source
        waiting = not confirmed
        value = person if confirmed else "no"
        notes.append(f"authority: the LAS says {source}, a person recorded {person}"
                     + (" (confirmed against the LAS)" if confirmed else
                        "; until a person records it again, the more restrictive reading (no) holds"))
    if died_person and not died_source and g.get("source") != "manual":
        notes.append("deceased: recorded by a person, the LAS does not say so")
        waiting = True
    return Reading(authority=None if value is None else value == "yes", deceased=died_source or died_person,
                   disagreement="; ".join(notes) or None, open=waiting)


def authority(g: dict[str, Any]) -> bool | None:
    return reading(g).authority


def disagreements(guardian_rows: Iterable[dict[str, Any]]) -> list[dict[str, str]]:
    """The guardians where a person's record and the source differ and no person has confirmed
    their reading since: ``{"guardian", "disagreement"}``."""
    out = []
    for g in guardian_rows:
        r = reading(g)
        if r.disagreement and r.open:
            out.append({"guardian": g["guardian_id"], "disagreement": r.disagreement})
    return out


def dms_grants(entries: Iterable[AccessEntry], accounts: dict[str, str]
               ) -> tuple[dict[str, dict[str, DmsGrant]], list[str]]:
    """part -> {principal: grant}, and the principals with a right but no account to give it to."""
    out: dict[str, dict[str, DmsGrant]] = {}
    missing: list[str] = []
    for e in entries:
        if e.kind == "role":
            grant = DmsGrant(principal=e.principal.removeprefix("role:"), kind="group", classes=e.classes)
        elif e.kind == "third_party":
            grant = DmsGrant(principal=e.principal.removeprefix("third_party:"), kind="user", classes=e.classes)
        else:
            account = accounts.get(e.principal)
            if account is None:
                if e.principal not in missing:
                    missing.append(e.principal)
                continue
            grant = DmsGrant(principal=account, kind="user", classes=e.classes)
        part = out.setdefault(e.part, {})
        earlier = part.get(e.principal)
        if earlier is not None and (earlier.classes is None or grant.classes is None):
            grant = grant.model_copy(update={"classes": None})  # the wider right wins
        part[e.principal] = grant
    return out, missing


def _fingerprint(grants: tuple[DmsGrant, ...]) -> str:
    return hashlib.sha256(json.dumps([g.model_dump(mode="json") for g in grants], sort_keys=True).encode()).hexdigest()


MISSING_SHOWN = 100


@dataclass
class ApplyReport:
    dossiers: int = 0
    parts_changed: int = 0
    missing_accounts: int = 0
    """Rights that wait for a linked DMS account (``report completeness`` lists them all)."""
    missing_examples: list[dict[str, str]] = field(default_factory=list)
    failed: list[dict[str, str]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


PAGE = 500


def apply(store: DocumentStore, state: StateStore, audit: AuditLog, policy: AccessPolicy, rows: list[DossierRow],
          today: date, actor: str, force: bool = False) -> ApplyReport:
    """Bring the DMS's access for ``rows`` in line with their access lists on ``today``.
    ``force`` sets every part again (e.g. after documents were added, which need it too).
    Facts are read a page of dossiers at a time; what was set is recorded per page, each part
    only after the DMS confirmed it."""
    report = ApplyReport()
    live = [r for r in rows if r.ref_id is not None]
    for start in range(0, len(live), PAGE):
        page_rows = live[start:start + PAGE]
        page = state.access_page([r.external_id for r in page_rows])
        clocks = state.facts_map({r.external_id: r.departure for r in page_rows})
        done: list[tuple[DossierRow, str, str, list[str], date | None, list[str], tuple[Any, ...] | None]] = []
        moved: list[tuple[str, date | None, list[str]]] = []
        for row in page_rows:
            report.dossiers += 1
            data = page[row.external_id]
            facts = _facts(row, data, clocks[row.external_id].clock_start)
            entries, _ = access_list(facts, policy, today)
            accounts = {f"guardian:{g['guardian_id']}": g["account"] for g in data["guardians"] if g["account"]}
            accounts.update(data["accounts"])
            per_part, missing = dms_grants(entries, accounts)
            report.missing_accounts += len(missing)
            room = MISSING_SHOWN - len(report.missing_examples)
            report.missing_examples += [{"record": row.pseudonym, "principal": p} for p in missing[:max(room, 0)]]
            upcoming = next_change(facts, policy, today)
            ref = DossierRef(id=row.ref_id or "", external_id=row.external_id)
            for part in policy.parts:
                grants = tuple(sorted(per_part.get(part, {}).values(), key=lambda g: (g.kind, g.principal)))
                principals = sorted(per_part.get(part, {}))
                fingerprint = _fingerprint(grants)
                before = data["applied"].get(part)
                if before is not None and before[0] == fingerprint and not force:
                    if before[2] != upcoming or before[3] != missing:
                        moved.append((row.external_id, upcoming, missing))
                    continue
                if before is not None or grants or force:  # nothing given before and nothing to give: no call
                    try:
                        store.set_access(ref, part, grants)
                    except StoreError as exc:
                        report.failed.append({"record": row.pseudonym, "part": part, "error": str(exc)})
                        continue
                done.append((row, part, fingerprint, principals, upcoming, missing, before))
        with state.transaction() as conn:
            for external_id, upcoming, waiting in {m[0]: m for m in moved}.values():
                state.set_next_change(conn, external_id, upcoming, waiting)
            state.record_access_many(conn, [(row.external_id, part, fingerprint, principals, upcoming, waiting)
                                            for row, part, fingerprint, principals, upcoming, waiting, _b in done])
            logged: list[tuple[str, str, str | None, dict[str, Any]]] = []
            for row, part, fingerprint, principals, _upcoming, _waiting, before in done:
                old = set(before[1]) if before else set()
                if (before[0] if before else _fingerprint(())) != fingerprint:
                    logged.append((actor, "access.applied", row.pseudonym,
                                    {"part": part, "granted": sorted(set(principals) - old),
                                     "revoked": sorted(old - set(principals)), "on": today.isoformat()}))
            audit.append_many(conn, logged)
            report.parts_changed += len(logged)
    return report


def _who(principal: str) -> str:
    """The kind of holder a report counts (never an account or a name): ``role:NAME``,
    ``guardian``, ``pupil`` or ``third_party``."""
    if principal.startswith("role:"):
        return principal
    return principal.partition(":")[0]


def effective(store: DocumentStore, state: StateStore, policy: AccessPolicy, rows: list[DossierRow],
              today: date) -> dict[str, Any]:
    """Who can open which dossier parts today, as the DMS holds it (``read_access``), counted
    per kind of holder (a staff role, guardians, the pupil, third parties; never an account)
    and per part with the bases the access rules give; and every difference between what the
    DMS holds and what the rules give today, by pseudonym, part and kind of holder:
    ``extra`` (the DMS opens it, the rules do not), ``missing`` (the rules give it, the DMS does
    not open it), ``wider`` (classes beyond those given) and ``narrower`` (the whole part given,
    only some documents open). Reads only."""
    holders: dict[tuple[str, str, str], dict[str, Any]] = {}
    differences: list[dict[str, Any]] = []
    failed: list[dict[str, str]] = []
    live = [r for r in rows if r.ref_id is not None]
    for start in range(0, len(live), PAGE):
        page_rows = live[start:start + PAGE]
        page = state.access_page([r.external_id for r in page_rows])
        clocks = state.facts_map({r.external_id: r.departure for r in page_rows})
        for row in page_rows:
            data = page[row.external_id]
            entries, _ = access_list(_facts(row, data, clocks[row.external_id].clock_start), policy, today)
            accounts = {f"guardian:{g['guardian_id']}": g["account"] for g in data["guardians"] if g["account"]}
            accounts.update(data["accounts"])
            per_part, _missing = dms_grants(entries, accounts)
            # the DMS's principal -> the connector's (an account's case aside)
            known = {(g.kind, g.principal.lower() if g.kind == "user" else g.principal): p
                     for grants in per_part.values() for p, g in grants.items()}
            bases: dict[tuple[str, str], set[str]] = {}
            for e in entries:
                bases.setdefault((e.part, e.principal), set()).add(e.basis)
            try:
                held = store.read_access(DossierRef(id=row.ref_id or "", external_id=row.external_id))
            except StoreError as exc:
                failed.append({"record": row.pseudonym, "error": str(exc)})
                continue
            for part in sorted(set(held) | set(per_part)):
                seen: set[str] = set()
                for grant in held.get(part, ()):
                    key = (grant.kind, grant.principal.lower() if grant.kind == "user" else grant.principal)
                    principal = known.get(key) or (f"role:{grant.principal}" if grant.kind == "group" else "other")
                    seen.add(principal)
                    scope = "whole" if grant.classes is None else "classes"
                    slot = holders.setdefault((_who(principal), part, scope), {
                        "holder": _who(principal), "part": part, "whole_part": grant.classes is None,
                        "pupils": set(), "classes": set(), "bases": set()})
                    slot["pupils"].add(row.pseudonym)
                    slot["classes"] |= set(grant.classes or ())
                    slot["bases"] |= {general_basis(b) for b in bases.get((part, principal), set())}
                    meant = per_part.get(part, {}).get(principal)
                    if meant is None:
                        differences.append({"record": row.pseudonym, "part": part, "holder": _who(principal),
                                            "difference": "extra"})
                    elif meant.classes is not None and (grant.classes is None
                                                        or not set(grant.classes) <= set(meant.classes)):
                        differences.append({"record": row.pseudonym, "part": part, "holder": _who(principal),
                                            "difference": "wider"})
                    elif meant.classes is None and grant.classes is not None:
                        # a store that holds access per document reads back only the classes it
                        # opens: fewer than meant is a difference only when the whole part was meant
                        differences.append({"record": row.pseudonym, "part": part, "holder": _who(principal),
                                            "difference": "narrower"})
                for principal in sorted(set(per_part.get(part, {})) - seen):
                    differences.append({"record": row.pseudonym, "part": part, "holder": _who(principal),
                                        "difference": "missing"})
    rows_out = [dict(v, pupils=len(v["pupils"]), classes=sorted(v["classes"]), bases=sorted(v["bases"]))
                for _k, v in sorted(holders.items())]
    return {"today": today.isoformat(), "dossiers": len(live), "holders": rows_out, "differences": differences,
            "failed": failed}
