"""Properties of the destruction path over generated pupils, documents, dates, facts and holds:
nothing is destroyed before its due date, while on hold, in a blocked category, or without an
approved list that holds it; moving today forward never un-destroys or destroys twice."""

from __future__ import annotations

import contextlib
import io
import json
import tempfile
from datetime import date
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select, update

from connector import destruction, tagging
from connector.clock import Clock
from connector.execute import RetryPolicy
from connector.identity import Identity
from connector.mapping import load as load_mapping
from connector.model import DossierRef
from connector.retention import is_due, load_schedule, tag
from connector.state import audit_log, destruction_items, documents
from tests.conftest import APPROVER, MAKER, SECRET, World, make_world, pupil, reopen

MAPPING = load_mapping("po")
CLASSES = sorted(MAPPING.classes)
SCHEDULE = load_schedule("retention-po", classes=set(CLASSES))
NO_RETRY = RetryPolicy(attempts=1, initial=0.0, maximum=0.0)
CLOCK = Clock(date(2099, 1, 1))
"""A test clock for approvals (only a list's date later than the clock's day is refused)."""
KEY = Identity(SECRET, "las_key").approval_key
ON = Clock(date(2026, 11, 24))

pupil_st = st.fixed_dictionaries({
    "left": st.one_of(st.none(), st.dates(min_value=date(2015, 1, 1), max_value=date(2026, 1, 1))),
    "referred": st.booleans(),
    "docs": st.lists(st.sampled_from([*CLASSES, "?"]), min_size=1, max_size=4),
    "hold": st.sampled_from([None, "I", "II", "all"]),
    "reject": st.booleans(),
})


def setup(w: World, pupils: list[dict]) -> None:
    w.sync([pupil(f"K{i}", uitstroomdatum=p["left"], instroomdatum=date(2010, 8, 1), geboortedatum=date(2005, 1, 1))
            for i, p in enumerate(pupils)],
           accept_snapshot=True)
    for i, p in enumerate(pupils):
        row = w.state.find_pupil([w.identity.pseudonym_of("99XY", f"K{i}")])[0]
        ref = DossierRef(id=row.ref_id or "", external_id=row.external_id)
        for cls in p["docs"]:
            part = MAPPING.classes[cls][0] if cls != "?" else "II"
            w.store.add_document(ref, part, None if cls == "?" else cls, "d.pdf", io.BytesIO(b"x"), {})
        with w.state.transaction() as conn:
            if p["referred"]:
                w.state.record_fact(conn, row.external_id, "referred", date(2014, 1, 1), "t")
            if p["hold"]:
                w.state.add_hold(conn, row, None if p["hold"] == "all" else p["hold"], "complaint", "t")
    tagging.refresh(w.store, w.state, w.audit, SCHEDULE, MAPPING, 0, "t", retry=NO_RETRY)


def destroyed_ids(w: World) -> list[str]:
    with w.state.engine.connect() as conn:
        rows = conn.execute(select(audit_log.c.details).where(audit_log.c.action == "document.destroyed")).scalars()
        return [json.loads(r)["document"] for r in rows]


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(pupil_st, min_size=1, max_size=5),
       st.lists(st.dates(min_value=date(2016, 1, 1), max_value=date(2034, 1, 1)), min_size=1, max_size=3))
