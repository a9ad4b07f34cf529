"""The destruction promise, attacked as a whole: random sequences of real events through the real
core (filesystem store, SQLite state), with an oracle checking after every step that nothing
left a dossier that should not have.

The events: LAS snapshots in which pupils enrol, change a field, vanish, return (changed or not),
leave with a date and have the LAS correct it; departures recorded and withdrawn by hand;
referrals and consent; documents of random classes; holds and requests placed and lifted; lists
made, approved by another person (with or without a cooling-off period), by the maker
(refused), by two people or by nobody, executed, and executed while another execution runs;
transfers with and without removal at the source; purges; the clock moved forward.

The oracle knows nothing of ``retention.tag``, ``is_due`` or the gate. It keeps its own record
of each pupil (enrolled or departed, since when, returned), of holds, of who made and who
approved each list and on which day, and reads the periods from the schedule's TOML table
itself. After every step it checks: a document that left its dossier, or the trash, did so only
when its pupil had departed and not returned, its period had passed by the clock of that step,
no hold covered it, its category was not blocked, and it was on a list approved by someone
other than its maker whose cooling-off period (counted by the oracle from the day it saw the
approval) was over; the trash was emptied only after the grace period; every removed document
is in exactly one certificate, and each certificate counts what the store no longer holds;
``audit verify`` passes; and there is never a second dossier for a pupil.

``bench/destruction_soak.py`` runs the same machine for longer and prints how many steps ran.
"""

from __future__ import annotations

import io
import os
import shutil
import tempfile
import tomllib
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from dateutil.relativedelta import relativedelta
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule
from sqlalchemy import select

from connector import destruction, rights, tagging, transfer
from connector.clock import Clock
from connector.errors import InvalidState, NotPermitted
from connector.execute import RetryPolicy
from connector.identity import Identity
from connector.model import DossierRef
from connector.retention import load_schedule
from connector.state import destruction_items
from connector.users import User
from tests.conftest import ROOT, SECRET, World, make_world, pupil

SCHEDULE_FILE = ROOT / "mappings" / "retention-po.toml"
TABLE = tomllib.loads(SCHEDULE_FILE.read_text(encoding="utf-8"))
CLASSES = ["rapport", "toetsuitslagen", "verzuim", "inschrijving", "vrijstelling_leerplicht", "reuniegegevens"]
PART = {"rapport": "II", "toetsuitslagen": "II", "verzuim": "I", "inschrijving": "I",
        "vrijstelling_leerplicht": "I", "reuniegegevens": "I"}
KEYS = [f"K{i}" for i in range(6)]
GRACE = 14
NO_RETRY = RetryPolicy(attempts=1, initial=0.0, maximum=0.0)
KEY = Identity(SECRET, "las_key").approval_key
MAKER = User(name="maker", roles=frozenset({"maker", "executor"}))
APPROVERS = {"approver": User(name="approver", roles=frozenset({"approver"})),
             "approver2": User(name="approver2", roles=frozenset({"approver"}))}
STEPS = {"steps": 0, "removed": 0, "purged": 0, "examples": 0, "listed": 0, "documents": 0}
"""Counted over a whole run (the soak prints them)."""
SKIPPED: Counter[str] = Counter()
"""Why the gate or the list refused, over a whole run (the soak prints them)."""


def oracle_due(cls: str, departure: date, referred: bool, consent: bool) -> date | None:
    """When the schedule's table says a document of ``cls`` must be gone (None: never). Read
    from the TOML directly; periods added with dateutil (not the connector's arithmetic)."""
    cat = TABLE["categories"][TABLE["classes"][cls]]
    if cat.get("blocked") or cat["kind"] != "maximum":
        return None
    period = cat["period"]
    if referred and "when_referred" in cat:
        period = cat["when_referred"]["period"]
    if consent and "with_consent" in cat:
        period = cat["with_consent"]["period"]
    if period == "open":
        return None
    n, unit = int(period[:-1]), period[-1]
    delta = {"y": relativedelta(years=n), "m": relativedelta(months=n), "w": relativedelta(weeks=n),
             "d": relativedelta(days=n)}[unit]
    return departure + delta


