"""A school's change of LAS: every old LAS key mapped to its new key by a number both LAS hold
(BSN, onderwijsnummer or ECK-iD), never by name. Each matched new key becomes an alias of the old
key's dossier, so the first sync on the new LAS makes no new dossier for a matched pupil.

The exports are read in memory (a school's pupils); nothing of them is kept but the aliases,
which hold pseudonyms only."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

from connector.errors import RejectedRecord
from connector.identity import Identity
from connector.model import Pupil
from connector.state import DossierRow, StateStore

Match = Literal["bsn", "eckid", "onderwijsnummer"]


def number(pupil: Pupil, by: Match) -> str | None:
    """The number a pupil is matched by, as the LAS gives it (None: it gives none)."""
    if by == "eckid":
        return pupil.eckid.strip() if pupil.eckid and pupil.eckid.strip() else None
    if pupil.pgn and pupil.pgn_kind == by:
        return pupil.pgn.strip()
    return None


@dataclass
class Rekey:
    """What a change of LAS maps: pairs (old pseudonym, new pseudonym, dossier external id), the
    dossiers already reachable by their new key, and what could not be matched, with why."""

    matched: list[tuple[str, str, str]] = field(default_factory=list)
    already: int = 0
    unmatched: list[dict[str, str]] = field(default_factory=list)
    new_without_dossier: int = 0
    dossiers: int = 0

    @property
    def share(self) -> float:
        """The share of the old export's dossiers that reach their dossier by a new key."""
        return (len(self.matched) + self.already) / self.dossiers if self.dossiers else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {"dossiers": self.dossiers, "matched": len(self.matched), "already": self.already,
                "share": round(self.share, 4), "unmatched": self.unmatched,
                "new_without_dossier": self.new_without_dossier,
                "pairs": [{"old": o, "new": n} for o, n, _ in self.matched]}


def plan(state: StateStore, identity: Identity, old: Iterable[Pupil | RejectedRecord],
         new: Iterable[Pupil | RejectedRecord], by: Match) -> Rekey:
    """Match every dossier of the old export to the new export's key by ``by``. A number two
    records of one export share, a missing number, a new key with a dossier of its own or an
    alias of another dossier: reported, never guessed."""
    result = Rekey()
    olds: dict[str, str | None] = {}  # old pseudonym -> number
    counted: dict[str, int] = {}
    for record in old:
        if isinstance(record, RejectedRecord):
            continue
        value = number(record, by)
        olds[identity.pseudonym(record)] = value
        if value is not None:
            counted[value] = counted.get(value, 0) + 1
    news: dict[str, list[str]] = {}
    for record in new:
        if isinstance(record, RejectedRecord):
            continue
        value = number(record, by)
        if value is not None:
            news.setdefault(value, []).append(identity.pseudonym(record))
    pseudonyms = sorted(olds)
    rows = _dossiers(state, pseudonyms)
    wanted = sorted({p for ps in news.values() for p in ps})
    own = set(_dossiers(state, wanted))
    aliased = state.alias_targets(wanted)
    matched_new: set[str] = set()
    for pseudonym in pseudonyms:
        row = rows.get(pseudonym)
        if row is None:
            continue  # a pupil of the old export without a dossier: nothing to keep
        result.dossiers += 1
        value = olds[pseudonym]

        def miss(reason: str, record: str = pseudonym) -> None:
            result.unmatched.append({"record": record, "reason": reason})

        if value is None:
            miss(f"the old export gives no {by}")
            continue
        if counted[value] > 1:
            miss(f"the old export gives this {by} to more than one pupil")
            continue
        found = news.get(value, [])
        if not found:
            miss(f"not in the new export by its {by}")
            continue
        if len(found) > 1:
            miss(f"the new export gives this {by} to more than one pupil")
            continue
        target = found[0]
        matched_new.add(target)
        if target == pseudonym:
            result.already += 1  # the same key in both LAS
        elif target in aliased:
            if aliased[target].external_id == row.external_id:
                result.already += 1
            else:
                miss("the new key is already linked to another dossier")
        elif target in own:
            miss("the new key has a dossier of its own")
        else:
            result.matched.append((pseudonym, target, row.external_id))
    result.new_without_dossier = sum(1 for ps in news.values() for p in ps if p not in matched_new and p not in own)
    return result


def _dossiers(state: StateStore, pseudonyms: list[str]) -> dict[str, DossierRow]:
    """The dossiers of these pseudonyms, looked up 900 at a time (a school's whole export)."""
    return {r.pseudonym: r for i in range(0, len(pseudonyms), 900) for r in state.find_pupil(pseudonyms[i:i + 900])}
