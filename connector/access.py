"""Who may see what of a pupil's dossier, computed from the pupil's facts. Pure: no I/O.

    access_list(facts, policy, on) -> the entries in force on that day, per dossier part

The rules (DESIGN.md "Access", domain notes A2):
- staff roles from the configuration, each with the parts it works with;
- a parent or carer **with** parental authority inspects the dossier while the pupil is under
  16 (``policy.adult_age``);
- from 16 the pupil exercises the rights: the pupil inspects, parents no longer do, unless the
  pupil has recorded consent for a parent (until its end date);
- a parent **without** authority is informed (``information`` of the configured classes, e.g.
  reports), never inspects;
- authority unknown (the source does not say, nothing recorded) grants nothing: the access
  report says so, and a person records it;
- a deceased guardian gets nothing;
- third parties only by a recorded grant (consent or legal duty) per part, with an end date.

Nothing is granted by default: every entry names its basis.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import date
from typing import Literal

from pydantic import Field

from connector.model import Frozen

Right = Literal["staff", "inspect", "information"]
PrincipalKind = Literal["role", "guardian", "pupil", "third_party"]


class GuardianFacts(Frozen):
    """A parent or carer as the state knows them (from the LAS or recorded by a person)."""

    id: str
    """Stable pseudonymous id (``g-...``)."""
    authority: bool | None
    """Parental authority: True, False, or None when unknown."""
    deceased: bool = False


class Grant(Frozen):
    """Access recorded by a person: a pupil's consent for a parent from 16 on, or a third party
    by consent or legal duty. Always with an end date."""

    id: int
    kind: Literal["parent_after_adult_age", "third_party"]
    grantee: str
    """The guardian id (``g-...``) or the third party's name as the DMS knows it."""
    parts: tuple[str, ...]
    basis: Literal["consent", "legal_duty"]
    start: date
    until: date
    revoked: date | None = None

    def in_force(self, on: date) -> bool:
        return self.start <= on <= self.until and (self.revoked is None or on < self.revoked)


class AccessFacts(Frozen):
    """What access is computed from, for one dossier."""

    pseudonym: str
    birth_date: date | None
    guardians: tuple[GuardianFacts, ...] = ()
    grants: tuple[Grant, ...] = ()
    departure: date | None = None
    """The departure whose retention clock runs (None: enrolled, or back after leaving)."""


class AccessPolicy(Frozen):
    """From the configuration's ``[access]``: role names and what they and parents see."""

    adult_age: int = Field(default=16, ge=12, le=18)
    roles: dict[str, tuple[str, ...]] = Field(default_factory=dict)
    """Staff role (a group in the DMS) -> the dossier parts it works with."""
    parts: tuple[str, ...] = ("I", "II")
    """Every part of the dossier (from the mapping)."""
    information_classes: tuple[str, ...] = ()
    """The document classes a parent without authority is informed of (e.g. reports)."""
    roles_after_departure: dict[str, tuple[str, ...]] = Field(default_factory=dict)
    """Staff role -> the parts it keeps from the pupil's departure date on (a role not named
    keeps none): the dossier is then kept for its retention period, not for teaching."""


class AccessEntry(Frozen):
    principal: str
    """``role:<name>``, ``guardian:<g-id>``, ``pupil``, ``third_party:<name>``."""
    kind: PrincipalKind
    right: Right
    part: str
    classes: tuple[str, ...] | None = None
    """Only these document classes (``information``); None: the whole part."""
    until: date | None = None
    basis: str


class AccessNote(Frozen):
    """Something a person should know about a dossier's access (for the report)."""

    pseudonym: str
    note: str


def age_on(birth: date, on: date) -> int:
    """Completed years (a pupil born on 29 February turns a year older on 1 March)."""
    return on.year - birth.year - ((on.month, on.day) < (birth.month, birth.day))


def adult_from(birth: date, adult_age: int) -> date:
    """The day the pupil reaches ``adult_age`` (29 February -> 1 March in a common year)."""
    try:
        return birth.replace(year=birth.year + adult_age)
    except ValueError:
        return date(birth.year + adult_age, 3, 1)