@dataclass
class Child:
    """The oracle's own record of one pupil."""

    key: str
    present: bool = False
    synced: bool = False
    las_departure: date | None = None
    hand_departure: date | None = None
    returned: date | None = None
    referred: bool = False
    consent: bool = False
    jaargroep: int = 3
    holds: dict[int, str | None] = field(default_factory=dict)  # hold id -> part (None: whole)
    requests: dict[int, int] = field(default_factory=dict)  # request id -> its hold id

    def departed_on(self) -> date | None:
        """The departure whose clock runs: the LAS's, else one recorded by hand; none once the
        pupil came back on or after it."""
        departure = self.las_departure or self.hand_departure
        if departure is None or (self.returned is not None and self.returned >= departure):
            return None
        return departure


class DestructionMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.tmp = Path(tempfile.mkdtemp(prefix="ld-machine-"))
        self.w: World = make_world(self.tmp)
        self.schedule = load_schedule("retention-po", classes=set(self.w.mapping.classes))
        self.today = date.today()
        self.children = {k: Child(k) for k in KEYS}
        self.docs: dict[str, tuple[str, str]] = {}  # doc id -> (pupil key, class)
        self.present: set[str] = set()  # what the oracle saw in the dossiers after the last step
        self.trashed: dict[str, date] = {}  # what it saw in the trash, and since when
        self.makers: dict[int, str] = {}
        self.approvers: dict[int, set[str]] = {}
        self.cooling_off: dict[int, date] = {}  # list -> the first day it may remove anything, as the oracle saw
        self.certificates: dict[int, dict[str, Any]] = {}
        self.removed: set[str] = set()
        STEPS["examples"] += 1

    def teardown(self) -> None:
        self.w.state.close()
        shutil.rmtree(self.tmp, ignore_errors=True)

    # -- helpers -------------------------------------------------------------------------------
    def clock(self) -> Clock:
        return Clock(self.today)

    def row(self, key: str) -> Any:
        rows = self.w.state.find_pupil([self.w.identity.pseudonym_of("99XY", key)])
        return rows[0] if rows else None

    def retag(self, external_ids: list[str]) -> None:
        if external_ids:
            tagging.refresh(self.w.store, self.w.state, self.w.audit, self.schedule, self.w.mapping, 0, "t",
                            external_ids=external_ids, retry=NO_RETRY)

    def allowed(self, doc_id: str) -> str | None:
        """Why the oracle forbids this document to leave now (None: it may)."""
        key, cls = self.docs[doc_id]
        child = self.children[key]
        departure = child.departed_on()
        if departure is None:
            return "the pupil has not departed, or came back"
        due = oracle_due(cls, departure, child.referred, child.consent)
        if due is None or due > self.today:
            return f"not due by the clock (due {due})"
        if any(part is None or part == PART[cls] for part in child.holds.values()):
            return "on hold"
        return None

    # -- the LAS ------------------------------------------------------------------------------------
    @initialize(data=st.data())
    def first_snapshot(self, data: st.DataObject) -> None:
        """Four pupils with a few documents each, some of whom left years ago."""
        departures: dict[str, date | None] = {}
        for c in list(self.children.values())[:4]:
            c.present = True
            if data.draw(st.booleans(), label=f"{c.key} left"):
                departures[c.key] = self.today - timedelta(days=data.draw(st.integers(0, 2500)))
        self.snapshot_now(departures, set())
        for c in list(self.children.values())[:4]:
            for cls in data.draw(st.lists(st.sampled_from(CLASSES), min_size=1, max_size=4), label=f"{c.key} docs"):
                self.add_document(c.key, cls)

    def snapshot_now(self, departures: dict[str, date | None], changed: set[str]) -> None:
        before = {c.key: c.departed_on() for c in self.children.values()}
        items = []
        for c in self.children.values():
            if not c.present:
                continue
            if c.key in changed:
                c.jaargroep += 1
            fields: dict[str, Any] = {"jaargroep": str(c.jaargroep), "geboortedatum": date(2012, 3, 1),
                                      "instroomdatum": date(2016, 8, 20)}
            if c.key in departures:
                c.las_departure = departures[c.key]
            if c.las_departure is not None:
                fields["uitstroomdatum"] = c.las_departure
            items.append(pupil(c.key, **fields))
        report = self.w.sync(items, today=self.today, accept_snapshot=True)
        assert report.stopped_by is None, report.message
        for c in self.children.values():
            if c.present:
                c.synced = True
                if c.las_departure is None and before[c.key] is not None:
                    c.returned = self.today  # back without a departure date: re-enrolled
        self.retag(report.retag)

    @rule(data=st.data())
    def snapshot(self, data: st.DataObject) -> None:
        departures: dict[str, date | None] = {}
        changed: set[str] = set()
        for c in self.children.values():
            c.present = data.draw(st.booleans(), label=f"{c.key} present")
            if not c.present:
                continue
            what = data.draw(st.sampled_from(["same", "changed", "leaves", "corrected", "re-enrols"]),
                             label=f"{c.key} in the snapshot")
            if what == "changed":
                changed.add(c.key)
            elif what == "leaves" or (what == "corrected" and c.las_departure is not None):
                departures[c.key] = self.today - timedelta(days=data.draw(st.integers(0, 2500)))
            elif what == "re-enrols":
                departures[c.key] = None
                changed.add(c.key)
        self.snapshot_now(departures, changed)

    @rule(pick=st.integers(0, 5), days=st.integers(0, 2500))
    def vanishes_and_is_recorded_left(self, pick: int, days: int) -> None:
        """A pupil missing from the next export, whom the office then records as left by hand."""
        eligible = [c for c in self.children.values() if c.synced and c.las_departure is None]
        if not eligible:
            return
        c = eligible[pick % len(eligible)]
        key = c.key
        c.present = False
        self.snapshot_now({}, set())
        self.left_by_hand(key, days, False)

    @rule(pick=st.integers(0, 5), changed=st.booleans())
    def returns(self, pick: int, changed: bool) -> None:
        """A pupil missing from the exports is back in the next one, with a field changed or not."""
        eligible = [c for c in self.children.values() if c.synced and not c.present and c.las_departure is None]
        if not eligible:
            return
        c = eligible[pick % len(eligible)]
        c.present = True
        self.snapshot_now({}, {c.key} if changed else set())

    # -- facts by hand ---------------------------------------------------------------------------------
    @rule(key=st.sampled_from(KEYS), days=st.integers(0, 2500), withdraw=st.booleans())
    def left_by_hand(self, key: str, days: int, withdraw: bool) -> None:
        c = self.children[key]
        row = self.row(key)
        if row is None or c.present or c.las_departure is not None or row.vanished_since is None:
            return  # the CLI records a departure by hand only for a pupil who vanished from the LAS
        on = None if withdraw else self.today - timedelta(days=days)
        with self.w.state.transaction() as conn:
            self.w.state.record_fact(conn, row.external_id, "departure", on, "maker")
        c.hand_departure = on
        self.retag([row.external_id])

    @rule(key=st.sampled_from(KEYS), kind=st.sampled_from(["referred", "reunion_consent"]), on=st.booleans())
    def fact(self, key: str, kind: str, on: bool) -> None:
        row = self.row(key)
        if row is None:
            return
        with self.w.state.transaction() as conn:
            self.w.state.record_fact(conn, row.external_id, kind, date(2015, 1, 1) if on else None, "maker")
        setattr(self.children[key], "referred" if kind == "referred" else "consent", on)
        self.retag([row.external_id])

    # -- documents, holds, requests ------------------------------------------------------------
    @rule(key=st.sampled_from(KEYS), cls=st.sampled_from(CLASSES))
    def add_document(self, key: str, cls: str) -> None:
        row = self.row(key)
        if row is None or row.ref_id is None:
            return
        ref = DossierRef(id=row.ref_id, external_id=row.external_id)
        doc = self.w.store.add_document(ref, PART[cls], cls, "d.pdf", io.BytesIO(b"x"), {})
        self.docs[doc.id] = (key, cls)
        STEPS["documents"] += 1
        self.present.add(doc.id)
        self.retag([row.external_id])

    @rule(key=st.sampled_from(KEYS), part=st.sampled_from([None, "I", "II"]))
    def hold(self, key: str, part: str | None) -> None:
        row = self.row(key)
        if row is None:
            return
        with self.w.state.transaction() as conn:
            hold_id = self.w.state.add_hold(conn, row, part, "klacht", "approver")
        self.children[key].holds[hold_id] = part

    @rule(key=st.sampled_from(KEYS), pick=st.integers(0, 5))
    def lift_hold(self, key: str, pick: int) -> None:
        c = self.children[key]
        own = [h for h in c.holds if h not in c.requests.values()]
        if not own:
            return
        hold_id = own[pick % len(own)]
        with self.w.state.transaction() as conn:
            self.w.state.remove_hold(conn, hold_id, "approver", "afgehandeld")
        del c.holds[hold_id]

    @rule(key=st.sampled_from(KEYS))
    def open_request(self, key: str) -> None:
        row = self.row(key)
        if row is None:
            return
        request_id, _due, hold_id = rights.open_request(self.w.state, self.w.audit, row, "inspection", "moeder",
                                                        self.today, "approver")
        self.children[key].requests[request_id] = hold_id
        self.children[key].holds[hold_id] = None

    @rule(key=st.sampled_from(KEYS))
    def close_request(self, key: str) -> None:
        c = self.children[key]
        if not c.requests:
            return
        request_id, hold_id = next(iter(c.requests.items()))
        rights.close_request(self.w.state, self.w.audit, self.w.state.request(request_id) or {}, "granted", "",
                             "approver", self.today)
        del c.requests[request_id]
        del c.holds[hold_id]

    # -- time ------------------------------------------------------------------------------------------
    @rule(days=st.sampled_from([1, 15, 200, 400, 800]))
    def time_passes(self, days: int) -> None:
        self.today += timedelta(days=days)

    # -- lists ---------------------------------------------------------------------------------------
    @rule()
    def new_list(self) -> None:
        self.make_list()

    def make_list(self) -> None:
        list_id, n = destruction.create_list(self.w.state, self.w.audit, self.schedule, self.today, MAKER,
                                             self.clock())
        STEPS["listed"] += n
        self.makers[list_id] = MAKER.name
        self.approvers[list_id] = set()

    def pick(self, pick: int) -> int:
        """Mostly the newest list, sometimes an older one."""
        lists = sorted(self.makers, reverse=True)
        return lists[0 if pick < 6 else pick % len(lists)]

    @rule(who=st.sampled_from(["approver", "approver", "approver2", "approver2", "maker", "nobody"]),
          interleave=st.booleans(), purge=st.booleans())
    def routine(self, who: str, interleave: bool, purge: bool) -> None:
        """The office's routine: a list made, approved by someone (or not), executed."""
        if purge:  # the trash of earlier lists is emptied first, some weeks on
            self.today += timedelta(days=GRACE + 1)
            self.purge()
        self.make_list()
        if who != "nobody":
            self.approve(0, who, False)
        self.execute(0, interleave)
        self.cancel(0)  # what was not approved is not left to block the next list

    @precondition(lambda self: bool(self.makers))
    @rule(pick=st.integers(0, 50), who=st.sampled_from(["approver", "approver2", "maker"]), reject=st.booleans(),
          cooling=st.sampled_from([0, 0, 7, 30]))
    def approve(self, pick: int, who: str, reject: bool, cooling: int = 0) -> None:
        list_id = self.pick(pick)
        _head, items = destruction.load_list(self.w.state, list_id)
        rejects = {items[0]["id"]: "nog nodig"} if reject and items else {}
        user = MAKER if who == "maker" else APPROVERS[who]
        try:
            destruction.approve(self.w.state, self.w.audit, KEY, list_id, user, "directeur", rejects, self.clock(),
                                cooling_off_days=cooling)
        except NotPermitted:
            assert who == "maker" or who in self.approvers[list_id], "a permitted approval was refused"
            return
        except InvalidState:
            return  # not a draft (empty, approved, executed already)
        assert who != "maker", "the maker of a list approved it"
        if not self.approvers[list_id]:  # one approval approves a list here: its cooling-off starts today
            self.cooling_off[list_id] = self.today + timedelta(days=cooling)
        self.approvers[list_id].add(who)

    def certify(self, list_id: int) -> None:
        self.certificates[list_id] = destruction.certificate(self.w.state, self.w.audit, KEY, list_id, "filesystem",
                                                             True, GRACE)

    @precondition(lambda self: bool(self.makers))
    @rule(pick=st.integers(0, 50), interleave=st.booleans())
    def execute_list(self, pick: int, interleave: bool) -> None:
        self.execute(pick, interleave)

    def execute(self, pick: int, interleave: bool) -> None:
        list_id = self.pick(pick)
        store: Any = self.w.store
        inner: list[Any] = []
        if interleave:  # a second execution of the same list starts while the first is in a DMS call
            machine = self

            class Interleaving:
                def __getattr__(self, name: str) -> Any:
                    return getattr(machine.w.store, name)

                @property
                def capabilities(self) -> Any:
                    return machine.w.store.capabilities

                def destroy(self, doc: Any) -> None:
                    if not inner:
                        inner.append(destruction.execute(machine.w.store, machine.w.state, machine.w.audit,
                                                         machine.schedule, list_id, machine.clock(), 1000, MAKER,
                                                         KEY, grace_days=GRACE, retry=NO_RETRY))
                    machine.w.store.destroy(doc)

            store = Interleaving()
        try:
            report = destruction.execute(store, self.w.state, self.w.audit, self.schedule, list_id, self.clock(), 1000,
                                         MAKER, KEY, grace_days=GRACE, retry=NO_RETRY)
        except InvalidState as exc:
            SKIPPED[str(exc).split(";")[0].split(" is ")[-1]] += 1
            return  # not approved, empty, changed
        finally:
            if inner:
                assert inner[0].stopped_by == "single_instance" and inner[0].destroyed == 0
        for skipped in report.skipped:
            SKIPPED[skipped["reason"]] += 1
        self.certify(list_id)

    @precondition(lambda self: bool(self.makers))
    @rule(pick=st.integers(0, 50))
    def cancel(self, pick: int) -> None:
        try:
            destruction.cancel(self.w.state, self.w.audit, self.pick(pick), APPROVERS["approver"], "ingehaald")
        except InvalidState:
            return  # carried out already

    @rule()
    def purge(self) -> None:
        destruction.purge(self.w.store, self.w.state, self.w.audit, self.schedule, self.clock(), GRACE, MAKER, KEY,
                          retry=NO_RETRY)

    @rule(key=st.sampled_from(KEYS), part=st.sampled_from(["I", "II"]), remove=st.booleans())
    def transfer(self, key: str, part: str, remove: bool) -> None:
        row = self.row(key)
        if row is None or row.ref_id is None:
            return
        report = transfer.export_part(self.w.store, self.w.state, self.w.audit, self.w.mapping, row, part,
                                      transfer.FolderDestination(self.tmp / "elders"), remove, MAKER,
                                      self.schedule, self.clock())
        assert report.removed == 0, "a transfer removed documents at the source without a list"
        if report.transfer_list is not None:
            self.makers[report.transfer_list] = MAKER.name
            self.approvers[report.transfer_list] = set()

    # -- the oracle ------------------------------------------------------------------------------------
    def dms(self) -> tuple[set[str], set[str]]:
        """What the DMS holds now: documents in the dossiers, and documents in its trash."""
        present: set[str] = set()
        for key in KEYS:
            row = self.row(key)
            if row is not None and row.ref_id is not None:
                present |= {d.id for d in self.w.store.documents(DossierRef(id=row.ref_id, external_id=""))}
        trash = self.tmp / "dms" / "trash"
        in_trash = {p.name.split(".", 1)[0] for p in trash.glob("*/*/*.meta.json")} if trash.exists() else set()
        return present, in_trash

    @invariant()
    def nothing_left_that_should_not_have(self) -> None:
        STEPS["steps"] += 1
        present, in_trash = self.dms()
        gone = (self.present - present) & set(self.docs)
        items = self.items_by_doc()
        for doc_id in gone:
            reason = self.allowed(doc_id)
            assert reason is None, f"document {doc_id} ({self.docs[doc_id]}) was removed: {reason}"
            assert doc_id in in_trash, "a removed document is not in the trash"
            list_id = items.get(doc_id)
            assert list_id is not None, "a removed document is on no list"
            approvers = self.approvers.get(list_id, set()) - {self.makers[list_id]}
            assert approvers, f"document {doc_id} was removed from list {list_id}, approved by nobody but its maker"
            assert self.cooling_off.get(list_id, date.min) <= self.today, \
                f"document {doc_id} was removed in the cooling-off period of list {list_id}"
            self.trashed[doc_id] = self.today
            self.removed.add(doc_id)
            STEPS["removed"] += 1
        for doc_id in set(self.trashed) - in_trash:
            assert self.trashed[doc_id] + timedelta(days=GRACE) <= self.today, "purged inside the grace period"
            reason = self.allowed(doc_id)
            assert reason is None, f"document {doc_id} was purged: {reason}"
            del self.trashed[doc_id]
            STEPS["purged"] += 1
        self.present = present
        assert present | self.removed >= set(self.docs), "a document vanished without being removed"
        # every removed document in exactly one certificate; each counts what the store lost
        for list_id in self.certificates:
            self.certify(list_id)  # as rewritten now
        listed: dict[str, int] = {}
        for cert in self.certificates.values():
            ids = [d["document"] for d in cert["destroyed"]]
            assert cert["counts"]["destroyed"] == len(ids) == len(set(ids))
            for doc_id in ids:
                assert doc_id not in present, "a certificate lists a document the store still holds"
                listed[doc_id] = listed.get(doc_id, 0) + 1
        assert all(n == 1 for n in listed.values()), "a document is on two certificates"
        assert set(listed) == self.removed, "a removed document is on no certificate (or one that was not removed)"
        assert self.w.state.dossier_count() == self.w.store.dossier_count() == sum(
            c.synced for c in self.children.values()), "a second dossier for a pupil"
        verified = self.w.audit.verify()
        assert verified.ok, verified.problems

    def items_by_doc(self) -> dict[str, int]:
        with self.w.state.engine.connect() as conn:
            rows = conn.execute(select(destruction_items.c.doc_id, destruction_items.c.list_id)
                                .where(destruction_items.c.status == "destroyed")).all()
        return {doc_id: list_id for doc_id, list_id in rows}


EXAMPLES = int(os.environ.get("LD_MACHINE_EXAMPLES", "60"))
STEPS_PER_EXAMPLE = int(os.environ.get("LD_MACHINE_STEPS", "50"))

# the suite's run: about 3,000 steps in under a minute here; the soak runs more
DestructionMachine.TestCase.settings = settings(
    max_examples=EXAMPLES, stateful_step_count=STEPS_PER_EXAMPLE, deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
test_nothing_is_destroyed_wrongly = DestructionMachine.TestCase
