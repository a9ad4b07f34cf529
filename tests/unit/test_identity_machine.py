"""One dossier per child, attacked when a child has more than one LAS key: random sequences of
snapshots in which children re-register under a new key (the old record still in the export or
not, with an ECK-iD or without), look-alike children, a person's decisions (link, dismiss, unlink)
and documents added, through the real core (filesystem store, SQLite state, the application's
link and report use cases).

The oracle knows which keys are which child's; it never asks the connector whom a key
belongs to. After every step it reads the DMS itself and checks:

- no child has two dossiers, and no dossier holds records of two children;
- every document added to a child's dossier is still in that child's one dossier;
- every alias the state keeps joins two keys of one child;
- a link can be taken back exactly until a sync used it;
- after each sync, a child whose current key the oracle knows to be decided (the dossier's own
  key, a key it linked, or a new key with the ECK-iD of the child's dossier and no rival record)
  has a dossier that shows the current record's year group: the dossier is kept current;
- ``settle`` (every open suspicion decided as a careful person would, then a sync) leaves every
  child in the export with exactly one current dossier.
"""

from __future__ import annotations

import io
import shutil
import tempfile
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any, cast

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule
from sqlalchemy import select

from connector.app import records, reports
from connector.app.context import App
from connector.errors import InvalidState
from connector.model import DossierRef
from connector.state import aliases
from tests.conftest import World, make_world, pupil

TODAY = date(2026, 11, 24)
BY = "administratie"


@dataclass
class Kid:
    """The oracle's own record of one child."""

    n: int
    bsn: str
    eckid: str | None
    name: str
    born: date
    keys: list[str] = field(default_factory=list)
    present: bool = True
    old_too: bool = False  # the previous key's record is still in the export (departed)
    year: int = 3
    docs: set[str] = field(default_factory=set)


class IdentityMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.tmp = Path(tempfile.mkdtemp(prefix="ld-identity-"))
        self.w: World = make_world(self.tmp)
        self.app = App(loaded=cast(Any, None), identity=self.w.identity, mapping=self.w.mapping,
                       state=self.w.state, audit=self.w.audit)
        self.school = pupil("X").school.code
        self.kids = [
            Kid(0, "123456782", "https://ketenid.nl/201703/aaaa0", "Anna", date(2015, 3, 1), ["K0"]),
            Kid(1, "234567891", None, "Bram", date(2016, 4, 2), ["K1"]),
            # look-alikes: one name and birth date, two children
            Kid(2, "345678900", None, "Sam", date(2015, 6, 3), ["K2"]),
            Kid(3, "456789011", None, "Sam", date(2015, 6, 3), ["K3"]),
        ]
        self.linked: dict[str, bool] = {}  # a key the oracle linked (or saw found) -> a sync used it
        self.seen_keys: set[str] = set()

    def teardown(self) -> None:
        self.w.state.close()
        shutil.rmtree(self.tmp, ignore_errors=True)

    # -- what the oracle reads of the DMS itself -------------------------------------------------
    def eid(self, key: str) -> str:
        return f"las:{self.school}:{key}"

    def pseudonym(self, key: str) -> str:
        return self.w.identity.pseudonym_of(self.school, key)

    def kid_of_pseudonym(self, p: str) -> Kid:
        return next(k for k in self.kids if any(self.pseudonym(key) == p for key in k.keys))

    def dossiers_of(self, kid: Kid) -> list[tuple[str, DossierRef]]:
        found = []
        for key in kid.keys:
            ref = self.w.store.find_dossier(self.eid(key))
            if ref is not None:
                found.append((key, ref))
        return found

    def dossier_key(self, kid: Kid) -> str | None:
        found = self.dossiers_of(kid)
        return found[0][0] if found else None

    def record(self, kid: Kid, key: str, departed: bool) -> Any:
        fields: dict[str, Any] = {"roepnaam": kid.name, "achternaam": "Jansen", "geboortedatum": kid.born,
                                  "jaargroep": str(kid.year), "pgn": kid.bsn, "pgn_kind": "bsn",
                                  "instroomdatum": date(2020, 8, 20)}
        if kid.eckid:
            fields["eckid"] = kid.eckid
        if departed:
            fields["uitstroomdatum"] = date(2026, 7, 1)
        return pupil(key, **fields)

    # -- what the oracle expects ---------------------------------------------------------------------
    def decided(self, kid: Kid, snapshot_keys: set[str]) -> bool:
        """Whether the oracle expects this sync to keep the kid's dossier current from its current
        key: the key is the dossier's own (no other key linked to it), a key the oracle linked, or a
        new key with the ECK-iD of the kid's dossier while nothing else in the export goes there."""
        current = kid.keys[-1]
        own = self.dossier_key(kid)
        if own is None:
            return False
        linked_here = [k for k in kid.keys if k in self.linked]
        if current == own:
            return not linked_here
        if current in self.linked:
            return sum(1 for k in linked_here if k in snapshot_keys) == 1
        if kid.eckid is None:
            return False
        # every other key of the kid in the export goes to the dossier too (its own key while no
        # other is linked; a linked key; a new key by the same ECK-iD): then nothing is followed
        rivals = [k for k in kid.keys if k in snapshot_keys and k != current and not (k == own and linked_here)]
        return not rivals

    # -- events --------------------------------------------------------------------------------------
    def sync(self) -> None:
        items = []
        keys: set[str] = set()
        for kid in self.kids:
            if not kid.present:
                continue
            items.append(self.record(kid, kid.keys[-1], False))
            keys.add(kid.keys[-1])
            if kid.old_too and len(kid.keys) > 1:
                items.append(self.record(kid, kid.keys[-2], True))
                keys.add(kid.keys[-2])
        expect = {kid.n: self.decided(kid, keys) for kid in self.kids if kid.present}
        report = self.w.sync(items, today=TODAY, accept_snapshot=True, accept_departures=True)
        assert report.stopped_by is None, report.message
        for x in report.linked:  # an ECK-iD found the dossier: the oracle checks it was the kid's
            kid = self.kid_of_pseudonym(x["record"])
            assert self.kid_of_pseudonym(x["dossier"]) is kid
            assert kid.eckid is not None
            assert expect[kid.n], f"kid {kid.n}: an ECK-iD was followed while another record went to the dossier"
            key = next(k for k in kid.keys if self.pseudonym(k) == x["record"])
            self.linked[key] = True
        for key in list(self.linked):
            if key in keys:
                self.linked[key] = True
        suspected = {p for d in reports.open_suspicions(self.app) for p in (d["a"], d["b"], *d.get("members", []))}
        for kid in self.kids:
            if not kid.present:
                continue
            found = self.dossiers_of(kid)
            current = len(found) == 1 and \
                self.w.store.read_dossier(found[0][1])["properties"].get("jaargroep") == str(kid.year)
            if expect[kid.n]:
                assert current, f"kid {kid.n} not kept current"
            # never left where nobody can act: current, or in a suspicion a person decides, or two
            # linked keys of the child in one export (the office corrects the LAS)
            twice = sum(1 for k in kid.keys if k in self.linked and k in keys) > 1
            assert current or twice or any(self.pseudonym(k) in suspected for k in kid.keys), \
                f"kid {kid.n} is neither current nor waiting for a person"
        self.seen_keys |= keys

    @rule(data=st.data())
    def snapshot(self, data: st.DataObject) -> None:
        """The next export: per child present or not, a year up or not, and maybe registered again
        under a new key (the old record kept, as departed, or dropped), or the old record removed."""
        for kid in self.kids:
            kid.present = data.draw(st.integers(0, 4), label=f"kid {kid.n} present") > 0 or kid.n == 0
            if data.draw(st.integers(0, 3), label=f"kid {kid.n} moves up") > 0:
                kid.year += 1
            event = data.draw(st.sampled_from(["none", "none", "new key, old kept", "new key", "old removed"]),
                              label=f"kid {kid.n}")
            if event.startswith("new key") and len(kid.keys) < 3:
                kid.keys.append(f"K{kid.n}n{len(kid.keys)}")
                kid.old_too = event == "new key, old kept"
            elif event == "old removed":
                kid.old_too = False
        self.sync()
        if data.draw(st.booleans(), label="a person decides what the sync left"):
            self.decide_all()

    def decide_all(self) -> None:
        for d in [d for d in reports.open_suspicions(self.app) if not d.get("group")]:
            if any(x["a"] == d["a"] and x["b"] == d["b"] for x in reports.open_suspicions(self.app)):
                self.decide_one(d)

    @rule(pick=st.integers(0, 7))
    def decide(self, pick: int) -> None:
        """A careful person decides one open suspicion: link when one child (and one key has a
        dossier), dismiss when two."""
        open_ = [d for d in reports.open_suspicions(self.app) if not d.get("group")]
        if open_:
            self.decide_one(open_[pick % len(open_)])

    def decide_one(self, d: dict[str, Any]) -> None:
        a, b = self.kid_of_pseudonym(d["a"]), self.kid_of_pseudonym(d["b"])
        if a is not b:
            records.dismiss_duplicate(self.app, BY, d["a"], d["b"])
            return
        if d["dossier"] is None:
            a.old_too = False  # one child twice and no dossier: the office corrects the LAS
            return
        other = d["b"] if d["dossier"] == d["a"] else d["a"]
        records.link_duplicate(self.app, BY, d["dossier"], other)
        key = next(k for k in a.keys if self.pseudonym(k) == other)
        self.linked[key] = False

    @rule(pick=st.integers(0, 7))
    def unlink(self, pick: int) -> None:
        with self.w.state.engine.connect() as conn:
            rows = conn.execute(select(aliases.c.pseudonym, aliases.c.external_id)).all()
        if not rows:
            return
        alias, external_id = rows[pick % len(rows)]
        kid = self.kid_of_pseudonym(alias)
        key = next(k for k in kid.keys if self.pseudonym(k) == alias)
        dossier = self.w.state.find_pupil([self.pseudonym(external_id.rsplit(":", 1)[1])])[0].pseudonym
        try:
            records.unlink_duplicate(self.app, BY, dossier, alias)
        except InvalidState:
            assert self.linked.get(key), "an unused link was refused"
            return
        assert not self.linked.get(key), "a link a sync used was taken back"
        del self.linked[key]

    @rule(n=st.integers(0, 3))
    def add_document(self, n: int) -> None:
        kid = self.kids[n]
        found = self.dossiers_of(kid)
        if not found:
            return
        doc = self.w.store.add_document(found[0][1], "I", "inschrijving", "d.pdf", io.BytesIO(b"x"), {})
        kid.docs.add(doc.id)

    def office_corrects(self) -> None:
        """The sync rejects both records of two keys linked to one dossier: the office removes the
        old one from the LAS."""
        for kid in self.kids:
            if kid.old_too and len(kid.keys) > 1 and kid.keys[-1] in self.linked and kid.keys[-2] in self.linked:
                kid.old_too = False

    @rule()
    def settle(self) -> None:
        """Every open suspicion decided, the office's corrections made, then a sync: every child in
        the export has its one current dossier."""
        for _ in range(4):
            self.office_corrects()
            self.sync()
            if not [d for d in reports.open_suspicions(self.app) if not d.get("group")]:
                break
            self.decide_all()
        self.office_corrects()
        self.sync()
        for kid in self.kids:
            if kid.present:
                found = self.dossiers_of(kid)
                assert len(found) == 1, f"kid {kid.n} has {len(found)} dossiers after every decision"
                props = self.w.store.read_dossier(found[0][1])["properties"]
                assert props.get("jaargroep") == str(kid.year), f"kid {kid.n} not current after settling"

    # -- the promise -----------------------------------------------------------------------------------
    @invariant()
    def one_dossier_per_child(self) -> None:
        for kid in self.kids:
            assert len(self.dossiers_of(kid)) <= 1, f"kid {kid.n} has two dossiers"

    @invariant()
    def nothing_lost(self) -> None:
        for kid in self.kids:
            if kid.docs:
                found = self.dossiers_of(kid)
                assert len(found) == 1
                held = {d.id for d in self.w.store.documents(found[0][1])}
                assert kid.docs <= held, f"kid {kid.n} lost documents"

    @invariant()
    def aliases_join_one_child(self) -> None:
        with self.w.state.engine.connect() as conn:
            rows = conn.execute(select(aliases.c.pseudonym, aliases.c.external_id)).all()
        for alias, external_id in rows:
            owner = self.kid_of_pseudonym(alias)
            assert self.eid(owner.keys[0]) == external_id or any(self.eid(k) == external_id for k in owner.keys), \
                "an alias joins two children"


IdentityMachine.TestCase.settings = settings(
    max_examples=int(__import__("os").environ.get("LD_IDENTITY_EXAMPLES", "40")), stateful_step_count=20,
    deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
TestIdentityMachine = IdentityMachine.TestCase