def test_destruction_never_early_held_blocked_or_unapproved(pupils: list[dict], todays: list[date]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        w = make_world(Path(tmp))
        setup(w, pupils)
        seen_destroyed: set[str] = set()
        for today in sorted(todays):
            list_id, n = destruction.create_list(w.state, w.audit, SCHEDULE, today, MAKER, Clock(today))
            if not n:
                continue
            _head, items = destruction.load_list(w.state, list_id)
            rejects = {i["id"]: "kept" for k, i in enumerate(items) if k % 2 and pupils[0]["reject"]}
            destruction.approve(w.state, w.audit, KEY, list_id, APPROVER, "directeur", rejects, CLOCK)
            destruction.execute(w.store, w.state, w.audit, SCHEDULE, list_id, Clock(today), 10_000, MAKER, KEY,
                                retry=NO_RETRY)
            _head, items = destruction.load_list(w.state, list_id)
            for item in items:
                if item["status"] != "destroyed":
                    continue
                assert item["decision"] == "approved" and item["id"] not in rejects
                assert not w.state.on_hold(item["external_id"], item["part"])
                recorded = w.state.recorded(item["external_id"])
                facts = w.state.facts_for(item["external_id"], recorded.spec.departure)  # type: ignore[union-attr]
                fresh = tag(facts, item["doc_class"], SCHEDULE)
                assert is_due(fresh, today) and not fresh.blocked and fresh.due is not None and fresh.due <= today
            ids = destroyed_ids(w)
            assert len(ids) == len(set(ids)), "a document was destroyed twice"
            assert seen_destroyed <= set(ids), "a destroyed document came back"
            seen_destroyed = set(ids)
        with w.state.engine.connect() as conn:
            statuses = dict(conn.execute(select(documents.c.id, documents.c.status)).all())
        for doc_id in seen_destroyed:
            assert statuses[doc_id] in ("trashed", "destroyed")
        # nothing without a departure date was ever destroyed
        for i, p in enumerate(pupils):
            if p["left"] is None:
                row = w.state.find_pupil([w.identity.pseudonym_of("99XY", f"K{i}")])[0]
                ref = DossierRef(id=row.ref_id or "", external_id=row.external_id)
                assert len(list(w.store.documents(ref))) == len(p["docs"])


def test_a_list_edited_after_approval_is_refused(world: World) -> None:
    setup(world, [{"left": date(2020, 1, 1), "referred": False, "docs": ["rapport", "toetsuitslagen"],
                   "hold": None, "reject": False}])
    list_id, n = destruction.create_list(world.state, world.audit, SCHEDULE, date(2026, 11, 24), MAKER, ON)
    assert n == 2
    destruction.approve(world.state, world.audit, KEY, list_id, APPROVER, None, {}, CLOCK)
    with world.state.transaction() as conn:
        conn.execute(update(destruction_items).where(destruction_items.c.list_id == list_id)
                     .values(category="administratie"))
    import pytest

    from connector.errors import InvalidState
    with pytest.raises(InvalidState, match="changed after its approval"):
        destruction.execute(world.store, world.state, world.audit, SCHEDULE, list_id, ON, 100, MAKER, KEY)


def test_a_hold_placed_after_approval_stops_the_destroy(world: World) -> None:
    setup(world, [{"left": date(2020, 1, 1), "referred": False, "docs": ["rapport"], "hold": None, "reject": False}])
    list_id, _ = destruction.create_list(world.state, world.audit, SCHEDULE, date(2026, 11, 24), MAKER, ON)
    destruction.approve(world.state, world.audit, KEY, list_id, APPROVER, None, {}, CLOCK)
    row = world.state.find_pupil([world.identity.pseudonym_of("99XY", "K0")])[0]
    with world.state.transaction() as conn:
        world.state.add_hold(conn, row, None, "inzageverzoek", "t")
    report = destruction.execute(world.store, world.state, world.audit, SCHEDULE, list_id, ON, 100, MAKER, KEY)
    assert report.destroyed == 0 and report.skipped[0]["reason"] == "on hold"


def test_the_per_run_cap_stops_before_anything_is_destroyed(world: World) -> None:
    setup(world, [{"left": date(2020, 1, 1), "referred": False, "docs": ["rapport"] * 3, "hold": None,
                   "reject": False}])
    list_id, _ = destruction.create_list(world.state, world.audit, SCHEDULE, date(2026, 11, 24), MAKER, ON)
    destruction.approve(world.state, world.audit, KEY, list_id, APPROVER, None, {}, CLOCK)
    report = destruction.execute(world.store, world.state, world.audit, SCHEDULE, list_id, ON, 2, MAKER, KEY)
    assert report.stopped_by == "max_per_run" and report.destroyed == 0
    assert destroyed_ids(world) == []


def test_a_crash_mid_destruction_is_finished_without_destroying_twice(world: World) -> None:
    setup(world, [{"left": date(2020, 1, 1), "referred": False, "docs": ["rapport"] * 4, "hold": None,
                   "reject": False}])
    list_id, _ = destruction.create_list(world.state, world.audit, SCHEDULE, date(2026, 11, 24), MAKER, ON)
    destruction.approve(world.state, world.audit, KEY, list_id, APPROVER, None, {}, CLOCK)

    class Crash(BaseException):
        pass

    class Dying:
        def __init__(self, inner: object) -> None:
            self.inner, self.calls = inner, 0

        def __getattr__(self, name: str) -> object:
            return getattr(self.inner, name)

        @property
        def capabilities(self) -> object:
            return self.inner.capabilities  # type: ignore[attr-defined]

        def destroy(self, doc: object) -> None:
            self.calls += 1
            if self.calls == 3:
                self.inner.destroy(doc)  # type: ignore[attr-defined]
                raise Crash  # killed after the DMS deleted, before the journal said so
            self.inner.destroy(doc)  # type: ignore[attr-defined]

    with contextlib.suppress(Crash):
        destruction.execute(Dying(world.store), world.state, world.audit, SCHEDULE, list_id,  # type: ignore[arg-type]
                            ON, 100, MAKER, KEY)
    world.state.engine.dispose()
    w2 = reopen(world)
    report = destruction.execute(w2.store, w2.state, w2.audit, SCHEDULE, list_id, ON, 100, MAKER, KEY)
    assert report.resumed == 2  # the row killed after the DMS call, and the one not yet sent
    ids = destroyed_ids(w2)
    assert len(ids) == len(set(ids)) == 4
    cert = destruction.certificate(w2.state, w2.audit, KEY, list_id, "filesystem", True, 30)
    assert cert["counts"]["destroyed"] == 4 and cert["not_destroyed"] == []
    assert w2.state.pending() == []