def access_list(facts: AccessFacts, policy: AccessPolicy, on: date) -> tuple[tuple[AccessEntry, ...],
                                                                              tuple[AccessNote, ...]]:
    """The entries in force on ``on`` (sorted, so equal inputs give equal lists) and notes."""
    entries: list[AccessEntry] = []
    notes: list[AccessNote] = []
    left = facts.departure is not None and on >= facts.departure
    for role, parts in sorted(policy.roles.items()):
        if left:
            kept = policy.roles_after_departure.get(role, ())
            entries += [AccessEntry(principal=f"role:{role}", kind="role", right="staff", part=p,
                                    basis=f"staff role after the pupil left on {facts.departure}: kept for the "
                                          "retention period") for p in parts if p in kept]
            continue
        entries += [AccessEntry(principal=f"role:{role}", kind="role", right="staff", part=p,
                                basis="staff role involved in the pupil's education") for p in parts]
    adult: bool | None = None
    turns_adult: date | None = None
    if facts.birth_date is None:
        notes.append(AccessNote(pseudonym=facts.pseudonym,
                                note="no birth date: parents get no access until it is known"))
    else:
        adult = age_on(facts.birth_date, on) >= policy.adult_age
        turns_adult = date.fromordinal(adult_from(facts.birth_date, policy.adult_age).toordinal() - 1)
        """The last day before the pupil exercises the rights: ``until`` is inclusive."""
    if adult:
        entries += [AccessEntry(principal="pupil", kind="pupil", right="inspect", part=p,
                                basis=f"the pupil is {policy.adult_age} or older and exercises the rights")
                    for p in policy.parts]
    consented = {g.grantee: g for g in facts.grants
                 if g.kind == "parent_after_adult_age" and g.in_force(on)}
    for guardian in sorted(facts.guardians, key=lambda g: g.id):
        if guardian.deceased:
            continue
        principal = f"guardian:{guardian.id}"
        if guardian.authority is None:
            notes.append(AccessNote(pseudonym=facts.pseudonym,
                                    note=f"{guardian.id}: parental authority unknown; no access until recorded"))
            continue
        if guardian.authority and adult is False:
            basis = f"parent with parental authority of a pupil under {policy.adult_age}"
            entries += [AccessEntry(principal=principal, kind="guardian", right="inspect", part=p,
                                    until=turns_adult, basis=basis) for p in policy.parts]
        elif guardian.authority and adult and guardian.id in consented:
            grant = consented[guardian.id]
            entries += [AccessEntry(principal=principal, kind="guardian", right="inspect", part=p,
                                    until=grant.until, basis=f"consent of the pupil (grant {grant.id})")
                        for p in grant.parts if p in policy.parts]
        elif not guardian.authority and adult is False and policy.information_classes:
            entries += [AccessEntry(principal=principal, kind="guardian", right="information", part=p,
                                    classes=policy.information_classes,
                                    until=turns_adult,
                                    basis="parent without parental authority: information, not inspection")
                        for p in policy.parts]
    for grant in facts.grants:
        if grant.kind == "third_party" and grant.in_force(on):
            entries += [AccessEntry(principal=f"third_party:{grant.grantee}", kind="third_party", right="inspect",
                                    part=p, until=grant.until, basis=f"{grant.basis.replace('_', ' ')} "
                                    f"(grant {grant.id})") for p in grant.parts if p in policy.parts]
    return tuple(sorted(entries, key=_order)), tuple(notes)


def _order(e: AccessEntry) -> tuple[str, str, str]:
    return (e.principal, e.part, e.right)


def diff(current: Iterable[AccessEntry], desired: Iterable[AccessEntry]
         ) -> tuple[tuple[AccessEntry, ...], tuple[AccessEntry, ...]]:
    """(to grant, to revoke) to go from ``current`` to ``desired``."""
    have, want = set(current), set(desired)
    return tuple(sorted(want - have, key=_order)), tuple(sorted(have - want, key=_order))


def next_change(facts: AccessFacts, policy: AccessPolicy, on: date) -> date | None:
    """The next day after ``on`` on which the list changes by the calendar alone (the departure
    date, the 16th birthday, a grant starting or ending): the service recomputes then."""
    days: list[date] = []
    if facts.departure is not None:
        days.append(facts.departure)
    if facts.birth_date is not None:
        days.append(adult_from(facts.birth_date, policy.adult_age))
    for g in facts.grants:
        days += [g.start, g.until.fromordinal(g.until.toordinal() + 1)]
        if g.revoked:
            days.append(g.revoked)
    later = [d for d in days if d > on]
    return min(later) if later else None


def general_basis(value: str) -> str:
    """A basis without what makes it one pupil's (a grant's number, a departure date), so that
    a report can count the pupils who have access on it."""
    return re.sub(r" \(grant \d+\)| on [0-9]{4}-[0-9]{2}-[0-9]{2}", "", value)
